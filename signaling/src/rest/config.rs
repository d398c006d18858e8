//! `GET /config` and its sub-paths.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

use super::{ok_json, ApiError};
use crate::app::App;
use crate::rpc::OPENVIDU_VERSION;

fn public_url(app: &App) -> String {
    let scheme = if app.settings.tls() { "https" } else { "http" };
    format!(
        "{scheme}://{}:{}/",
        app.settings.domain_or_public_ip,
        app.settings.https_port.unwrap_or(app.settings.server_port)
    )
}

pub async fn all(State(app): State<Arc<App>>) -> Response {
    let s = &app.settings;
    ok_json(json!({
        "VERSION": OPENVIDU_VERSION,
        "DOMAIN_OR_PUBLIC_IP": s.domain_or_public_ip,
        "HTTPS_PORT": s.https_port.unwrap_or(s.server_port),
        "OPENVIDU_PUBLICURL": public_url(&app),
        "OPENVIDU_CDR": s.openvidu_cdr,
        "OPENVIDU_CDR_PATH": s.openvidu_cdr_path,
        "REDIS_URL": s.redis_url_shown(),
        "CLUSTER_NODE_URL": s.node_url(),
        "CLUSTER_NAME": s.cluster_name,
        "OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH": s.openvidu_streams_video_max_recv_bandwidth,
        "OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH": s.openvidu_streams_video_min_recv_bandwidth,
        "OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH": s.openvidu_streams_video_max_send_bandwidth,
        "OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH": s.openvidu_streams_video_min_send_bandwidth,
        "OPENVIDU_STREAMS_FORCED_VIDEO_CODEC": "MEDIA_SERVER_PREFERRED",
        "OPENVIDU_STREAMS_ALLOW_TRANSCODING": false,
        "OPENVIDU_WEBRTC_SIMULCAST": false,
        "OPENVIDU_SESSIONS_GARBAGE_INTERVAL": s.openvidu_sessions_garbage_interval,
        "OPENVIDU_SESSIONS_GARBAGE_THRESHOLD": s.openvidu_sessions_garbage_threshold,
        "OPENVIDU_RECORDING": false,
        "OPENVIDU_WEBHOOK": s.openvidu_webhook,
        "OPENVIDU_WEBHOOK_ENDPOINT": s.openvidu_webhook_endpoint,
        // Names only: header values are usually credentials.
        "OPENVIDU_WEBHOOK_HEADERS": s.webhook_header_names(),
        "OPENVIDU_WEBHOOK_EVENTS": s.webhook_events(),
        "KMS_URIS": app.pool.all().iter().map(|e| Value::from(e.uri.clone())).collect::<Vec<_>>(),
    }))
}

pub async fn one(State(app): State<Arc<App>>, Path(key): Path<String>) -> Response {
    let text = match key.as_str() {
        "openvidu-version" => OPENVIDU_VERSION.to_string(),
        "openvidu-publicurl" => public_url(&app),
        "openvidu-recording" => "false".into(),
        "openvidu-recording-path" => String::new(),
        "openvidu-cdr" => "false".into(),
        _ => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                format!("No configuration property '{key}'"),
                &format!("/openvidu/api/config/{key}"),
            )
            .into_response()
        }
    };
    (StatusCode::OK, text).into_response()
}

//! The HTTP surface: REST under `/openvidu/api`, the browser WebSocket at `/openvidu` (query
//! parameters ignored), `/health`, and the static client, demo and dashboard at `/`.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    let static_dir = app.settings.static_dir.clone();
    let body_timeout = Duration::from_secs(app.settings.http_body_timeout_secs);
    let files = Router::new()
        .fallback_service(ServeDir::new(static_dir))
        .layer(axum::middleware::from_fn(no_overlong_names));
    Router::new()
        .route("/openvidu", get(ws))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/demo/token", axum::routing::post(crate::demo::token))
        .with_state(app.clone())
        .merge(crate::rest::router(app))
        .fallback_service(files)
        // A body announced but not sent (or dribbled) fails the request instead of holding it.
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(CorsLayer::permissive())
}

/// No file name is longer than 255 bytes: such paths are 404 (the file system would refuse
/// the name, which `ServeDir` turns into a 500).
async fn no_overlong_names(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.uri().path().split('/').any(|seg| seg.len() > 255) {
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(req).await
}

/// One browser message at most this large; larger closes the socket with 1009.
pub const MAX_WS_MESSAGE: usize = 256 * 1024;

async fn ws(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    up: WebSocketUpgrade,
) -> impl IntoResponse {
    let ip = crate::rest::headers_ip(&headers).unwrap_or_else(|| peer.ip().to_string());
    // tungstenite reserves 128 KiB per socket for reading by default: 640 MB for 5,000
    // participants. Signaling frames are small, so 8 KiB chunks (messages still grow as needed).
    up.read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_upgrade(move |socket| crate::rpc::socket::serve(app, socket, ip))
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if !app.settings.metrics_public && !crate::rest::authorized(&app, &headers) {
        return crate::rest::unauthorized("/metrics");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        crate::metrics::render(&app),
    )
        .into_response()
}

/// Anyone: `{status, ready}` (ready = some engine can take a session now), enough for a load
/// balancer. With the REST credentials: every engine and the counts, as operators need.
async fn health(State(app): State<Arc<App>>, headers: HeaderMap) -> Json<serde_json::Value> {
    if !crate::rest::authorized(&app, &headers) {
        let ready = app
            .pool
            .all()
            .iter()
            .any(|e| app.pool.admitted(&e.snapshot()).is_ok());
        return Json(json!({"status": "ok", "ready": ready}));
    }
    let engines: Vec<serde_json::Value> = app
        .pool
        .all()
        .iter()
        .map(|e| {
            let s = e.snapshot();
            json!({"id": s.id, "uri": s.uri, "connected": s.connected, "admitted": app.pool.admitted(&s).is_ok(), "sessions": s.sessions.len()})
        })
        .collect();
    let cluster = app.cluster.enabled().then(|| {
        json!({"node": app.cluster.node, "storeReachable": app.cluster.reachable(), "nodes": app.cluster.nodes()})
    });
    let reg = app.reg.lock();
    Json(json!({
        "status": "ok",
        "node": app.instance,
        "cluster": cluster,
        "sessions": reg.sessions.len(),
        "participants": reg.roster.len(),
        "wsConnections": app.metrics.ws_open.load(Ordering::Relaxed),
        "wsConnectionsTotal": app.metrics.ws_connections.load(Ordering::Relaxed),
        "engines": engines,
    }))
}

//! `POST/GET /sessions/{id}/connection`, `GET/DELETE /sessions/{id}/connection/{cid}`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

use super::{flag, no_content, object_body, ok_json, ApiError};
use crate::app::App;
use crate::media::stats::add_to_connection;
use crate::model::{list_json, ConnectionProps};

fn path(id: &str) -> String {
    format!("/openvidu/api/sessions/{id}/connection")
}

pub async fn create(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let p = path(&id);
    let body = match object_body(&body, &p) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let props = match ConnectionProps::parse(&body, &app.settings.openvidu_webrtc_ice_servers) {
        Ok(x) => x,
        Err(msg) => return ApiError::new(StatusCode::BAD_REQUEST, msg, &p).into_response(),
    };
    if props.kind == "IPCAM" {
        return ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "IPCAM connections are not supported by this server",
            &p,
        )
        .into_response();
    }
    match app.create_connection(&id, props).await {
        Some(json) => ok_json(json),
        None => ApiError::missing(StatusCode::NOT_FOUND, "Session", &id, &p).into_response(),
    }
}

pub async fn list(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending = flag(&q, "pendingConnections", true);
    let figures = match flag(&q, "webRtcStats", false) {
        true => app.webrtc_figures(&id).await,
        false => Default::default(),
    };
    let listed = app
        .on_session(&id, move |s| {
            let json = |c: &crate::model::Connection| c.rest_json(&s.id);
            let shown = s.in_order().filter(|c| pending || c.active.is_some());
            shown.map(json).collect::<Vec<Value>>()
        })
        .await;
    let Some(mut content) = listed else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Session {id} not found"),
            &path(&id),
        )
        .into_response();
    };
    for v in &mut content {
        add_to_connection(v, &figures);
    }
    ok_json(list_json(content))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path((id, cid)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = format!("{}/{cid}", path(&id));
    let figures = match flag(&q, "webRtcStats", false) {
        true => app.webrtc_figures(&id).await,
        false => Default::default(),
    };
    let c = cid.clone();
    let found = app
        .on_session(&id, move |s| {
            s.connections.get(&c).map(|c| c.rest_json(&s.id))
        })
        .await;
    match found {
        None => ApiError::missing(StatusCode::BAD_REQUEST, "Session", &id, &p).into_response(),
        Some(None) => {
            ApiError::missing(StatusCode::NOT_FOUND, "Connection", &cid, &p).into_response()
        }
        Some(Some(mut v)) => {
            add_to_connection(&mut v, &figures);
            ok_json(v)
        }
    }
}

/// Evicts an active connection (`forceDisconnectByServer`) or deletes an unused token.
pub async fn remove(
    State(app): State<Arc<App>>,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    let p = format!("{}/{cid}", path(&id));
    let c = cid.clone();
    // An unused token goes at once; an active connection is evicted below.
    let found = app
        .on_session(&id, move |s| {
            let active = s.connections.get(&c).map(|c| c.active.is_some());
            if active == Some(false) {
                s.remove(&c);
            }
            active
        })
        .await;
    let active = match found {
        None => {
            return ApiError::missing(StatusCode::BAD_REQUEST, "Session", &id, &p).into_response()
        }
        Some(None) => {
            return ApiError::missing(StatusCode::NOT_FOUND, "Connection", &cid, &p).into_response()
        }
        Some(Some(active)) => active,
    };
    if !active {
        app.changed(&id);
    }
    if active {
        app.remove_participant(&id, &cid, "forceDisconnectByServer", true)
            .await;
    }
    no_content()
}

//! `POST /demo/token {room, name}` for the demo page: creates the session when needed and a
//! PUBLISHER connection, and returns its token. An application server's job; on by default so
//! the run command gives a working demo, off with `DEMO_TOKENS=false`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use crate::app::App;
use crate::model::{ConnectionProps, SessionProps};
use crate::rest::{object_body, ok_json, ApiError};

const PATH: &str = "/demo/token";

pub async fn token(State(app): State<Arc<App>>, body: Bytes) -> Response {
    if !app.settings.demo_tokens {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "The demo token endpoint is disabled",
            PATH,
        )
        .into_response();
    }
    let body = match object_body(&body, PATH) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let room = body
        .get("room")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    if !crate::ids::valid_custom_session_id(&room) || room.len() > 64 || name.len() > 64 {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "'room' must match [a-zA-Z0-9_-]{1,64} and 'name' be at most 64 characters",
            PATH,
        )
        .into_response();
    }
    let mut sp = Map::new();
    sp.insert("customSessionId".into(), Value::from(room.clone()));
    if let Ok(props) = SessionProps::parse(&sp) {
        let _ = app.create_session(props); // an existing room is fine
    }
    let Ok(props) = ConnectionProps::parse(&Map::new(), &app.settings.openvidu_webrtc_ice_servers)
    else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "connection defaults",
            PATH,
        )
        .into_response();
    };
    match app.create_connection(&room, props) {
        Some(c) => ok_json(json!({"token": c["token"], "session": room})),
        None => ApiError::new(
            StatusCode::CONFLICT,
            "The room closed meanwhile; try again",
            PATH,
        )
        .into_response(),
    }
}

//! `POST /demo/token {room, name}` for the demo page: a PUBLISHER token for the demo session
//! `demo_<room>`, created when needed. Off unless `DEMO_TOKENS=true` (`./scripts/run` turns it
//! on). It can only reach sessions of its own: their ids start with [`PREFIX`], which REST
//! refuses for `customSessionId`, so no session an application made is ever joinable through
//! it. At most [`MAX_DEMO_SESSIONS`] demo sessions exist at once.

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

/// Session ids of demo rooms start with this; REST cannot create such ids.
pub const PREFIX: &str = "demo_";

/// Demo rooms alive at once (a flood of room names is refused beyond it).
pub const MAX_DEMO_SESSIONS: usize = 100;

pub async fn token(State(app): State<Arc<App>>, body: Bytes) -> Response {
    if !app.settings.demo_tokens {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "The demo token endpoint is disabled (DEMO_TOKENS=false)",
            PATH,
        )
        .into_response();
    }
    let body = match object_body(&body, PATH) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let room = body.get("room").and_then(Value::as_str).unwrap_or_default();
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    if !crate::ids::valid_custom_session_id(room) || room.len() > 64 || name.len() > 64 {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "'room' must be 1–64 characters of [a-zA-Z0-9_-] and 'name' at most 64 characters",
            PATH,
        )
        .into_response();
    }
    let session = format!("{PREFIX}{room}");
    let (exists, demo_sessions) = {
        let reg = app.reg.lock();
        let demos = reg
            .sessions
            .range(PREFIX.to_string()..)
            .take_while(|(id, _)| id.starts_with(PREFIX))
            .count();
        (reg.sessions.contains_key(&session), demos)
    };
    if !exists {
        if demo_sessions >= MAX_DEMO_SESSIONS {
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many demo rooms are open (at most {MAX_DEMO_SESSIONS}); join an existing one"),
                PATH,
            )
            .into_response();
        }
        let props = SessionProps::demo(session.clone());
        let _ = app.create_session(props).await; // created meanwhile by another request is fine
    }
    let Ok(props) = ConnectionProps::parse(&Map::new(), &app.settings.openvidu_webrtc_ice_servers)
    else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", PATH)
            .into_response();
    };
    match app.create_connection(&session, props).await {
        Some(c) => ok_json(json!({"token": c["token"], "session": session})),
        None => ApiError::new(
            StatusCode::CONFLICT,
            "The room closed meanwhile; try again",
            PATH,
        )
        .into_response(),
    }
}

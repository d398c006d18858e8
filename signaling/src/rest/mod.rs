//! The REST API under `/openvidu/api` (reference §3): Basic auth `OPENVIDUAPP:<secret>`, OpenVidu's
//! bodies, defaults and status codes. Errors are mapped in one place ([`ApiError`]); a refused
//! request changes nothing.

mod config;
mod connections;
pub mod media_nodes;
mod recordings;
mod sessions;
mod signal;
mod streams;
mod tokens;

use crate::error::Error;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::sync::Arc;

use crate::app::App;

/// Largest REST request body, bytes (413 beyond).
pub const MAX_BODY: usize = 256 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/sessions", post(sessions::create).get(sessions::list))
        .route("/sessions/{id}", get(sessions::get).delete(sessions::close))
        .route(
            "/sessions/{id}/connection",
            post(connections::create).get(connections::list),
        )
        .route(
            "/sessions/{id}/connection/{cid}",
            get(connections::get).delete(connections::remove),
        )
        .route("/sessions/{id}/stream/{sid}", delete(streams::remove))
        .route("/signal", post(signal::send))
        .route("/tokens", post(tokens::create))
        .route("/recordings", get(recordings::disabled))
        .route("/recordings/start", post(recordings::disabled))
        .route("/recordings/stop/{rid}", post(recordings::disabled))
        .route(
            "/recordings/{rid}",
            get(recordings::disabled).delete(recordings::disabled),
        )
        .route(
            "/media-nodes",
            get(media_nodes::list).post(media_nodes::add),
        )
        .route(
            "/media-nodes/{id}",
            get(media_nodes::get)
                .patch(media_nodes::patch)
                .delete(media_nodes::remove),
        )
        .route("/config", get(config::all))
        .route("/config/{key}", get(config::one))
        // In a cluster, a call about another node's session is sent there (`cluster/forward.rs`)…
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::cluster::forward::middleware,
        ))
        // …once authenticated here (the outer layer runs first).
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            basic_auth,
        ))
        // No REST body needs more (the largest fields are limited to 64 KiB, `limits.rs`).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(app);
    Router::new().nest("/openvidu/api", api)
}

/// Basic auth with user `OPENVIDUAPP`; `GET /config/openvidu-publicurl` is public.
async fn basic_auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.uri().path().ends_with("/config/openvidu-publicurl") || authorized(&app, req.headers()) {
        next.run(req).await
    } else {
        unauthorized(req.uri().path())
    }
}

/// The REST API's credentials (`OPENVIDUAPP:<secret>`), also required by `/metrics`.
pub fn authorized(app: &App, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok())
        .is_some_and(|cred| {
            let ours = format!("OPENVIDUAPP:{}", app.settings.openvidu_secret);
            rtcpool_config::secret::matches(cred.as_bytes(), ours.as_bytes())
        })
}

/// 401 with OpenVidu's body and the Basic challenge.
pub fn unauthorized(path: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", path).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"OpenVidu\""),
    );
    r
}

/// An error answer: status plus OpenVidu's JSON body (`timestamp, status, error, message, path`).
pub struct ApiError {
    status: StatusCode,
    message: String,
    path: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>, path: &str) -> Self {
        Self {
            status,
            message: message.into(),
            path: path.to_string(),
        }
    }

    /// What signaling refused, written for HTTP (the one place an [`Error`] becomes a status).
    pub fn of(e: Error, path: &str) -> Self {
        Self::new(e.status(), e.to_string(), path)
    }

    /// "`{what} {id} not found`" with the status the endpoint answers it with.
    pub fn missing(status: StatusCode, what: &str, id: &str, path: &str) -> Self {
        Self::new(status, format!("{what} {id} not found"), path)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "timestamp": crate::ids::now_ms(),
            "status": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or(""),
            "message": self.message,
            "path": self.path,
        });
        (self.status, Json(body)).into_response()
    }
}

/// A JSON object body; empty means `{}`; anything else is a 400.
pub fn object_body(body: &Bytes, path: &str) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Body must be a JSON object",
            path,
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            path,
        )),
    }
}

/// A JSON object body with a required string `session` (signals, deprecated tokens).
pub fn body_with_session(
    body: &Bytes,
    path: &str,
) -> Result<(Map<String, Value>, String), ApiError> {
    let body = object_body(body, path)?;
    match body
        .get("session")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        Some(session) => Ok((body, session)),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "'session' is required",
            path,
        )),
    }
}

pub fn flag(q: &std::collections::HashMap<String, String>, key: &str, default: bool) -> bool {
    q.get(key).map(|v| v == "true").unwrap_or(default)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn ok_json(v: Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

pub fn headers_ip(h: &HeaderMap) -> Option<String> {
    h.get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

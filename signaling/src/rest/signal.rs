//! `POST /signal {session, to?, type?, data?}`: a server signal (no `from`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

use super::{body_with_session, ApiError};
use crate::app::App;
use crate::rpc::deliver_signal;
use crate::rpc::wire::Notification;

const PATH: &str = "/openvidu/api/signal";

pub async fn send(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (body, session) = match body_with_session(&body, PATH) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let Some(to) = crate::rpc::signal_recipients(body.get("to")) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "'to' must be an array of connection ids",
            PATH,
        )
        .into_response();
    };
    let text = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("'{k}' must be a string"),
            PATH,
        )),
    };
    let (kind, data) = match (text("type"), text("data")) {
        (Ok(t), Ok(d)) => (t, d),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    if let Err(e) = crate::rpc::check_signal(data.as_deref(), kind.as_deref(), &to) {
        return ApiError::new(StatusCode::BAD_REQUEST, e.message, PATH).into_response();
    }
    let active = app
        .on_session(&session, |s| s.active().next().is_some())
        .await;
    match active {
        None => {
            return ApiError::missing(StatusCode::NOT_FOUND, "Session", &session, PATH)
                .into_response()
        }
        Some(false) => {
            return ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!("Session {session} has no participants"),
                PATH,
            )
            .into_response()
        }
        Some(true) => {}
    }
    let n = Notification::SendMessage {
        data: Some(data.unwrap_or_default()),
        kind: Some(kind.unwrap_or_else(|| "signal".into())),
        from: None,
    };
    match deliver_signal(&app, &session, &to, &n).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => ApiError::new(StatusCode::NOT_ACCEPTABLE, e.message, PATH).into_response(),
    }
}

//! `POST /tokens {session, role?, data?, kurentoOptions?}` (deprecated form of POST connection).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

use super::{body_with_session, ok_json, ApiError};
use crate::app::App;
use crate::model::ConnectionProps;

const PATH: &str = "/openvidu/api/tokens";

pub async fn create(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let (body, session) = match body_with_session(&body, PATH) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let props = match ConnectionProps::parse(&body, &app.settings.openvidu_webrtc_ice_servers) {
        Ok(p) => p,
        Err(m) => return ApiError::new(StatusCode::BAD_REQUEST, m, PATH).into_response(),
    };
    let Some(c) = app.create_connection(&session, props).await else {
        return ApiError::missing(StatusCode::NOT_FOUND, "Session", &session, PATH).into_response();
    };
    let mut out = json!({
        "id": c["token"], "token": c["token"], "createdAt": c["createdAt"], "connectionId": c["connectionId"],
        "session": session, "data": c["serverData"], "role": c["role"],
    });
    if !c["kurentoOptions"].is_null() {
        out["kurentoOptions"] = c["kurentoOptions"].clone();
    }
    ok_json(out)
}

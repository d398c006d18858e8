//! `DELETE /sessions/{id}/stream/{streamId}`: unpublish with `forceUnpublishByServer`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::{no_content, ApiError};
use crate::app::App;
use crate::rpc::unpublish;

pub async fn remove(
    State(app): State<Arc<App>>,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let p = format!("/openvidu/api/sessions/{id}/stream/{sid}");
    let owner = {
        let reg = app.reg.lock();
        let Some(s) = reg.sessions.get(&id) else {
            return ApiError::missing(StatusCode::BAD_REQUEST, "Session", &id, &p).into_response();
        };
        s.by_stream(&sid).map(|c| c.id.clone())
    };
    let Some(owner) = owner else {
        return ApiError::missing(StatusCode::NOT_FOUND, "Stream", &sid, &p).into_response();
    };
    match unpublish(&app, &id, &owner, "forceUnpublishByServer", None).await {
        Ok(()) => no_content(),
        Err(_) => ApiError::missing(StatusCode::NOT_FOUND, "Stream", &sid, &p).into_response(),
    }
}

//! `DELETE /sessions/{id}/stream/{streamId}`: unpublish with `forceUnpublishByServer`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::{no_content, ApiError};
use crate::app::App;

pub async fn remove(
    State(app): State<Arc<App>>,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let p = format!("/openvidu/api/sessions/{id}/stream/{sid}");
    let stream = sid.clone();
    let owner = app
        .on_session(&id, move |s| s.by_stream(&stream).map(|c| c.id.clone()))
        .await;
    let Some(owner) = owner else {
        return ApiError::missing(StatusCode::BAD_REQUEST, "Session", &id, &p).into_response();
    };
    let Some(owner) = owner else {
        return ApiError::missing(StatusCode::NOT_FOUND, "Stream", &sid, &p).into_response();
    };
    match app
        .unpublish(&id, &owner, "forceUnpublishByServer", None)
        .await
    {
        Ok(()) => no_content(),
        Err(_) => ApiError::missing(StatusCode::NOT_FOUND, "Stream", &sid, &p).into_response(),
    }
}

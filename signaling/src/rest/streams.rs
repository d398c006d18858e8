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
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Session {id} not found"),
                &p,
            )
            .into_response();
        };
        s.by_stream(&sid).map(|c| c.id.clone())
    };
    let Some(owner) = owner else {
        return ApiError::new(StatusCode::NOT_FOUND, format!("Stream {sid} not found"), &p)
            .into_response();
    };
    match unpublish(&app, &id, &owner, "forceUnpublishByServer", None).await {
        Ok(()) => no_content(),
        Err(_) => ApiError::new(StatusCode::NOT_FOUND, format!("Stream {sid} not found"), &p)
            .into_response(),
    }
}

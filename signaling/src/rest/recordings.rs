//! Recording is disabled on this server: every recording endpoint answers 501, as OpenVidu does
//! with `OPENVIDU_RECORDING=false`.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::ApiError;

pub async fn disabled(uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Recording is disabled (OPENVIDU_RECORDING=false)",
        uri.path(),
    )
    .into_response()
}

//! `videoData {height, width, videoActive, audioActive}`: validated (`request.rs`) and
//! acknowledged (only Pro features consume it).

use serde_json::Value;

use super::wire::RpcError;

pub fn handle() -> Result<Value, RpcError> {
    Ok(super::empty())
}

//! `echo`: `{}` (the browser checks its socket with it before reconnecting a stream).

use serde_json::Value;

use super::wire::RpcError;

pub fn handle() -> Result<Value, RpcError> {
    Ok(super::empty())
}

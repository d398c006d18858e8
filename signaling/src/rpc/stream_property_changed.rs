//! `streamPropertyChanged {streamId, property, newValue, reason}`: stores audio/video active and
//! video dimensions on the caller's stream and tells the others, with `newValue` as the JSON text
//! of what the client sent (`"true"`, or a double-encoded dimensions string) as OpenVidu does.

use serde_json::{Map, Value};

use super::wire::{param, Code, RpcError};
use super::Ctx;
use crate::core::Refusal;

pub fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let m = "streamPropertyChanged";
    let me = ctx.me(m)?;
    let _stream: String = param(m, p, "streamId")?;
    let property: String = param(m, p, "property")?;
    let reason: String = param(m, p, "reason")?;
    let new_value = p
        .get("newValue")
        .cloned()
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            RpcError::new(
                Code::MissingParam,
                "Request element 'newValue' is missing in RPC method 'streamPropertyChanged'",
            )
        })?;
    let changed = ctx
        .app
        .reg
        .lock()
        .sessions
        .get_mut(&me.session_id)
        .ok_or(Refusal::NotPublishing)
        .and_then(|s| s.change_stream_property(&me.connection_id, &property, &new_value, &reason));
    match changed {
        Ok(notice) => ctx.app.deliver(&[notice]),
        Err(_) => {
            return Err(RpcError::new(
                Code::UserNotStreaming,
                "The user is not publishing",
            ))
        }
    }
    Ok(super::empty())
}

//! `connect {sessionId, reconnect}`: a reconnecting browser takes its participant back onto this
//! socket, or gets 40007 "reconnection error" when the window has passed.

use serde_json::{json, Map, Value};

use super::wire::{param, Code, RpcError};
use super::Ctx;

pub fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let wanted: String = param("connect", p, "sessionId")?;
    let mut reg = ctx.app.reg.lock();
    let Some(part) = reg.participants.get_mut(&wanted) else {
        return Err(RpcError::new(Code::ReconnectionError, "reconnection error"));
    };
    part.socket = Some((ctx.socket, ctx.tx.clone()));
    part.detached_at = None;
    *ctx.rpc = wanted;
    Ok(json!({"value": "reconnection successful"}))
}

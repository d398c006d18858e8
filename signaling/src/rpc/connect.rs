//! `connect {sessionId, reconnect}`: a reconnecting browser takes its participant back onto this
//! socket, or gets 40007 "reconnection error" when the window has passed.

use serde_json::{json, Value};

use super::wire::{Code, RpcError};
use super::Ctx;
use crate::core::Attached;

pub fn handle(ctx: &mut Ctx<'_>, wanted: String) -> Result<Value, RpcError> {
    let socket = Attached {
        id: ctx.socket,
        tx: ctx.tx.clone(),
    };
    if ctx.app.reg.lock().roster.reattach(&wanted, socket).is_err() {
        return Err(RpcError::new(Code::ReconnectionError, "reconnection error"));
    }
    *ctx.rpc = wanted;
    Ok(json!({"value": "reconnection successful"}))
}

//! `keepAlive {sessionId}`: `{}` for a live session, 40007 otherwise.

use kms_client::wire::{ErrorCode, RpcError, SessionId};
use std::sync::Arc;

use crate::engine::Engine;

pub fn handle(engine: &Arc<Engine>, requested: Option<SessionId>) -> Result<SessionId, RpcError> {
    match requested {
        Some(s) if engine.session_exists(&s) => Ok(s),
        _ => Err(RpcError::new(ErrorCode::InvalidSession, "Invalid session")),
    }
}

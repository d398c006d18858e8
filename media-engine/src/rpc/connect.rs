//! `connect`: resume a session (unknown → 40007) or start a new one; answers this process's
//! `serverId` so clients can tell a restarted engine from the same one.

use kms_client::wire::{ErrorCode, RpcError, SessionId};
use serde_json::Value;
use std::sync::Arc;

use super::Fields;
use crate::engine::Engine;

pub fn handle(
    engine: &Arc<Engine>,
    requested: Option<SessionId>,
) -> Result<(Fields, SessionId), RpcError> {
    let session = match requested {
        Some(s) if engine.session_exists(&s) => s,
        Some(_) => return Err(RpcError::new(ErrorCode::InvalidSession, "Invalid session")),
        None => SessionId::mint(),
    };
    let mut f = Fields::new();
    f.insert("serverId".into(), Value::from(engine.server_id.clone()));
    Ok((f, session))
}

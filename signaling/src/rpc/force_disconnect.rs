//! `forceDisconnect {connectionId}` (moderators only, else 401): the others get `participantLeft
//! {reason: "forceDisconnectByUser"}` and everyone `participantEvicted`.

use serde_json::Value;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::model::Role;

pub async fn handle(ctx: &mut Ctx<'_>, me: Me, target: String) -> Result<Value, RpcError> {
    if me.role != Role::Moderator {
        return Err(RpcError::new(
            Code::UserUnauthorized,
            "The user does not have permissions to force disconnect",
        ));
    }
    if !ctx.app.has_joined(&me.session_id, &target).await {
        return Err(RpcError::new(
            Code::UserNotFound,
            format!("Connection {target} is not in the session"),
        ));
    }
    ctx.app
        .remove_participant(&me.session_id, &target, "forceDisconnectByUser", true)
        .await;
    Ok(super::empty())
}

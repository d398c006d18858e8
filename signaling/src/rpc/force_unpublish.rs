//! `forceUnpublish {streamId}` (moderators only, else 401): everyone, the owner and the
//! moderator included, gets `participantUnpublished {reason: "forceUnpublishByUser"}`.

use serde_json::Value;

use super::unpublish_video::unpublish;
use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::model::Role;

pub async fn handle(ctx: &mut Ctx<'_>, me: Me, stream: String) -> Result<Value, RpcError> {
    if me.role != Role::Moderator {
        return Err(RpcError::new(
            Code::UserUnauthorized,
            "The user does not have permissions to force unpublish",
        ));
    }
    let owner = ctx
        .app
        .reg
        .lock()
        .sessions
        .get(&me.session_id)
        .and_then(|s| s.by_stream(&stream))
        .map(|c| c.id.clone());
    let Some(owner) = owner else {
        return Err(RpcError::new(
            Code::UserNotStreaming,
            format!("Stream {stream} does not exist"),
        ));
    };
    unpublish(
        ctx.app,
        &me.session_id,
        &owner,
        "forceUnpublishByUser",
        None,
    )
    .await?;
    Ok(super::empty())
}

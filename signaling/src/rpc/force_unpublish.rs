//! `forceUnpublish {streamId}` (moderators only, else 401): everyone, the owner and the
//! moderator included, gets `participantUnpublished {reason: "forceUnpublishByUser"}`.

use serde_json::Value;

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
    let id = stream.clone();
    let owner = ctx
        .app
        .on_session(&me.session_id, move |s| {
            s.by_stream(&id).map(|c| c.id.clone())
        })
        .await
        .flatten();
    let Some(owner) = owner else {
        return Err(RpcError::new(
            Code::UserNotStreaming,
            format!("Stream {stream} does not exist"),
        ));
    };
    ctx.app
        .unpublish(&me.session_id, &owner, "forceUnpublishByUser", None)
        .await?;
    Ok(super::empty())
}

//! `leaveRoom`: `{}`; the others get `participantLeft {reason: "disconnect"}`; the participant's
//! engine objects are released (and the session's pipeline with the last one).

use serde_json::Value;

use super::wire::RpcError;
use super::{Ctx, Me};

pub async fn handle(ctx: &mut Ctx<'_>, me: Me) -> Result<Value, RpcError> {
    ctx.app
        .remove_participant(&me.session_id, &me.connection_id, "disconnect", false)
        .await;
    Ok(super::empty())
}

//! `unpublishVideo`: releases the publisher endpoint, its PassThrough and every subscription to
//! it; the others get `participantUnpublished {reason: "unpublish"}`. Not publishing → 105.

use serde_json::Value;

use super::wire::RpcError;
use super::{Ctx, Me};

pub async fn handle(ctx: &mut Ctx<'_>, me: Me) -> Result<Value, RpcError> {
    let (session, me) = (&me.session_id, &me.connection_id);
    ctx.app
        .unpublish(session, me, "unpublish", Some(me))
        .await?;
    Ok(super::empty())
}

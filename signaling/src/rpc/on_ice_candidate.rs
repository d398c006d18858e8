//! `onIceCandidate {endpointName, candidate, sdpMid, sdpMLineIndex}`: `endpointName` is the
//! stream owner's connection id (own id → publisher endpoint, else that subscription). Empty
//! candidates (end of candidates) are accepted and ignored.

use kms_client::wire::IceCandidate;
use serde_json::Value;

use super::wire::RpcError;
use super::{Ctx, Me};

pub async fn handle(
    ctx: &mut Ctx<'_>,
    me: Me,
    endpoint: String,
    candidate: Option<IceCandidate>,
) -> Result<Value, RpcError> {
    let Some(c) = candidate else {
        return Ok(super::empty());
    };
    let slot = ctx.app.media_slot(&me.session_id);
    if let Some(sm) = slot.lock().await.as_mut() {
        sm.add_ice_candidate(&me.connection_id, &endpoint, c)
            .await?;
    }
    Ok(super::empty())
}

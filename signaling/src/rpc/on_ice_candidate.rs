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
    // The session's lock only to find the endpoint: a candidate does not wait behind another
    // participant's negotiation.
    let endpoint = match slot.lock().await.as_mut() {
        Some(sm) => sm.route_ice_candidate(&me.connection_id, &endpoint, &c),
        None => None,
    };
    if let Some(ep) = endpoint {
        ep.add_ice_candidate(&c)
            .await
            .map_err(crate::media::media_err)?;
    }
    Ok(super::empty())
}

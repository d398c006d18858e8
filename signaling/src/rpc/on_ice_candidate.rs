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
    let Some(owner) = ctx.app.session(&me.session_id) else {
        return Ok(super::empty());
    };
    // One step of the session's media owner finds the endpoint: a candidate does not wait behind
    // another participant's negotiation.
    let (connection, candidate) = (me.connection_id.clone(), c.clone());
    let endpoint = owner
        .with(move |sm| sm.route_ice_candidate(&connection, &endpoint, &candidate))
        .await
        .flatten();
    if let Some(ep) = endpoint {
        ep.add_ice_candidate(&c)
            .await
            .map_err(crate::media::media_err)?;
    }
    Ok(super::empty())
}

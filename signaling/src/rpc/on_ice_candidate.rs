//! `onIceCandidate {endpointName, candidate, sdpMid, sdpMLineIndex}`: `endpointName` is the
//! stream owner's connection id (own id → publisher endpoint, else that subscription). Empty
//! candidates (end of candidates) are accepted and ignored.

use kms_client::wire::IceCandidate;
use serde_json::{Map, Value};

use super::wire::{opt_param, param, RpcError};
use super::Ctx;

pub async fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let m = "onIceCandidate";
    let me = ctx.me(m)?;
    let endpoint: String = param(m, p, "endpointName")?;
    let candidate: String = opt_param(p, "candidate").unwrap_or_default();
    if candidate.is_empty() {
        return Ok(super::empty());
    }
    let c = IceCandidate {
        candidate,
        sdp_mid: opt_param(p, "sdpMid").unwrap_or_else(|| "0".into()),
        sdp_m_line_index: opt_param(p, "sdpMLineIndex").unwrap_or(0),
    };
    let slot = ctx.app.media_slot(&me.session_id);
    if let Some(sm) = slot.lock().await.as_mut() {
        sm.add_ice_candidate(&me.connection_id, &endpoint, c)
            .await?;
    }
    Ok(super::empty())
}

//! SdpEndpoint / BaseRtpEndpoint / WebRtcEndpoint operations that need the peer connection.

use kms_client::wire::complex::{IceCandidate, OfferOptions};
use kms_client::wire::{ErrorCode, RpcError};
use serde_json::Value;

use super::Invocation;
use crate::rpc::{value, Fields, Handled};

pub async fn invoke(inv: &Invocation<'_>, op: &str) -> Option<Handled> {
    let Some(ep) = inv.engine.endpoint(inv.object) else {
        return Some(Err(crate::core::not_found_error(inv.object)));
    };
    let r = match op {
        "processOffer" => match inv.arg::<String>("offer") {
            Ok(offer) => ep.process_offer(offer).await.map(value),
            Err(e) => Err(e),
        },
        "generateOffer" => match inv.opt::<OfferOptions>("options") {
            Ok(o) => ep.generate_offer(o.unwrap_or_default()).await.map(value),
            Err(e) => Err(e),
        },
        "processAnswer" => match inv.arg::<String>("answer") {
            Ok(a) => ep.process_answer(a).await.map(value),
            Err(e) => Err(e),
        },
        "gatherCandidates" => ep.gather_candidates().await.map(|_| Fields::new()),
        "addIceCandidate" => match candidate(inv) {
            Ok(c) => ep.add_ice_candidate(c).await.map(|_| Fields::new()),
            Err(e) => Err(e),
        },
        "getLocalSessionDescriptor" => Ok(value(
            ep.snapshot.lock().local_sdp.clone().unwrap_or_default(),
        )),
        "getRemoteSessionDescriptor" => Ok(value(
            ep.snapshot.lock().remote_sdp.clone().unwrap_or_default(),
        )),
        "getStats" => match media_kind(inv) {
            Ok(k) => ep.stats(k).await.map(value),
            Err(e) => Err(e),
        },
        "isMediaFlowingIn" | "isMediaFlowingOut" => match media_kind(inv) {
            Ok(None)
                if inv.opt::<String>("mediaType").ok().flatten().as_deref() == Some("DATA") =>
            {
                Ok(value(false))
            }
            Ok(k) => {
                let s = ep.snapshot.lock();
                let states = if op == "isMediaFlowingIn" {
                    s.flowing_in
                } else {
                    s.flowing_out
                };
                Ok(value(match k {
                    Some(k) => states[k.index()],
                    None => states.iter().any(|f| *f),
                }))
            }
            Err(e) => Err(e),
        },
        "getConnectionState" => Ok(value(state(ep.snapshot.lock().connected))),
        "getMediaState" => Ok(value(state(ep.snapshot.lock().media_connected))),
        "requestKeyframe" => {
            ep.ports
                .output(crate::media::MediaKind::Video)
                .request_keyframe();
            Ok(Fields::new())
        }
        _ => return None,
    };
    Some(r)
}

/// The optional `mediaType` (AUDIO or VIDEO; DATA carries nothing here).
fn media_kind(inv: &Invocation<'_>) -> Result<Option<crate::media::MediaKind>, RpcError> {
    use crate::media::MediaKind;
    match inv.opt::<String>("mediaType")?.as_deref() {
        None | Some("DATA") => Ok(None),
        Some("AUDIO") => Ok(Some(MediaKind::Audio)),
        Some("VIDEO") => Ok(Some(MediaKind::Video)),
        Some(other) => Err(RpcError::new(
            ErrorCode::MarshallError,
            format!("Invalid mediaType '{other}'"),
        )),
    }
}

fn state(connected: bool) -> &'static str {
    if connected {
        "CONNECTED"
    } else {
        "DISCONNECTED"
    }
}

/// Accepts the complex type with or without `__module__`/`__type__`, ignoring extra keys.
fn candidate(inv: &Invocation<'_>) -> Result<IceCandidate, RpcError> {
    let raw: Value = inv.arg("candidate")?;
    let c: IceCandidate = serde_json::from_value(raw)
        .map_err(|_| RpcError::new(ErrorCode::MarshallError, "Invalid parameter 'candidate'"))?;
    if c.candidate.is_empty() {
        // An empty candidate is the end-of-candidates marker: nothing to add.
        return Ok(c);
    }
    if !c.candidate.starts_with("candidate:") {
        return Err(RpcError::new(
            ErrorCode::IceAddCandidateError,
            "Candidate must start with 'candidate:'",
        ));
    }
    Ok(c)
}

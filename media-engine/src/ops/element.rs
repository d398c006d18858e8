//! MediaElement operations: `connect` / `disconnect` (per media type, emitting
//! ElementConnected / ElementDisconnected on the source) and the connection listings.

use kms_client::wire::events::{self, name};
use kms_client::wire::{ErrorCode, RpcError};
use serde_json::{json, Value};

use super::Invocation;
use crate::media::flow::now_millis;
use crate::media::MediaKind;
use crate::rpc::{value, Fields, Handled};

pub async fn invoke(inv: &Invocation<'_>, op: &str) -> Option<Handled> {
    let r = match op {
        "connect" => connect(inv, true),
        "disconnect" => connect(inv, false),
        "getSinkConnections" => connections(inv, true),
        "getSourceConnections" => connections(inv, false),
        // A WebRtcEndpoint answers these itself (`webrtc.rs`); other elements (PassThrough)
        // have no connection of their own.
        "getStats" | "isMediaFlowingIn" | "isMediaFlowingOut"
            if inv.engine.endpoint(inv.object).is_none() =>
        {
            media_types(inv).map(|_| match op {
                "getStats" => value(serde_json::Map::new()),
                _ => value(false),
            })
        }
        _ => return None,
    };
    Some(r)
}

/// AUDIO, VIDEO or DATA; none means all three (DATA carries nothing here).
fn media_types(inv: &Invocation<'_>) -> Result<Vec<&'static str>, RpcError> {
    match inv.opt::<String>("mediaType")?.as_deref() {
        None => Ok(vec!["AUDIO", "VIDEO", "DATA"]),
        Some("AUDIO") => Ok(vec!["AUDIO"]),
        Some("VIDEO") => Ok(vec!["VIDEO"]),
        Some("DATA") => Ok(vec!["DATA"]),
        Some(other) => Err(RpcError::new(
            ErrorCode::MarshallError,
            format!("Invalid mediaType '{other}'"),
        )),
    }
}

fn kind_of(t: &str) -> Option<MediaKind> {
    match t {
        "AUDIO" => Some(MediaKind::Audio),
        "VIDEO" => Some(MediaKind::Video),
        _ => None,
    }
}

fn connect(inv: &Invocation<'_>, on: bool) -> Handled {
    let sink: String = inv.arg("sink")?;
    let types = media_types(inv)?;
    let src_desc = inv
        .opt::<String>("sourceMediaDescription")?
        .unwrap_or_else(|| "default".into());
    let sink_desc = inv
        .opt::<String>("sinkMediaDescription")?
        .unwrap_or_else(|| "default".into());
    {
        let st = inv.engine.state.lock();
        let s = st.objects.get(&sink)?;
        let me = st.objects.get(inv.object)?;
        if !s.class.is_element() {
            return Err(RpcError::new(
                ErrorCode::ConnectError,
                format!("'{sink}' is not a media element"),
            ));
        }
        if s.parent != me.parent {
            return Err(RpcError::new(
                ErrorCode::ConnectError,
                "Elements belong to different pipelines",
            ));
        }
    }
    let (Some(src_ports), Some(sink_ports)) =
        (inv.engine.ports(inv.object), inv.engine.ports(&sink))
    else {
        return Err(crate::core::not_found_error(&sink));
    };
    let event = if on {
        name::ELEMENT_CONNECTED
    } else {
        name::ELEMENT_DISCONNECTED
    };
    for t in types {
        let changed = match kind_of(t) {
            Some(k) if on => {
                sink_ports.connect_from(&src_ports, k);
                true
            }
            Some(k) => sink_ports.disconnect_from(&src_ports, k),
            None => true,
        };
        if changed {
            let fields = json!({
                "sink": sink, "mediaType": t,
                "sourceMediaDescription": src_desc, "sinkMediaDescription": sink_desc,
            });
            inv.engine
                .emit(events::build(inv.object, event, true, now_millis(), fields));
        }
    }
    Ok(Fields::new())
}

/// `ElementConnectionData` for every live connection from (`sinks`) or to this element.
fn connections(inv: &Invocation<'_>, sinks: bool) -> Handled {
    let types = media_types(inv)?;
    let siblings: Vec<String> = {
        let st = inv.engine.state.lock();
        let me = st.objects.get(inv.object)?;
        let Some(p) = &me.parent else {
            return Ok(value(Vec::<Value>::new()));
        };
        st.objects
            .get(p.as_str())?
            .children
            .iter()
            .map(|c| c.0.clone())
            .collect()
    };
    let Some(mine) = inv.engine.ports(inv.object) else {
        return Ok(value(Vec::<Value>::new()));
    };
    let mut out = Vec::new();
    for other in siblings {
        let Some(theirs) = inv.engine.ports(&other) else {
            continue;
        };
        for t in &types {
            let Some(k) = kind_of(t) else { continue };
            let (src, dst, linked) = if sinks {
                (
                    inv.object.to_string(),
                    other.clone(),
                    theirs.is_connected_from(&mine, k),
                )
            } else {
                (
                    other.clone(),
                    inv.object.to_string(),
                    mine.is_connected_from(&theirs, k),
                )
            };
            if linked {
                out.push(json!({
                    "__module__": "kurento", "__type__": "ElementConnectionData",
                    "source": src, "sink": dst, "type": t,
                    "sourceDescription": "default", "sinkDescription": "default",
                }));
            }
        }
    }
    Ok(value(out))
}

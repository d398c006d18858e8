//! Properties of the element classes, as `getFoo` / `setFoo {foo}` pairs. Settings the engine
//! cannot act on (TURN, network interfaces, bandwidth hints) are stored and read back, as KMS
//! clients expect setters to succeed.

use kms_client::wire::{Class, ErrorCode, RpcError};
use serde_json::{json, Value};

use super::Invocation;
use crate::rpc::{value, Fields, Handled};

/// (property, default, classes that have it)
fn table() -> Vec<(&'static str, Value, bool)> {
    // The bool says whether PassThrough has it too (MediaElement level).
    vec![
        ("minOutputBitrate", json!(0), true),
        ("maxOutputBitrate", json!(0), true),
        ("minEncoderBitrate", json!(0), true),
        ("maxEncoderBitrate", json!(0), true),
        ("maxVideoRecvBandwidth", json!(0), false),
        ("maxAudioRecvBandwidth", json!(0), false),
        ("minVideoRecvBandwidth", json!(0), false),
        ("minVideoSendBandwidth", json!(100), false),
        ("maxVideoSendBandwidth", json!(500), false),
        ("stunServerAddress", json!(""), false),
        ("stunServerPort", json!(3478), false),
        ("turnUrl", json!(""), false),
        ("externalIPv4", json!(""), false),
        ("externalIPv6", json!(""), false),
        ("externalAddress", json!(""), false),
        ("networkInterfaces", json!(""), false),
        ("iceTcp", json!(true), false),
        ("mtu", json!(1200), false),
    ]
}

pub fn invoke(inv: &Invocation<'_>, op: &str) -> Option<Handled> {
    let (setter, rest) = if let Some(r) = op.strip_prefix("get") {
        (false, r)
    } else if let Some(r) = op.strip_prefix("set") {
        (true, r)
    } else {
        return None;
    };
    let mut chars = rest.chars();
    let first = chars.next()?;
    let prop: String = first.to_lowercase().chain(chars).collect();
    let (name, default, shared) = table().into_iter().find(|(n, _, _)| *n == prop)?;
    if !shared && inv.class != Class::WebRtcEndpoint || !inv.class.is_element() {
        return None;
    }
    let mut st = inv.engine.state.lock();
    let e = match st.objects.get_mut(inv.object) {
        Ok(e) => e,
        Err(err) => return Some(Err(err)),
    };
    if !setter {
        return Some(Ok(value(
            e.properties.get(name).cloned().unwrap_or(default),
        )));
    }
    let Some(v) = inv.params.get(name).cloned() else {
        return Some(Err(RpcError::new(
            ErrorCode::MarshallError,
            format!("Missing parameter '{name}'"),
        )));
    };
    let same_type = matches!(
        (&default, &v),
        (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
            | (Value::Bool(_), Value::Bool(_))
    );
    if !same_type {
        return Some(Err(RpcError::new(
            ErrorCode::MarshallError,
            format!("Invalid value for '{name}'"),
        )));
    }
    e.properties.insert(name.to_string(), v);
    Some(Ok(Fields::new()))
}

//! Size limits on everything a client may send that signaling keeps or forwards (documented in
//! `signaling.sample.toml`). A value over its limit is refused with a clear error and changes
//! nothing: no participant, session or engine sees it.

use serde_json::{Map, Value};

use crate::rpc::wire::{Code, RpcError};

/// `customSessionId` (REST), characters `[a-zA-Z0-9_-]`.
pub const CUSTOM_SESSION_ID: usize = 256;
/// A connection's `data` (serverData), set through REST.
pub const SERVER_DATA: usize = 16 * 1024;
/// `joinRoom`'s `metadata` (clientData), sent to every other participant.
pub const CLIENT_DATA: usize = 16 * 1024;
/// A signal's `data`.
pub const SIGNAL_DATA: usize = 64 * 1024;
/// A signal's `type`.
pub const SIGNAL_TYPE: usize = 256;
/// Recipients listed in a signal's `to` (after removing duplicates, at most one per participant
/// is ever sent anyway).
pub const SIGNAL_TO: usize = 1000;
/// An SDP offer.
pub const SDP: usize = 64 * 1024;
/// An ICE candidate line.
pub const CANDIDATE: usize = 2048;
/// Every other request parameter.
pub const OTHER: usize = 4096;

/// The limit of one browser request parameter.
pub fn param_limit(key: &str) -> usize {
    match key {
        "metadata" => CLIENT_DATA,
        "sdpOffer" | "sdpString" | "sdpAnswer" => SDP,
        // The signal's JSON text: its `data` plus room for `to` and `type`.
        "message" => SIGNAL_DATA + 32 * 1024,
        "candidate" => CANDIDATE,
        _ => OTHER,
    }
}

/// Bytes a value takes (strings by length, structures as JSON text).
pub fn size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        other => other.to_string().len(),
    }
}

/// Every parameter of a browser request within its limit (checked before any handler runs).
pub fn check_params(method: &str, params: &Map<String, Value>) -> Result<(), RpcError> {
    for (k, v) in params {
        let (n, max) = (size(v), param_limit(k));
        if n > max {
            return Err(too_large(
                &format!("'{k}' of RPC method '{method}'"),
                n,
                max,
            ));
        }
    }
    Ok(())
}

pub fn too_large(what: &str, n: usize, max: usize) -> RpcError {
    RpcError::new(
        Code::InvalidParams,
        format!("{what} is too large ({n} bytes; at most {max})"),
    )
}

/// A REST string field within `max` bytes.
pub fn check_field(key: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!(
            "'{key}' is too large ({} bytes; at most {max})",
            value.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_parameter_has_its_limit() {
        let ok = json!({"metadata": "x".repeat(CLIENT_DATA), "sdpOffer": "v".repeat(SDP), "n": {"a": 1}});
        assert!(check_params("joinRoom", ok.as_object().unwrap_or(&Map::new())).is_ok());
        let big = json!({"metadata": "x".repeat(CLIENT_DATA + 1)});
        let e = check_params("joinRoom", big.as_object().unwrap_or(&Map::new())).err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(-32602));
        assert!(e.is_some_and(|e| e.message.contains("'metadata'") && e.message.contains("16384")));
        let nested = json!({"newValue": {"k": "y".repeat(OTHER)}});
        assert!(check_params(
            "streamPropertyChanged",
            nested.as_object().unwrap_or(&Map::new())
        )
        .is_err());
    }
}

//! Complex values. Every one carries `__module__`/`__type__` (Java rebuilds them from the
//! markers and drops anything without them, reference §4.2).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `kurento.IceCandidate`. Incoming candidates may lack the markers and carry extra keys
/// (`usernameFragment`): both are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: String,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_m_line_index: u32,
}

impl IceCandidate {
    pub fn to_wire(&self) -> Value {
        json!({
            "__module__": "kurento",
            "__type__": "IceCandidate",
            "candidate": self.candidate,
            "sdpMLineIndex": self.sdp_m_line_index,
            "sdpMid": self.sdp_mid,
        })
    }
}

/// `kurento.IceCandidatePair` as `NewCandidatePairSelected` carries it.
pub fn candidate_pair(stream_id: &str, component_id: u32, local: &str, remote: &str) -> Value {
    json!({
        "__module__": "kurento",
        "__type__": "IceCandidatePair",
        "componentId": component_id,
        "localCandidate": local,
        "remoteCandidate": remote,
        "streamId": stream_id,
    })
}

/// `kurento.Tag`.
pub fn tag(key: &str, value: &str) -> Value {
    json!({"__module__": "kurento", "__type__": "Tag", "key": key, "value": value})
}

/// `kurento.OfferOptions` (params of `generateOffer`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_to_receive_audio: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_to_receive_video: Option<bool>,
}

/// The `ServerInfo` value of `ServerManager.getInfo` (modules `core`, `elements`, `filters`
/// are required by kurento-client's start-up check, reference §3.1).
pub fn server_info(version: &str, generation_time: &str) -> Value {
    let module = |name: &str, factories: &[&str]| {
        json!({
            "__module__": "kurento",
            "__type__": "ModuleInfo",
            "factories": factories,
            "generationTime": generation_time,
            "name": name,
            "version": version,
        })
    };
    json!({
        "__module__": "kurento",
        "__type__": "ServerInfo",
        "capabilities": ["transactions"],
        "modules": [
            module("core", &["MediaPipeline", "PassThrough"]),
            module("elements", &["WebRtcEndpoint"]),
            module("filters", &[]),
        ],
        "type": "KMS",
        "version": version,
    })
}

//! `onEvent` data payloads (reference §1.6). Every payload carries `source`, `tags` and
//! `timestampMillis` as a *string*; element events also carry `type`.

use serde_json::{json, Map, Value};

/// An event ready to be delivered: the object it is raised on, its name and its `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub object: String,
    pub kind: &'static str,
    pub data: Value,
}

/// Builds an event's `data`: the common fields plus `fields`.
pub fn build(
    source: &str,
    kind: &'static str,
    with_type: bool,
    timestamp_millis: u128,
    fields: Value,
) -> Event {
    let mut data = Map::new();
    data.insert("source".into(), Value::from(source));
    data.insert("tags".into(), json!([]));
    data.insert(
        "timestampMillis".into(),
        Value::from(timestamp_millis.to_string()),
    );
    if with_type {
        data.insert("type".into(), Value::from(kind));
    }
    if let Value::Object(extra) = fields {
        data.extend(extra);
    }
    Event {
        object: source.to_string(),
        kind,
        data: Value::Object(data),
    }
}

/// The names of every event the engine emits.
pub mod name {
    pub const ICE_CANDIDATE_FOUND: &str = "IceCandidateFound";
    pub const ICE_GATHERING_DONE: &str = "IceGatheringDone";
    pub const ICE_COMPONENT_STATE_CHANGED: &str = "IceComponentStateChanged";
    pub const NEW_CANDIDATE_PAIR_SELECTED: &str = "NewCandidatePairSelected";
    pub const CONNECTION_STATE_CHANGED: &str = "ConnectionStateChanged";
    pub const MEDIA_STATE_CHANGED: &str = "MediaStateChanged";
    pub const MEDIA_FLOW_IN: &str = "MediaFlowInStateChanged";
    pub const MEDIA_FLOW_OUT: &str = "MediaFlowOutStateChanged";
    pub const ELEMENT_CONNECTED: &str = "ElementConnected";
    pub const ELEMENT_DISCONNECTED: &str = "ElementDisconnected";
    pub const ERROR: &str = "Error";
    pub const OBJECT_CREATED: &str = "ObjectCreated";
    pub const OBJECT_DESTROYED: &str = "ObjectDestroyed";
}

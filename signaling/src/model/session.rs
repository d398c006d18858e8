//! One OpenVidu session: properties, connections (pending and active) and its REST JSON.

use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::{Connection, SessionProps};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub id: String,
    pub created_at: u64,
    pub props: SessionProps,
    /// By connection id; iteration order is creation order of the ids' insertion list below.
    pub connections: BTreeMap<String, Connection>,
    pub order: Vec<String>,
    /// The engine hosting the session's pipeline, once the first participant joined.
    pub engine: Option<String>,
}

impl Session {
    pub fn new(id: String, props: SessionProps, now: u64) -> Self {
        Self {
            id,
            created_at: now,
            props,
            connections: BTreeMap::new(),
            order: Vec::new(),
            engine: None,
        }
    }

    pub fn add(&mut self, c: Connection) {
        self.order.push(c.id.clone());
        self.connections.insert(c.id.clone(), c);
    }

    pub fn remove(&mut self, id: &str) -> Option<Connection> {
        self.order.retain(|c| c != id);
        self.connections.remove(id)
    }

    /// Connections in creation order.
    pub fn in_order(&self) -> impl Iterator<Item = &Connection> {
        self.order.iter().filter_map(|id| self.connections.get(id))
    }

    pub fn active(&self) -> impl Iterator<Item = &Connection> {
        self.in_order().filter(|c| c.active.is_some())
    }

    /// Whether `connection` is a joined participant.
    pub fn has_joined(&self, connection: &str) -> bool {
        self.connections
            .get(connection)
            .is_some_and(|c| c.active.is_some())
    }

    pub fn by_token(&self, token: &str) -> Option<&Connection> {
        self.connections.values().find(|c| c.token == token)
    }

    pub fn by_stream(&self, stream_id: &str) -> Option<&Connection> {
        self.connections.values().find(|c| {
            c.publisher
                .as_ref()
                .is_some_and(|p| p.stream_id == stream_id)
        })
    }

    /// The REST Session object (§3.2); pending connections only when asked.
    pub fn rest_json(&self, pending: bool) -> Value {
        let content: Vec<Value> = self
            .in_order()
            .filter(|c| pending || c.active.is_some())
            .map(|c| c.rest_json(&self.id))
            .collect();
        let mut v = json!({
            "id": self.id, "object": "session", "sessionId": self.id, "createdAt": self.created_at,
            "recording": false, "broadcasting": false,
            "mediaMode": self.props.media_mode, "recordingMode": self.props.recording_mode,
            "defaultRecordingProperties": self.props.default_recording_properties,
            "customSessionId": self.props.custom_session_id,
            "forcedVideoCodec": self.props.forced_video_codec,
            "allowTranscoding": self.props.allow_transcoding,
            "connections": super::list_json(content),
        });
        if let Some(n) = self
            .props
            .media_node
            .clone()
            .or_else(|| self.engine.clone())
        {
            v["mediaNode"] = json!({"id": n});
        }
        if !self.props.media_node_labels.is_empty() {
            v["mediaNodeLabels"] = json!(self.props.media_node_labels);
        }
        v
    }
}

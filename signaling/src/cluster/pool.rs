//! The engine pool as operators changed it at runtime (`POST`/`PATCH`/`DELETE /media-nodes`),
//! recorded in Redis so that a node that starts (or restarts) later applies the same changes on
//! top of its configured engines. Live nodes get each change at once (`forward.rs`).
//!
//! The recorded URIs keep the engines' secrets (a node needs them to connect): Redis must be as
//! private as the nodes' configuration (`requirepass`, a private network).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::app::App;
use crate::pool::Status;

/// What happened to one engine at runtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub removed: bool,
}

impl PoolRecord {
    /// `record` updated by one successful call (`method`, its body, the engine's JSON answer).
    pub fn apply_call(mut self, method: &str, body: &Value) -> Self {
        let weight = body
            .get("weight")
            .and_then(Value::as_u64)
            .and_then(|w| u32::try_from(w).ok());
        match method {
            "POST" => {
                self.uri = body.get("uri").and_then(Value::as_str).map(str::to_string);
                self.weight = Some(weight.unwrap_or(1));
                self.labels = body
                    .get("labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok());
                self.status = None;
                self.removed = false;
            }
            "PATCH" => {
                if weight.is_some() {
                    self.weight = weight;
                }
                if let Some(s) = body.get("status").and_then(Value::as_str) {
                    self.status = Some(s.to_string());
                }
            }
            "DELETE" => self.removed = true,
            _ => {}
        }
        self
    }
}

/// Applies the recorded changes to this node's pool (at start, once Redis answers).
pub fn apply(app: &App, records: Vec<(String, PoolRecord)>) {
    for (id, r) in records {
        if r.removed {
            if app.pool.remove(&id).is_some() {
                tracing::info!(engine = %id, "engine removed at runtime by the cluster's operators");
            }
            continue;
        }
        let engine = match (app.pool.get(&id), &r.uri) {
            (Some(e), _) => Some(e),
            (None, Some(uri)) => {
                let labels = r.labels.clone().unwrap_or_default();
                app.pool
                    .add(uri.clone(), r.weight.unwrap_or(1), labels)
                    .ok()
            }
            (None, None) => None,
        };
        let Some(e) = engine else { continue };
        if let Some(w) = r.weight {
            e.set_weight(w);
        }
        match r.status.as_deref() {
            Some("waiting-idle-to-terminate") => e.set_status(Status::Draining),
            Some("running") => e.set_status(Status::Running),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_follows_the_calls() {
        let r = PoolRecord::default().apply_call(
            "POST",
            &json!({"uri": "ws://rtcpool:s@10.0.0.9:8888/kurento", "weight": 3}),
        );
        assert_eq!(r.weight, Some(3));
        assert_eq!(
            r.uri.as_deref(),
            Some("ws://rtcpool:s@10.0.0.9:8888/kurento")
        );
        let r = r.apply_call("PATCH", &json!({"status": "waiting-idle-to-terminate"}));
        assert_eq!(
            (r.weight, r.status.as_deref()),
            (Some(3), Some("waiting-idle-to-terminate"))
        );
        let r = r.apply_call("PATCH", &json!({"weight": 5}));
        assert_eq!(r.weight, Some(5));
        assert!(r.clone().apply_call("DELETE", &json!({})).removed);
        // A configured engine only patched: no URI, only what changed.
        let p = PoolRecord::default().apply_call("PATCH", &json!({"weight": 2}));
        assert_eq!((p.uri, p.weight, p.removed), (None, Some(2), false));
    }
}

//! Events from the server (`onEvent`) and per-object subscriptions to them.

use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

use crate::client::{ClientError, KurentoClient};
use crate::wire::IceCandidate;

/// One `onEvent`: the object it was raised on, its name and its raw `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct KmsEvent {
    pub object: String,
    pub kind: String,
    pub data: Value,
}

impl KmsEvent {
    pub(crate) fn from_params(params: &Value) -> Option<Self> {
        let v = params.get("value")?;
        Some(Self {
            object: v.get("object")?.as_str()?.to_string(),
            kind: v.get("type")?.as_str()?.to_string(),
            data: v.get("data").cloned().unwrap_or(Value::Null),
        })
    }

    /// `IceCandidateFound.candidate` (markers and unknown keys tolerated).
    pub fn ice_candidate(&self) -> Option<IceCandidate> {
        serde_json::from_value(self.data.get("candidate")?.clone()).ok()
    }

    /// `state` of IceComponentStateChanged / MediaFlow*StateChanged.
    pub fn state(&self) -> Option<&str> {
        self.data.get("state").and_then(Value::as_str)
    }

    /// `newState` of ConnectionStateChanged / MediaStateChanged.
    pub fn new_state(&self) -> Option<&str> {
        self.data.get("newState").and_then(Value::as_str)
    }

    /// `timestampMillis`, which Kurento sends as a string.
    pub fn timestamp_millis(&self) -> Option<u64> {
        let t = self.data.get("timestampMillis")?;
        t.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| t.as_u64())
    }
}

/// A live subscription to one event of one object. Dropping it stops local delivery;
/// [`Subscription::unsubscribe`] also tells the server.
pub struct Subscription {
    client: KurentoClient,
    object: String,
    kind: String,
    id: String,
    rx: broadcast::Receiver<Arc<KmsEvent>>,
}

impl Subscription {
    pub(crate) async fn new(
        client: &KurentoClient,
        object: &str,
        kind: &str,
    ) -> Result<Self, ClientError> {
        // Listen before subscribing so nothing raised in between is missed.
        let rx = client.inner.events.subscribe();
        let id = client.subscribe_raw(object, kind).await?;
        Ok(Self {
            client: client.clone(),
            object: object.into(),
            kind: kind.into(),
            id,
            rx,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next matching event; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<Arc<KmsEvent>> {
        loop {
            match self.rx.recv().await {
                Ok(ev) if ev.object == self.object && ev.kind == self.kind => return Some(ev),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, object = %self.object, "event subscriber lagged");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    pub async fn unsubscribe(self) -> Result<(), ClientError> {
        self.client.unsubscribe_raw(&self.object, &self.id).await
    }
}

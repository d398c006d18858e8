//! What a node adopting a session needs to carry it on: the session (properties, connections
//! with their tokens, who is joined under which rpc id, publishers, subscriptions) and the engine
//! object ids of its media. The owner writes it to Redis shortly after every change (changes
//! within [`BATCH`] go out together); it is deleted with the session.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::Notify;

use crate::app::App;
use crate::media::MediaIds;
use crate::model::Session;

/// Changes this close together are written in one round trip.
pub const BATCH: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub session: Session,
    pub media: Option<MediaIds>,
}

/// Sessions changed since their snapshot was last written.
#[derive(Default)]
pub struct Dirty {
    sessions: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Dirty {
    pub fn mark(&self, session: &str) {
        if self.sessions.lock().insert(session.to_string()) {
            self.wake.notify_one();
        }
    }

    fn take(&self) -> Vec<String> {
        self.sessions.lock().drain().collect()
    }
}

/// The snapshots of `sessions` (those this node has), as JSON.
pub async fn collect(app: &App, sessions: Vec<String>) -> Vec<(String, String)> {
    let mut snaps = Vec::with_capacity(sessions.len());
    for id in sessions {
        let Some(owner) = app.session(&id) else {
            continue;
        };
        // The record and the media as they are together (a read: not waiting for a placement).
        let snap = owner
            .slot(false, |s| {
                Some((s.record.clone()?, s.media.as_ref().map(|m| m.ids())))
            })
            .await
            .flatten();
        let Some((session, media)) = snap else {
            continue;
        };
        if let Ok(json) = serde_json::to_string(&Snapshot { session, media }) {
            snaps.push((id, json));
        }
    }
    snaps
}

/// Writes the snapshots of changed sessions while the app lives (in a cluster only).
pub async fn run(app: Weak<App>) {
    loop {
        let Some(strong) = app.upgrade() else { return };
        if !strong.cluster.enabled() {
            return;
        }
        let (shutdown, dirty) = (strong.shutdown.clone(), strong.dirty.clone());
        drop(strong);
        tokio::select! {
            _ = dirty.wake.notified() => {}
            _ = shutdown.cancelled() => return,
        }
        tokio::time::sleep(BATCH).await;
        let Some(app) = app.upgrade() else { return };
        let changed = app.dirty.take();
        let snaps = collect(&app, changed).await;
        if let Err(e) = app.cluster.put_snapshots(&snaps).await {
            // Written again with the next change, or when the store is back (resync).
            tracing::warn!(%e, sessions = snaps.len(), "session snapshots not written");
            for (id, _) in &snaps {
                app.dirty.sessions.lock().insert(id.clone());
            }
        }
    }
}

//! Taking over the sessions of a node that died. The first node that needs such a session (a
//! participant's socket reconnecting through it, a REST call about it) or notices the death (at
//! its heartbeat, when the dead node's TTL ran out) claims it in Redis (one node wins) and
//! rebuilds it from the owner's last snapshot: the session and its connections as they were,
//! every joined participant waiting for its socket for one reconnection window, and the media
//! objects on the engine made this node's too (Kurento `ref`) before the dead node's Kurento
//! session expires, so no stream is renegotiated and media never stops.

use std::sync::Arc;

use super::snapshot::Snapshot;
use super::Route;
use crate::app::App;
use crate::error::Error;
use crate::media::{MediaIds, SessionMedia};
use crate::model::Role;

impl App {
    /// Takes `session_id` over from its dead owner. True when this node has the session now
    /// (it had it already, or adopted it); false when another live node has it, or nothing of it
    /// is left to adopt.
    pub async fn adopt(self: &Arc<Self>, session_id: &str) -> Result<bool, Error> {
        let _one_at_a_time = self.adopting.lock().await;
        if self.reg.lock().sessions.contains_key(session_id) {
            return Ok(true);
        }
        if !self.cluster.claim_session(session_id).await? {
            return Ok(false);
        }
        let snap = self
            .cluster
            .snapshot(session_id)
            .await?
            .and_then(|json| serde_json::from_str::<Snapshot>(&json).ok());
        let Some(snap) = snap else {
            // The owner died before it wrote the session down: nothing to carry on.
            tracing::warn!(session = %session_id, "no snapshot of a dead node's session; dropping it");
            self.cluster.session_closed(session_id);
            return Ok(false);
        };
        let media = match &snap.media {
            Some(ids) => self.adopt_media(session_id, ids).await,
            None => None,
        };
        let mut session = snap.session;
        if media.is_none() {
            session.engine = None;
        }
        let now = tokio::time::Instant::now().into_std();
        let with_media = media.is_some();
        let view = media.as_ref().map(|m| m.view.clone());
        let joined: Vec<(String, String, Role)> = session
            .active()
            .filter_map(|c| Some((c.active.as_ref()?.rpc.clone(), c.id.clone(), c.role())))
            .collect();
        let clash = {
            let mut reg = self.reg.lock();
            match reg.sessions.contains_key(session_id) {
                true => media,
                false => {
                    for (rpc, connection, role) in &joined {
                        let _ = reg.roster.adopt(rpc, session_id, connection, *role, now);
                    }
                    let owner = crate::owner::Owner::spawn(session, media);
                    reg.sessions.insert(session_id.to_string(), owner);
                    None
                }
            }
        };
        if let Some(m) = clash {
            tracing::warn!(session = %session_id, "adopted a session that was made here meanwhile; releasing the adopted objects");
            self.unclaim(m.pipeline.id());
            m.release_all().await;
            return Ok(true);
        }
        // Only now: a session made here meanwhile keeps its own relays' view.
        if let Some(view) = view {
            self.relay_views.lock().insert(session_id.to_string(), view);
        }
        let participants = joined.len();
        self.timers_changed.notify_one();
        self.changed(session_id);
        tracing::info!(session = %session_id, participants, with_media, "adopted a session of a dead node");
        Ok(true)
    }

    async fn adopt_media(
        self: &Arc<Self>,
        session_id: &str,
        ids: &MediaIds,
    ) -> Option<SessionMedia> {
        // Engine ids derive from their URIs: the same on every node.
        let engine = self.pool.get(&ids.engine)?;
        let client = engine.client()?;
        match SessionMedia::adopt(Arc::downgrade(self), session_id, ids, client).await {
            Ok(m) => {
                self.claim(&ids.pipeline, session_id);
                engine.session_added(session_id);
                Some(m)
            }
            Err(e) => {
                tracing::warn!(session = %session_id, %e, "the adopted session's pipeline is gone");
                None
            }
        }
    }

    /// Where `session_id` is served; a session whose owner is dead is adopted here first. Waits
    /// for an adoption in progress on this node (a reconnecting participant relayed here while
    /// this node is still taking its session over).
    pub async fn route_or_adopt(self: &Arc<Self>, session_id: &str) -> Result<Route, Error> {
        for _ in 0..3 {
            match self.cluster.route_session(session_id).await? {
                Route::Orphaned { .. } if !self.cluster.settled() => {
                    // Redis just came back (or this node just started): its owner may only not
                    // have registered again yet.
                    self.cluster.settle().await;
                }
                Route::Orphaned { .. } => {
                    if self.adopt(session_id).await? {
                        return Ok(Route::Local);
                    }
                }
                Route::Local => {
                    drop(self.adopting.lock().await);
                    return Ok(Route::Local);
                }
                remote => return Ok(remote),
            }
        }
        Ok(Route::Local)
    }

    /// The owner `node` could not be reached: when it also missed its heartbeats it is dead, and
    /// the session is routed (so adopted) again.
    pub async fn reroute_after_failure(
        self: &Arc<Self>,
        session_id: &str,
        node: &str,
    ) -> Result<Route, Error> {
        for _ in 0..30 {
            if self.cluster.bury(node).await? {
                return self.route_or_adopt(session_id).await;
            }
            // Alive by its heartbeat: it may be restarting its socket; wait for a beat.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            match self.cluster.route_session(session_id).await? {
                Route::Remote { node: n, .. } if n == node => continue,
                _ => return self.route_or_adopt(session_id).await,
            }
        }
        self.cluster.route_session(session_id).await
    }
}

impl App {
    /// A clean stop in a cluster: every session's snapshot written now, then this node leaves;
    /// nothing is released and nobody evicted. The sockets close next and reconnect through the
    /// load balancer to the nodes that adopt the sessions.
    pub async fn hand_over(&self) -> Result<(), Error> {
        let ids: Vec<String> = self.reg.lock().sessions.keys().cloned().collect();
        let n = ids.len();
        let snaps = super::snapshot::collect(self, ids).await;
        self.cluster.put_snapshots(&snaps).await?;
        self.cluster.retire().await?;
        tracing::info!(sessions = n, "sessions handed over to the other nodes");
        Ok(())
    }
}

/// Adopts the sessions of nodes that died (their TTL ran out), whether or not any of their
/// participants comes back. Run after each heartbeat.
pub async fn sweep(app: &Arc<App>) {
    if !app.cluster.settled() {
        return;
    }
    for node in app.cluster.dead_nodes() {
        let Ok(sessions) = app.cluster.sessions_of(&node).await else {
            return;
        };
        for s in sessions {
            if let Err(e) = app.adopt(&s).await {
                tracing::warn!(session = %s, %e, "adoption failed");
                return;
            }
        }
        app.cluster.forget_node(&node).await;
    }
}

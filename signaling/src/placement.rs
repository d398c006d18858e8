//! Where a session's media lives: placing it on an engine at its first join, and moving it to
//! another engine when its engine is lost (re-homing), with the holds that follow a move. Both
//! are transitions of the session's owner (`owner.rs`): their engine work runs beside the
//! owner, their result is applied as one of its steps.

use std::sync::Arc;
use std::time::Duration;

use crate::app::{App, Outgoing};
use crate::error::Error;
use crate::media::{Released, SessionMedia};
use crate::model::Session;
use crate::owner::{Slot, Step};
use crate::pool::select::steer::Steer;

/// How a re-homing ended.
enum Rehomed {
    /// On a new pipeline: the old one (released when its engine still answers) and the far
    /// sites to release.
    Moved {
        old: kms_client::MediaPipeline,
        far: Released,
    },
    /// No engine could take the session: it is closed; its far sites are released.
    Nowhere(Released),
    /// The session was closed meanwhile.
    Closed,
}

impl App {
    /// Places the session on an engine and creates its pipeline, once (first join). A failed
    /// placement lowers that engine's effective weight and the next admitted engine is tried.
    /// Placement is the session owner's transition: joins arriving meanwhile wait for it, not for
    /// a lock, and other sessions never do.
    pub async fn ensure_pipeline(self: &Arc<Self>, session_id: &str) -> Result<(), Error> {
        let closed = || Error::SessionClosed(session_id.to_string());
        let owner = self.session(session_id).ok_or_else(closed)?;
        let (outcome, placed) = tokio::sync::oneshot::channel();
        let (app, sid) = (self.clone(), session_id.to_string());
        owner
            .transition(move |slot| {
                let steer = match (&slot.record, &slot.media) {
                    (Some(s), None) => s.props.steer(),
                    (record, _) => {
                        let placed = record.is_some().then_some(());
                        let _ = outcome.send(placed.ok_or(Error::SessionClosed(sid)));
                        return None;
                    }
                };
                Some(Box::pin(async move {
                    let placed = app.place(&sid, &steer).await;
                    let step: Step<Session, SessionMedia> = Box::new(move |slot| {
                        let _ = outcome.send(app.commit_placement(&sid, slot, placed));
                    });
                    step
                }))
            })
            .await;
        placed.await.unwrap_or_else(|_| Err(closed()))
    }

    /// The placement's result, applied by the session's owner. The session may have been closed
    /// while the pipeline was being made: then nobody would ever release it, so it goes now.
    fn commit_placement(
        &self,
        session_id: &str,
        slot: &mut Slot<Session, SessionMedia>,
        placed: Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error>,
    ) -> Result<(), Error> {
        let (engine, client, pipeline) = placed?;
        let Some(record) = slot.record.as_mut() else {
            self.unclaim(pipeline.id());
            self.engine_left(&engine, session_id);
            tokio::spawn(async move {
                let _ = pipeline.release().await;
            });
            return Err(Error::SessionClosed(session_id.to_string()));
        };
        record.engine = Some(engine.clone());
        let m = SessionMedia::new(session_id.to_string(), engine, client, pipeline);
        self.relay_views
            .lock()
            .insert(session_id.to_string(), m.view.clone());
        slot.media = Some(m);
        self.changed(session_id);
        Ok(())
    }

    /// A new pipeline for `session_id` on an admitted engine (among those `steer` allows),
    /// claimed and tagged as ours.
    async fn place(
        &self,
        session_id: &str,
        steer: &Steer,
    ) -> Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error> {
        let mut tried = Vec::new();
        for _ in 0..self.pool.all().len().max(1) {
            let engine = match self.pick_engine(steer, &tried).await {
                Ok(e) => e,
                Err(why) => {
                    tracing::warn!(session = %session_id, %why, "no engine admitted");
                    return Err(Error::NoMediaNode(session_id.to_string()));
                }
            };
            match self.open_pipeline(&engine, session_id).await {
                Ok((client, pipeline)) => return Ok((engine.id.clone(), client, pipeline)),
                Err(e) => {
                    tracing::warn!(engine = %engine.id, %e, "placement failed");
                    self.pool.placement_failed(&engine);
                    tried.push(engine.id.clone());
                }
            }
        }
        Err(Error::NotPlaced(session_id.to_string()))
    }

    /// A new pipeline for `session_id` on `engine`, claimed and tagged as ours.
    async fn open_pipeline(
        &self,
        engine: &crate::pool::Engine,
        session_id: &str,
    ) -> Result<(kms_client::KurentoClient, kms_client::MediaPipeline), String> {
        let client = engine.client().ok_or("not connected")?;
        let pipeline = client.create_pipeline().await.map_err(|e| e.to_string())?;
        self.claim(pipeline.id(), session_id);
        engine.session_added(session_id);
        // Off the join path: until the tags land, the claim above marks it ours.
        let (p, me, s) = (
            pipeline.clone(),
            self.instance.clone(),
            session_id.to_string(),
        );
        tokio::spawn(async move { crate::ownership::tag(&p, &me, &s).await });
        Ok((client, pipeline))
    }

    /// A re-homed session that no engine admits goes to one it already spans (connected, not
    /// draining), over its endpoint limit: that engine carries part of the session already, and
    /// the session's far objects there are released by the move.
    async fn place_on_spanned(
        &self,
        session_id: &str,
        spanned: &[String],
    ) -> Option<(String, kms_client::KurentoClient, kms_client::MediaPipeline)> {
        for id in spanned {
            let Some(engine) = self.pool.get(id) else {
                continue;
            };
            let s = engine.snapshot();
            if !s.connected || s.status != crate::pool::Status::Running {
                continue;
            }
            if let Ok((client, pipeline)) = self.open_pipeline(&engine, session_id).await {
                return Some((engine.id.clone(), client, pipeline));
            }
        }
        None
    }

    /// The engine for a new session, among those it may go to (`mediaNode`, `mediaNodeLabels`):
    /// in a cluster with weighted round robin, the next one of the round robin all nodes share
    /// (among the engines this node admits and has not `tried`); otherwise, or when Redis cannot
    /// be asked, this node's own strategy.
    async fn pick_engine(
        &self,
        steer: &Steer,
        tried: &[String],
    ) -> Result<Arc<crate::pool::Engine>, String> {
        let shared = self.cluster.enabled()
            && self.settings.pool_strategy == rtcpool_config::Strategy::WeightedRoundRobin;
        if shared {
            let candidates: Vec<(String, u32)> = self
                .pool
                .admitted_soon(steer)
                .await
                .into_iter()
                .filter(|(e, _)| !tried.contains(&e.id))
                .map(|(e, w)| (e.id.clone(), w))
                .collect();
            match self.cluster.pick_engine(&candidates).await {
                Ok(Some(id)) => {
                    if let Some(e) = self.pool.get(&id) {
                        e.count(&e.picks);
                        return Ok(e);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%e, "shared round robin unavailable; picking locally"),
            }
        }
        self.pool.pick_soon_steered(steer).await
    }

    /// An engine was lost: every session it hosted moves to an admitted engine (participants keep
    /// their sockets and reconnect their streams), or, when none can take it, is closed with
    /// `nodeCrashed`.
    pub async fn rehome_engine(self: &Arc<Self>, engine_id: &str) {
        self.rehome_engine_now(engine_id, "nodeCrashed").await;
    }

    /// A session moved off `old_engine`: see `pool_client_nudge_ms` (close the sockets of the
    /// participants whose media is not back by then; openvidu-browser then reconnects the socket
    /// and every broken stream at once) and `pool_stale_stream_ms` (publishers that never came
    /// back stop being advertised). Run by `run_timers`.
    pub(crate) fn schedule_holds(&self, session_id: &str, old_engine: &str) {
        let dropped_at = self
            .pool
            .get(old_engine)
            .and_then(|e| e.snapshot().disconnection_time)
            .unwrap_or_else(crate::ids::now_ms);
        let since_drop = Duration::from_millis(crate::ids::now_ms().saturating_sub(dropped_at));
        let now = tokio::time::Instant::now().into_std();
        self.reg.lock().holds.rehomed(
            session_id,
            now,
            since_drop,
            Duration::from_millis(self.settings.pool_client_nudge_ms),
            Duration::from_millis(self.settings.pool_stale_stream_ms),
        );
        self.timers_changed.notify_one();
    }

    /// The nudge of a re-homed session fell due: the participants whose media is not back yet
    /// are told to reconnect (their socket is closed).
    pub(crate) async fn nudge(&self, session_id: &str) {
        let Some(owner) = self.session(session_id) else {
            return;
        };
        let unsettled = owner
            .slot(true, |slot| {
                let (s, m) = (slot.record.as_ref()?, slot.media.as_ref()?);
                let rpcs = m.unsettled.iter().filter_map(|c| {
                    let rpc = s.connections.get(c)?.active.as_ref()?.rpc.clone();
                    Some((c.clone(), rpc))
                });
                Some(rpcs.collect::<Vec<_>>())
            })
            .await
            .flatten();
        let reg = self.reg.lock();
        for (c, rpc) in unsettled.unwrap_or_default() {
            if let Some(tx) = reg.roster.socket(&rpc) {
                tracing::info!(session = %session_id, connection = %c, "nudging participant to reconnect its media");
                let _ = tx.send(Outgoing::Close("media moved to another engine"));
            }
        }
    }

    /// The wait for a re-homed session's publishers ended: those that did not come back are
    /// unpublished.
    pub(crate) async fn unpublish_stale(self: &Arc<Self>, session_id: &str) {
        let Some(owner) = self.session(session_id) else {
            return;
        };
        let Some(stale) = owner.with(|m| m.stale_publishers()).await else {
            return;
        };
        for publisher in stale {
            tracing::info!(session = %session_id, connection = %publisher, "publisher did not come back after re-homing; unpublishing");
            let _ = self
                .unpublish(session_id, &publisher, "mediaServerDisconnect", None)
                .await;
        }
    }

    /// Moves every session off `engine_id`; sessions no engine can take are closed with `reason`.
    pub async fn rehome_engine_now(self: &Arc<Self>, engine_id: &str, reason: &str) {
        let old_alive = self
            .pool
            .get(engine_id)
            .is_some_and(|e| e.snapshot().connected);
        for (session_id, owner) in self.sessions() {
            let engine = engine_id.to_string();
            let on_it = owner
                .record(move |s| s.engine.as_ref() == Some(&engine))
                .await;
            if on_it != Some(true) {
                continue;
            }
            let engine = engine_id.to_string();
            self.rehome_session(&session_id, reason, old_alive, move |m| {
                m.engine_id == engine
            })
            .await;
        }
        self.drop_far_engine(engine_id, old_alive).await;
    }

    /// Moves one session to a new pipeline on an admitted engine (perhaps the same one), if
    /// `still_broken` holds for its media when the move starts (another path may have moved it
    /// already). Participants keep their sockets and reconnect their streams; a session no engine
    /// can take is closed with `reason`. `release_old`: the old pipeline's engine still answers,
    /// so the old pipeline is released. The move is a transition of the session's media owner:
    /// the session's other steps wait for it, reads and other sessions do not.
    pub async fn rehome_session(
        self: &Arc<Self>,
        session_id: &str,
        reason: &str,
        release_old: bool,
        still_broken: impl FnOnce(&SessionMedia) -> bool + Send + 'static,
    ) {
        let Some(owner) = self.session(session_id) else {
            return;
        };
        let (outcome, moved) = tokio::sync::oneshot::channel();
        let (app, sid) = (self.clone(), session_id.to_string());
        owner
            .transition(move |slot| {
                let steer = slot.record.as_ref()?.props.steer();
                let far = slot
                    .media
                    .as_ref()
                    .filter(|m| still_broken(m))?
                    .far_engines();
                Some(Box::pin(async move {
                    let placed = match app.place(&sid, &steer).await {
                        Err(e) => match app.place_on_spanned(&sid, &far).await {
                            Some(p) => Ok(p),
                            None => Err(e),
                        },
                        ok => ok,
                    };
                    let step: Step<Session, SessionMedia> = Box::new(move |slot| {
                        let _ = outcome.send(app.commit_rehoming(&sid, slot, placed));
                    });
                    step
                }))
            })
            .await;
        match moved.await {
            Ok(Rehomed::Moved { old, far }) => {
                if release_old {
                    // Drained on purpose: the old engine still holds the session's objects.
                    let _ = tokio::time::timeout(Duration::from_secs(2), old.release()).await;
                }
                // The far sites go; relays are rebuilt from the new engine as subscribers come
                // back.
                self.release(session_id, far).await;
            }
            Ok(Rehomed::Nowhere(far)) => {
                // The engines the session spanned may still answer.
                self.release(session_id, far).await;
                self.close_session(session_id, reason).await;
            }
            Ok(Rehomed::Closed) | Err(_) => {}
        }
    }

    /// A re-homing's placement, applied by the session's owner.
    fn commit_rehoming(
        &self,
        session_id: &str,
        slot: &mut Slot<Session, SessionMedia>,
        placed: Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error>,
    ) -> Rehomed {
        let (Some(record), Some(m)) = (slot.record.as_mut(), slot.media.as_mut()) else {
            // Closed while the new pipeline was being made.
            if let Ok((engine, _, pipeline)) = placed {
                self.unclaim(pipeline.id());
                self.engine_left(&engine, session_id);
                tokio::spawn(async move {
                    let _ = pipeline.release().await;
                });
            }
            return Rehomed::Closed;
        };
        match placed {
            Ok((new_engine, client, pipeline)) => {
                let old = m.pipeline.clone();
                let (old_engine, far) = m.rehome(new_engine.clone(), client, pipeline);
                tracing::info!(session = %session_id, from = %old_engine, to = %new_engine, "session re-homed");
                self.unclaim(old.id());
                if let Some(e) = self.pool.get(&old_engine) {
                    e.session_removed(session_id);
                }
                record.engine = Some(new_engine);
                self.changed(session_id);
                self.schedule_holds(session_id, &old_engine);
                Rehomed::Moved { old, far }
            }
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "no engine can take the session; closing it");
                let far = slot.media.take().map(|mut m| {
                    self.unclaim(m.pipeline.id());
                    m.take_far()
                });
                Rehomed::Nowhere(far.unwrap_or_default())
            }
        }
    }
}

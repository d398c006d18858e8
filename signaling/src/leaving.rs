//! Participants leaving and sessions closing: a departure or an eviction, an unpublication, a
//! session closed by REST, by its last participant or at shutdown, and the two tasks that make
//! them happen on time (reconnection windows and re-homing holds falling due; garbage
//! collection of sessions nobody joined). Each change to the session is one step of its owner.

use std::time::Duration;

use crate::app::{App, Outgoing};
use crate::core::{Attached, Hold};
use crate::error::Error;
use crate::ids;
use crate::model::Session;

impl App {
    /// Removes a participant: others get `participantLeft` (and, when `evicted`, everyone incl.
    /// the evicted one gets `participantEvicted`); its engine objects are released; the session
    /// closes when its last participant goes.
    pub async fn remove_participant(
        &self,
        session_id: &str,
        connection_id: &str,
        reason: &str,
        evicted: bool,
    ) {
        let (reg, webhook) = (self.reg.clone(), self.webhook.clone());
        let (connection, why) = (connection_id.to_string(), reason.to_string());
        // The record and the roster change in one step of the session's owner.
        let departed = self
            .on_session(session_id, move |s| {
                let d = s.depart(&connection, &why, evicted)?;
                let mut reg = reg.lock();
                // Delivered before the participant leaves the roster: an evicted one hears it too.
                reg.deliver(&d.notices);
                webhook.departure(s, &d.gone, &d.cut, &why);
                let socket = d.rpc.as_ref().and_then(|r| reg.roster.remove(r)?.socket);
                Some((d.rpc, d.empty, socket))
            })
            .await
            .flatten();
        let Some((rpc, empty, socket)) = departed else {
            return;
        };
        if let Some(r) = &rpc {
            self.cluster.participant_left(r);
        }
        if let (true, Some(Attached { tx, .. })) = (evicted, socket) {
            // OpenVidu closes the evicted socket after a grace period; the client leaves on
            // the notification.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let _ = tx.send(Outgoing::Close("evicted"));
            });
        }
        let connection = connection_id.to_string();
        self.release_detached(session_id, move |m| Some(m.detach_participant(&connection)))
            .await;
        if empty {
            let reason = Some("lastParticipantLeft");
            self.close_session_where(session_id, reason, |s| {
                s.active().next().is_none() && s.engine.is_some()
            })
            .await;
        }
    }

    /// Ends `publisher`'s publication with `reason` (`unpublishVideo`, `forceUnpublish`, the REST
    /// stream deletion, a publisher that did not come back after a re-homing): its endpoint and
    /// every subscription to it are released, the others (but `except`) told. Refused with
    /// [`Error::NotPublishing`].
    pub async fn unpublish(
        &self,
        session_id: &str,
        publisher: &str,
        reason: &str,
        except: Option<&str>,
    ) -> Result<(), Error> {
        let (who, why, except) = (
            publisher.to_string(),
            reason.to_string(),
            except.map(str::to_string),
        );
        let (u, session_created) = self
            .on_session(session_id, move |s| {
                s.unpublish(&who, &why, except.as_deref())
                    .map(|u| (u, s.created_at))
            })
            .await
            .unwrap_or(Err(Error::NotPublishing))?;
        let connection = publisher.to_string();
        self.release_detached(session_id, move |sm| Some(sm.detach_publisher(&connection)))
            .await;
        self.deliver(&[u.notice]);
        self.webhook.stream_ended(
            (session_id, session_created),
            publisher,
            &u.publisher,
            &u.cut,
            reason,
        );
        Ok(())
    }

    /// `DELETE /sessions/{id}` and shutdown: every participant is evicted with `reason`, the
    /// pipeline released, the session removed. False when the session is unknown.
    pub async fn close_session(&self, session_id: &str, reason: &str) -> bool {
        self.close_session_where(session_id, Some(reason), |_| true)
            .await
    }

    /// Closes the session if `when` holds for its record then (the last participant left: the
    /// session and its pipeline go, as OpenVidu destroys it). In one step of its owner the
    /// record and media are taken, every participant still there hears `reason` and leaves the
    /// roster, the webhook hears it, and the session leaves the index; its engine objects are
    /// released after. No `reason`: the session goes silently (OpenVidu's garbage collection of
    /// sessions nobody joined).
    async fn close_session_where(
        &self,
        session_id: &str,
        reason: Option<&str>,
        when: impl FnOnce(&Session) -> bool + Send + 'static,
    ) -> bool {
        let Some(owner) = self.session(session_id) else {
            return false;
        };
        let (reg, webhook, me) = (self.reg.clone(), self.webhook.clone(), owner.clone());
        let (sid, why) = (session_id.to_string(), reason.map(str::to_string));
        let closed = owner
            .slot(false, move |slot| {
                if !when(slot.record.as_ref()?) {
                    return None;
                }
                let (s, media) = slot.close()?;
                let mut reg = reg.lock();
                if reg.sessions.get(&sid).is_some_and(|o| o.same(&me)) {
                    reg.sessions.remove(&sid);
                }
                reg.holds.forget(&sid);
                let (notices, rpcs) = s.close(why.as_deref().unwrap_or_default());
                reg.deliver(&notices);
                for r in &rpcs {
                    reg.roster.remove(r);
                }
                if let Some(why) = &why {
                    webhook.session_closed(&s, why);
                }
                Some((s.engine, rpcs, media))
            })
            .await
            .flatten();
        let Some((engine, rpcs, media)) = closed else {
            return false;
        };
        self.cluster.session_closed(session_id);
        for r in &rpcs {
            self.cluster.participant_left(r);
        }
        self.relay_views.lock().remove(session_id);
        if let Some(mut m) = media {
            self.unclaim(m.pipeline.id());
            let far = m.take_far();
            self.release(session_id, far).await;
            m.release_all().await;
        }
        if let Some(engine) = engine {
            self.engine_left(&engine, session_id);
        }
        true
    }

    /// Every session, closed with `reason` (graceful shutdown).
    pub async fn close_all(&self, reason: &str) {
        let ids: Vec<String> = self.reg.lock().sessions.keys().cloned().collect();
        for id in ids {
            self.close_session(&id, reason).await;
        }
    }

    /// A socket dropped: its participant keeps its place for the reconnection window, then is
    /// evicted with `networkDisconnect` (`evict_lapsed`).
    pub fn socket_lost(&self, rpc: &str, socket: u64) {
        let now = tokio::time::Instant::now().into_std();
        if self.reg.lock().roster.detach(rpc, socket, now) {
            self.timers_changed.notify_one();
        }
    }
}

/// Runs what falls due: participants whose reconnection window lapsed are evicted
/// (`networkDisconnect`), re-homed sessions' nudges and stale-stream waits end. Sleeps until
/// the next deadline.
pub(crate) async fn run_timers(app: std::sync::Weak<App>) {
    loop {
        let Some(strong) = app.upgrade() else { return };
        // `notify_one` leaves a permit when nobody waits, so a change made after this read
        // still wakes the wait below.
        let (changed, shutdown) = (strong.timers_changed.clone(), strong.shutdown.clone());
        let next = {
            let mut reg = strong.reg.lock();
            match (reg.roster.next_deadline(), reg.holds.earliest()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        drop(strong);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let until = next.map_or(far, tokio::time::Instant::from_std);
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = changed.notified() => continue,
            _ = shutdown.cancelled() => return,
        }
        let Some(app) = app.upgrade() else { return };
        let now = tokio::time::Instant::now().into_std();
        let (gone, holds) = {
            let mut reg = app.reg.lock();
            (reg.roster.lapsed(now), reg.holds.due(now))
        };
        for m in gone {
            tracing::info!(session = %m.session_id, connection = %m.connection_id, "participant did not reconnect; evicting");
            app.remove_participant(&m.session_id, &m.connection_id, "networkDisconnect", false)
                .await;
        }
        for h in holds {
            match h {
                Hold::Nudge { session } => app.nudge(&session).await,
                Hold::StaleStreams { session } => app.unpublish_stale(&session).await,
            }
        }
    }
}

/// Drops sessions created by REST that nobody joined within the threshold (OpenVidu's
/// `OPENVIDU_SESSIONS_GARBAGE_*`; silently, as OpenVidu: no webhook event), releasing their id
/// in a cluster too.
pub(crate) async fn collect_garbage(app: std::sync::Weak<App>) {
    let Some(interval) = app
        .upgrade()
        .map(|a| Duration::from_secs(a.settings.openvidu_sessions_garbage_interval))
    else {
        return;
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(app) = app.upgrade() else { return };
        if app.shutdown.is_cancelled() {
            return;
        }
        let threshold_ms = app.settings.openvidu_sessions_garbage_threshold * 1000;
        let now = ids::now_ms();
        for (id, _) in app.sessions() {
            let unused = move |s: &Session| {
                s.engine.is_none()
                    && s.active().next().is_none()
                    && now.saturating_sub(s.created_at) >= threshold_ms
            };
            app.close_session_where(&id, None, unused).await;
        }
    }
}

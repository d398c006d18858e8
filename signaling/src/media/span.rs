//! Sessions spanning engines, on the application's side: where a new subscription goes (the
//! decision itself is `pool::select::span`), what a released relay or far site leaves to tidy
//! (claims, the engines' session lists), and what a lost far engine means for the sessions that
//! span it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Released, SessionMedia};
use crate::app::App;
use crate::pool::select::span::{self, Far, Site};
use crate::pool::Status;

/// How often each relay's origin end is asked what it sent.
const RELAY_SAMPLE: Duration = Duration::from_secs(2);

/// Keeps every relay's sent packets and bytes current (for the REST API and `/metrics`): one
/// Kurento `getStats` per relay every [`RELAY_SAMPLE`], all at once, each bounded in time.
pub async fn sample_relays(app: Weak<App>) {
    loop {
        tokio::time::sleep(RELAY_SAMPLE).await;
        let Some(a) = app.upgrade() else { return };
        let cells: Vec<Arc<super::RelayCell>> = a
            .relay_views
            .lock()
            .values()
            .flat_map(|v| v.lock().iter().map(|r| r.cell.clone()).collect::<Vec<_>>())
            .collect();
        drop(a);
        futures::future::join_all(
            cells
                .iter()
                .map(|c| tokio::time::timeout(RELAY_SAMPLE, c.sample())),
        )
        .await;
    }
}

/// Endpoints a subscription on a far engine without the relay adds there: the relay's incoming
/// endpoint and PassThrough, and the subscriber's endpoint.
const NEW_RELAY_ENDPOINTS: u64 = 3;

impl App {
    /// The engine a new subscription of `sm`'s session to `publisher` goes to: None for the
    /// session's own, or a far engine (with this node's client for it) among those the
    /// session's `steer` allows.
    pub fn subscriber_site(
        &self,
        sm: &SessionMedia,
        steer: crate::pool::select::steer::Steer,
        publisher: &str,
    ) -> Option<(String, kms_client::KurentoClient)> {
        let span = self.settings.pool_session_span;
        let origin = self.pool.get(&sm.engine_id);
        let origin_takes = origin.as_ref().is_none_or(|e| {
            self.pool
                .takes_endpoints(e, 1 + sm.in_flight(&sm.engine_id))
        });
        tracing::debug!(
            session = %sm.session_id,
            engine = %sm.engine_id,
            elements = origin.as_ref().map(|e| e.element_count()),
            in_flight = sm.in_flight(&sm.engine_id),
            origin_takes,
            "placing a subscription"
        );
        if span == rtcpool_config::SessionSpan::Never || origin_takes {
            return None;
        }
        let labels = {
            match (steer.labels.is_empty(), &origin) {
                (false, _) => steer.labels,
                (true, Some(o)) => o.labels.clone(),
                (true, None) => Default::default(),
            }
        };
        let sites = sm.far_sites(publisher);
        let engines: Vec<Arc<crate::pool::Engine>> = self
            .pool
            .all()
            .into_iter()
            .filter(|e| e.id != sm.engine_id)
            .collect();
        let far: Vec<Far<'_>> = engines
            .iter()
            .map(|e| {
                let relays = sites.iter().any(|(id, r)| *id == e.id && *r);
                let extra = sm.in_flight(&e.id) + if relays { 1 } else { NEW_RELAY_ENDPOINTS };
                Far {
                    id: &e.id,
                    slot: e.slot,
                    takes: self.pool.takes_endpoints(e, extra),
                    relays_publisher: relays,
                    spanned: sm.spans(&e.id),
                    labels_match: labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)),
                }
            })
            .collect();
        let chosen = match span::place(span, origin_takes, &far) {
            Site::Origin => None,
            Site::Engine(slot) => engines.iter().find(|e| e.slot == slot).cloned(),
            Site::Among(slots) => self.pool.pick_slot_among(slots),
        }?;
        let client = chosen.client()?;
        Some((chosen.id.clone(), client))
    }

    /// Releases what was taken out of a session (`Released`), after forgetting the far
    /// pipelines among it: no longer claimed, no longer among their engines' sessions.
    pub async fn release(&self, session_id: &str, gone: Released) {
        for site in &gone.sites {
            if let Some(p) = &site.pipeline {
                self.unclaim(p.id());
            }
            self.engine_left(&site.engine_id, session_id);
        }
        gone.release().await;
    }

    /// `session_id` no longer has a pipeline on `engine_id`: a draining engine waiting for its
    /// last session leaves the pool.
    pub(crate) fn engine_left(&self, engine_id: &str, session_id: &str) {
        if let Some(e) = self.pool.get(engine_id) {
            if e.session_removed(session_id) {
                tracing::info!(engine = %e.id, "drained engine is idle; removing it from the pool");
                self.pool.remove(&e.id);
                self.hook_node_status(&e.snapshot(), Status::Draining.as_str(), "terminated");
            }
        }
    }

    /// `engine_id` is lost (or taken out of the pool): every session spanning it drops its
    /// site there; the subscribers it had reconnect their streams and are placed again (nudged
    /// like after a re-homing if they do not).
    pub async fn drop_far_engine(&self, engine_id: &str, alive: bool) {
        for (session_id, owner) in self.sessions() {
            let engine = engine_id.to_string();
            let gone = owner
                .with(move |m| match m.engine_id != engine {
                    true => m.drop_site(&engine, alive),
                    false => None,
                })
                .await
                .flatten();
            if let Some(gone) = gone {
                tracing::info!(session = %session_id, engine = %engine_id, "far engine lost; its subscribers are placed again");
                self.changed(&session_id);
                self.schedule_holds(&session_id, engine_id);
                self.release(&session_id, gone).await;
            }
        }
    }
}

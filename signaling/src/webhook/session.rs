//! The webhook events of a session's lifecycle that several changes share: a participant's
//! departure, a stream's end, the session's close. Called by the session's owner as it applies
//! the change (the record as it is then), queued without waiting.

use super::{events, Webhook};
use crate::ids;
use crate::model::{Connection, Publisher, Session};

impl Webhook {
    /// Events of a participant that left `s` (already out of it): the streams it published
    /// (and the others' subscriptions to it) and received, then `participantLeft`.
    pub fn departure(&self, s: &Session, gone: &Connection, cut: &[(String, u64)], reason: &str) {
        if !self.enabled() {
            return;
        }
        let now = ids::now_ms();
        let session = Some((s.id.as_str(), s.created_at));
        let destroyed = "webrtcConnectionDestroyed";
        if let Some(p) = &gone.publisher {
            self.stream_ended((&s.id, s.created_at), &gone.id, p, cut, reason);
        }
        for (stream, since) in &gone.subscriptions {
            let Some(owner) = s.by_stream(stream) else {
                continue;
            };
            if let Some(p) = &owner.publisher {
                let f = events::webrtc_connection(
                    &owner.id,
                    p,
                    Some(&gone.id),
                    *since,
                    Some((reason, now)),
                );
                self.emit(destroyed, session, f);
            }
        }
        let f = events::participant(gone, Some((reason, now)));
        self.emit("participantLeft", session, f);
    }

    /// Events of a session closed with `reason`: every participant's streams and departure,
    /// then `sessionDestroyed`.
    pub fn session_closed(&self, s: &Session, reason: &str) {
        if !self.enabled() {
            return;
        }
        for c in s.active() {
            if let Some(p) = &c.publisher {
                // Its subscribers' ends are reported with their own departures below.
                self.stream_ended((&s.id, s.created_at), &c.id, p, &[], reason);
            }
            // Its subscriptions and its departure (its own stream was just reported).
            let mut own = c.clone();
            own.publisher = None;
            self.departure(s, &own, &[], reason);
        }
        let f = events::session_destroyed(s, reason, ids::now_ms());
        self.emit("sessionDestroyed", Some((&s.id, s.created_at)), f);
    }

    /// `webrtcConnectionDestroyed` of `owner`'s stream `p` ended with `reason`: for each
    /// subscription to it in `cut` (subscriber, since), then for the publication itself.
    pub fn stream_ended(
        &self,
        session: (&str, u64),
        owner: &str,
        p: &Publisher,
        cut: &[(String, u64)],
        reason: &str,
    ) {
        if !self.enabled() {
            return;
        }
        let now = ids::now_ms();
        let ended = Some((reason, now));
        for (sub, since) in cut {
            let f = events::webrtc_connection(owner, p, Some(sub), *since, ended);
            self.emit("webrtcConnectionDestroyed", Some(session), f);
        }
        let f = events::webrtc_connection(owner, p, None, p.created_at, ended);
        self.emit("webrtcConnectionDestroyed", Some(session), f);
    }
}

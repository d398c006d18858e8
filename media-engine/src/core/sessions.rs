//! Sessions (which socket currently carries each one, and since when it has none) and event
//! subscriptions (one delivery per session, object and event, however often it subscribed).

use kms_client::wire::{ObjectId, SessionId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Identifies one WebSocket connection.
pub type SocketId = u64;

#[derive(Debug, Default)]
pub struct Sessions {
    sessions: HashMap<SessionId, SessionEntry>,
    subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Debug)]
struct SessionEntry {
    socket: Option<SocketId>,
    detached_since: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Subscription {
    session: SessionId,
    object: ObjectId,
    event: &'static str,
}

impl Sessions {
    pub fn exists(&self, session: &SessionId) -> bool {
        self.sessions.contains_key(session)
    }

    pub fn ids(&self) -> Vec<SessionId> {
        let mut v: Vec<_> = self.sessions.keys().cloned().collect();
        v.sort();
        v
    }

    /// Makes `session` live (creating it if a client chose a new id, as KMS accepts) and carried
    /// by `socket`.
    pub fn bind(&mut self, session: &SessionId, socket: SocketId) {
        let e = self
            .sessions
            .entry(session.clone())
            .or_insert(SessionEntry {
                socket: None,
                detached_since: None,
            });
        e.socket = Some(socket);
        e.detached_since = None;
    }

    /// A session used by a request whose socket has already closed: known (so it expires after
    /// the window like any detached session) but carried by no socket.
    pub fn known_detached(&mut self, session: &SessionId, now: Instant) {
        self.sessions
            .entry(session.clone())
            .or_insert(SessionEntry {
                socket: None,
                detached_since: Some(now),
            });
    }

    pub fn socket_of(&self, session: &SessionId) -> Option<SocketId> {
        self.sessions.get(session).and_then(|e| e.socket)
    }

    /// The socket closed: its sessions start their reconnection window.
    pub fn detach(&mut self, socket: SocketId, now: Instant) {
        for e in self
            .sessions
            .values_mut()
            .filter(|e| e.socket == Some(socket))
        {
            e.socket = None;
            e.detached_since = Some(now);
        }
    }

    /// Removes sessions whose window has passed (and their subscriptions); returns them.
    pub fn expire(&mut self, now: Instant, window: Duration) -> Vec<SessionId> {
        let gone: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| {
                e.detached_since
                    .is_some_and(|t| now.duration_since(t) >= window)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for s in &gone {
            self.remove(s);
        }
        gone
    }

    pub fn remove(&mut self, session: &SessionId) {
        self.sessions.remove(session);
        self.subscriptions.retain(|_, s| &s.session != session);
    }

    pub fn subscribe(
        &mut self,
        session: &SessionId,
        object: &ObjectId,
        event: &'static str,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                session: session.clone(),
                object: object.clone(),
                event,
            },
        );
        id
    }

    /// Never fails: unknown subscriptions are already gone.
    pub fn unsubscribe(&mut self, subscription: &str) {
        self.subscriptions.remove(subscription);
    }

    pub fn forget_object(&mut self, object: &ObjectId) {
        self.subscriptions.retain(|_, s| &s.object != object);
    }

    /// The sessions to deliver an event to, each once.
    pub fn subscribers(&self, object: &str, event: &str) -> BTreeSet<SessionId> {
        self.subscriptions
            .values()
            .filter(|s| s.object.as_str() == object && s.event == event)
            .map(|s| s.session.clone())
            .collect()
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_dedup() {
        let t0 = Instant::now();
        let mut s = Sessions::default();
        let sid = SessionId("a".into());
        let obj = ObjectId("o".into());
        s.bind(&sid, 1);
        let s1 = s.subscribe(&sid, &obj, "Error");
        let _s2 = s.subscribe(&sid, &obj, "Error");
        assert_eq!(s.subscribers("o", "Error").len(), 1);
        s.unsubscribe(&s1);
        assert_eq!(s.subscribers("o", "Error").len(), 1);
        s.unsubscribe("unknown");
        s.detach(1, t0);
        assert!(s
            .expire(t0 + Duration::from_secs(1), Duration::from_secs(5))
            .is_empty());
        s.bind(&sid, 2);
        s.detach(2, t0 + Duration::from_secs(2));
        let gone = s.expire(t0 + Duration::from_secs(8), Duration::from_secs(5));
        assert_eq!(gone, vec![sid.clone()]);
        assert_eq!(s.subscription_count(), 0);
        // A request whose socket died meanwhile: the session still expires; a live binding wins.
        let late = SessionId("late".into());
        s.known_detached(&late, t0);
        assert_eq!(
            s.expire(t0 + Duration::from_secs(5), Duration::from_secs(5)),
            vec![late.clone()]
        );
        s.bind(&late, 3);
        s.known_detached(&late, t0);
        assert!(s
            .expire(t0 + Duration::from_secs(9), Duration::from_secs(5))
            .is_empty());
    }
}

//! Who is joined, on which socket, and when the place of a participant whose socket dropped
//! lapses. A participant is known by its private rpc session id (the one `connect {sessionId}`
//! names); its socket is any handle the shell uses to write to it. Time is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Deadlines;
use crate::error::Error;
use crate::model::Role;

/// A socket a participant is on: the shell's id for it and the handle to write to it.
#[derive(Debug, Clone)]
pub struct Attached<S> {
    pub id: u64,
    pub tx: S,
}

#[derive(Debug, Clone)]
pub struct Member<S> {
    pub session_id: String,
    pub connection_id: String,
    /// Its role, fixed at its join (what it may do, read by each of its requests).
    pub role: Role,
    /// None while detached (within its reconnection window).
    pub socket: Option<Attached<S>>,
}

pub struct Roster<S> {
    members: HashMap<String, Member<S>>,
    lapses: Deadlines<String>,
    window: Duration,
}

impl<S> Roster<S> {
    /// `window`: how long a detached participant keeps its place (OpenVidu: 10 s).
    pub fn new(window: Duration) -> Self {
        Self {
            members: HashMap::new(),
            lapses: Deadlines::default(),
            window,
        }
    }

    pub fn join(
        &mut self,
        rpc: &str,
        session_id: &str,
        connection_id: &str,
        role: Role,
        socket: Attached<S>,
    ) -> Result<(), Error> {
        self.insert(rpc, session_id, connection_id, role, Some(socket))
    }

    fn insert(
        &mut self,
        rpc: &str,
        session_id: &str,
        connection_id: &str,
        role: Role,
        socket: Option<Attached<S>>,
    ) -> Result<(), Error> {
        if self.members.contains_key(rpc) {
            return Err(Error::AlreadyJoined);
        }
        self.members.insert(
            rpc.to_string(),
            Member {
                session_id: session_id.to_string(),
                connection_id: connection_id.to_string(),
                role,
                socket,
            },
        );
        Ok(())
    }

    /// A participant of a session this node took over from a dead one: it has no socket here
    /// yet and keeps its place until `now + window`, as if its socket had just dropped.
    pub fn adopt(
        &mut self,
        rpc: &str,
        session_id: &str,
        connection_id: &str,
        role: Role,
        now: Instant,
    ) -> Result<(), Error> {
        self.insert(rpc, session_id, connection_id, role, None)?;
        self.lapses.schedule(rpc.to_string(), now + self.window);
        Ok(())
    }

    pub fn get(&self, rpc: &str) -> Option<&Member<S>> {
        self.members.get(rpc)
    }

    /// The handle to write to `rpc`'s participant, if it is on a socket now.
    pub fn socket(&self, rpc: &str) -> Option<&S> {
        self.members.get(rpc)?.socket.as_ref().map(|a| &a.tx)
    }

    /// `connect {sessionId}`: the participant continues on `socket`. Returns the socket it was
    /// on, if it had not dropped yet.
    pub fn reattach(
        &mut self,
        rpc: &str,
        socket: Attached<S>,
    ) -> Result<Option<Attached<S>>, Error> {
        let m = self.members.get_mut(rpc).ok_or(Error::UnknownParticipant)?;
        self.lapses.cancel(&rpc.to_string());
        Ok(m.socket.replace(socket))
    }

    /// Socket `socket_id` closed. If it was still its participant's socket, the participant keeps
    /// its place until `now + window`; true then.
    pub fn detach(&mut self, rpc: &str, socket_id: u64, now: Instant) -> bool {
        let Some(m) = self.members.get_mut(rpc) else {
            return false;
        };
        if m.socket.as_ref().map(|a| a.id) != Some(socket_id) {
            return false;
        }
        m.socket = None;
        self.lapses.schedule(rpc.to_string(), now + self.window);
        true
    }

    /// The participant leaves the roster (left, evicted, session closed).
    pub fn remove(&mut self, rpc: &str) -> Option<Member<S>> {
        self.lapses.cancel(&rpc.to_string());
        self.members.remove(rpc)
    }

    /// When the next reconnection window lapses.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.lapses.earliest()
    }

    /// Participants whose reconnection window lapsed by `now`, removed from the roster: the
    /// shell evicts them (`networkDisconnect`).
    pub fn lapsed(&mut self, now: Instant) -> Vec<Member<S>> {
        let mut out = Vec::new();
        while let Some(rpc) = self.lapses.pop_due(now) {
            if let Some(m) = self.members.remove(&rpc) {
                out.push(m);
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member's (rpc id, session id).
    pub fn sessions_by_rpc(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members
            .iter()
            .map(|(rpc, m)| (rpc.as_str(), m.session_id.as_str()))
    }

    /// Detached participants waiting for their socket (for hygiene checks).
    pub fn detached(&self) -> usize {
        self.lapses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn on(id: u64) -> Attached<&'static str> {
        Attached { id, tx: "tx" }
    }

    #[test]
    fn a_participant_that_does_not_come_back_lapses_after_the_window() {
        let t0 = Instant::now();
        let mut r = Roster::new(WINDOW);
        assert!(r.join("rpc1", "s", "con_a", Role::Publisher, on(1)).is_ok());
        assert!(r.join("rpc2", "s", "con_b", Role::Publisher, on(2)).is_ok());
        assert!(r.detach("rpc1", 1, t0));
        assert!(r.socket("rpc1").is_none());
        assert_eq!(r.next_deadline(), Some(t0 + WINDOW));
        assert!(r.lapsed(t0 + WINDOW - Duration::from_millis(1)).is_empty());
        let gone = r.lapsed(t0 + WINDOW);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].connection_id, "con_a");
        assert!(r.get("rpc1").is_none());
        assert!(r.get("rpc2").is_some(), "others untouched");
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn an_adopted_participant_waits_for_its_socket_for_one_window() {
        let t0 = Instant::now();
        let mut r = Roster::new(WINDOW);
        assert!(r.adopt("rpc1", "s", "con_a", Role::Publisher, t0).is_ok());
        assert!(
            r.adopt("rpc1", "s", "con_a", Role::Publisher, t0).is_err(),
            "once"
        );
        assert!(r.socket("rpc1").is_none());
        assert_eq!(r.next_deadline(), Some(t0 + WINDOW));
        // Its socket comes back through another node: the window is cancelled.
        assert!(matches!(r.reattach("rpc1", on(7)), Ok(None)));
        assert!(r.lapsed(t0 + WINDOW).is_empty());
        assert!(r.adopt("rpc2", "s", "con_b", Role::Publisher, t0).is_ok());
        assert_eq!(
            r.lapsed(t0 + WINDOW).len(),
            1,
            "one that never comes back lapses"
        );
    }

    #[test]
    fn reconnecting_within_the_window_keeps_the_place() {
        let t0 = Instant::now();
        let mut r = Roster::new(WINDOW);
        assert!(r.join("rpc1", "s", "con_a", Role::Publisher, on(1)).is_ok());
        r.detach("rpc1", 1, t0);
        assert_eq!(
            r.reattach("rpc1", on(7)).map(|old| old.map(|a| a.id)),
            Ok(None)
        );
        assert!(r.lapsed(t0 + 2 * WINDOW).is_empty());
        assert_eq!(
            r.get("rpc1").and_then(|m| m.socket.as_ref()).map(|a| a.id),
            Some(7)
        );
        assert_eq!(r.detached(), 0);
    }

    #[test]
    fn an_old_socket_closing_after_the_participant_moved_changes_nothing() {
        let t0 = Instant::now();
        let mut r = Roster::new(WINDOW);
        assert!(r.join("rpc1", "s", "con_a", Role::Publisher, on(1)).is_ok());
        // The browser reconnected before the server noticed the old socket was dead.
        assert_eq!(
            r.reattach("rpc1", on(2)).map(|old| old.map(|a| a.id)),
            Ok(Some(1))
        );
        assert!(!r.detach("rpc1", 1, t0));
        assert!(r.socket("rpc1").is_some());
        assert!(r.lapsed(t0 + 2 * WINDOW).is_empty());
    }

    #[test]
    fn unknown_and_duplicate_participants_are_refused() {
        let mut r = Roster::new(WINDOW);
        assert!(r.join("rpc1", "s", "con_a", Role::Publisher, on(1)).is_ok());
        assert_eq!(
            r.join("rpc1", "s", "con_b", Role::Publisher, on(2)),
            Err(Error::AlreadyJoined)
        );
        assert_eq!(
            r.reattach("nobody", on(3)).err(),
            Some(Error::UnknownParticipant)
        );
        assert!(!r.detach("nobody", 3, Instant::now()));
    }

    #[test]
    fn leaving_while_detached_cancels_the_lapse() {
        let t0 = Instant::now();
        let mut r = Roster::new(WINDOW);
        assert!(r.join("rpc1", "s", "con_a", Role::Publisher, on(1)).is_ok());
        r.detach("rpc1", 1, t0);
        assert!(r.remove("rpc1").is_some());
        assert!(r.lapsed(t0 + WINDOW).is_empty());
        assert!(r.is_empty());
        assert_eq!(r.detached(), 0);
    }
}

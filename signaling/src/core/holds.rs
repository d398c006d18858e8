//! What a re-homed session still owes its participants, and when: a nudge (close the sockets of
//! those whose media is not back, so their browser reconnects at once) and the end of the wait
//! for publishers that have not re-published. Kept as keyed deadlines, one of each per session;
//! a later re-homing of the same session replaces them.

use std::time::{Duration, Instant};

use super::Deadlines;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hold {
    Nudge { session: String },
    StaleStreams { session: String },
}

#[derive(Default)]
pub struct Holds {
    due: Deadlines<Hold>,
}

impl Holds {
    /// A session was re-homed at `now`, its old engine having dropped `since_drop` ago: the
    /// nudge falls due `nudge` after the drop (0 = never), the stale streams `stale` after now.
    pub fn rehomed(
        &mut self,
        session: &str,
        now: Instant,
        since_drop: Duration,
        nudge: Duration,
        stale: Duration,
    ) {
        if !nudge.is_zero() {
            let at = now + nudge.saturating_sub(since_drop);
            self.due.schedule(
                Hold::Nudge {
                    session: session.to_string(),
                },
                at,
            );
        }
        self.due.schedule(
            Hold::StaleStreams {
                session: session.to_string(),
            },
            now + stale,
        );
    }

    /// The session is gone: it owes nothing.
    pub fn forget(&mut self, session: &str) {
        self.due.cancel(&Hold::Nudge {
            session: session.to_string(),
        });
        self.due.cancel(&Hold::StaleStreams {
            session: session.to_string(),
        });
    }

    pub fn earliest(&mut self) -> Option<Instant> {
        self.due.earliest()
    }

    /// Holds due by `now`, in deadline order.
    pub fn due(&mut self, now: Instant) -> Vec<Hold> {
        std::iter::from_fn(|| self.due.pop_due(now)).collect()
    }

    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn nudge(s: &str) -> Hold {
        Hold::Nudge { session: s.into() }
    }

    fn stale(s: &str) -> Hold {
        Hold::StaleStreams { session: s.into() }
    }

    #[test]
    fn the_nudge_counts_from_the_engine_drop_and_stale_streams_from_the_move() {
        let t0 = Instant::now();
        let mut h = Holds::default();
        // Dropped 3 s before the move; nudge 5 s after the drop; streams stale 30 s after.
        h.rehomed("a", t0, 3 * S, 5 * S, 30 * S);
        assert_eq!(h.earliest(), Some(t0 + 2 * S));
        assert!(h.due(t0 + S).is_empty());
        assert_eq!(h.due(t0 + 2 * S), vec![nudge("a")]);
        assert_eq!(h.due(t0 + 29 * S), vec![]);
        assert_eq!(h.due(t0 + 30 * S), vec![stale("a")]);
        assert!(h.is_empty());
    }

    #[test]
    fn a_late_move_nudges_at_once_and_no_nudge_means_none() {
        let t0 = Instant::now();
        let mut h = Holds::default();
        h.rehomed("a", t0, 9 * S, 5 * S, 30 * S);
        assert_eq!(h.due(t0), vec![nudge("a")]);
        h.rehomed("b", t0, S, Duration::ZERO, 30 * S);
        assert_eq!(h.len(), 2, "a's stale streams and b's; no nudge for b");
    }

    #[test]
    fn a_second_move_replaces_the_first_and_a_closed_session_owes_nothing() {
        let t0 = Instant::now();
        let mut h = Holds::default();
        h.rehomed("a", t0, Duration::ZERO, 5 * S, 30 * S);
        h.rehomed("a", t0 + 10 * S, Duration::ZERO, 5 * S, 30 * S);
        assert_eq!(h.len(), 2);
        assert!(h.due(t0 + 6 * S).is_empty(), "the first nudge was replaced");
        assert_eq!(h.due(t0 + 15 * S), vec![nudge("a")]);
        h.forget("a");
        assert!(h.is_empty());
        assert!(h.due(t0 + 100 * S).is_empty());
    }
}

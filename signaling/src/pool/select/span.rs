//! Where a new subscriber endpoint of a session goes when sessions may span engines
//! (`POOL_SESSION_SPAN`). Pure: the caller says which engines take one more endpoint and what the
//! session already has on each.
//!
//! The session's own engine (the origin, where its publishers are) is preferred while it takes
//! endpoints. Past that, a subscriber goes to another engine fed through a relay of its
//! publisher: first an engine that already carries that relay (no new relay), then one the
//! session already spans (a new relay, no new pipeline), then a new engine chosen by the pool's
//! strategy among those carrying the session's labels (all of them when none does). When no
//! engine takes it, the origin does, over its limit, as every endpoint did before relays.

use rtcpool_config::SessionSpan;

/// Another engine as this decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Far<'a> {
    pub id: &'a str,
    pub slot: usize,
    /// Takes the endpoints a subscription there needs now (with a new relay if it has none).
    pub takes: bool,
    /// Already carries a relay of this subscription's publisher for this session.
    pub relays_publisher: bool,
    /// The session already has a pipeline there.
    pub spanned: bool,
    /// Carries the labels the session asked for (or, if it asked none, its origin's).
    pub labels_match: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// The session's own engine.
    Origin,
    /// This engine (by slot).
    Engine(usize),
    /// One of these engines (slots), as the pool's strategy picks.
    Among(Vec<usize>),
}

pub fn place(span: SessionSpan, origin_takes: bool, far: &[Far<'_>]) -> Site {
    if span == SessionSpan::Never || origin_takes {
        return Site::Origin;
    }
    let open = || far.iter().filter(|f| f.takes);
    if let Some(f) = open().find(|f| f.relays_publisher) {
        return Site::Engine(f.slot);
    }
    if let Some(f) = open().find(|f| f.spanned) {
        return Site::Engine(f.slot);
    }
    let matching: Vec<usize> = open().filter(|f| f.labels_match).map(|f| f.slot).collect();
    let group = if matching.is_empty() {
        open().map(|f| f.slot).collect()
    } else {
        matching
    };
    if group.is_empty() {
        Site::Origin
    } else {
        Site::Among(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far(slot: usize, takes: bool, relays: bool, spanned: bool, labels: bool) -> Far<'static> {
        Far {
            id: "e",
            slot,
            takes,
            relays_publisher: relays,
            spanned,
            labels_match: labels,
        }
    }

    #[test]
    fn origin_while_it_takes_endpoints_or_when_spanning_is_off() {
        let others = [far(1, true, true, true, true)];
        assert_eq!(place(SessionSpan::WhenFull, true, &others), Site::Origin);
        assert_eq!(place(SessionSpan::Never, false, &others), Site::Origin);
    }

    #[test]
    fn an_existing_relay_first_then_a_spanned_engine_then_the_strategy() {
        let e = [
            far(1, true, false, false, true),
            far(2, true, false, true, false),
            far(3, true, true, true, false),
        ];
        assert_eq!(place(SessionSpan::WhenFull, false, &e), Site::Engine(3));
        assert_eq!(
            place(SessionSpan::WhenFull, false, &e[..2]),
            Site::Engine(2)
        );
        assert_eq!(
            place(SessionSpan::WhenFull, false, &e[..1]),
            Site::Among(vec![1])
        );
    }

    #[test]
    fn full_engines_are_passed_over_even_with_a_relay() {
        let e = [
            far(1, false, true, true, true),
            far(2, true, false, false, false),
        ];
        assert_eq!(
            place(SessionSpan::WhenFull, false, &e),
            Site::Among(vec![2])
        );
    }

    #[test]
    fn labels_narrow_the_new_engines_unless_none_match() {
        let e = [
            far(1, true, false, false, false),
            far(2, true, false, false, true),
            far(3, true, false, false, true),
        ];
        assert_eq!(
            place(SessionSpan::WhenFull, false, &e),
            Site::Among(vec![2, 3])
        );
        let e = [
            far(1, true, false, false, false),
            far(2, true, false, false, false),
        ];
        assert_eq!(
            place(SessionSpan::WhenFull, false, &e),
            Site::Among(vec![1, 2])
        );
    }

    #[test]
    fn nowhere_else_means_the_origin_over_its_limit() {
        let e = [far(1, false, false, false, true)];
        assert_eq!(place(SessionSpan::WhenFull, false, &e), Site::Origin);
        assert_eq!(place(SessionSpan::WhenFull, false, &[]), Site::Origin);
    }
}

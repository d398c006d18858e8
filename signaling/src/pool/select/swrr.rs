//! Smooth weighted round robin exactly as nginx does it (`ngx_http_upstream_get_peer`): every
//! pick adds each peer's effective weight to its current weight, takes the largest, and subtracts
//! the total from the winner; a failure lowers the effective weight by weight / max_fails, and
//! each pick lets it recover by one. Weights {5,1,1} give `a a b a c a a`.

use super::{Candidate, Strategy};

#[derive(Debug, Default, Clone, Copy)]
struct Peer {
    current: i64,
    effective: i64,
    weight: i64,
}

pub struct SmoothWeightedRoundRobin {
    /// By engine slot.
    peers: Vec<Option<Peer>>,
    max_fails: i64,
}

impl SmoothWeightedRoundRobin {
    pub fn new(max_fails: u32) -> Self {
        Self {
            peers: Vec::new(),
            max_fails: i64::from(max_fails.max(1)),
        }
    }

    /// Picks with explicit weights, given as (slot, weight); returns the index of the winner.
    /// Shared with the load-weighted strategy.
    pub fn pick_weighted(
        &mut self,
        candidates: impl Iterator<Item = (usize, i64)>,
    ) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<(usize, usize, i64)> = None; // (index, slot, current)
        for (i, (slot, weight)) in candidates.enumerate() {
            let weight = weight.max(0);
            if self.peers.len() <= slot {
                self.peers.resize(slot + 1, None);
            }
            let p = self.peers[slot].get_or_insert(Peer {
                current: 0,
                effective: weight,
                weight,
            });
            if p.weight != weight {
                // The weight changed (PATCH, or a new load figure): keep the smoothing state.
                p.effective = p.effective.min(weight);
                p.weight = weight;
            }
            p.current += p.effective;
            total += p.effective;
            if p.effective < p.weight {
                p.effective += 1;
            }
            if best.is_none_or(|(_, _, c)| p.current > c) {
                best = Some((i, slot, p.current));
            }
        }
        let (i, slot, _) = best?;
        if let Some(p) = self.peers[slot].as_mut() {
            p.current -= total;
        }
        Some(i)
    }

    pub fn failed(&mut self, slot: usize) {
        if let Some(Some(p)) = self.peers.get_mut(slot) {
            p.effective = (p.effective - p.weight / self.max_fails).max(0);
        }
    }
}

impl Strategy for SmoothWeightedRoundRobin {
    fn pick(&mut self, candidates: &[Candidate<'_>]) -> Option<usize> {
        self.pick_weighted(candidates.iter().map(|c| (c.slot, i64::from(c.weight))))
    }

    fn placement_failed(&mut self, slot: usize) {
        self.failed(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(ws: &[(&'static str, u32)]) -> Vec<Candidate<'static>> {
        ws.iter()
            .map(|(id, w)| Candidate {
                id,
                slot: usize::from(id.as_bytes()[0] - b'a'),
                weight: *w,
                load: 0.0,
                endpoints: 0,
            })
            .collect()
    }

    fn run(s: &mut SmoothWeightedRoundRobin, c: &[Candidate<'_>], n: usize) -> String {
        (0..n)
            .filter_map(|_| s.pick(c))
            .map(|i| c[i].id)
            .collect::<Vec<_>>()
            .join("")
    }

    #[test]
    fn nginx_sequence_for_5_1_1() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        assert_eq!(
            run(&mut s, &cands(&[("a", 5), ("b", 1), ("c", 1)]), 14),
            "aabacaaaabacaa"
        );
    }

    #[test]
    fn exact_proportions_over_many_picks() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        let c = cands(&[("a", 3), ("b", 2), ("c", 1)]);
        let seq = run(&mut s, &c, 600);
        assert_eq!(
            (
                seq.matches('a').count(),
                seq.matches('b').count(),
                seq.matches('c').count()
            ),
            (300, 200, 100)
        );
        // Smooth: never more than 2 a's in a row for 3:2:1.
        assert!(!seq.contains("aaa"));
    }

    #[test]
    fn excluding_an_engine_keeps_the_others_proportions() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        let all = cands(&[("a", 3), ("b", 2), ("c", 1)]);
        run(&mut s, &all, 7); // some state first
        let without_a = cands(&[("b", 2), ("c", 1)]);
        let seq = run(&mut s, &without_a, 300);
        assert_eq!(
            (seq.matches('b').count(), seq.matches('c').count()),
            (200, 100)
        );
    }

    #[test]
    fn failed_placement_lowers_then_recovers_gradually() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        let c = cands(&[("a", 4), ("b", 4)]);
        run(&mut s, &c, 8);
        s.placement_failed(0); // effective weight of a drops to 0
        let next = run(&mut s, &c, 8);
        let a_first_half = next[..4].matches('a').count();
        assert!(
            a_first_half <= 1,
            "a should mostly be skipped right after failing: {next}"
        );
        // It recovers by one per pick: after a while the split is even again.
        run(&mut s, &c, 16);
        let later = run(&mut s, &c, 80);
        assert_eq!(later.matches('a').count(), 40, "{later}");
    }
}

//! Smooth weighted round robin exactly as nginx does it (`ngx_http_upstream_get_peer`): every
//! pick adds each peer's effective weight to its current weight, takes the largest, and subtracts
//! the total from the winner; a failure lowers the effective weight by weight / max_fails, and
//! each pick lets it recover by one. Weights {5,1,1} give `a a b a c a a`.

use std::collections::HashMap;

use super::{Candidate, Strategy};

#[derive(Debug, Default, Clone, Copy)]
struct Peer {
    current: i64,
    effective: i64,
    weight: i64,
}

pub struct SmoothWeightedRoundRobin {
    peers: HashMap<String, Peer>,
    max_fails: i64,
}

impl SmoothWeightedRoundRobin {
    pub fn new(max_fails: u32) -> Self {
        Self {
            peers: HashMap::new(),
            max_fails: i64::from(max_fails.max(1)),
        }
    }

    /// Picks with explicit weights (shared with the load-weighted strategy).
    pub fn pick_weighted(&mut self, candidates: &[(String, i64)]) -> Option<String> {
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, (id, weight)) in candidates.iter().enumerate() {
            let weight = (*weight).max(0);
            let p = self.peers.entry(id.clone()).or_insert(Peer {
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
            if best.is_none_or(|(_, c)| p.current > c) {
                best = Some((i, p.current));
            }
        }
        let (i, _) = best?;
        let id = &candidates[i].0;
        if let Some(p) = self.peers.get_mut(id) {
            p.current -= total;
        }
        Some(id.clone())
    }

    pub fn failed(&mut self, id: &str) {
        if let Some(p) = self.peers.get_mut(id) {
            p.effective = (p.effective - p.weight / self.max_fails).max(0);
        }
    }
}

impl Strategy for SmoothWeightedRoundRobin {
    fn pick(&mut self, candidates: &[Candidate]) -> Option<String> {
        let w: Vec<(String, i64)> = candidates
            .iter()
            .map(|c| (c.id.clone(), i64::from(c.weight)))
            .collect();
        self.pick_weighted(&w)
    }

    fn placement_failed(&mut self, id: &str) {
        self.failed(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(ws: &[(&str, u32)]) -> Vec<Candidate> {
        ws.iter()
            .map(|(id, w)| Candidate {
                id: id.to_string(),
                weight: *w,
                load: 0.0,
                endpoints: 0,
            })
            .collect()
    }

    fn run(s: &mut SmoothWeightedRoundRobin, c: &[Candidate], n: usize) -> String {
        (0..n)
            .filter_map(|_| s.pick(c))
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
        s.placement_failed("a"); // effective weight of a drops to 0
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

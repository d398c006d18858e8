//! Smooth weighted round robin exactly as nginx does it (`ngx_http_upstream_get_peer`): every
//! pick adds each peer's effective weight to its current weight, takes the largest, and subtracts
//! the total from the winner; a failure lowers the effective weight by weight / max_fails, and
//! each pick lets it recover by one. Weights {5,1,1} give `a a b a c a a`.

use super::{Row, Strategy};

#[derive(Debug, Default, Clone, Copy)]
struct Peer {
    current: i64,
    effective: i64,
    /// 0 until the slot is first seen admitted.
    weight: i64,
}

pub struct SmoothWeightedRoundRobin {
    /// By engine slot.
    peers: Vec<Peer>,
    max_fails: i64,
}

impl SmoothWeightedRoundRobin {
    pub fn new(max_fails: u32) -> Self {
        Self {
            peers: Vec::new(),
            max_fails: i64::from(max_fails.max(1)),
        }
    }

    /// Picks among the rows admitted at `now`, each weighted by `weight_of` (≥ 1); returns the
    /// winner's slot. Shared with the load-weighted strategy.
    #[inline]
    pub fn pick_by(
        &mut self,
        rows: &[Row],
        now: u64,
        weight_of: impl Fn(&Row) -> i64,
    ) -> Option<usize> {
        if self.peers.len() < rows.len() {
            self.peers.resize(rows.len(), Peer::default());
        }
        let mut total = 0i64;
        let (mut best, mut best_current) = (None, i64::MIN);
        for (slot, (row, p)) in rows.iter().zip(self.peers.iter_mut()).enumerate() {
            if !row.admitted(now) {
                continue;
            }
            let weight = weight_of(row).max(1);
            if p.weight != weight {
                // First seen, or the weight changed (PATCH, a new load figure): a change keeps
                // the smoothing state.
                p.effective = if p.weight == 0 {
                    weight
                } else {
                    p.effective.min(weight)
                };
                p.weight = weight;
            }
            p.current += p.effective;
            total += p.effective;
            if p.effective < p.weight {
                p.effective += 1;
            }
            if p.current > best_current {
                (best, best_current) = (Some(slot), p.current);
            }
        }
        let slot = best?;
        self.peers[slot].current -= total;
        Some(slot)
    }

    pub fn failed(&mut self, slot: usize) {
        if let Some(p) = self.peers.get_mut(slot) {
            p.effective = (p.effective - p.weight / self.max_fails).max(0);
        }
    }
}

impl Strategy for SmoothWeightedRoundRobin {
    fn pick(&mut self, rows: &[Row], now: u64) -> Option<usize> {
        self.pick_by(rows, now, |r| i64::from(r.weight))
    }

    fn placement_failed(&mut self, slot: usize) {
        self.failed(slot);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Rows for engines `a`, `b`, … (slot = letter); the ones listed are admitted with their
    /// weight, the others are not.
    pub fn rows(ws: &[(char, u32)]) -> Vec<Row> {
        let mut rows = vec![Row::default(); 8];
        for &(id, weight) in ws {
            rows[usize::from(id as u8 - b'a')] = Row {
                until: u64::MAX,
                weight,
                ..Row::default()
            };
        }
        rows
    }

    pub fn run(s: &mut dyn Strategy, rows: &[Row], n: usize) -> String {
        (0..n)
            .filter_map(|_| s.pick(rows, 1))
            .map(|slot| char::from(b'a' + slot as u8))
            .collect()
    }

    #[test]
    fn nginx_sequence_for_5_1_1() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        assert_eq!(
            run(&mut s, &rows(&[('a', 5), ('b', 1), ('c', 1)]), 14),
            "aabacaaaabacaa"
        );
    }

    #[test]
    fn exact_proportions_over_many_picks() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        let seq = run(&mut s, &rows(&[('a', 3), ('b', 2), ('c', 1)]), 600);
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
        run(&mut s, &rows(&[('a', 3), ('b', 2), ('c', 1)]), 7); // some state first
        let seq = run(&mut s, &rows(&[('b', 2), ('c', 1)]), 300);
        assert_eq!(
            (seq.matches('b').count(), seq.matches('c').count()),
            (200, 100)
        );
    }

    #[test]
    fn nothing_admitted_picks_nothing() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        let mut r = rows(&[('a', 3)]);
        r[0].until = 5;
        assert_eq!(s.pick(&r, 6), None, "stale at 6");
        assert_eq!(s.pick(&r, 5), Some(0));
    }

    #[test]
    fn failed_placement_lowers_then_recovers_gradually() {
        let mut s = SmoothWeightedRoundRobin::new(1);
        let r = rows(&[('a', 4), ('b', 4)]);
        run(&mut s, &r, 8);
        s.placement_failed(0); // effective weight of a drops to 0
        let next = run(&mut s, &r, 8);
        let a_first_half = next[..4].matches('a').count();
        assert!(
            a_first_half <= 1,
            "a should mostly be skipped right after failing: {next}"
        );
        // It recovers by one per pick: after a while the split is even again.
        run(&mut s, &r, 16);
        let later = run(&mut s, &r, 80);
        assert_eq!(later.matches('a').count(), 40, "{later}");
    }
}

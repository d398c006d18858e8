//! OWT's `weight-robin`: smooth weighted round robin where each engine's weight is
//! weight × (1 − load), so busier engines get proportionally fewer new sessions.

use super::swrr::SmoothWeightedRoundRobin;
use super::{Candidate, Strategy};

pub struct LoadWeighted {
    inner: SmoothWeightedRoundRobin,
}

impl LoadWeighted {
    pub fn new(max_fails: u32) -> Self {
        Self {
            inner: SmoothWeightedRoundRobin::new(max_fails),
        }
    }
}

/// Weight scaled by free capacity, in hundredths (at least 1 while admitted).
fn scaled(c: &Candidate<'_>) -> i64 {
    ((f64::from(c.weight) * (1.0 - c.load.clamp(0.0, 1.0)) * 100.0).round() as i64).max(1)
}

impl Strategy for LoadWeighted {
    fn pick(&mut self, candidates: &[Candidate<'_>]) -> Option<usize> {
        self.inner
            .pick_weighted(candidates.iter().map(|c| (c.slot, scaled(c))))
    }

    fn placement_failed(&mut self, slot: usize) {
        self.inner.failed(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busier_engines_get_proportionally_fewer() {
        let mut s = LoadWeighted::new(1);
        let c = vec![
            Candidate {
                id: "a",
                slot: 0,
                weight: 1,
                load: 0.0,
                endpoints: 0,
            },
            Candidate {
                id: "b",
                slot: 1,
                weight: 1,
                load: 0.75,
                endpoints: 0,
            },
        ];
        let seq: String = (0..500)
            .filter_map(|_| s.pick(&c))
            .map(|i| c[i].id)
            .collect();
        assert_eq!(
            (seq.matches('a').count(), seq.matches('b').count()),
            (400, 100)
        );
    }
}

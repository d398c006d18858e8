//! OWT's `weight-robin`: smooth weighted round robin where each engine's weight is
//! weight × (1 − load), so busier engines get proportionally fewer new sessions.

use super::swrr::SmoothWeightedRoundRobin;
use super::{Row, Strategy};

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

/// Weight scaled by free capacity, in hundredths (at least 1). The board computes it when an
/// engine's stats change rather than on every pick.
pub fn free_weight(weight: u32, load: f64) -> i64 {
    ((f64::from(weight) * (1.0 - load.clamp(0.0, 1.0)) * 100.0).round() as i64).max(1)
}

impl Strategy for LoadWeighted {
    fn pick(&mut self, rows: &[Row], now: u64) -> Option<usize> {
        self.inner.pick_by(rows, now, |r| r.free_weight)
    }

    fn placement_failed(&mut self, slot: usize) {
        self.inner.failed(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::super::swrr::tests::{rows, run};
    use super::*;

    #[test]
    fn busier_engines_get_proportionally_fewer() {
        let mut s = LoadWeighted::new(1);
        let mut r = rows(&[('a', 1), ('b', 1)]);
        (r[0].free_weight, r[1].free_weight) = (free_weight(1, 0.0), free_weight(1, 0.75));
        let seq = run(&mut s, &r, 500);
        assert_eq!(
            (seq.matches('a').count(), seq.matches('b').count()),
            (400, 100)
        );
    }
}

//! The placement board: one row per engine slot holding what a placement decision needs, kept
//! current by the engines themselves (every change of connection, status, weight or stats
//! re-evaluates that engine's admission with [`admit`]). A row says until when its engine is
//! admitted (its stats' time + the staleness limit), so a decision reads one clock and compares
//! one integer per engine before the strategy ranks the admitted rows: no snapshots, locks per
//! engine or allocation on the hot path.

use std::time::Instant;

use super::admission::{admit, Limits, View};
use super::Strategy;

/// An engine as placement sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Row {
    /// Admitted while the board's clock is ≤ this (nanoseconds since the board's epoch);
    /// 0 = not admitted.
    pub until: u64,
    pub weight: u32,
    /// 0.0–1.0 (CPU share).
    pub load: f64,
    /// Weight × free capacity (see `load_weighted.rs`).
    pub free_weight: i64,
    pub endpoints: u64,
}

impl Row {
    #[inline]
    pub fn admitted(&self, now: u64) -> bool {
        now <= self.until
    }
}

pub struct Board {
    limits: Limits,
    epoch: Instant,
    rows: Vec<Row>,
    /// Slots of removed engines: late updates from their tasks are ignored.
    retired: Vec<bool>,
    strategy: Box<dyn Strategy>,
}

impl Board {
    pub fn new(limits: Limits, strategy: Box<dyn Strategy>) -> Self {
        Self {
            limits,
            epoch: Instant::now(),
            rows: Vec::new(),
            retired: Vec::new(),
            strategy,
        }
    }

    /// Re-evaluates the engine in `v.slot` (admission minus staleness, which the clock decides).
    pub fn set(&mut self, v: &View<'_>) {
        let slot = v.slot;
        if self.rows.len() <= slot {
            self.rows.resize(slot + 1, Row::default());
            self.retired.resize(slot + 1, false);
        }
        if self.retired[slot] {
            return;
        }
        let row = v.stats.and_then(|s| {
            // Judged at the instant the stats were read, so only the limits can refuse it.
            let c = admit(v, s.at, &self.limits.at(s.at)).ok()?;
            let until = (s.at + self.limits.stale_after).saturating_duration_since(self.epoch);
            Some(Row {
                until: u64::try_from(until.as_nanos()).unwrap_or(u64::MAX).max(1),
                weight: c.weight,
                load: c.load,
                free_weight: super::load_weighted::free_weight(c.weight, c.load),
                endpoints: c.endpoints,
            })
        });
        self.rows[slot] = row.unwrap_or(Row {
            weight: v.weight,
            ..Row::default()
        });
    }

    /// The engine in `slot` left the pool for good.
    pub fn retire(&mut self, slot: usize) {
        if let Some(r) = self.rows.get_mut(slot) {
            *r = Row::default();
            self.retired[slot] = true;
        }
    }

    /// The board's clock: nanoseconds since its epoch, never 0.
    #[inline]
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX) | 1
    }

    /// The slot of the engine for the next session, or `None` when no engine is admitted.
    #[inline]
    pub fn pick(&mut self) -> Option<usize> {
        let now = self.now();
        self.strategy.pick(&self.rows, now)
    }

    /// Like [`Self::pick`], among the `allowed` slots only.
    pub fn pick_among(&mut self, allowed: &super::steer::Allowed) -> Option<usize> {
        if *allowed == super::steer::Allowed::Any {
            return self.pick();
        }
        let now = self.now();
        let rows: Vec<Row> = self
            .rows
            .iter()
            .enumerate()
            .map(|(slot, r)| match allowed.admits(slot) {
                true => *r,
                false => Row { until: 0, ..*r },
            })
            .collect();
        self.strategy.pick(&rows, now)
    }

    pub fn placement_failed(&mut self, slot: usize) {
        self.strategy.placement_failed(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::super::admission::Stats;
    use super::super::swrr::SmoothWeightedRoundRobin;
    use super::*;
    use std::time::Duration;

    fn limits() -> Limits {
        Limits {
            stale_after: Duration::from_millis(200),
            fresh_since: None,
            cpu_pct: 90.0,
            max_endpoints: 10,
        }
    }

    fn stats(cpu_pct: f64, endpoints: u64) -> Stats {
        Stats {
            at: Instant::now(),
            cpu_pct,
            memory_kib: 1,
            endpoints,
            pipelines: 0,
            rtt_ms: 0.1,
        }
    }

    fn view(slot: usize, connected: bool, running: bool, stats: Option<&Stats>) -> View<'_> {
        View {
            id: "e",
            slot,
            weight: 1,
            connected,
            running,
            stats,
        }
    }

    #[test]
    fn rows_follow_admission_and_go_stale_with_the_clock() {
        let mut b = Board::new(limits(), Box::new(SmoothWeightedRoundRobin::new(1)));
        assert_eq!(b.pick(), None, "empty board");
        let (ok, hot, full) = (stats(10.0, 2), stats(95.0, 2), stats(10.0, 10));
        b.set(&view(0, false, true, Some(&ok)));
        b.set(&view(1, true, false, Some(&ok)));
        b.set(&view(2, true, true, None));
        b.set(&view(3, true, true, Some(&hot)));
        b.set(&view(4, true, true, Some(&full)));
        assert_eq!(b.pick(), None, "none of them is admitted");
        b.set(&view(5, true, true, Some(&ok)));
        assert_eq!(b.pick(), Some(5));
        b.retire(5);
        b.set(&view(5, true, true, Some(&ok)));
        assert_eq!(b.pick(), None, "a retired slot stays out");
        b.set(&view(6, true, true, Some(&ok)));
        assert_eq!(b.pick(), Some(6));
        b.set(&view(7, true, true, Some(&ok)));
        let only_7 = super::super::steer::Allowed::Only(vec![7]);
        assert_eq!(
            (b.pick_among(&only_7), b.pick_among(&only_7)),
            (Some(7), Some(7))
        );
        let none = super::super::steer::Allowed::Only(vec![3, 4]);
        assert_eq!(
            b.pick_among(&none),
            None,
            "the allowed ones are not admitted"
        );
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(b.pick(), None, "its stats went stale");
    }
}

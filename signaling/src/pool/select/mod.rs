//! Choosing an engine for a new session, in separate steps: *staleness* and *admission*
//! (`admission.rs`: connected, fresh stats, under its limits, not draining) decide which engines
//! may take it; a [`Strategy`] (one file each) ranks the admitted ones.

pub mod admission;
pub mod least_loaded;
pub mod load_weighted;
pub mod swrr;

use rtcpool_config::Strategy as StrategyName;

/// An admitted engine as the ranking step sees it. `slot` is the engine's stable index in the
/// pool, so strategies keep their state in vectors (no hashing or allocation per pick).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub slot: usize,
    pub weight: u32,
    /// 0.0–1.0 (CPU share).
    pub load: f64,
    pub endpoints: u64,
}

pub trait Strategy: Send {
    /// The index (into `candidates`) of the engine to place the next session on (`None` only
    /// when `candidates` is empty).
    fn pick(&mut self, candidates: &[Candidate<'_>]) -> Option<usize>;
    /// A placement on the engine in `slot` failed (e.g. the pipeline could not be created).
    fn placement_failed(&mut self, _slot: usize) {}
}

pub fn strategy(name: StrategyName, max_fails: u32) -> Box<dyn Strategy> {
    match name {
        StrategyName::WeightedRoundRobin => {
            Box::new(swrr::SmoothWeightedRoundRobin::new(max_fails))
        }
        StrategyName::LeastLoaded => Box::new(least_loaded::LeastLoaded),
        StrategyName::LoadWeighted => Box::new(load_weighted::LoadWeighted::new(max_fails)),
    }
}

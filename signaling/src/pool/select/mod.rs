//! Choosing an engine for a new session, in separate steps: *staleness* and *admission*
//! (`admission.rs`: connected, fresh stats, under its limits, not draining) decide which engines
//! may take it; `board.rs` keeps each engine's verdict current so a decision only compares
//! clocks; a [`Strategy`] (one file each) ranks the admitted rows; `steer.rs` narrows them to the
//! engines a session names or whose labels it asks for; `span.rs` decides where a subscriber goes
//! when its session's engine is full.

pub mod admission;
pub mod board;
pub mod least_loaded;
pub mod load_weighted;
pub mod span;
pub mod steer;
pub mod swrr;

use rtcpool_config::Strategy as StrategyName;

pub use board::{Board, Row};

/// An admitted engine, as admission reports it. `slot` is the engine's stable index in the pool;
/// strategies keep their state in vectors indexed by it (no hashing or allocation per pick).
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
    /// The slot of the engine to place the next session on, among the rows admitted at `now`
    /// (`None` when none is).
    fn pick(&mut self, rows: &[Row], now: u64) -> Option<usize>;
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

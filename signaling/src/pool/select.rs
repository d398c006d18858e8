//! Engine selection strategies behind one trait (the engine-pool issue adds smooth weighted
//! round robin, least-loaded and load-weighted, one file each).

use super::EngineSnapshot;

pub trait Selector: Send {
    /// The id of the engine to place a new session on, among `candidates` (all admitted).
    fn pick(&mut self, candidates: &[&EngineSnapshot]) -> Option<String>;
}

/// The first connected engine in configuration order.
#[derive(Default)]
pub struct FirstConnected;

impl Selector for FirstConnected {
    fn pick(&mut self, candidates: &[&EngineSnapshot]) -> Option<String> {
        candidates.first().map(|e| e.id.clone())
    }
}

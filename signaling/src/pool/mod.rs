//! The media engines signaling places sessions on: one kms-client connection per engine, kept
//! up by its own task, and a [`select::Selector`] that picks among the connected ones.

pub mod engine;
pub mod select;

use parking_lot::Mutex;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub use engine::{Engine, EngineSnapshot};
pub use select::{FirstConnected, Selector};

pub struct EnginePool {
    engines: Mutex<Vec<Arc<Engine>>>,
    /// Mutated on every pick (round-robin state lives here), so behind its own lock.
    selector: Mutex<Box<dyn Selector>>,
    cancel: CancellationToken,
}

impl EnginePool {
    pub fn new(
        uris: &[(String, u32)],
        selector: Box<dyn Selector>,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let pool = Arc::new(Self {
            engines: Mutex::new(Vec::new()),
            selector: Mutex::new(selector),
            cancel,
        });
        for (uri, weight) in uris {
            pool.add(uri.clone(), *weight);
        }
        pool
    }

    /// Adds an engine and starts its connection task.
    pub fn add(&self, uri: String, weight: u32) -> Arc<Engine> {
        let e = Engine::start(uri, weight, self.cancel.child_token());
        self.engines.lock().push(e.clone());
        e
    }

    pub fn all(&self) -> Vec<Arc<Engine>> {
        self.engines.lock().clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Engine>> {
        self.engines.lock().iter().find(|e| e.id == id).cloned()
    }

    /// Picks an engine for a new session among the connected ones, or says why none can be used.
    pub fn pick(&self) -> Result<Arc<Engine>, String> {
        let engines = self.all();
        let snaps: Vec<EngineSnapshot> = engines.iter().map(|e| e.snapshot()).collect();
        if snaps.is_empty() {
            return Err("no media engine is configured".into());
        }
        let connected: Vec<&EngineSnapshot> = snaps.iter().filter(|s| s.connected).collect();
        if connected.is_empty() {
            return Err(format!(
                "none of the {} media engines is connected",
                snaps.len()
            ));
        }
        let id = self
            .selector
            .lock()
            .pick(&connected)
            .ok_or("no media engine is admitted")?;
        engines
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| "selected engine vanished".into())
    }

    /// Waits until at least one engine is connected (start-up readiness), up to `within`.
    pub async fn wait_any_connected(&self, within: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.all().iter().any(|e| e.snapshot().connected) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }
}

//! The media engines signaling places sessions on. One kms-client connection per engine, kept up
//! (and health-sampled) by the engine's own tasks; selection runs admission first, then the
//! configured [`select::Strategy`]. Engines can be added, re-weighted, drained and removed at
//! runtime. Lost engines, (re)connections and destroyed objects are reported on the channel
//! returned by [`EnginePool::new`].

pub mod engine;
pub mod health;
pub mod select;

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use engine::{Engine, EngineSnapshot, PoolEvent, PoolLinks, Status, Timings};
use select::admission::{admit, Limits, View};
use select::{Board, Strategy};

pub struct PoolConfig {
    pub limits: Limits,
    pub timings: Timings,
    pub label_fallback: select::steer::LabelFallback,
}

impl PoolConfig {
    pub fn from_settings(s: &rtcpool_config::SignalingSettings) -> Self {
        Self {
            limits: Limits {
                fresh_since: None,
                stale_after: Duration::from_millis(s.pool_stale_after_ms),
                cpu_pct: s.pool_cpu_limit,
                max_endpoints: s.pool_max_endpoints,
            },
            timings: Timings {
                ping_timeout: Duration::from_millis(s.pool_ping_timeout_ms),
                reconnect_window: Duration::from_millis(s.pool_reconnect_window_ms),
                health_interval: Duration::from_millis(s.pool_health_interval_ms),
            },
            label_fallback: match s.pool_label_fallback {
                rtcpool_config::LabelFallback::Any => select::steer::LabelFallback::Any,
                rtcpool_config::LabelFallback::None => select::steer::LabelFallback::None,
            },
        }
    }
}

pub struct EnginePool {
    engines: Mutex<Vec<Arc<Engine>>>,
    next_slot: std::sync::atomic::AtomicUsize,
    /// Shared with every engine; `links.board` holds every engine's admission and the
    /// strategy's state, locked for one pick or one update.
    links: PoolLinks,
    config: PoolConfig,
    cancel: CancellationToken,
    created: Instant,
}

/// How long after start-up placements wait for engines that have not connected yet.
const WARM_UP: Duration = Duration::from_secs(3);

pub type EngineList = Vec<(String, u32, BTreeMap<String, String>)>;

impl EnginePool {
    pub fn new(
        list: &EngineList,
        strategy: Box<dyn Strategy>,
        config: PoolConfig,
        cancel: CancellationToken,
        health_share: Option<Arc<dyn health::HealthShare>>,
    ) -> (Arc<Self>, mpsc::Receiver<PoolEvent>) {
        // Bounded: the engines' object-event tasks wait when signaling falls behind.
        let (events, events_rx) = mpsc::channel(1024);
        let pool = Arc::new(Self {
            engines: Mutex::new(Vec::new()),
            next_slot: std::sync::atomic::AtomicUsize::new(0),
            links: PoolLinks {
                timings: config.timings,
                events,
                board: Arc::new(Mutex::new(Board::new(config.limits, strategy))),
                health_share,
            },
            config,
            cancel,
            created: Instant::now(),
        });
        for (uri, weight, labels) in list {
            let _ = pool.add(uri.clone(), *weight, labels.clone());
        }
        (pool, events_rx)
    }

    /// Adds an engine and starts its tasks; a URI already in the pool is refused.
    pub fn add(
        &self,
        uri: String,
        weight: u32,
        labels: BTreeMap<String, String>,
    ) -> Result<Arc<Engine>, String> {
        let mut engines = self.engines.lock();
        let shown = kms_client::uri::redact(&uri);
        if engines
            .iter()
            .any(|e| e.uri.trim_end_matches('/') == shown.trim_end_matches('/'))
        {
            return Err(format!("{shown} is already in the pool"));
        }
        let slot = self
            .next_slot
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let e = Engine::start(
            slot,
            uri,
            weight,
            labels,
            &self.links,
            self.cancel.child_token(),
        );
        engines.push(e.clone());
        Ok(e)
    }

    /// Removes an engine (its connection and sampler stop).
    pub fn remove(&self, id: &str) -> Option<Arc<Engine>> {
        let mut engines = self.engines.lock();
        let i = engines.iter().position(|e| e.id == id)?;
        let e = engines.remove(i);
        e.cancel.cancel();
        self.links.board.lock().retire(e.slot);
        Some(e)
    }

    pub fn all(&self) -> Vec<Arc<Engine>> {
        self.engines.lock().clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Engine>> {
        self.engines.lock().iter().find(|e| e.id == id).cloned()
    }

    /// Whether `snapshot` may take new sessions now (and why not).
    pub fn admitted(&self, s: &EngineSnapshot) -> Result<(), String> {
        let v = View {
            id: &s.id,
            slot: 0,
            weight: s.weight,
            connected: s.connected,
            running: s.status == Status::Running,
            stats: s.stats.as_ref(),
        };
        admit(&v, Instant::now(), &self.config.limits.at(Instant::now()))
            .map(|_| ())
            .map_err(|r| r.to_string())
    }

    /// The engines `steer` allows for a session.
    pub fn allowed(&self, steer: &select::steer::Steer) -> select::steer::Allowed {
        if steer.is_free() {
            return select::steer::Allowed::Any;
        }
        let engines = self.engines.lock();
        let candidates: Vec<select::steer::Candidate<'_>> = engines
            .iter()
            .map(|e| select::steer::Candidate {
                id: &e.id,
                slot: e.slot,
                labels: &e.labels,
            })
            .collect();
        steer.allowed(&candidates, self.config.label_fallback)
    }

    /// Picks an engine for a new session from the board (admission, then the strategy). The
    /// error says why no engine can take it.
    pub fn pick(&self) -> Result<Arc<Engine>, String> {
        self.pick_steered(&select::steer::Steer::default())
    }

    /// [`Self::pick`] among the engines `steer` allows.
    pub fn pick_steered(&self, steer: &select::steer::Steer) -> Result<Arc<Engine>, String> {
        let allowed = self.allowed(steer);
        if allowed == select::steer::Allowed::Only(Vec::new()) {
            return Err(match &steer.node {
                Some(n) => format!("media node {n} is not in the pool"),
                None => "no media engine carries the labels the session asks for".into(),
            });
        }
        let picked = self.links.board.lock().pick_among(&allowed);
        let engines = self.engines.lock();
        if let Some(e) = picked.and_then(|slot| engines.iter().find(|e| e.slot == slot)) {
            e.count(&e.picks);
            return Ok(e.clone());
        }
        if engines.is_empty() {
            return Err("no media engine is configured".into());
        }
        // The rare path: say why each engine was refused (engine state is locked after the
        // list, the order `add` uses too).
        let refused: Vec<String> = engines
            .iter()
            .filter(|e| allowed.admits(e.slot))
            .map(|e| {
                let s = e.snapshot();
                self.admitted(&s)
                    .err()
                    .unwrap_or_else(|| format!("{} was just admitted", s.id))
            })
            .collect();
        Err(format!(
            "no media engine is admitted ({})",
            refused.join("; ")
        ))
    }

    /// Just started, and some engine has not had its first connection yet: a placement that
    /// finds nothing admitted waits for it rather than refusing (see [`Self::pick_soon`]).
    pub fn warming_up(&self) -> bool {
        self.created.elapsed() < WARM_UP
            && self
                .engines
                .lock()
                .iter()
                .any(|e| e.snapshot().connection_time.is_none())
    }

    /// [`Self::pick`], waiting up to the warm-up period right after start-up for the engines'
    /// first connection (so a session created as soon as the REST API answers is placed).
    pub async fn pick_soon(&self) -> Result<Arc<Engine>, String> {
        self.pick_soon_steered(&select::steer::Steer::default())
            .await
    }

    /// [`Self::pick_soon`] among the engines `steer` allows.
    pub async fn pick_soon_steered(
        &self,
        steer: &select::steer::Steer,
    ) -> Result<Arc<Engine>, String> {
        loop {
            match self.pick_steered(steer) {
                Err(_) if self.warming_up() => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                r => return r,
            }
        }
    }

    /// The engines admitted now, with their weights (a cluster picks among them with one shared
    /// round robin), waiting out the start-up as [`Self::pick_soon`] does.
    pub async fn admitted_soon(&self, steer: &select::steer::Steer) -> Vec<(Arc<Engine>, u32)> {
        let allowed = self.allowed(steer);
        loop {
            let admitted: Vec<(Arc<Engine>, u32)> = self
                .all()
                .into_iter()
                .filter(|e| allowed.admits(e.slot))
                .filter_map(|e| {
                    let s = e.snapshot();
                    self.admitted(&s).ok().map(|_| (e, s.weight))
                })
                .collect();
            if !admitted.is_empty() || !self.warming_up() {
                return admitted;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether `e` takes `extra` more endpoints now: admitted (connected, fresh health data,
    /// under its CPU limit, not draining) and its live element count plus `extra` within
    /// `POOL_MAX_ENDPOINTS` (the count kept from the engine's events, not the last sample, so a
    /// burst of subscriptions sees the endpoints made a moment ago).
    pub fn takes_endpoints(&self, e: &Engine, extra: u64) -> bool {
        let mut s = e.snapshot();
        let Some(stats) = s.stats.as_mut() else {
            return false;
        };
        // Admission refuses at `endpoints >= limit`: one more than what is there is fine.
        stats.endpoints = (e.element_count() + extra).saturating_sub(1);
        self.admitted(&s).is_ok()
    }

    /// One of the engines in `slots`, as the strategy picks among them (the first one when the
    /// strategy's view of them is older than the caller's).
    pub fn pick_slot_among(&self, slots: Vec<usize>) -> Option<Arc<Engine>> {
        let first = slots.first().copied();
        let picked = self
            .links
            .board
            .lock()
            .pick_among(&select::steer::Allowed::Only(slots))
            .or(first)?;
        let e = self
            .engines
            .lock()
            .iter()
            .find(|e| e.slot == picked)
            .cloned()?;
        e.count(&e.picks);
        Some(e)
    }

    pub fn placement_failed(&self, e: &Engine) {
        e.count(&e.failures);
        self.links.board.lock().placement_failed(e.slot);
    }
}

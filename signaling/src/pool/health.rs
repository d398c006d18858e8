//! Per-engine health sampling: ping round trip, CPU (over most of the interval), resident
//! memory, pipeline count, stamped with the time they were read. Elements are counted from the
//! engine's object events (`engine.rs`), never by reading pipelines: reading an object makes the
//! reader's Kurento session one of its holders, and signaling must hold nothing it does not own.
//!
//! In a cluster ([`HealthShare`]) one node reads each engine and the others take its reading: the
//! engines are asked once per interval, not once per node. A node that cannot get a fresh shared
//! reading (the reader died, Redis is away) reads the engine itself.

use futures::future::BoxFuture;
use kms_client::wire::method::PingParams;
use kms_client::wire::Method;
use kms_client::KurentoClient;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::engine::Engine;
use super::select::admission::Stats;

/// A reading as the nodes of a cluster share it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SharedStats {
    /// Wall clock of the reading, Unix ms.
    pub taken_ms: u64,
    pub cpu_pct: f64,
    pub memory_kib: u64,
    pub pipelines: u64,
    pub rtt_ms: f64,
}

/// Whose turn it is to read an engine.
pub enum Turn {
    /// This node reads it (and shares the reading).
    Read,
    /// Another node does: its last reading, if any.
    Take(Option<SharedStats>),
}

/// Sharing health readings among the nodes of a cluster (`cluster/`).
pub trait HealthShare: Send + Sync {
    /// Takes or keeps the turn to read `engine` for `lease`, or gets the reader's last reading.
    fn turn<'a>(&'a self, engine: &'a str, lease: Duration) -> BoxFuture<'a, Turn>;
    fn publish<'a>(&'a self, engine: &'a str, s: SharedStats) -> BoxFuture<'a, ()>;
}

/// Readings this node took from engines, and readings it took from the node whose turn it was.
#[derive(Debug, Default)]
pub struct Readings {
    pub own: AtomicU64,
    pub shared: AtomicU64,
}

pub fn readings() -> &'static Readings {
    static R: std::sync::OnceLock<Readings> = std::sync::OnceLock::new();
    R.get_or_init(Readings::default)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The reading of another node, if it is fresh (younger than two intervals).
fn taken(s: Option<SharedStats>, interval: Duration, endpoints: u64) -> Option<Stats> {
    let s = s?;
    let age = Duration::from_millis(now_ms().saturating_sub(s.taken_ms));
    (age < 2 * interval).then(|| Stats {
        at: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        cpu_pct: s.cpu_pct,
        memory_kib: s.memory_kib,
        endpoints,
        pipelines: s.pipelines,
        rtt_ms: s.rtt_ms,
    })
}

pub async fn sample(
    engine: Weak<Engine>,
    interval: Duration,
    cancel: CancellationToken,
    share: Option<Arc<dyn HealthShare>>,
) {
    loop {
        let started = Instant::now();
        let client = engine.upgrade().and_then(|e| e.client());
        let id = engine.upgrade().map(|e| e.id.clone()).unwrap_or_default();
        if let Some(client) = client {
            let endpoints = engine.upgrade().map(|e| e.element_count()).unwrap_or(0);
            let turn = match &share {
                Some(sh) => sh.turn(&id, 3 * interval).await,
                None => Turn::Read,
            };
            let from_peer = match turn {
                Turn::Read => None,
                Turn::Take(s) => taken(s, interval, endpoints),
            };
            let stats = match from_peer {
                Some(s) => {
                    readings().shared.fetch_add(1, Ordering::Relaxed);
                    Some(s)
                }
                None => {
                    let s = tokio::select! {
                        _ = cancel.cancelled() => return,
                        s = tokio::time::timeout(interval * 4, read(&client, interval * 3 / 4, endpoints)) => s.ok().flatten(),
                    };
                    readings().own.fetch_add(1, Ordering::Relaxed);
                    if let Some(s) = &s {
                        crate::metrics::latencies().engine(&id, s.rtt_ms / 1000.0);
                    }
                    if let (Some(sh), Some(s)) = (&share, &s) {
                        let shared = SharedStats {
                            taken_ms: now_ms(),
                            cpu_pct: s.cpu_pct,
                            memory_kib: s.memory_kib,
                            pipelines: s.pipelines,
                            rtt_ms: s.rtt_ms,
                        };
                        sh.publish(&id, shared).await;
                    }
                    s
                }
            };
            match (stats, engine.upgrade()) {
                (Some(s), Some(e)) => e.set_stats(s),
                (_, None) => return,
                (None, Some(_)) => {} // stale stats make the engine not admitted
            }
        }
        let next = started + interval;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next.into()) => {}
        }
    }
}

/// One health reading, CPU measured over `cpu_window`.
pub async fn read(client: &KurentoClient, cpu_window: Duration, endpoints: u64) -> Option<Stats> {
    let t0 = Instant::now();
    client
        .call(Method::Ping(PingParams::default()))
        .await
        .ok()?;
    let rtt_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let sm = client.server_manager();
    let (cpu, mem, pipelines) = futures::join!(
        sm.get_used_cpu(cpu_window.as_millis() as u64),
        sm.get_used_memory(),
        sm.get_pipelines()
    );
    Some(Stats {
        at: Instant::now(),
        cpu_pct: cpu.ok()?,
        memory_kib: mem.ok()?,
        endpoints,
        pipelines: pipelines.ok()?.len() as u64,
        rtt_ms,
    })
}

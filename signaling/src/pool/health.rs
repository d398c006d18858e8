//! Per-engine health sampling: ping round trip, CPU (over most of the interval), resident
//! memory, pipeline count, stamped with the time they were read. Elements are counted from the
//! engine's object events (`engine.rs`), never by reading pipelines: reading an object makes the
//! reader's Kurento session one of its holders, and signaling must hold nothing it does not own.

use kms_client::wire::method::PingParams;
use kms_client::wire::Method;
use kms_client::KurentoClient;
use std::sync::Weak;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use super::engine::Engine;
use super::select::admission::Stats;

pub async fn sample(engine: Weak<Engine>, interval: Duration, cancel: CancellationToken) {
    loop {
        let started = Instant::now();
        let client = engine.upgrade().and_then(|e| e.client());
        if let Some(client) = client {
            let endpoints = engine.upgrade().map(|e| e.element_count()).unwrap_or(0);
            let stats = tokio::select! {
                _ = cancel.cancelled() => return,
                s = tokio::time::timeout(interval * 4, read(&client, interval * 3 / 4, endpoints)) => s.ok().flatten(),
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

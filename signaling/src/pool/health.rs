//! Per-engine health sampling: ping round trip, CPU (over most of the interval), resident
//! memory, and pipeline/endpoint counts, stamped with the time they were read.

use kms_client::wire::method::PingParams;
use kms_client::wire::Method;
use kms_client::MediaPipeline;
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
            let cpu_window = interval * 3 / 4;
            let read = async {
                let t0 = Instant::now();
                client
                    .call(Method::Ping(PingParams::default()))
                    .await
                    .ok()?;
                let rtt_ms = t0.elapsed().as_secs_f64() * 1000.0;
                let sm = client.server_manager();
                let counts =
                    async {
                        let pipelines = sm.get_pipelines().await.ok()?;
                        let children =
                            futures::future::join_all(pipelines.iter().map(|p| {
                                let mp = MediaPipeline::from_id(client.clone(), p.clone());
                                async move {
                                    mp.get_children().await.map(|c| c.len() as u64).unwrap_or(0)
                                }
                            }))
                            .await;
                        Some((pipelines.len() as u64, children.iter().sum::<u64>()))
                    };
                let (cpu, mem, counts) = futures::join!(
                    sm.get_used_cpu(cpu_window.as_millis() as u64),
                    sm.get_used_memory(),
                    counts
                );
                let (pipelines, endpoints) = counts?;
                Some(Stats {
                    at: Instant::now(),
                    cpu_pct: cpu.ok()?,
                    memory_kib: mem.ok()?,
                    endpoints,
                    pipelines,
                    rtt_ms,
                })
            };
            let stats = tokio::select! {
                _ = cancel.cancelled() => return,
                s = tokio::time::timeout(interval * 4, read) => s.ok().flatten(),
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

//! The hygiene soak: rounds of churn (everyone joins, publishes, subscribes to everyone, leaves)
//! for a given time, then every engine must hold zero pipelines and elements, its open-file
//! count must be back to the baseline and its RSS within 10 % of it.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{rest, run, Config, Progress};
use crate::harness::http_request;

/// Each engine's `/health` (its WebSocket address serves it too; a local engine's secret is read
/// from its environment).
async fn engine_health(c: &Config) -> anyhow::Result<Vec<(String, Value)>> {
    let (_, nodes) = rest(c, "GET", "/openvidu/api/media-nodes", None).await?;
    let mut out = Vec::new();
    for n in nodes["content"].as_array().cloned().unwrap_or_default() {
        let uri = n["uri"].as_str().unwrap_or_default();
        let host = uri
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or_default();
        let addr: SocketAddr = host.parse()?;
        let secret =
            super::procstat::engine_pid(addr.port()).and_then(super::procstat::engine_secret);
        let auth = secret.as_deref().map(|s| ("rtcpool", s));
        let (_, h) = http_request(addr, "GET", "/health", None, auth).await?;
        out.push((uri.to_string(), h));
    }
    Ok(out)
}

async fn settle(c: &Config) -> anyhow::Result<Vec<(String, Value)>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = engine_health(c).await?;
        let idle = h
            .iter()
            .all(|(_, x)| x["pipelines"] == 0 && x["elements"] == 0 && x["peerConnections"] == 0);
        if idle || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return engine_health(c).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn soak(c: Config, minutes: f64) -> anyhow::Result<Value> {
    // Warm-up rounds bring every engine to its working set (sessions alternate between engines,
    // so one round would leave some engine below the high-water mark the allocator keeps).
    for w in 0..3 {
        let mut round = c.clone();
        round.prefix = format!("{}-warm{w}", c.prefix);
        run(round, Arc::new(Progress::default())).await?;
    }
    let base = settle(&c).await?;
    let started = Instant::now();
    let mut rounds = 0u64;
    let (mut participants, mut packets, mut errors) = (0u64, 0u64, 0u64);
    while started.elapsed() < Duration::from_secs_f64(minutes * 60.0) {
        let mut r = c.clone();
        r.prefix = format!("{}-{rounds}", c.prefix);
        let report = run(r, Arc::new(Progress::default())).await?;
        rounds += 1;
        participants += report["participants"].as_u64().unwrap_or(0);
        packets += report["packets_received"].as_u64().unwrap_or(0);
        errors += report["errors"].as_u64().unwrap_or(0);
        eprintln!(
            "[soak {:>5.1} min] round {rounds}: {} participants, {} packets, {} errors",
            started.elapsed().as_secs_f64() / 60.0,
            report["participants"],
            report["packets_received"],
            report["errors"]
        );
    }
    let end = settle(&c).await?;
    let mut engines = Vec::new();
    let mut clean = true;
    for ((uri, b), (_, e)) in base.iter().zip(end.iter()) {
        let (f0, f1) = (
            b["openFds"].as_u64().unwrap_or(0),
            e["openFds"].as_u64().unwrap_or(0),
        );
        let (r0, r1) = (
            b["rssKib"].as_f64().unwrap_or(0.0),
            e["rssKib"].as_f64().unwrap_or(0.0),
        );
        let rss_change = if r0 > 0.0 {
            (r1 - r0) * 100.0 / r0
        } else {
            0.0
        };
        let ok = e["pipelines"] == 0
            && e["elements"] == 0
            && e["peerConnections"] == 0
            && e["mediaTasks"] == 0
            && e["taps"] == 0
            && f1 <= f0
            && rss_change <= 10.0;
        clean &= ok;
        engines.push(json!({
            "uri": uri, "pipelines": e["pipelines"], "elements": e["elements"], "peer_connections": e["peerConnections"],
            "media_tasks": e["mediaTasks"], "taps": e["taps"], "open_fds_before": f0, "open_fds_after": f1,
            "rss_mb_before": (r0 / 1024.0).round(), "rss_mb_after": (r1 / 1024.0).round(), "rss_change_pct": (rss_change * 10.0).round() / 10.0, "clean": ok,
        }));
    }
    Ok(json!({
        "soak_minutes": minutes, "rounds": rounds, "participants": participants, "packets_received": packets, "errors": errors,
        "engines": engines, "clean": clean,
    }))
}

//! Real process figures for ServerManager and `/health`: CPU time, resident memory and open
//! descriptors of this process (`rtcpool_config::process`, on procfs).

use std::time::{Duration, Instant};

/// CPU seconds this process has used (user + system).
pub fn process_cpu_seconds() -> f64 {
    rtcpool_config::process::cpu_and_rss(None).map_or(0.0, |(cpu, _)| cpu)
}

/// Resident set size in KiB (what KMS's getUsedMemory reports).
pub fn rss_kib() -> u64 {
    rtcpool_config::process::cpu_and_rss(None).map_or(0, |(_, rss)| rss / 1024)
}

pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Average CPU use of this process over `interval`, as a percentage of all cores (0–100).
pub async fn used_cpu(interval: Duration) -> f64 {
    let (c0, t0) = (process_cpu_seconds(), Instant::now());
    tokio::time::sleep(interval).await;
    let (c1, t1) = (process_cpu_seconds(), Instant::now());
    let wall = t1.duration_since(t0).as_secs_f64().max(1e-3);
    ((c1 - c0) / wall / cpu_count() as f64 * 100.0).clamp(0.0, 100.0)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    rtcpool_config::process::open_fds(None)
}

//! Real process figures for ServerManager: CPU time and resident memory from `/proc/self`.

use std::time::{Duration, Instant};

/// CPU seconds this process has used (user + system).
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is parenthesised and may contain spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident set size in KiB (what KMS's getUsedMemory reports).
pub fn rss_kib() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

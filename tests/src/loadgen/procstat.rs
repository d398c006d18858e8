//! Process figures (CPU seconds, resident memory, descriptors: `rtcpool_config::process`, on
//! procfs), and finding the engine and signaling processes of a running system.

use std::fs;

/// (CPU seconds used, RSS in bytes) of `pid`.
pub fn sample(pid: u32) -> Option<(f64, u64)> {
    rtcpool_config::process::cpu_and_rss(Some(pid as i32))
}

pub fn open_fds(pid: u32) -> usize {
    rtcpool_config::process::open_fds(Some(pid as i32))
}

fn cmdline(pid: u32) -> Vec<String> {
    fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .map(|s| {
            s.split('\0')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The media-engine process listening on `port` (by its `--listen` argument) in this network
/// namespace (tests run other engines on the same port inside their own namespaces).
pub fn engine_pid(port: u16) -> Option<u32> {
    let listen = format!("127.0.0.1:{port}");
    let here = fs::read_link("/proc/self/ns/net").ok();
    pids().into_iter().find(|p| {
        if fs::read_link(format!("/proc/{p}/ns/net")).ok() != here {
            return false;
        }
        let c = cmdline(*p);
        c.first().is_some_and(|a| a.ends_with("media-engine")) && c.contains(&listen)
    })
}

/// The running `signaling` processes in this network namespace (the nodes of a cluster).
pub fn signaling_pids() -> Vec<u32> {
    let here = fs::read_link("/proc/self/ns/net").ok();
    let mut found: Vec<u32> = pids()
        .into_iter()
        .filter(|p| fs::read_link(format!("/proc/{p}/ns/net")).ok() == here)
        .filter(|p| {
            cmdline(*p)
                .first()
                .is_some_and(|a| a.ends_with("/signaling") || a == "signaling")
        })
        .collect();
    found.sort_unstable();
    found
}

/// The secret a local engine was started with (signaling passes it in the engine's environment,
/// which only the same user can read). `None` for an engine without one.
pub fn engine_secret(pid: u32) -> Option<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .ok()?
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"RTCPOOL_ENGINE_SECRET="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

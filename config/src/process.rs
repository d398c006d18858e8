//! What both binaries do around their `run`: settings or a one-line exit, tracing to stderr, and
//! the shutdown signals. Errors at start-up end the process with `bin: why` and status 2, never a
//! backtrace (whatever `RUST_BACKTRACE` says).

use std::fmt::Display;
use tokio_util::sync::CancellationToken;

/// The value, or `bin: [what: ]error` on stderr and exit status 2.
pub fn or_exit<T, E: Display>(bin: &str, what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            if what.is_empty() {
                eprintln!("{bin}: {e}");
            } else {
                eprintln!("{bin}: {what}: {e}");
            }
            std::process::exit(2);
        }
    }
}

/// Logs to stderr with `filter` (an `EnvFilter` directive such as `info,rtc=error`).
pub fn init_tracing(filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}

/// A token cancelled by the first SIGINT or SIGTERM (graceful shutdown; `note` logged unless
/// empty); a second signal exits at once with status 130.
pub fn shutdown_on_signals(note: &'static str) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        if !note.is_empty() {
            tracing::info!("{note}");
        }
        token.cancel();
        wait_for_signal().await;
        std::process::exit(130);
    });
    shutdown
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = ctrl_c.await;
        return;
    };
    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
}

/// CPU seconds (user + system) and resident bytes of process `pid` (this process when `None`),
/// read through `procfs` (with the kernel's real clock-tick rate and page size).
pub fn cpu_and_rss(pid: Option<i32>) -> Option<(f64, u64)> {
    let p = match pid {
        Some(pid) => procfs::process::Process::new(pid),
        None => procfs::process::Process::myself(),
    }
    .ok()?;
    let stat = p.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let cpu = (stat.utime + stat.stime) as f64 / ticks.max(1.0);
    Some((cpu, stat.rss * procfs::page_size()))
}

/// Open file descriptors of process `pid` (this process when `None`).
pub fn open_fds(pid: Option<i32>) -> usize {
    let p = match pid {
        Some(pid) => procfs::process::Process::new(pid),
        None => procfs::process::Process::myself(),
    };
    p.ok().and_then(|p| p.fd_count().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_memory_and_descriptors() {
        let busy = std::time::Instant::now();
        while busy.elapsed() < std::time::Duration::from_millis(30) {}
        let Some((cpu, rss)) = cpu_and_rss(None) else {
            panic!("no /proc/self")
        };
        assert!(cpu > 0.0 && rss > 1 << 20, "{cpu} s, {rss} bytes");
        let me = std::process::id() as i32;
        assert!(cpu_and_rss(Some(me)).is_some_and(|(c, _)| c >= cpu));
        assert!(open_fds(None) >= 3 && open_fds(Some(me)) >= 3);
        assert!(cpu_and_rss(Some(i32::MAX)).is_none());
    }
}

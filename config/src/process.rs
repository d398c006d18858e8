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

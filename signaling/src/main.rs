//! `signaling`: load configuration (OpenVidu's variable names), start local engines when
//! `KMS_URIS` is unset, serve until SIGINT/SIGTERM.

use clap::Parser;
use rtcpool_config::{Env, SignalingSettings, SIGNALING_ENV_KEYS};
use serde::Serialize;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// OpenVidu-compatible signaling server for a pool of media engines.
#[derive(Parser, Serialize)]
#[command(version, about)]
struct Flags {
    /// TOML configuration file (see signaling.sample.toml).
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// HTTP/WS port (SERVER_PORT).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    server_port: Option<u16>,
    /// Directory of the browser client and pages (STATIC_DIR).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    static_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let settings: SignalingSettings = match rtcpool_config::load_with(
        flags.config.as_deref(),
        Env::raw().only(SIGNALING_ENV_KEYS),
        &flags,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("signaling: {e}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&settings.rtcpool_log))
        .with_writer(std::io::stderr)
        .init();
    let addr = std::net::SocketAddr::new(settings.server_address, settings.server_port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("signaling: cannot listen on {addr}: {e}");
            std::process::exit(2);
        }
    };
    // Bound before local engines start, so a busy port leaves no engine processes behind.
    let (engines, local) = match settings.engine_list() {
        Some(list) => (list, None),
        None => {
            let bin = settings
                .engine_binary
                .clone()
                .unwrap_or_else(signaling::local_engines::default_binary);
            let local = signaling::local_engines::LocalEngines::start(
                settings.local_engines,
                &bin,
                "127.0.0.1",
                settings.local_engines_secret.as_deref(),
            )
            .await
            .unwrap_or_else(|e| {
                eprintln!("signaling: cannot start local media engines: {e}");
                std::process::exit(2);
            });
            let shown: Vec<String> = local
                .uris
                .iter()
                .map(|u| kms_client::uri::redact(u))
                .collect();
            tracing::info!(engines = ?shown, "KMS_URIS unset: started local media engines");
            (
                local
                    .uris
                    .iter()
                    .map(|u| (u.clone(), 1, Default::default()))
                    .collect(),
                Some(local),
            )
        }
    };
    tracing::info!(%addr, public = %settings.public_ws_url(), "signaling listening: demo at http://{addr}/");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
        wait_for_signal().await;
        std::process::exit(130);
    });
    let served = signaling::run(listener, settings, engines, shutdown).await;
    if let Some(l) = local {
        l.stop().await;
    }
    if let Err(e) = served {
        eprintln!("signaling: serving on {addr}: {e}");
        std::process::exit(1);
    }
    Ok(())
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

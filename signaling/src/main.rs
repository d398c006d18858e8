//! `signaling`: load configuration (OpenVidu's variable names), start local engines when
//! `KMS_URIS` is unset, serve until SIGINT/SIGTERM.

use clap::Parser;
use rtcpool_config::process::{init_tracing, or_exit, shutdown_on_signals};
use rtcpool_config::{Env, SignalingSettings, SIGNALING_ENV_KEYS};
use serde::Serialize;
use std::path::PathBuf;

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
async fn main() {
    let flags = Flags::parse();
    let settings: SignalingSettings = or_exit(
        "signaling",
        "",
        rtcpool_config::load_with(
            flags.config.as_deref(),
            Env::raw().only(SIGNALING_ENV_KEYS),
            &flags,
        ),
    );
    init_tracing(&settings.rtcpool_log);
    let addr = std::net::SocketAddr::new(settings.server_address, settings.server_port);
    let listener = or_exit(
        "signaling",
        &format!("cannot listen on {addr}"),
        tokio::net::TcpListener::bind(addr).await,
    );
    // Bound before local engines start, so a busy port leaves no engine processes behind.
    let (engines, local) = match settings.engine_list() {
        Some(list) => (list, None),
        None => {
            let bin = settings
                .engine_binary
                .clone()
                .unwrap_or_else(signaling::local_engines::default_binary);
            let local = or_exit(
                "signaling",
                "cannot start local media engines",
                signaling::local_engines::LocalEngines::start(
                    settings.local_engines,
                    &bin,
                    "127.0.0.1",
                    settings.local_engines_secret.as_deref(),
                )
                .await,
            );
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
    let shutdown = shutdown_on_signals("");
    let served = signaling::run(listener, settings, engines, shutdown).await;
    if let Some(l) = local {
        l.stop().await;
    }
    if let Err(e) = served {
        eprintln!("signaling: serving on {addr}: {e}");
        std::process::exit(1);
    }
}

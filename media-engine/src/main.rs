//! `media-engine --listen 127.0.0.1:8888 --rtc-ip 127.0.0.1`: load configuration, set up
//! tracing, bind, run until SIGINT/SIGTERM.

use clap::Parser;

/// mimalloc instead of glibc's allocator: the packet path allocates and frees a few buffers per
/// packet on several threads; glibc's per-thread arenas kept fragmented memory resident.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use rtcpool_config::process::{init_tracing, or_exit, shutdown_on_signals};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Kurento-compatible media engine (ws://LISTEN/kurento).
#[derive(Parser, Serialize)]
#[command(version, about)]
struct Flags {
    /// TOML configuration file (see media-engine.sample.toml).
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// WebSocket address; the endpoint is ws://LISTEN/kurento.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Address WebRTC UDP sockets bind and advertise.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rtc_ip: Option<IpAddr>,
    /// Address to advertise instead of --rtc-ip (NAT 1:1).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_ip: Option<IpAddr>,
    /// Media worker threads (0: one per core).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    /// UDP port of the first media worker (worker i uses UDP_PORT + i; 0: OS-chosen).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    udp_port: Option<u16>,
    /// Seconds a disconnected session's objects are kept.
    #[arg(long)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "session_timeout_secs"
    )]
    session_timeout: Option<u64>,
    /// Secret clients must present (HTTP Basic password). Prefer `secret` in the config file or
    /// RTCPOOL_ENGINE_SECRET: flags are visible in the process list.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Accept clients without a secret on a non-loopback --listen address.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure: bool,
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    let settings: rtcpool_config::EngineSettings = or_exit(
        "media-engine",
        "",
        rtcpool_config::load(flags.config.as_deref(), "RTCPOOL_ENGINE_", &flags),
    );
    init_tracing(&settings.log);
    let listener = or_exit(
        "media-engine",
        &format!("cannot listen on {}", settings.listen),
        tokio::net::TcpListener::bind(settings.listen).await,
    );
    tracing::info!(addr = %settings.listen, rtc_ip = %settings.rtc_ip, secret = settings.secret.is_some(), "media-engine listening on /kurento");
    let shutdown = shutdown_on_signals("shutting down: releasing every object");
    if let Err(e) = media_engine::run(listener, settings, shutdown).await {
        eprintln!("media-engine: {e}");
        std::process::exit(1);
    }
}

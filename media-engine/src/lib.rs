//! rtcpool media engine: a Kurento-protocol JSON-RPC server at `/kurento` with an SFU built on
//! webrtc-rs. See `README.md` for the concept → file map.

pub mod core;
pub mod engine;
pub mod error;
pub mod media;
pub mod metrics;
pub mod ops;
pub mod rpc;
pub mod server;
pub mod sysinfo;

use axum_server::accept::DefaultAcceptor;
use rtcpool_config::listen::{limit_slow_clients, SlowClientAcceptor};
use rtcpool_config::EngineSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use engine::Engine;
pub use error::Error;

/// Serves the engine on `listener` until `shutdown` is cancelled, then closes every socket and
/// releases every object.
pub async fn run(
    listener: TcpListener,
    settings: EngineSettings,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let factory = media::factory::PcFactory::new(
        settings.rtc_ip,
        settings.public_ip,
        settings.srtp_gcm_only,
        settings.direct_send,
        settings.direct_legs,
    )?;
    let cancel = shutdown.child_token();
    let workers = media::worker::Workers::start(
        factory,
        settings.worker_count(),
        settings.udp_port,
        media::worker::IoSettings {
            gso: settings.udp_gso,
        },
        &cancel,
    )?;
    let engine = Engine::new(settings, workers, cancel);
    let app = server::router(engine.clone());
    let header_timeout = std::time::Duration::from_secs(engine.settings.http_header_timeout_secs);
    let handle = axum_server::Handle::new();
    let stop = (shutdown.clone(), handle.clone());
    tokio::spawn(async move {
        stop.0.cancelled().await;
        stop.1
            .graceful_shutdown(Some(std::time::Duration::from_secs(2)));
    });
    // Requests and answers are small frames sent back to back: with Nagle's algorithm on, each
    // one after the first waited for the peer's delayed ACK (~40 ms per endpoint creation).
    // Slow clients (headers dribbled in, or never sent) are cut instead of holding a socket.
    let accept = SlowClientAcceptor::new(DefaultAcceptor::new(), header_timeout);
    let mut server = axum_server::from_tcp(listener.into_std()?)?
        .acceptor(accept)
        .handle(handle);
    limit_slow_clients(server.http_builder(), header_timeout);
    server.serve(app.into_make_service()).await?;
    engine.cancel.cancel();
    engine.release_all().await;
    Ok(())
}

/// Starts the engine in this process on `127.0.0.1:0` (tests and benchmarks); returns its
/// address and the token that stops it.
pub async fn spawn_local(
    settings: EngineSettings,
) -> Result<
    (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<Result<(), Error>>,
    ),
    Error,
> {
    let listener = TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let token = CancellationToken::new();
    let handle = tokio::spawn(run(listener, settings, token.clone()));
    Ok((addr, token, handle))
}

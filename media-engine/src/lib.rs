//! rtcpool media engine: a Kurento-protocol JSON-RPC server at `/kurento` with an SFU built on
//! webrtc-rs. See `README.md` for the concept → file map.

pub mod core;
pub mod engine;
pub mod media;
pub mod ops;
pub mod rpc;
pub mod server;
pub mod sysinfo;

use rtcpool_config::EngineSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use engine::Engine;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("media: {0}")]
    Media(#[from] media::factory::FactoryError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the engine on `listener` until `shutdown` is cancelled, then closes every socket and
/// releases every object.
pub async fn run(
    listener: TcpListener,
    settings: EngineSettings,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let factory =
        media::factory::PcFactory::new(settings.rtc_ip, settings.public_ip, settings.udp_ports)?;
    let engine = Engine::new(settings, factory, shutdown.child_token());
    let app = server::router(engine.clone());
    let stop = shutdown.clone();
    // Requests and answers are small frames sent back to back: with Nagle's algorithm on, each
    // one after the first waited for the peer's delayed ACK (~40 ms per endpoint creation).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%e, "TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
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
        tokio::task::JoinHandle<Result<(), RunError>>,
    ),
    RunError,
> {
    let listener = TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let token = CancellationToken::new();
    let handle = tokio::spawn(run(listener, settings, token.clone()));
    Ok((addr, token, handle))
}

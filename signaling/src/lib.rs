//! rtcpool signaling: an OpenVidu 2.32-compatible server (REST + browser WebSocket) placing each
//! session's media on one engine of a pool through kms-client. See `README.md` for the concept
//! → file map.

pub mod app;
pub mod demo;
pub mod ids;
pub mod local_engines;
pub mod media;
pub mod model;
pub mod pool;
pub mod rest;
pub mod rpc;
pub mod server;

use rtcpool_config::SignalingSettings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use app::App;

/// Serves signaling on `listener` with the engines `engines` (uri, weight) until `shutdown`;
/// then tells every participant (`participantEvicted`, `openviduServerStopped`), releases every
/// engine object, and returns.
pub async fn run(
    listener: TcpListener,
    settings: SignalingSettings,
    engines: Vec<(String, u32)>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let inner = CancellationToken::new();
    let pool = pool::EnginePool::new(
        &engines,
        Box::new(pool::FirstConnected),
        inner.child_token(),
    );
    let app = App::new(settings, pool, inner.clone());
    let router = server::router(app.clone());
    let drain = {
        let app = app.clone();
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: evicting participants and releasing engine objects");
            app.close_all("openviduServerStopped").await;
            // Let the socket writers flush the evictions before the sockets close.
            tokio::time::sleep(Duration::from_millis(200)).await;
            inner.cancel();
        }
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(drain)
    .await
}

/// For tests: the app with its router, without binding.
pub fn app_for_tests(
    settings: SignalingSettings,
    engines: Vec<(String, u32)>,
) -> (Arc<App>, axum::Router) {
    let inner = CancellationToken::new();
    let pool = pool::EnginePool::new(
        &engines,
        Box::new(pool::FirstConnected),
        inner.child_token(),
    );
    let app = App::new(settings, pool, inner);
    let router = server::router(app.clone());
    (app, router)
}

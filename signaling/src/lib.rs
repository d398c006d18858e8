//! rtcpool signaling: an OpenVidu 2.32-compatible server (REST + browser WebSocket) placing each
//! session's media on one engine of a pool through kms-client. See `README.md` for the concept
//! → file map.

pub mod app;
pub mod demo;
pub mod ids;
pub mod local_engines;
pub mod media;
pub mod metrics;
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

/// Serves signaling on `listener` with the engines `engines` until `shutdown`; then tells every
/// participant (`participantEvicted`, `openviduServerStopped`), releases every engine object, and
/// returns. HTTPS/WSS when the settings name a certificate.
pub async fn run(
    listener: TcpListener,
    settings: SignalingSettings,
    engines: pool::EngineList,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let inner = CancellationToken::new();
    let (pool, lost) = new_pool(&settings, &engines, &inner);
    let tls = match (&settings.certificate_path, &settings.private_key_path) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let app = App::new(settings, pool, lost, inner.clone());
    let service = server::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let drained = CancellationToken::new();
    let drain = {
        let (app, drained) = (app.clone(), drained.clone());
        async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: evicting participants and releasing engine objects");
            app.close_all("openviduServerStopped").await;
            // Let the socket writers flush the evictions before the sockets close.
            tokio::time::sleep(Duration::from_millis(200)).await;
            inner.cancel();
            drained.cancel();
        }
    };
    let Some((cert, key)) = tls else {
        // Small JSON-RPC frames back to back: no Nagle delay (axum-server sets it for TLS).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%e, "TCP_NODELAY");
            }
        });
        return axum::serve(listener, service)
            .with_graceful_shutdown(drain)
            .await;
    };
    // HTTPS/WSS with rustls (ring provider: no C toolchain needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let handle = axum_server::Handle::new();
    tokio::spawn(drain);
    let h = handle.clone();
    tokio::spawn(async move {
        drained.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle)
        .serve(service)
        .await
}

/// For tests: the app with its router, without binding.
pub fn app_for_tests(
    settings: SignalingSettings,
    engines: pool::EngineList,
) -> (Arc<App>, axum::Router) {
    let inner = CancellationToken::new();
    let (pool, lost) = new_pool(&settings, &engines, &inner);
    let app = App::new(settings, pool, lost, inner);
    let router = server::router(app.clone());
    (app, router)
}

fn new_pool(
    settings: &SignalingSettings,
    engines: &pool::EngineList,
    cancel: &CancellationToken,
) -> (
    Arc<pool::EnginePool>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let strategy = pool::select::strategy(settings.pool_strategy, settings.pool_max_fails);
    pool::EnginePool::new(
        engines,
        strategy,
        pool::PoolConfig::from_settings(settings),
        cancel.child_token(),
    )
}

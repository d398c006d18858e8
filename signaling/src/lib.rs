//! rtcpool signaling: an OpenVidu 2.32-compatible server (REST + browser WebSocket) placing each
//! session's media on one engine of a pool through kms-client. See `README.md` for the concept
//! → file map.

pub mod app;
pub mod cluster;
pub mod core;
pub mod demo;
pub mod error;
pub mod ids;
pub mod leaving;
pub mod limits;
pub mod local_engines;
pub mod media;
pub mod metrics;
pub mod model;
pub mod owner;
pub mod ownership;
pub mod placement;
pub mod pool;
pub mod rest;
pub mod rpc;
pub mod server;
pub mod webhook;

use axum_server::accept::DefaultAcceptor;
use rtcpool_config::listen::{limit_slow_clients, SlowClientAcceptor};
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
    let tls = match (&settings.certificate_path, &settings.private_key_path) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let header_timeout = Duration::from_secs(settings.http_header_timeout_secs);
    // The port actually bound (the settings may say 0).
    let node_url = settings.node_url_on(listener.local_addr()?.port());
    let cluster = cluster::Cluster::new(
        ids::instance_id(),
        node_url,
        settings.redis(),
        Duration::from_millis(settings.cluster_node_ttl_ms),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let (pool, lost) = new_pool(&settings, &engines, &inner, cluster.health_share());
    let app = App::new(settings, pool, lost, inner.clone(), cluster);
    let service = server::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let drained = CancellationToken::new();
    let drain = {
        let (app, drained) = (app.clone(), drained.clone());
        async move {
            shutdown.cancelled().await;
            let handed_over = app.cluster.can_hand_over() && app.hand_over().await.is_ok();
            if !handed_over {
                tracing::info!("shutting down: evicting participants and releasing engine objects");
                app.close_all("openviduServerStopped").await;
                app.cluster.leave().await;
            }
            // Let the socket writers flush the evictions before the sockets close.
            tokio::time::sleep(Duration::from_millis(200)).await;
            inner.cancel();
            drained.cancel();
        }
    };
    tokio::spawn(drain);
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        drained.cancelled().await;
        h.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    // No Nagle delay; clients that send nothing, or headers too slowly, are cut.
    let accept = SlowClientAcceptor::new(DefaultAcceptor::new(), header_timeout);
    let plain = axum_server::from_tcp(listener.into_std()?)?;
    let Some((cert, key)) = tls else {
        let mut server = plain.acceptor(accept).handle(handle);
        limit_slow_clients(server.http_builder(), header_timeout);
        return server.serve(service).await;
    };
    // HTTPS/WSS with rustls (ring provider: no C toolchain needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config).acceptor(accept);
    let mut server = plain.acceptor(acceptor).handle(handle);
    limit_slow_clients(server.http_builder(), header_timeout);
    server.serve(service).await
}

/// For tests: the app with its router, without binding.
pub fn app_for_tests(
    settings: SignalingSettings,
    engines: pool::EngineList,
) -> (Arc<App>, axum::Router) {
    let inner = CancellationToken::new();
    let (node, url) = (ids::instance_id(), settings.node_url());
    let ttl = Duration::from_millis(settings.cluster_node_ttl_ms);
    let cluster = cluster::Cluster::new(node.clone(), url.clone(), settings.redis(), ttl)
        .unwrap_or_else(|_| cluster::Cluster::single(node, url));
    let (pool, lost) = new_pool(&settings, &engines, &inner, cluster.health_share());
    let app = App::new(settings, pool, lost, inner, cluster);
    let router = server::router(app.clone());
    (app, router)
}

fn new_pool(
    settings: &SignalingSettings,
    engines: &pool::EngineList,
    cancel: &CancellationToken,
    health_share: Option<Arc<dyn pool::health::HealthShare>>,
) -> (
    Arc<pool::EnginePool>,
    tokio::sync::mpsc::Receiver<pool::PoolEvent>,
) {
    let strategy = pool::select::strategy(settings.pool_strategy, settings.pool_max_fails);
    pool::EnginePool::new(
        engines,
        strategy,
        pool::PoolConfig::from_settings(settings),
        cancel.child_token(),
        health_share,
    )
}

//! The HTTP surface: REST under `/openvidu/api`, the browser WebSocket at `/openvidu` (query
//! parameters ignored), `/health`, and the static client, demo and dashboard at `/`.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    let static_dir = app.settings.static_dir.clone();
    Router::new()
        .route("/openvidu", get(ws))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/demo/token", axum::routing::post(crate::demo::token))
        .with_state(app.clone())
        .merge(crate::rest::router(app))
        .fallback_service(ServeDir::new(static_dir))
        .layer(CorsLayer::permissive())
}

async fn ws(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    up: WebSocketUpgrade,
) -> impl IntoResponse {
    let ip = crate::rest::headers_ip(&headers).unwrap_or_else(|| peer.ip().to_string());
    // tungstenite reserves 128 KiB per socket for reading by default: 640 MB for 5,000
    // participants. Signaling frames are small, so 8 KiB chunks (messages still grow as needed).
    up.read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(1 << 20)
        .on_upgrade(move |socket| crate::rpc::socket::serve(app, socket, ip))
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(&app),
    )
}

async fn health(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let engines: Vec<serde_json::Value> = app
        .pool
        .all()
        .iter()
        .map(|e| {
            let s = e.snapshot();
            json!({"id": s.id, "uri": s.uri, "connected": s.connected, "admitted": app.pool.admitted(&s).is_ok(), "sessions": s.sessions.len()})
        })
        .collect();
    let reg = app.reg.lock();
    Json(json!({
        "status": "ok",
        "sessions": reg.sessions.len(),
        "participants": reg.participants.len(),
        "wsConnections": app.metrics.ws_connections.load(Ordering::Relaxed),
        "engines": engines,
    }))
}

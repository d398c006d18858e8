//! The WebSocket transport: `/kurento` (query string ignored), one JSON-RPC object per text
//! frame, requests of one socket handled in order, responses and events written by one writer
//! task per socket through a queue bounded in bytes. `/health` reports object and media counts
//! for operators and tests, `/metrics` the same for Prometheus (`metrics.rs`). With a secret
//! configured, all three answer 401 to anyone without it.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use kms_client::outbox::{is_message_too_big, outbox};
use kms_client::wire::envelope::FrameError;
use kms_client::wire::{ErrorCode, Frame, Response as RpcResponse, RpcError};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::media::COUNTERS;
use crate::rpc::{dispatch, Conn};

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/kurento", get(upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            require_secret,
        ))
        .with_state(engine)
}

/// HTTP Basic credentials whose password is the engine's secret (the user name is ignored, so
/// `ws://anything:SECRET@host/kurento` works from any client that sends URI user-info).
async fn require_secret(State(engine): State<Arc<Engine>>, req: Request, next: Next) -> Response {
    let Some(secret) = engine.settings.secret.as_deref() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_password);
    if given.is_some_and(|p| rtcpool_config::secret::matches(p.as_bytes(), secret.as_bytes())) {
        return next.run(req).await;
    }
    engine.sockets_stats.refused.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"media-engine\"")],
        "Unauthorized\n",
    )
        .into_response()
}

/// The password of an `Authorization: Basic …` header.
fn basic_password(header: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, b64) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

async fn upgrade(State(engine): State<Arc<Engine>>, ws: WebSocketUpgrade) -> impl IntoResponse {
    let max = engine.settings.max_message_size;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(engine, socket))
}

async fn metrics(State(engine): State<Arc<Engine>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&engine),
    )
        .into_response()
}

async fn health(State(engine): State<Arc<Engine>>) -> Json<Value> {
    let st = engine.state.lock();
    Json(json!({
        "status": "ok",
        "serverId": engine.server_id,
        "pipelines": st.objects.pipeline_count(),
        "elements": st.objects.element_count(),
        "sessions": st.sessions.ids().len(),
        "subscriptions": st.sessions.subscription_count(),
        "sockets": st.sockets.len(),
        "peerConnections": COUNTERS.peer_connections.load(Ordering::Relaxed),
        "mediaTasks": COUNTERS.media_tasks.load(Ordering::Relaxed),
        "taps": COUNTERS.taps.load(Ordering::Relaxed),
        "rtpIn": COUNTERS.rtp_in.load(Ordering::Relaxed),
        "rtpOut": COUNTERS.rtp_out.load(Ordering::Relaxed),
        "plisSent": COUNTERS.plis_sent.load(Ordering::Relaxed),
        "keyframeRequestsIn": COUNTERS.keyframe_requests_in.load(Ordering::Relaxed),
        "srtpProfiles": {
            "aeadAesGcm": COUNTERS.srtp_gcm.load(Ordering::Relaxed),
            "other": COUNTERS.srtp_other.load(Ordering::Relaxed),
        },
        "directLegs": COUNTERS.direct_legs.load(Ordering::Relaxed),
        "legTransports": COUNTERS.leg_transports.load(Ordering::Relaxed),
        "retransmissions": COUNTERS.retransmissions.load(Ordering::Relaxed),
        "refusedConnections": engine.sockets_stats.refused.load(Ordering::Relaxed),
        "socketsClosedSlow": engine.sockets_stats.closed_slow.load(Ordering::Relaxed),
        "socketsClosedIdle": engine.sockets_stats.closed_idle.load(Ordering::Relaxed),
        "workers": crate::media::worker::health(engine.workers.all()),
        "udpPorts": engine.workers.all().iter().map(|w| w.0.advertised.port()).collect::<Vec<_>>(),
        "badDatagrams": crate::media::worker::bad_datagrams(engine.workers.all()),
        "openFds": crate::sysinfo::open_fds(),
        "rssKib": crate::sysinfo::rss_kib(),
    }))
}

fn is_slow_read(req: &kms_client::wire::Request) -> bool {
    req.method == "invoke"
        && req.params.as_ref().is_some_and(|p| {
            p.get("object").and_then(Value::as_str)
                == Some(kms_client::wire::ids::SERVER_MANAGER_ID)
                && p.get("operation").and_then(Value::as_str) == Some("getUsedCpu")
        })
}

/// Why a socket's loop ended, and the close frame that says so.
fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[tracing::instrument(skip_all, fields(socket))]
async fn serve(engine: Arc<Engine>, ws: WebSocket) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = outbox::<String>(engine.settings.max_send_queue_bytes);
    let socket = engine.register_socket(tx.clone());
    tracing::Span::current().record("socket", socket);
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<Message>();
    let stats = engine.clone();
    let writer = tokio::spawn(async move {
        loop {
            let Some(text) = rx.recv().await else { break };
            tokio::select! {
                r = sink.send(Message::Text(text.into())) => if r.is_err() { break },
                _ = rx.overflowed() => break,
            }
        }
        let frame = if rx.is_overflowed() {
            stats
                .sockets_stats
                .closed_slow
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!("client does not read its answers; closing");
            close_frame(1008, "send queue overflow")
        } else {
            close_rx.await.unwrap_or(Message::Close(None))
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(frame)).await;
        let _ = sink.close().await;
    });
    let idle = Duration::from_secs(engine.settings.idle_timeout_secs);
    let mut bound = None;
    let mut close = close_frame(1000, "");
    loop {
        let msg = tokio::select! {
            m = tokio::time::timeout(idle, stream.next()) => match m {
                Ok(m) => m,
                Err(_) => {
                    engine.sockets_stats.closed_idle.fetch_add(1, Ordering::Relaxed);
                    close = close_frame(1000, "idle");
                    break;
                }
            },
            _ = tx.overflowed() => break,
            _ = engine.cancel.cancelled() => { close = close_frame(1001, "shutting down"); break },
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            // Some clients (websocket-stream) send JSON in binary frames; accept it.
            Some(Ok(Message::Binary(b))) => String::from_utf8(b.to_vec()).unwrap_or_default(),
            Some(Err(e)) if is_message_too_big(&e) => {
                close = close_frame(1009, "message too big");
                break;
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let reply = match Frame::parse(&text) {
            Ok(Frame::Request(req)) if is_slow_read(&req) => {
                // `getUsedCpu` waits for its interval; it reads nothing another request could
                // change, so it runs beside the ordered stream instead of stalling it.
                let (engine, tx, mut b) = (engine.clone(), tx.clone(), bound.clone());
                tokio::spawn(async move {
                    let mut conn = Conn {
                        engine: &engine,
                        socket,
                        bound: &mut b,
                    };
                    let r = dispatch(&mut conn, req).await;
                    if let Ok(t) = serde_json::to_string(&r) {
                        let _ = tx.send(t);
                    }
                });
                None
            }
            Ok(Frame::Request(req)) => {
                let mut conn = Conn {
                    engine: &engine,
                    socket,
                    bound: &mut bound,
                };
                Some(dispatch(&mut conn, req).await)
            }
            Ok(Frame::Notification { .. } | Frame::Response(_)) => None,
            Err(FrameError::Parse) => Some(RpcResponse::err(
                Value::Null,
                RpcError::new(ErrorCode::ParseError, "Parse error."),
            )),
            Err(FrameError::Invalid(id)) => Some(RpcResponse::err(
                id,
                RpcError::new(ErrorCode::InvalidRequest, "Invalid JSON-RPC request."),
            )),
        };
        if let Some(r) = reply {
            match serde_json::to_string(&r) {
                Ok(t) => {
                    let _ = tx.send(t);
                }
                Err(e) => tracing::error!(%e, "response not serialisable"),
            }
        }
    }
    engine.socket_closed(socket);
    let _ = close_tx.send(close);
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        use base64::Engine as _;
        let h = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            basic_password(&h("rtcpool:s3:cret")).as_deref(),
            Some("s3:cret")
        );
        assert_eq!(basic_password(&h(":x")).as_deref(), Some("x"));
        assert_eq!(basic_password(&h("nocolon")), None);
        assert_eq!(basic_password("Bearer abc"), None);
        assert_eq!(basic_password("Basic !!!"), None);
    }
}

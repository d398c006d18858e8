//! The WebSocket transport: `/kurento` (query string ignored), one JSON-RPC object per text
//! frame, requests of one socket handled in order, responses and events written by one writer
//! task per socket. `/health` reports object and media counts for operators and tests.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use kms_client::wire::envelope::FrameError;
use kms_client::wire::{ErrorCode, Frame, Response, RpcError};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::engine::Engine;
use crate::media::COUNTERS;
use crate::rpc::{dispatch, Conn};

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/kurento", get(upgrade))
        .route("/health", get(health))
        .with_state(engine)
}

async fn upgrade(State(engine): State<Arc<Engine>>, ws: WebSocketUpgrade) -> impl IntoResponse {
    let max = engine.settings.max_message_size;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(engine, socket))
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

#[tracing::instrument(skip_all, fields(socket))]
async fn serve(engine: Arc<Engine>, ws: WebSocket) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let socket = engine.register_socket(tx.clone());
    tracing::Span::current().record("socket", socket);
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut bound = None;
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = engine.cancel.cancelled() => None,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            // Some clients (websocket-stream) send JSON in binary frames; accept it.
            Some(Ok(Message::Binary(b))) => String::from_utf8(b.to_vec()).unwrap_or_default(),
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
            Err(FrameError::Parse) => Some(Response::err(
                Value::Null,
                RpcError::new(ErrorCode::ParseError, "Parse error."),
            )),
            Err(FrameError::Invalid(id)) => Some(Response::err(
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
    drop(tx);
    let _ = writer.await;
}

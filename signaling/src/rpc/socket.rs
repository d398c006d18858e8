//! One browser WebSocket: ordered request handling, the ping watchdog (no ping for 3 × the
//! announced interval closes the socket), and the reconnection window when it drops.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use kms_client::outbox::{is_message_too_big, outbox};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::wire::{self, method, Incoming};
use super::wire::{Code, RpcError};
use super::{dispatch, Ctx};
use crate::app::{App, OutTx, Outgoing};
use crate::cluster::{relay, Route};
use crate::core::PingWatch;

/// Dispatches one request and writes its answer (with the rpc session injected).
#[allow(clippy::too_many_arguments)]
async fn handle(
    app: &Arc<App>,
    rpc: &mut String,
    socket: u64,
    tx: &OutTx,
    ip: &str,
    id: Value,
    name: &str,
    params: &Map<String, Value>,
) {
    let started = std::time::Instant::now();
    let result = {
        let mut ctx = Ctx {
            app,
            rpc,
            socket,
            tx,
            ip,
        };
        dispatch(&mut ctx, name, params).await
    };
    crate::metrics::latencies().rpc(name, started.elapsed().as_secs_f64());
    if result.is_err() {
        app.metrics.rpc_errors.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tx.send(Outgoing::Text(wire::response(&id, Some(rpc), result)));
}

#[tracing::instrument(skip_all, fields(socket))]
pub async fn serve(app: Arc<App>, ws: WebSocket, ip: String) {
    let socket = app.next_socket_id();
    tracing::Span::current().record("socket", socket);
    app.metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
    app.metrics.ws_open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenSocket(app.clone());
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = outbox::<Outgoing>(app.settings.ws_max_send_queue_bytes);
    let (close_tx, mut close_rx) = tokio::sync::oneshot::channel::<CloseFrame>();
    let writer = tokio::spawn(async move {
        let mut close = None;
        while let Some(out) = rx.recv().await {
            match out {
                Outgoing::Text(t) => tokio::select! {
                    r = sink.send(Message::Text(t.into())) => if r.is_err() { break },
                    _ = rx.overflowed() => break,
                },
                Outgoing::Close(reason) => {
                    // The reader's own reason (1009, 1001, …) when it is the one closing.
                    close = Some(close_rx.try_recv().unwrap_or(close_frame(1000, reason)));
                    break;
                }
            }
        }
        let frame = if rx.is_overflowed() {
            tracing::info!("participant does not read its messages; closing");
            Some(close_frame(1008, "send queue overflow"))
        } else {
            match close {
                Some(c) => Some(c),
                None => close_rx.await.ok(),
            }
        };
        let msg = Message::Close(frame);
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(msg)).await;
        let _ = sink.close().await;
    });
    let mut rpc = uuid::Uuid::new_v4().simple().to_string();
    let mut watch = PingWatch::new(Instant::now().into_std());
    let mut close = close_frame(1000, "");
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(Instant::from_std(watch.deadline())) => {
                if watch.expired(Instant::now().into_std()) {
                    tracing::info!("no ping from client; closing");
                    break;
                }
                continue;
            }
            _ = tx.overflowed() => break,
            _ = app.shutdown.cancelled() => { close = close_frame(1001, "server stopping"); break },
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            Some(Err(e)) if is_message_too_big(&e) => {
                close = close_frame(1009, "message too big");
                break;
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let (id, name, params) = match wire::parse(&text) {
            Incoming::Request { id, method, params } => (id, method, params),
            Incoming::Notification | Incoming::Response => continue,
            Incoming::Invalid { id, error } => {
                let _ = tx.send(Outgoing::Text(wire::response(&id, None, Err(error))));
                continue;
            }
        };
        if name != method::PING {
            tracing::debug!(%name, rpc = %rpc, "request");
        }
        if name == method::PING {
            let interval = params.get("interval").and_then(Value::as_u64);
            watch.on_ping(Instant::now().into_std(), interval);
            let echo = params.get("sessionId").and_then(Value::as_str);
            let _ = tx.send(Outgoing::Text(wire::response(
                &id,
                echo,
                Ok(json!({"value": "pong"})),
            )));
            continue;
        }
        if app.cluster.enabled() && (name == method::JOIN_ROOM || name == method::CONNECT) {
            match relay_if_remote(&app, &mut stream, &tx, &text, &ip, &rpc, &name, &params).await {
                Ok(Some(c)) => {
                    close = c;
                    break;
                }
                Ok(None) => {}
                Err(err) => {
                    let _ = tx.send(Outgoing::Text(wire::response(&id, None, Err(err))));
                    continue;
                }
            }
        }
        if name == method::RECEIVE_VIDEO_FROM || name == method::RECONNECT_STREAM {
            // These may wait (for a publisher reconnecting after an engine loss); run them beside
            // the ordered stream so pings and the participant's own publisher reconnection are
            // not stuck behind them (OpenVidu handles requests concurrently too).
            let (app, tx, ip) = (app.clone(), tx.clone(), ip.clone());
            let mut own = rpc.clone();
            tokio::spawn(async move {
                handle(&app, &mut own, socket, &tx, &ip, id, &name, &params).await
            });
            continue;
        }
        handle(&app, &mut rpc, socket, &tx, &ip, id, &name, &params).await;
    }
    app.socket_lost(&rpc, socket);
    let _ = close_tx.send(close);
    let _ = tx.send(Outgoing::Close("closed"));
    drop(tx);
    let _ = writer.await;
}

/// In a cluster: a socket that has not joined here and names another node's session in its
/// `joinRoom`/`connect` is relayed to that node until it closes (`Some(close frame)`); `None`
/// when the request is served here (this node has the session, or just adopted it from a dead
/// node). An owner that cannot be reached is declared dead once it also missed its heartbeats,
/// and its session adopted.
#[allow(clippy::too_many_arguments)]
async fn relay_if_remote<S>(
    app: &Arc<App>,
    browser: &mut S,
    tx: &OutTx,
    first: &str,
    ip: &str,
    rpc: &str,
    name: &str,
    params: &Map<String, Value>,
) -> Result<Option<CloseFrame>, RpcError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let wanted = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or_default();
    let session = {
        let reg = app.reg.lock();
        // Only indexes are read here: which sessions and participants this node serves.
        if reg.roster.get(rpc).is_some() {
            return Ok(None);
        }
        match name {
            method::JOIN_ROOM if reg.sessions.contains_key(wanted("session")) => return Ok(None),
            method::JOIN_ROOM => Some(wanted("session").to_string()),
            _ if reg.roster.get(wanted("sessionId")).is_some() => return Ok(None),
            _ => None,
        }
    };
    let session = match session {
        Some(s) => s,
        None => match app.cluster.session_of_rpc(wanted("sessionId")).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.into()),
        },
    };
    let mut route = app.route_or_adopt(&session).await.map_err(RpcError::from)?;
    for _ in 0..2 {
        let Route::Remote { node, url } = route else {
            return Ok(None);
        };
        match relay::run(app, browser, tx, first.to_string(), &url, ip).await {
            Ok(close) => return Ok(Some(close)),
            Err(e) => {
                tracing::warn!(owner = %node, %e, "the session's node cannot be reached");
                route = app
                    .reroute_after_failure(&session, &node)
                    .await
                    .map_err(RpcError::from)?;
            }
        }
    }
    Err(RpcError::new(
        Code::Generic,
        "The session's node cannot be reached; try again",
    ))
}

/// Counts the socket out of `ws_open` however `serve` ends.
struct OpenSocket(Arc<App>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.metrics.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn close_frame(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

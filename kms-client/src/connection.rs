//! The connection task: owns the WebSocket, numbers requests, matches responses, injects and
//! learns `sessionId`, pings, and on a drop reconnects with backoff and resumes the session
//! (`connect {sessionId}`; 40007 means the server lost it, so a fresh session is started).
//!
//! Hand-written framing rather than jsonrpsee: Kurento puts `sessionId` inside every result,
//! sends `onEvent` notifications whose shape is not jsonrpsee's subscription format, and the
//! resume handshake must run on a fresh socket before any queued request.

use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{ClientError, ClientOptions, ConnectionEvent, ConnectionState, Inner};
use crate::events::KmsEvent;
use crate::wire::method::{self, PingParams, SessionParams};
use crate::wire::{ErrorCode, Frame, Method, Request, Response};

use crate::transport::{open, Ws};
type Reply = oneshot::Sender<Result<Map<String, Value>, ClientError>>;

pub(crate) enum Command {
    Call(Method, Reply),
    Close,
    DropSocket,
}

enum Outcome {
    Closed,
    Lost,
}

struct Conn {
    uri: String,
    options: ClientOptions,
    commands: mpsc::Receiver<Command>,
    state: watch::Sender<ConnectionState>,
    conn_events: broadcast::Sender<ConnectionEvent>,
    events: broadcast::Sender<Arc<KmsEvent>>,
    session: watch::Sender<Option<String>>,
    next_id: u64,
    pending: HashMap<u64, Reply>,
}

pub(crate) async fn start(uri: String, options: ClientOptions) -> Result<Inner, ClientError> {
    let ws = open(&uri, options.connect_timeout).await?;
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    let (state_tx, state_rx) = watch::channel(ConnectionState::Connected);
    let (conn_events, _) = broadcast::channel(16);
    let (events, _) = broadcast::channel(1024);
    let (session_tx, session_rx) = watch::channel(None);
    let conn = Conn {
        uri,
        options: options.clone(),
        commands: cmd_rx,
        state: state_tx,
        conn_events: conn_events.clone(),
        events: events.clone(),
        session: session_tx,
        next_id: 1,
        pending: HashMap::new(),
    };
    tokio::spawn(conn.run(ws));
    Ok(Inner {
        commands: cmd_tx,
        state: state_rx,
        conn_events,
        events,
        session: session_rx,
        options,
    })
}

impl Conn {
    async fn run(mut self, first: Ws) {
        let mut socket = first;
        loop {
            let outcome = self.serve(socket).await;
            for (_, reply) in self.pending.drain() {
                let _ = reply.send(Err(ClientError::Disconnected));
            }
            if let Outcome::Closed = outcome {
                break;
            }
            self.state.send_replace(ConnectionState::Reconnecting);
            let _ = self.conn_events.send(ConnectionEvent::Disconnected);
            match self.reconnect().await {
                Some(s) => socket = s,
                None => break,
            }
        }
        self.state.send_replace(ConnectionState::Closed);
        let _ = self.conn_events.send(ConnectionEvent::Closed);
    }

    async fn serve(&mut self, ws: Ws) -> Outcome {
        let (mut sink, mut stream) = ws.split();
        // Ticks often enough to notice an overdue ping within a fraction of the timeout.
        let tick = self
            .options
            .ping_interval
            .min(self.options.ping_timeout / 4)
            .max(Duration::from_millis(50));
        let mut ping = tokio::time::interval(tick);
        let mut last_ping_sent = Instant::now() - self.options.ping_interval;
        let mut ping_sent: Option<(u64, Instant)> = None;
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Close) => {
                        let _ = sink.close().await;
                        return Outcome::Closed;
                    }
                    Some(Command::DropSocket) => return Outcome::Lost,
                    Some(Command::Call(m, reply)) => {
                        let id = self.next_id();
                        let text = self.encode(id, &m);
                        self.pending.insert(id, reply);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return Outcome::Lost;
                        }
                    }
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if let Some(id) = self.on_text(&t) {
                            if ping_sent.is_some_and(|(p, _)| p == id) {
                                ping_sent = None;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Outcome::Lost,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if let Some((_, at)) = ping_sent {
                        if at.elapsed() > self.options.ping_timeout {
                            tracing::warn!(uri = %crate::uri::redact(&self.uri), "ping unanswered; reconnecting");
                            return Outcome::Lost;
                        }
                        continue;
                    }
                    if last_ping_sent.elapsed() < self.options.ping_interval {
                        continue;
                    }
                    last_ping_sent = Instant::now();
                    let id = self.next_id();
                    let text = self.encode(id, &Method::Ping(PingParams { interval: Some(self.options.ping_interval.as_millis() as u64), session_id: None }));
                    ping_sent = Some((id, Instant::now()));
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return Outcome::Lost;
                    }
                }
            }
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The request frame, with our session injected once we know it (except `connect`, which
    /// names its session explicitly).
    fn encode(&self, id: u64, m: &Method) -> String {
        let mut params = m.params();
        if let Some(s) = self.session.borrow().clone() {
            if !matches!(m, Method::Connect(_)) && m.session_id().is_none() {
                let obj = params.get_or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(o) = obj {
                    o.insert("sessionId".into(), Value::from(s));
                }
            }
        }
        serde_json::to_string(&Request::new(id, m.name(), params)).unwrap_or_default()
    }

    /// Handles one incoming frame; returns the response id it matched, if any.
    fn on_text(&mut self, text: &str) -> Option<u64> {
        match Frame::parse(text) {
            Ok(Frame::Response(r)) => {
                let id = r.id.as_u64()?;
                let result = self.interpret(r);
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(result);
                }
                Some(id)
            }
            Ok(Frame::Notification { method, params }) if method == method::ON_EVENT => {
                if let Some(ev) = params.and_then(|p| KmsEvent::from_params(&p)) {
                    let _ = self.events.send(Arc::new(ev));
                }
                None
            }
            _ => None,
        }
    }

    fn interpret(&self, r: Response) -> Result<Map<String, Value>, ClientError> {
        if let Some(e) = r.error {
            return Err(ClientError::Server(e));
        }
        match r.result {
            Some(Value::Object(m)) => {
                if let Some(s) = m.get("sessionId").and_then(Value::as_str) {
                    if self.session.borrow().as_deref() != Some(s) {
                        self.session.send_replace(Some(s.to_string()));
                    }
                }
                Ok(m)
            }
            Some(Value::Null) => Ok(Map::new()),
            _ => Err(ClientError::Protocol("result is not an object".into())),
        }
    }

    async fn reconnect(&mut self) -> Option<Ws> {
        let (first, max) = self.options.backoff;
        let mut delay = first;
        let mut attempt = 0u32;
        loop {
            if self
                .options
                .max_reconnect_attempts
                .is_some_and(|m| attempt >= m)
            {
                return None;
            }
            attempt += 1;
            // Close requests made while reconnecting still end the client.
            let closing = tokio::select! {
                _ = tokio::time::sleep(delay) => false,
                cmd = self.commands.recv() => matches!(cmd, None | Some(Command::Close)) || { self.requeue(cmd); false },
            };
            if closing {
                return None;
            }
            delay = (delay * 2).min(max);
            let Ok(mut ws) = open(&self.uri, self.options.connect_timeout).await else {
                continue;
            };
            match self.resume(&mut ws).await {
                Some((same_session, server_id)) => {
                    self.state.send_replace(ConnectionState::Connected);
                    let _ = self.conn_events.send(ConnectionEvent::Reconnected {
                        same_session,
                        server_id,
                    });
                    return Some(ws);
                }
                None => continue,
            }
        }
    }

    /// A call that arrived during the backoff sleep fails fast rather than waiting unseen.
    fn requeue(&mut self, cmd: Option<Command>) {
        if let Some(Command::Call(_, reply)) = cmd {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
    }

    /// `connect {sessionId}` on the new socket. 40007 → start a fresh session.
    async fn resume(&mut self, ws: &mut Ws) -> Option<(bool, String)> {
        let old = self.session.borrow().clone();
        let first = self
            .handshake(
                ws,
                Method::Connect(SessionParams {
                    session_id: old.clone(),
                }),
            )
            .await?;
        match first {
            Ok(m) => Some((old.is_some(), server_id(&m))),
            Err(e) if e.code == ErrorCode::InvalidSession.code() => {
                self.session.send_replace(None);
                let m = self
                    .handshake(ws, Method::Connect(SessionParams::default()))
                    .await?
                    .ok()?;
                Some((false, server_id(&m)))
            }
            Err(_) => None,
        }
    }

    async fn handshake(
        &mut self,
        ws: &mut Ws,
        m: Method,
    ) -> Option<Result<Map<String, Value>, crate::wire::RpcError>> {
        let id = self.next_id();
        let text = self.encode(id, &m);
        ws.send(Message::Text(text.into())).await.ok()?;
        let deadline = Instant::now() + self.options.request_timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, ws.next())
                .await
                .ok()??
                .ok()?;
            let Message::Text(t) = msg else { continue };
            if let Ok(Frame::Response(r)) = Frame::parse(&t) {
                if r.id.as_u64() == Some(id) {
                    return Some(match r.error {
                        Some(e) => Err(e),
                        None => Ok(self.interpret(r).unwrap_or_default()),
                    });
                }
            }
        }
    }
}

fn server_id(m: &Map<String, Value>) -> String {
    m.get("serverId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

//! One media engine: its identity, weight and a kms-client connection that a task keeps up
//! (retrying with backoff while the engine is unreachable).

use kms_client::{ClientOptions, ConnectionEvent, KurentoClient};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Engine {
    pub id: String,
    pub uri: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    weight: u32,
    client: Option<KurentoClient>,
    connected: bool,
    connection_time: Option<u64>,
    disconnection_time: Option<u64>,
    sessions: usize,
}

/// What selection and the API read about an engine.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSnapshot {
    pub id: String,
    pub uri: String,
    pub weight: u32,
    pub connected: bool,
    pub connection_time: Option<u64>,
    pub disconnection_time: Option<u64>,
    pub sessions: usize,
}

impl Engine {
    pub fn start(uri: String, weight: u32, cancel: CancellationToken) -> Arc<Self> {
        let e = Arc::new(Self {
            id: crate::ids::engine_id(),
            uri,
            state: Mutex::new(State {
                weight,
                ..State::default()
            }),
        });
        tokio::spawn(keep_connected(Arc::downgrade(&e), cancel));
        e
    }

    pub fn snapshot(&self) -> EngineSnapshot {
        let s = self.state.lock();
        EngineSnapshot {
            id: self.id.clone(),
            uri: self.uri.clone(),
            weight: s.weight,
            connected: s.connected,
            connection_time: s.connection_time,
            disconnection_time: s.disconnection_time,
            sessions: s.sessions,
        }
    }

    pub fn client(&self) -> Option<KurentoClient> {
        let s = self.state.lock();
        s.client.clone().filter(|_| s.connected)
    }

    pub fn session_placed(&self) {
        self.state.lock().sessions += 1;
    }

    pub fn session_removed(&self) {
        let mut s = self.state.lock();
        s.sessions = s.sessions.saturating_sub(1);
    }

    fn set_connected(&self, client: Option<KurentoClient>, connected: bool) {
        let mut s = self.state.lock();
        if connected && !s.connected {
            s.connection_time = Some(crate::ids::now_ms());
            s.disconnection_time = None;
        } else if !connected && s.connected {
            s.disconnection_time = Some(crate::ids::now_ms());
        }
        s.connected = connected;
        if client.is_some() || !connected {
            s.client = client.or(s.client.take());
        }
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(10),
        ping_interval: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(3),
        max_reconnect_attempts: Some(30),
        backoff: (Duration::from_millis(100), Duration::from_millis(500)),
    }
}

/// Connects, follows the client's connection events, and starts over when it gives up.
async fn keep_connected(engine: std::sync::Weak<Engine>, cancel: CancellationToken) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(uri) = engine.upgrade().map(|e| e.uri.clone()) else {
            return;
        };
        let client = tokio::select! {
            _ = cancel.cancelled() => return,
            c = KurentoClient::connect(&uri, options()) => c,
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%uri, %e, "engine unreachable; retrying");
                tokio::select! { _ = cancel.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
                delay = (delay * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        delay = Duration::from_millis(100);
        // A first request binds a session and proves the engine answers.
        if client.server_manager().get_info().await.is_err() {
            client.close().await;
            continue;
        }
        let mut events = client.connection_events();
        if let Some(e) = engine.upgrade() {
            tracing::info!(engine = %e.id, %uri, "engine connected");
            e.set_connected(Some(client.clone()), true);
        }
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => { client.close().await; return; }
                ev = events.recv() => ev,
            };
            let Some(e) = engine.upgrade() else { return };
            match ev {
                Ok(ConnectionEvent::Disconnected) => {
                    tracing::warn!(engine = %e.id, "engine connection lost");
                    e.set_connected(None, false);
                }
                Ok(ConnectionEvent::Reconnected { same_session, .. }) => {
                    tracing::info!(engine = %e.id, same_session, "engine reconnected");
                    e.set_connected(Some(client.clone()), true);
                }
                Ok(ConnectionEvent::Closed) | Err(_) => {
                    e.set_connected(None, false);
                    break;
                }
            }
        }
    }
}

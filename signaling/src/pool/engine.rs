//! One media engine: identity, weight, status and a kms-client connection kept up by its own
//! task. A lost connection marks the engine disconnected at once; if the same engine process is
//! not back within the reconnection window (or a new process answers), the pool is told the
//! engine was lost so its sessions can be re-homed.

use kms_client::{ClientOptions, ConnectionEvent, KurentoClient};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::select::admission::{Stats, View};
use super::select::Board;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    /// `waiting-idle-to-terminate`: no new sessions; existing ones continue.
    Draining,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Draining => "waiting-idle-to-terminate",
        }
    }
}

pub struct Engine {
    pub id: String,
    /// Stable index in the pool (selection state is kept per slot).
    pub slot: usize,
    /// The URI as shown to people: without the secret (user-info) it may carry.
    pub uri: String,
    /// The URI the connection uses, secret included. Never logged or shown.
    connect_uri: String,
    pub ip: String,
    pub labels: BTreeMap<String, String>,
    state: Mutex<State>,
    pub picks: AtomicU64,
    pub failures: AtomicU64,
    pub cancel: CancellationToken,
    me: std::sync::Weak<Engine>,
    /// Where this engine's admission is kept current for placement.
    board: Arc<Mutex<Board>>,
}

struct State {
    weight: u32,
    client: Option<KurentoClient>,
    connected: bool,
    connection_time: Option<u64>,
    disconnection_time: Option<u64>,
    status: Status,
    stats: Option<Stats>,
    sessions: BTreeSet<String>,
    /// Elements (endpoints, PassThroughs) on the engine, kept from `ObjectCreated`/
    /// `ObjectDestroyed` and the reconciliation after each connection. Counting them this way
    /// reads no pipeline, so signaling never becomes a holder of anyone else's objects.
    elements: HashSet<String>,
    /// Deleted with `when-no-sessions`: leaves the pool when its last session ends.
    remove_when_idle: bool,
    /// Bumped on every disconnection, so a stale window timer does nothing.
    generation: u64,
}

/// Everything the API, metrics and selection read about an engine at one instant.
#[derive(Debug, Clone)]
pub struct EngineSnapshot {
    pub id: String,
    pub uri: String,
    pub ip: String,
    pub weight: u32,
    pub connected: bool,
    pub connection_time: Option<u64>,
    pub disconnection_time: Option<u64>,
    pub status: Status,
    pub stats: Option<Stats>,
    pub sessions: Vec<String>,
}

/// What the pool tells its owner (signaling's app) about engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEvent {
    /// The engine's media is gone (it did not come back within the window, or a new process
    /// answered): its sessions must be re-homed.
    Lost(String),
    /// Connected (or reconnected to the same process): time to reconcile what it holds.
    Connected(String),
    /// An object on the engine was destroyed (`ServerManager`'s `ObjectDestroyed`).
    Destroyed { engine: String, object: String },
}

/// What every engine of a pool shares with it.
pub struct PoolLinks {
    pub timings: Timings,
    /// Where the engines' [`PoolEvent`]s go.
    pub events: mpsc::Sender<PoolEvent>,
    pub board: Arc<Mutex<Board>>,
    /// Health readings shared with the other nodes of a cluster.
    pub health_share: Option<Arc<dyn super::health::HealthShare>>,
}

/// Timings of the connection to an engine.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub ping_timeout: Duration,
    pub reconnect_window: Duration,
    pub health_interval: Duration,
}

impl Engine {
    pub fn start(
        slot: usize,
        uri: String,
        weight: u32,
        labels: BTreeMap<String, String>,
        pool: &PoolLinks,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let (t, events, board) = (pool.timings, pool.events.clone(), pool.board.clone());
        let (connect_uri, uri) = (uri.clone(), kms_client::uri::redact(&uri));
        let ip = uri
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', '?']).next())
            .map(|h| {
                h.rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or(h)
                    .trim_matches(['[', ']'])
                    .to_string()
            })
            .unwrap_or_default();
        let e = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            id: crate::ids::engine_id(&uri),
            slot,
            uri,
            connect_uri,
            ip,
            labels,
            state: Mutex::new(State {
                weight,
                client: None,
                connected: false,
                connection_time: None,
                disconnection_time: None,
                status: Status::Running,
                stats: None,
                sessions: BTreeSet::new(),
                elements: HashSet::new(),
                remove_when_idle: false,
                generation: 0,
            }),
            picks: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            cancel,
            board,
        });
        e.publish(&e.state.lock());
        tokio::spawn(keep_connected(Arc::downgrade(&e), t, events));
        tokio::spawn(super::health::sample(
            Arc::downgrade(&e),
            t.health_interval,
            e.cancel.clone(),
            pool.health_share.clone(),
        ));
        e
    }

    pub fn snapshot(&self) -> EngineSnapshot {
        let s = self.state.lock();
        EngineSnapshot {
            id: self.id.clone(),
            uri: self.uri.clone(),
            ip: self.ip.clone(),
            weight: s.weight,
            connected: s.connected,
            connection_time: s.connection_time,
            disconnection_time: s.disconnection_time,
            status: s.status,
            stats: s.stats.clone(),
            sessions: s.sessions.iter().cloned().collect(),
        }
    }

    pub fn client(&self) -> Option<KurentoClient> {
        let s = self.state.lock();
        s.client.clone().filter(|_| s.connected)
    }

    pub fn set_weight(&self, w: u32) {
        self.update(|s| s.weight = w);
    }

    pub fn set_status(&self, st: Status) {
        self.update(|s| s.status = st);
    }

    pub fn set_stats(&self, stats: Stats) {
        self.update(|s| s.stats = Some(stats));
    }

    /// Changes what admission looks at, and tells the placement board.
    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.state.lock();
        let r = f(&mut s);
        self.publish(&s);
        r
    }

    fn publish(&self, s: &State) {
        self.board.lock().set(&View {
            id: &self.id,
            slot: self.slot,
            weight: s.weight,
            connected: s.connected,
            running: s.status == Status::Running,
            stats: s.stats.as_ref(),
        });
    }

    /// Elements on the engine (what `POOL_MAX_ENDPOINTS` admission counts).
    pub fn element_count(&self) -> u64 {
        self.state.lock().elements.len() as u64
    }

    /// Adds elements found when reconciling after a connection.
    pub fn elements_found(&self, ids: impl IntoIterator<Item = String>) {
        self.state.lock().elements.extend(ids);
    }

    fn object_created(&self, id: &str) {
        if id.contains('/') {
            self.state.lock().elements.insert(id.to_string());
        }
    }

    fn object_destroyed(&self, id: &str) {
        self.state.lock().elements.remove(id);
    }

    pub fn session_added(&self, session: &str) {
        self.state.lock().sessions.insert(session.to_string());
    }

    /// Returns true when the engine was waiting for its last session to leave the pool.
    pub fn session_removed(&self, session: &str) -> bool {
        let mut s = self.state.lock();
        s.sessions.remove(session);
        s.remove_when_idle && s.sessions.is_empty()
    }

    /// Drains the engine and removes it once idle (`deletion-strategy=when-no-sessions`).
    pub fn remove_when_idle(&self) {
        self.update(|s| {
            s.status = Status::Draining;
            s.remove_when_idle = true;
        });
    }

    pub fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn connected(&self, client: KurentoClient) {
        self.update(|s| {
            if !s.connected {
                s.connection_time = Some(crate::ids::now_ms());
                s.disconnection_time = None;
            }
            s.connected = true;
            s.client = Some(client);
        });
    }

    /// Marks the engine disconnected (visible at once); returns the generation for the window.
    fn disconnected(&self) -> u64 {
        self.update(|s| {
            if s.connected {
                s.disconnection_time = Some(crate::ids::now_ms());
            }
            s.connected = false;
            s.stats = None;
            s.generation += 1;
            s.generation
        })
    }

    fn still_down(&self, generation: u64) -> bool {
        let s = self.state.lock();
        !s.connected && s.generation == generation
    }
}

fn options(t: &Timings) -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(10),
        ping_interval: (t.ping_timeout / 3).max(Duration::from_millis(100)),
        ping_timeout: t.ping_timeout,
        connect_timeout: Duration::from_secs(2),
        max_reconnect_attempts: Some(20),
        backoff: (Duration::from_millis(100), Duration::from_millis(500)),
    }
}

/// Connects (retrying with backoff while unreachable), follows the client's connection events,
/// and starts over when the client gives up.
async fn keep_connected(
    engine: std::sync::Weak<Engine>,
    t: Timings,
    events: mpsc::Sender<PoolEvent>,
) {
    let Some(cancel) = engine.upgrade().map(|e| e.cancel.clone()) else {
        return;
    };
    let mut delay = Duration::from_millis(100);
    loop {
        let Some((uri, connect_uri)) = engine
            .upgrade()
            .map(|e| (e.uri.clone(), e.connect_uri.clone()))
        else {
            return;
        };
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return,
            c = KurentoClient::connect(&connect_uri, options(&t)) => c,
        };
        let client = match attempt {
            Ok(c) => c,
            Err(e) => {
                if matches!(e, kms_client::ClientError::Unauthorized(_)) {
                    tracing::warn!(%e, "engine refused us; retrying");
                } else {
                    tracing::debug!(%uri, %e, "engine unreachable; retrying");
                }
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
        let mut conn_events = client.connection_events();
        let Some(e) = engine.upgrade() else { return };
        tracing::info!(engine = %e.id, %uri, "engine connected");
        let mut watcher = e.ready(&client, t, &events).await;
        drop(e);
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => { watcher.abort(); client.close().await; return; }
                ev = conn_events.recv() => ev,
            };
            let Some(e) = engine.upgrade() else {
                watcher.abort();
                return;
            };
            match ev {
                Ok(ConnectionEvent::Disconnected) => {
                    tracing::warn!(engine = %e.id, "engine connection lost; waiting for it to come back");
                    watcher.abort();
                    let generation = e.disconnected();
                    let (weak, events, id) = (engine.clone(), events.clone(), e.id.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(t.reconnect_window).await;
                        if weak.upgrade().is_some_and(|e| e.still_down(generation)) {
                            tracing::warn!(engine = %id, "engine did not come back; re-homing its sessions");
                            let _ = events.send(PoolEvent::Lost(id)).await;
                        }
                    });
                }
                Ok(ConnectionEvent::Reconnected { same_session, .. }) => {
                    watcher.abort();
                    if same_session {
                        tracing::info!(engine = %e.id, "same engine process back; reconciling");
                    } else {
                        tracing::warn!(engine = %e.id, "a new engine process answered; its sessions' media is gone");
                        let _ = events.send(PoolEvent::Lost(e.id.clone())).await;
                    }
                    watcher = e.ready(&client, t, &events).await;
                }
                Ok(ConnectionEvent::Closed) | Err(_) => {
                    watcher.abort();
                    e.disconnected();
                    break;
                }
            }
        }
    }
}

impl Engine {
    /// A (re)established connection: follow the engine's object events, take a quick first
    /// health sample (so the engine is admitted at once, not a sampling interval later), mark it
    /// connected and ask the owner to reconcile. Returns the object-event task.
    async fn ready(
        &self,
        client: &KurentoClient,
        t: Timings,
        events: &mpsc::Sender<PoolEvent>,
    ) -> tokio::task::JoinHandle<()> {
        self.state.lock().elements.clear();
        let sm = client.server_manager();
        let watcher = match futures::join!(
            sm.subscribe("ObjectCreated"),
            sm.subscribe("ObjectDestroyed")
        ) {
            (Ok(created), Ok(destroyed)) => tokio::spawn(follow_objects(
                self.me(),
                created,
                destroyed,
                events.clone(),
            )),
            _ => {
                tracing::warn!(engine = %self.id, "cannot follow the engine's object events");
                tokio::spawn(async {})
            }
        };
        let quick = tokio::time::timeout(
            t.health_interval,
            super::health::read(client, Duration::from_millis(50), 0),
        )
        .await
        .ok()
        .flatten();
        if let Some(stats) = quick {
            crate::metrics::latencies().engine(&self.id, stats.rtt_ms / 1000.0);
            self.update(|s| s.stats = Some(stats));
        }
        self.connected(client.clone());
        let _ = events.send(PoolEvent::Connected(self.id.clone())).await;
        watcher
    }

    fn me(&self) -> std::sync::Weak<Engine> {
        self.me.clone()
    }
}

/// Keeps the element count from the engine's object events and reports destroyed objects.
async fn follow_objects(
    engine: std::sync::Weak<Engine>,
    mut created: kms_client::Subscription,
    mut destroyed: kms_client::Subscription,
    events: mpsc::Sender<PoolEvent>,
) {
    let id_of = |ev: &kms_client::KmsEvent, key: &str| {
        ev.data
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    loop {
        tokio::select! {
            ev = created.next() => {
                let Some(ev) = ev else { return };
                let (Some(e), Some(id)) = (engine.upgrade(), id_of(&ev, "object")) else { continue };
                e.object_created(&id);
            }
            ev = destroyed.next() => {
                let Some(ev) = ev else { return };
                let Some(id) = id_of(&ev, "objectId") else { continue };
                let Some(e) = engine.upgrade() else { return };
                e.object_destroyed(&id);
                let engine_id = e.id.clone();
                drop(e);
                let _ = events.send(PoolEvent::Destroyed { engine: engine_id, object: id }).await;
            }
        }
    }
}

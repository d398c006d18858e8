//! Signaling's shared state: the node's indexes, creating sessions and connections, delivering
//! notices. Placing and moving a session's media is in `placement.rs`, leaving and closing in
//! `leaving.rs`. Each session has one owner task (`owner.rs`) holding its record (connections,
//! tokens, publications) and its media, applying every change in order and running placement
//! and re-homing as transitions, so nothing waits on a lock across an engine round trip. The
//! node-wide registry holds only indexes — which owner serves each session id, which socket
//! each joined participant is on (and its reconnection window), the re-homing holds — behind a
//! lock that is never held across an `.await`.

use parking_lot::Mutex;
use rtcpool_config::SignalingSettings;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::core::{Holds, Notice, Roster};
use crate::error::Error;
use crate::ids;
use crate::media::{Bandwidth, Released, SessionMedia};
use crate::model::{Connection, ConnectionProps, Session, SessionProps};
use crate::owner::Owner;
use crate::pool::{EnginePool, PoolEvent};
use crate::rpc::wire::Notification;
use crate::webhook::{events, Webhook};

/// What a socket writer is told to do.
#[derive(Debug)]
pub enum Outgoing {
    Text(String),
    Close(&'static str),
}

impl kms_client::outbox::Weigh for Outgoing {
    fn weight(&self) -> usize {
        match self {
            Outgoing::Text(t) => t.len(),
            Outgoing::Close(_) => 0,
        }
    }
}

/// A socket's outgoing queue, bounded in bytes (`ws_max_send_queue_bytes`): a participant that
/// stops reading is disconnected instead of growing signaling's memory.
pub type OutTx = kms_client::outbox::Outbox<Outgoing>;

pub struct Registry {
    /// Each session's owner (holding its record and media) by session id.
    pub sessions: BTreeMap<String, SessionOwner>,
    /// Joined participants by rpc session id, their sockets and reconnection windows.
    pub roster: Roster<OutTx>,
    /// What re-homed sessions still owe their participants, and when.
    pub holds: Holds,
}

impl Registry {
    fn new() -> Self {
        Self {
            sessions: BTreeMap::new(),
            roster: Roster::new(RECONNECTION_WINDOW),
            holds: Holds::default(),
        }
    }

    /// Queues each notice on the sockets of its participants that are on one now.
    pub fn deliver(&self, notices: &[Notice]) {
        for n in notices {
            let text = n.n.to_text();
            for rpc in &n.to {
                if let Some(tx) = self.roster.socket(rpc) {
                    let _ = tx.send(Outgoing::Text(text.clone()));
                }
            }
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    pub joins: AtomicU64,
    pub rpc_errors: AtomicU64,
    /// Browser sockets accepted so far.
    pub ws_connections: AtomicU64,
    /// Browser sockets open now.
    pub ws_open: AtomicU64,
}

/// The handle to a session's owner task: its record and its media.
pub type SessionOwner = Owner<Session, SessionMedia>;

pub struct App {
    /// This process's identity, tagged on every pipeline it creates (`ownership.rs`); its node
    /// id in a cluster.
    pub instance: String,
    /// The other signaling nodes, when there are any (`cluster/`).
    pub cluster: Cluster,
    /// Which session each of our live pipelines belongs to (pipeline id → session id).
    pub(crate) pipelines: Mutex<HashMap<String, String>>,
    pub settings: SignalingSettings,
    /// Shared with the sessions' owners, whose steps update a participant's record and its
    /// roster entry together.
    pub reg: Arc<Mutex<Registry>>,
    pub pool: Arc<EnginePool>,
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    /// OpenVidu's webhook (`webhook/`): lifecycle events, never blocking a session.
    pub webhook: Webhook,
    next_socket: AtomicU64,
    /// Wakes `run_timers` (a reconnection window or a re-homing hold was added).
    pub(crate) timers_changed: Arc<Notify>,
    /// Sessions whose snapshot is to be written again (in a cluster: `cluster/snapshot.rs`).
    pub(crate) dirty: Arc<crate::cluster::snapshot::Dirty>,
    /// Adoptions of dead nodes' sessions run one at a time (`cluster/adopt.rs`).
    pub(crate) adopting: tokio::sync::Mutex<()>,
    /// Each session's relays as its media keeps them (`media/relay.rs`), for the REST API and
    /// metrics.
    pub(crate) relay_views: Mutex<HashMap<String, Arc<Mutex<Vec<crate::media::RelayView>>>>>,
}

/// How long a participant whose socket dropped keeps its place (OpenVidu: 10 s).
pub const RECONNECTION_WINDOW: Duration = Duration::from_secs(10);

impl App {
    pub fn new(
        settings: SignalingSettings,
        pool: Arc<EnginePool>,
        pool_events: mpsc::Receiver<PoolEvent>,
        shutdown: CancellationToken,
        cluster: Cluster,
    ) -> Arc<Self> {
        let webhook = Webhook::start(&settings, shutdown.clone());
        let beat = Duration::from_millis(settings.cluster_node_ttl_ms / 5);
        let app = Arc::new(Self {
            instance: cluster.node.clone(),
            cluster,
            pipelines: Mutex::new(HashMap::new()),
            settings,
            reg: Arc::new(Mutex::new(Registry::new())),
            pool,
            webhook,
            shutdown,
            metrics: Metrics::default(),
            next_socket: AtomicU64::new(1),
            timers_changed: Arc::new(Notify::new()),
            dirty: Arc::default(),
            adopting: tokio::sync::Mutex::new(()),
            relay_views: Mutex::new(HashMap::new()),
        });
        tokio::spawn(crate::cluster::snapshot::run(Arc::downgrade(&app)));
        tokio::spawn(crate::leaving::collect_garbage(Arc::downgrade(&app)));
        tokio::spawn(crate::leaving::run_timers(Arc::downgrade(&app)));
        tokio::spawn(crate::media::sample_relays(Arc::downgrade(&app)));
        tokio::spawn(crate::cluster::run_heartbeat(Arc::downgrade(&app), beat));
        tokio::spawn(crate::ownership::follow_pool(
            Arc::downgrade(&app),
            pool_events,
        ));
        app
    }

    pub fn next_socket_id(&self) -> u64 {
        self.next_socket.fetch_add(1, Ordering::Relaxed)
    }

    pub fn bandwidth(&self) -> Bandwidth {
        let s = &self.settings;
        Bandwidth {
            max_recv: s.openvidu_streams_video_max_recv_bandwidth,
            min_recv: s.openvidu_streams_video_min_recv_bandwidth,
            max_send: s.openvidu_streams_video_max_send_bandwidth,
            min_send: s.openvidu_streams_video_min_send_bandwidth,
        }
    }

    // ---- REST-side lifecycle -------------------------------------------------------------

    /// `POST /sessions`: the id is taken cluster-wide first (a custom id another node has is
    /// refused as one this node has): [`Error::SessionExists`], or [`Error::Unavailable`].
    pub async fn create_session(&self, props: SessionProps) -> Result<Value, Error> {
        let id = if props.custom_session_id.is_empty() {
            ids::session_id()
        } else {
            props.custom_session_id.clone()
        };
        if self.reg.lock().sessions.contains_key(&id) {
            return Err(Error::SessionExists(id));
        }
        if !self.cluster.claim_session(&id).await? {
            return Err(Error::SessionExists(id));
        }
        let s = Session::new(id.clone(), props, ids::now_ms());
        let (json, created_at) = (s.rest_json(false), s.created_at);
        {
            let mut reg = self.reg.lock();
            if reg.sessions.contains_key(&id) {
                return Err(Error::SessionExists(id));
            }
            reg.sessions.insert(id.clone(), Owner::spawn(s, None));
        }
        self.webhook
            .emit("sessionCreated", Some((&id, created_at)), Map::new());
        self.changed(&id);
        Ok(json)
    }

    /// `POST /sessions/{id}/connection`: a pending connection with its token.
    pub async fn create_connection(
        &self,
        session_id: &str,
        props: ConnectionProps,
    ) -> Option<Value> {
        let owner = self.session(session_id)?;
        let token = format!(
            "{}?sessionId={}&token={}",
            self.settings.public_ws_url(),
            session_id,
            ids::token_id()
        );
        let c = Connection {
            id: ids::connection_id(),
            token,
            props,
            created_at: ids::now_ms(),
            active: None,
            publisher: None,
            subscriptions: Vec::new(),
        };
        let json = c.rest_json(session_id);
        owner.record(move |s| s.add(c)).await?;
        self.changed(session_id);
        Some(json)
    }

    /// `session_id` changed: in a cluster its snapshot is written again shortly.
    pub fn changed(&self, session_id: &str) {
        if self.cluster.enabled() {
            self.dirty.mark(session_id);
        }
    }

    // ---- sessions ------------------------------------------------------------------------

    /// The owner of a session this node serves.
    pub fn session(&self, session_id: &str) -> Option<SessionOwner> {
        self.reg.lock().sessions.get(session_id).cloned()
    }

    /// Runs `f` on the record of a session this node serves (a step of its owner); `None` when
    /// there is no such session (or it closed meanwhile).
    pub async fn on_session<T: Send + 'static>(
        &self,
        session_id: &str,
        f: impl FnOnce(&mut Session) -> T + Send + 'static,
    ) -> Option<T> {
        self.session(session_id)?.record(f).await
    }

    /// Every session's owner (for the rare walks over all sessions).
    pub fn sessions(&self) -> Vec<(String, SessionOwner)> {
        self.reg
            .lock()
            .sessions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    // ---- notifications -------------------------------------------------------------------

    /// Sends to one connection of a session (if it has a live socket).
    pub async fn send_to(&self, session_id: &str, connection_id: &str, n: &Notification) {
        let c = connection_id.to_string();
        let rpc = self
            .on_session(session_id, move |s| {
                s.connections
                    .get(&c)
                    .and_then(|c| c.active.as_ref())
                    .map(|a| a.rpc.clone())
            })
            .await
            .flatten();
        if let Some(rpc) = rpc {
            self.deliver(&[Notice {
                to: vec![rpc],
                n: n.clone(),
            }]);
        }
    }

    /// Delivers notices from the session core to the participants' sockets (those on one now).
    pub fn deliver(&self, notices: &[Notice]) {
        self.reg.lock().deliver(notices);
    }

    // ---- media -------------------------------------------------------------------------

    /// Takes engine objects out of the session's media (`take`, a step of its owner) and releases
    /// them after.
    pub async fn release_detached(
        &self,
        session_id: &str,
        take: impl FnOnce(&mut SessionMedia) -> Option<Released> + Send + 'static,
    ) {
        let gone = match self.session(session_id) {
            Some(owner) => owner.with(take).await.flatten(),
            None => None,
        };
        self.changed(session_id);
        if let Some(gone) = gone {
            self.release(session_id, gone).await;
        }
    }

    /// Whether `connection` is a joined participant of `session_id` now.
    pub async fn has_joined(&self, session_id: &str, connection: &str) -> bool {
        let c = connection.to_string();
        self.on_session(session_id, move |s| s.has_joined(&c))
            .await
            .unwrap_or(false)
    }

    /// Records that our `pipeline` carries `session_id` (reconciliation keeps it).
    pub(crate) fn claim(&self, pipeline: &str, session_id: &str) {
        self.pipelines
            .lock()
            .insert(pipeline.to_string(), session_id.to_string());
    }

    /// Before a pipeline of ours is released (or abandoned with its engine).
    pub(crate) fn unclaim(&self, pipeline: &str) {
        self.pipelines.lock().remove(pipeline);
    }

    /// `mediaNodeStatusChanged` of `engine` from `old` to `new`.
    pub fn hook_node_status(&self, engine: &crate::pool::EngineSnapshot, old: &str, new: &str) {
        let f = events::node_status(engine, old, new);
        self.webhook.emit("mediaNodeStatusChanged", None, f);
    }
}

//! Several signaling nodes as one service (`REDIS_URL` set). Each session has one owner node
//! that holds all of its state in memory, exactly as a single node does; Redis says which node
//! that is (`store.rs`). Any node serves any session by handing the work to the owner:
//!
//! - a browser socket whose `joinRoom` (or reconnecting `connect`) names another node's session
//!   is relayed, frame for frame, to the owner's `/openvidu` (`relay.rs`);
//! - a REST call about another node's session is forwarded to the owner, and the calls about
//!   all sessions or the engine pool are answered by every node (`forward.rs`);
//! - the engine for a new session is picked by one round robin shared by all nodes.
//!
//! Without `REDIS_URL` there is no store and every route is local: one node, everything in
//! process.

pub mod adopt;
pub mod forward;
pub mod pool;
pub mod relay;
pub mod sentinel;
pub mod snapshot;
pub mod store;

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::app::App;
pub use store::{NodeInfo, Store};

use crate::error::Error;

/// Where the work for a session is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Local,
    /// Another live node owns it: its id and URL.
    Remote {
        node: String,
        url: String,
    },
    /// Its owner died: whoever needs it first adopts it (`adopt.rs`).
    Orphaned {
        node: String,
    },
}

pub struct Cluster {
    /// This node's id (also the tag on the pipelines it creates).
    pub node: String,
    /// How the other nodes reach this one.
    pub url: String,
    pub started: u64,
    store: Option<Arc<Store>>,
    /// The live nodes as last read (every heartbeat), this one included.
    nodes: Mutex<Vec<NodeInfo>>,
    /// Dead nodes still listed, as last read: their sessions are to be adopted.
    dead: Mutex<Vec<String>>,
    /// How long a node lives without a heartbeat.
    node_ttl: Duration,
    /// Since when every call to Redis succeeded (None: the last one failed, or none was made).
    reachable_since: Mutex<Option<std::time::Instant>>,
    /// Handed its sessions over (a clean stop): no more heartbeats.
    retired: AtomicBool,
    /// For node-to-node REST calls.
    pub http: reqwest::Client,
}

impl Cluster {
    pub fn new(
        node: String,
        url: String,
        redis: Option<(&str, &str)>,
        node_ttl: Duration,
    ) -> Result<Self, Error> {
        let store = match redis {
            Some((u, name)) => Some(Arc::new(Store::open(u, name, node_ttl)?)),
            None => None,
        };
        Ok(Self::with_store(node, url, store, node_ttl))
    }

    /// One node, everything in process.
    pub fn single(node: String, url: String) -> Self {
        Self::with_store(node, url, None, Duration::from_secs(5))
    }

    fn with_store(
        node: String,
        url: String,
        store: Option<Arc<Store>>,
        node_ttl: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(1))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            node,
            url,
            started: crate::ids::now_ms(),
            store,
            nodes: Mutex::new(Vec::new()),
            dead: Mutex::new(Vec::new()),
            node_ttl,
            reachable_since: Mutex::new(None),
            retired: AtomicBool::new(false),
            http,
        }
    }

    /// Records a successful change to the engine pool (`method` on engine `id` with `body`), for
    /// nodes that start later.
    pub async fn record_pool_call(
        &self,
        id: &str,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let old: pool::PoolRecord = self
            .note(store.pool_record(id).await)?
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        let new = old.apply_call(method, body);
        let json = serde_json::to_string(&new).map_err(|e| Error::Unavailable(e.to_string()))?;
        self.note(store.put_pool_record(id, &json).await)
    }

    /// The engine pool's runtime changes recorded so far.
    pub async fn pool_records(&self) -> Result<Vec<(String, pool::PoolRecord)>, Error> {
        let Some(store) = &self.store else {
            return Ok(Vec::new());
        };
        Ok(self
            .note(store.pool_records().await)?
            .into_iter()
            .filter_map(|(id, j)| serde_json::from_str(&j).ok().map(|r| (id, r)))
            .collect())
    }

    /// The engines' health readings shared with the other nodes (in a cluster).
    pub fn health_share(&self) -> Option<Arc<dyn crate::pool::health::HealthShare>> {
        let store = self.store.clone()?;
        Some(Arc::new(SharedHealth {
            store,
            node: self.node.clone(),
        }))
    }

    /// Part of a cluster (Redis configured).
    pub fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Whether Redis answered the last call (always true for one node).
    pub fn reachable(&self) -> bool {
        self.store.is_none() || self.reachable_since.lock().is_some()
    }

    fn note<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        let mut since = self.reachable_since.lock();
        match (&r, since.is_some()) {
            (Err(e), true) => {
                *since = None;
                tracing::warn!(%e, "cluster store unreachable");
            }
            (Ok(_), false) => {
                *since = Some(std::time::Instant::now());
                tracing::info!("cluster store reachable");
            }
            _ => {}
        }
        drop(since);
        r
    }

    /// Whether Redis has answered long enough (a node TTL and a beat) for every live node to
    /// have registered again: before that a node missing from Redis may only be one that has
    /// not beaten since Redis came back, and adopting its sessions would give them two owners.
    pub fn settled(&self) -> bool {
        let needed = self.node_ttl + self.node_ttl / 5;
        self.reachable_since
            .lock()
            .is_some_and(|t| t.elapsed() >= needed)
    }

    /// Waits (at most two node TTLs) until [`Self::settled`].
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + 2 * self.node_ttl;
        while !self.settled() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn route_to(&self, owner: Option<(String, String)>) -> Route {
        match owner {
            Some((node, _)) if node == self.node => Route::Local,
            Some((node, url)) if url.is_empty() => Route::Orphaned { node },
            Some((node, url)) => Route::Remote { node, url },
            None => Route::Local,
        }
    }

    /// Where `session` lives. Local when this node has it, or no live node does.
    pub async fn route_session(&self, session: &str) -> Result<Route, Error> {
        let Some(store) = &self.store else {
            return Ok(Route::Local);
        };
        let owner = self.note(store.owner(session).await)?;
        Ok(self.route_to(owner))
    }

    /// The session of the participant with private id `rpc` (a reconnecting socket names it).
    pub async fn session_of_rpc(&self, rpc: &str) -> Result<Option<String>, Error> {
        match &self.store {
            Some(store) => self.note(store.session_of_rpc(rpc).await),
            None => Ok(None),
        }
    }

    /// Takes a new session's id cluster-wide: false when another live node has a session by
    /// that id.
    pub async fn claim_session(&self, session: &str) -> Result<bool, Error> {
        let Some(store) = &self.store else {
            return Ok(true);
        };
        self.note(store.claim_session(session, &self.node).await)
    }

    /// The session closed on this node (in the background: nothing waits for Redis).
    pub fn session_closed(&self, session: &str) {
        if let Some(store) = self.store.clone() {
            let (session, node) = (session.to_string(), self.node.clone());
            tokio::spawn(async move {
                if let Err(e) = store.release_session(&session, &node).await {
                    tracing::warn!(%session, %e, "could not release the session in the cluster store");
                }
            });
        }
    }

    /// A participant joined a session of this node (its reconnecting socket may land elsewhere).
    pub fn participant_joined(&self, rpc: &str, session: &str) {
        if let Some(store) = self.store.clone() {
            let (rpc, session) = (rpc.to_string(), session.to_string());
            tokio::spawn(async move {
                if let Err(e) = store.bind_rpc(&rpc, &session).await {
                    tracing::warn!(%session, %e, "could not record the participant in the cluster store");
                }
            });
        }
    }

    pub fn participant_left(&self, rpc: &str) {
        if let Some(store) = self.store.clone() {
            let rpc = rpc.to_string();
            tokio::spawn(async move {
                let _ = store.unbind_rpc(&rpc).await;
            });
        }
    }

    /// The engine for a new session, by the round robin all nodes share, among `candidates`
    /// (engine key, weight). `None` without a cluster: the node's own strategy decides.
    pub async fn pick_engine(&self, candidates: &[(String, u32)]) -> Result<Option<String>, Error> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        self.note(store.swrr_pick(candidates).await)
    }

    /// The live nodes as last read, this one included.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes.lock().clone()
    }

    /// The other live nodes, as last read.
    pub fn others(&self) -> Vec<NodeInfo> {
        self.nodes
            .lock()
            .iter()
            .filter(|n| n.id != self.node)
            .cloned()
            .collect()
    }

    /// Refreshes this node's heartbeat and reads the others'; when Redis had lost this node,
    /// writes again what it owns (`owned`: its sessions, and its participants by rpc id).
    async fn beat(
        &self,
        b: store::Beat,
        owned: impl FnOnce() -> (Vec<String>, Vec<(String, String)>),
    ) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if self.retired.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Behind Sentinel: which server is the primary, asked at start and after any failed
        // call (a dead primary, or one demoted by a failover: READONLY), not at every beat.
        if self.reachable_since.lock().is_none() {
            self.note(store.follow_primary().await)?;
        }
        if self.note(store.heartbeat(&self.node, &self.url, b).await)? {
            let (sessions, rpcs) = owned();
            if !sessions.is_empty() {
                tracing::info!(
                    sessions = sessions.len(),
                    "registering this node's sessions in the cluster store again"
                );
            }
            let rpcs = rpcs.iter().map(|(r, s)| (r.as_str(), s.as_str()));
            self.note(
                store
                    .resync(&self.node, sessions.iter().map(String::as_str), rpcs)
                    .await,
            )?;
        }
        let (nodes, dead) = self.note(store.nodes().await)?;
        *self.nodes.lock() = nodes;
        *self.dead.lock() = dead;
        Ok(())
    }

    /// Dead nodes whose sessions wait for adoption, as last read.
    pub fn dead_nodes(&self) -> Vec<String> {
        self.dead.lock().clone()
    }

    /// The sessions `node` owns.
    pub async fn sessions_of(&self, node: &str) -> Result<Vec<String>, Error> {
        match &self.store {
            Some(store) => self.note(store.sessions_of(node).await),
            None => Ok(Vec::new()),
        }
    }

    /// A dead node none of whose sessions is left leaves the list.
    pub async fn forget_node(&self, node: &str) {
        if let Some(store) = &self.store {
            let _ = self.note(store.forget_node(node).await);
        }
    }

    /// `node` did not answer: dead now if it also missed two heartbeats (its TTL need not run
    /// out first). True when it is dead.
    pub async fn bury(&self, node: &str) -> Result<bool, Error> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let beat = u64::try_from(self.node_ttl.as_millis() / 5).unwrap_or(1000);
        let buried = self.note(store.bury(node, crate::ids::now_ms(), 2 * beat + 200).await)?;
        if buried {
            tracing::warn!(%node, "a signaling node stopped answering; adopting its sessions");
        }
        Ok(buried)
    }

    /// Writes the snapshots of changed sessions this node owns.
    pub async fn put_snapshots(&self, snaps: &[(String, String)]) -> Result<(), Error> {
        match &self.store {
            Some(store) if !snaps.is_empty() => self.note(store.put_snapshots(snaps).await),
            _ => Ok(()),
        }
    }

    /// A session's last snapshot, written by its (maybe dead) owner.
    pub async fn snapshot(&self, session: &str) -> Result<Option<String>, Error> {
        match &self.store {
            Some(store) => self.note(store.snapshot(session).await),
            None => Ok(None),
        }
    }

    /// A clean stop with no session left: the others stop routing here at once.
    pub async fn leave(&self) {
        self.retired.store(true, Ordering::Relaxed);
        if let Some(store) = &self.store {
            let _ = store.leave(&self.node).await;
        }
    }

    /// Whether a stop can hand the sessions over: other nodes are alive and Redis answers.
    pub fn can_hand_over(&self) -> bool {
        self.enabled() && self.reachable() && !self.others().is_empty()
    }

    /// A clean stop handing the sessions over: this node is dead to the others at once (they
    /// adopt its sessions when their participants reconnect, or at their next heartbeat).
    pub async fn retire(&self) -> Result<(), Error> {
        self.retired.store(true, Ordering::Relaxed);
        match &self.store {
            Some(store) => self.note(store.retire(&self.node).await),
            None => Ok(()),
        }
    }
}

/// Health readings shared through Redis: one node reads each engine, the others take it.
struct SharedHealth {
    store: Arc<Store>,
    node: String,
}

impl crate::pool::health::HealthShare for SharedHealth {
    fn turn<'a>(
        &'a self,
        engine: &'a str,
        lease: Duration,
    ) -> futures::future::BoxFuture<'a, crate::pool::health::Turn> {
        use crate::pool::health::Turn;
        Box::pin(async move {
            match self.store.health_turn(engine, &self.node, lease).await {
                Ok(None) | Err(_) => Turn::Read,
                Ok(Some(json)) => Turn::Take(serde_json::from_str(&json).ok()),
            }
        })
    }

    fn publish<'a>(
        &'a self,
        engine: &'a str,
        s: crate::pool::health::SharedStats,
    ) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(json) = serde_json::to_string(&s) {
                let _ = self
                    .store
                    .put_health(engine, &json, Duration::from_secs(10))
                    .await;
            }
        })
    }
}

/// Keeps this node registered (every fifth of the node TTL) while the app lives; a Redis that
/// came back finds the node registered again at the next beat.
pub async fn run_heartbeat(app: Weak<App>, every: Duration) {
    let mut pool_applied = false;
    loop {
        let Some(app) = app.upgrade() else { return };
        if !app.cluster.enabled() {
            return;
        }
        let beat = {
            let reg = app.reg.lock();
            store::Beat {
                now_ms: crate::ids::now_ms(),
                started: app.cluster.started,
                sessions: reg.sessions.len() as u64,
                participants: reg.roster.len() as u64,
            }
        };
        let owned = || {
            let reg = app.reg.lock();
            let sessions: Vec<String> = reg.sessions.keys().cloned().collect();
            // Their snapshots are written again too.
            for s in &sessions {
                app.dirty.mark(s);
            }
            let rpcs = reg
                .roster
                .sessions_by_rpc()
                .map(|(r, s)| (r.to_string(), s.to_string()))
                .collect();
            (sessions, rpcs)
        };
        let beaten = app.cluster.beat(beat, owned).await.is_ok();
        if beaten && !pool_applied {
            // What operators changed in the pool before this node started.
            if let Ok(records) = app.cluster.pool_records().await {
                pool::apply(&app, records);
                pool_applied = true;
            }
        }
        if beaten && !app.cluster.dead_nodes().is_empty() {
            adopt::sweep(&app).await;
        }
        let shutdown = app.shutdown.clone();
        drop(app);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

//! Signaling's shared state and the lifecycle operations the REST API and the browser protocol
//! both use. Each session has one owner task (`owner.rs`) holding its record (connections,
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
use crate::core::{Attached, Hold, Holds, Notice, Roster};
use crate::error::Error;
use crate::ids;
use crate::media::{Bandwidth, Released, SessionMedia};
use crate::model::{Connection, ConnectionProps, Session, SessionProps};
use crate::owner::{Owner, Slot, Step};
use crate::pool::select::steer::Steer;
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

/// How a re-homing ended.
enum Rehomed {
    /// On a new pipeline: the old one (released when its engine still answers) and the far
    /// sites to release.
    Moved {
        old: kms_client::MediaPipeline,
        far: Released,
    },
    /// No engine could take the session: it is closed; its far sites are released.
    Nowhere(Released),
    /// The session was closed meanwhile.
    Closed,
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
        tokio::spawn(collect_garbage(Arc::downgrade(&app)));
        tokio::spawn(run_timers(Arc::downgrade(&app)));
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

    /// Sends to every active connection of a session except `except`.
    pub async fn broadcast(&self, session_id: &str, except: Option<&str>, n: &Notification) {
        let except = except.map(str::to_string);
        let to = self
            .on_session(session_id, move |s| s.audience(except.as_deref()))
            .await;
        if let Some(to) = to {
            self.deliver(&[Notice { to, n: n.clone() }]);
        }
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

    /// Places the session on an engine and creates its pipeline, once (first join). A failed
    /// placement lowers that engine's effective weight and the next admitted engine is tried.
    /// Placement is the session owner's transition: joins arriving meanwhile wait for it, not for
    /// a lock, and other sessions never do.
    pub async fn ensure_pipeline(self: &Arc<Self>, session_id: &str) -> Result<(), Error> {
        let closed = || Error::SessionClosed(session_id.to_string());
        let owner = self.session(session_id).ok_or_else(closed)?;
        let (outcome, placed) = tokio::sync::oneshot::channel();
        let (app, sid) = (self.clone(), session_id.to_string());
        owner
            .transition(move |slot| {
                let steer = match (&slot.record, &slot.media) {
                    (Some(s), None) => s.props.steer(),
                    (record, _) => {
                        let placed = record.is_some().then_some(());
                        let _ = outcome.send(placed.ok_or(Error::SessionClosed(sid)));
                        return None;
                    }
                };
                Some(Box::pin(async move {
                    let placed = app.place(&sid, &steer).await;
                    let step: Step<Session, SessionMedia> = Box::new(move |slot| {
                        let _ = outcome.send(app.commit_placement(&sid, slot, placed));
                    });
                    step
                }))
            })
            .await;
        placed.await.unwrap_or_else(|_| Err(closed()))
    }

    /// The placement's result, applied by the session's owner. The session may have been closed
    /// while the pipeline was being made: then nobody would ever release it, so it goes now.
    fn commit_placement(
        &self,
        session_id: &str,
        slot: &mut Slot<Session, SessionMedia>,
        placed: Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error>,
    ) -> Result<(), Error> {
        let (engine, client, pipeline) = placed?;
        let Some(record) = slot.record.as_mut() else {
            self.unclaim(pipeline.id());
            self.engine_left(&engine, session_id);
            tokio::spawn(async move {
                let _ = pipeline.release().await;
            });
            return Err(Error::SessionClosed(session_id.to_string()));
        };
        record.engine = Some(engine.clone());
        let m = SessionMedia::new(session_id.to_string(), engine, client, pipeline);
        self.relay_views
            .lock()
            .insert(session_id.to_string(), m.view.clone());
        slot.media = Some(m);
        self.changed(session_id);
        Ok(())
    }

    /// A new pipeline for `session_id` on an admitted engine (among those `steer` allows),
    /// claimed and tagged as ours.
    async fn place(
        &self,
        session_id: &str,
        steer: &Steer,
    ) -> Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error> {
        let mut tried = Vec::new();
        for _ in 0..self.pool.all().len().max(1) {
            let engine = match self.pick_engine(steer, &tried).await {
                Ok(e) => e,
                Err(why) => {
                    tracing::warn!(session = %session_id, %why, "no engine admitted");
                    return Err(Error::NoMediaNode(session_id.to_string()));
                }
            };
            match self.open_pipeline(&engine, session_id).await {
                Ok((client, pipeline)) => return Ok((engine.id.clone(), client, pipeline)),
                Err(e) => {
                    tracing::warn!(engine = %engine.id, %e, "placement failed");
                    self.pool.placement_failed(&engine);
                    tried.push(engine.id.clone());
                }
            }
        }
        Err(Error::NotPlaced(session_id.to_string()))
    }

    /// A new pipeline for `session_id` on `engine`, claimed and tagged as ours.
    async fn open_pipeline(
        &self,
        engine: &crate::pool::Engine,
        session_id: &str,
    ) -> Result<(kms_client::KurentoClient, kms_client::MediaPipeline), String> {
        let client = engine.client().ok_or("not connected")?;
        let pipeline = client.create_pipeline().await.map_err(|e| e.to_string())?;
        self.claim(pipeline.id(), session_id);
        engine.session_added(session_id);
        // Off the join path: until the tags land, the claim above marks it ours.
        let (p, me, s) = (
            pipeline.clone(),
            self.instance.clone(),
            session_id.to_string(),
        );
        tokio::spawn(async move { crate::ownership::tag(&p, &me, &s).await });
        Ok((client, pipeline))
    }

    /// A re-homed session that no engine admits goes to one it already spans (connected, not
    /// draining), over its endpoint limit: that engine carries part of the session already, and
    /// the session's far objects there are released by the move.
    async fn place_on_spanned(
        &self,
        session_id: &str,
        spanned: &[String],
    ) -> Option<(String, kms_client::KurentoClient, kms_client::MediaPipeline)> {
        for id in spanned {
            let Some(engine) = self.pool.get(id) else {
                continue;
            };
            let s = engine.snapshot();
            if !s.connected || s.status != crate::pool::Status::Running {
                continue;
            }
            if let Ok((client, pipeline)) = self.open_pipeline(&engine, session_id).await {
                return Some((engine.id.clone(), client, pipeline));
            }
        }
        None
    }

    /// The engine for a new session, among those it may go to (`mediaNode`, `mediaNodeLabels`):
    /// in a cluster with weighted round robin, the next one of the round robin all nodes share
    /// (among the engines this node admits and has not `tried`); otherwise, or when Redis cannot
    /// be asked, this node's own strategy.
    async fn pick_engine(
        &self,
        steer: &Steer,
        tried: &[String],
    ) -> Result<Arc<crate::pool::Engine>, String> {
        let shared = self.cluster.enabled()
            && self.settings.pool_strategy == rtcpool_config::Strategy::WeightedRoundRobin;
        if shared {
            let candidates: Vec<(String, u32)> = self
                .pool
                .admitted_soon(steer)
                .await
                .into_iter()
                .filter(|(e, _)| !tried.contains(&e.id))
                .map(|(e, w)| (e.id.clone(), w))
                .collect();
            match self.cluster.pick_engine(&candidates).await {
                Ok(Some(id)) => {
                    if let Some(e) = self.pool.get(&id) {
                        e.count(&e.picks);
                        return Ok(e);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%e, "shared round robin unavailable; picking locally"),
            }
        }
        self.pool.pick_soon_steered(steer).await
    }

    /// An engine was lost: every session it hosted moves to an admitted engine (participants keep
    /// their sockets and reconnect their streams), or, when none can take it, is closed with
    /// `nodeCrashed`.
    pub async fn rehome_engine(self: &Arc<Self>, engine_id: &str) {
        self.rehome_engine_now(engine_id, "nodeCrashed").await;
    }

    /// A session moved off `old_engine`: see `pool_client_nudge_ms` (close the sockets of the
    /// participants whose media is not back by then; openvidu-browser then reconnects the socket
    /// and every broken stream at once) and `pool_stale_stream_ms` (publishers that never came
    /// back stop being advertised). Run by `run_timers`.
    pub(crate) fn schedule_holds(&self, session_id: &str, old_engine: &str) {
        let dropped_at = self
            .pool
            .get(old_engine)
            .and_then(|e| e.snapshot().disconnection_time)
            .unwrap_or_else(crate::ids::now_ms);
        let since_drop = Duration::from_millis(crate::ids::now_ms().saturating_sub(dropped_at));
        let now = tokio::time::Instant::now().into_std();
        self.reg.lock().holds.rehomed(
            session_id,
            now,
            since_drop,
            Duration::from_millis(self.settings.pool_client_nudge_ms),
            Duration::from_millis(self.settings.pool_stale_stream_ms),
        );
        self.timers_changed.notify_one();
    }

    /// The nudge of a re-homed session fell due: the participants whose media is not back yet
    /// are told to reconnect (their socket is closed).
    async fn nudge(&self, session_id: &str) {
        let Some(owner) = self.session(session_id) else {
            return;
        };
        let unsettled = owner
            .slot(true, |slot| {
                let (s, m) = (slot.record.as_ref()?, slot.media.as_ref()?);
                let rpcs = m.unsettled.iter().filter_map(|c| {
                    let rpc = s.connections.get(c)?.active.as_ref()?.rpc.clone();
                    Some((c.clone(), rpc))
                });
                Some(rpcs.collect::<Vec<_>>())
            })
            .await
            .flatten();
        let reg = self.reg.lock();
        for (c, rpc) in unsettled.unwrap_or_default() {
            if let Some(tx) = reg.roster.socket(&rpc) {
                tracing::info!(session = %session_id, connection = %c, "nudging participant to reconnect its media");
                let _ = tx.send(Outgoing::Close("media moved to another engine"));
            }
        }
    }

    /// The wait for a re-homed session's publishers ended: those that did not come back are
    /// unpublished.
    async fn unpublish_stale(self: &Arc<Self>, session_id: &str) {
        let Some(owner) = self.session(session_id) else {
            return;
        };
        let Some(stale) = owner.with(|m| m.stale_publishers()).await else {
            return;
        };
        for publisher in stale {
            tracing::info!(session = %session_id, connection = %publisher, "publisher did not come back after re-homing; unpublishing");
            let _ =
                crate::rpc::unpublish(self, session_id, &publisher, "mediaServerDisconnect", None)
                    .await;
        }
    }

    /// Moves every session off `engine_id`; sessions no engine can take are closed with `reason`.
    pub async fn rehome_engine_now(self: &Arc<Self>, engine_id: &str, reason: &str) {
        let old_alive = self
            .pool
            .get(engine_id)
            .is_some_and(|e| e.snapshot().connected);
        for (session_id, owner) in self.sessions() {
            let engine = engine_id.to_string();
            let on_it = owner
                .record(move |s| s.engine.as_ref() == Some(&engine))
                .await;
            if on_it != Some(true) {
                continue;
            }
            let engine = engine_id.to_string();
            self.rehome_session(&session_id, reason, old_alive, move |m| {
                m.engine_id == engine
            })
            .await;
        }
        self.drop_far_engine(engine_id, old_alive).await;
    }

    /// Moves one session to a new pipeline on an admitted engine (perhaps the same one), if
    /// `still_broken` holds for its media when the move starts (another path may have moved it
    /// already). Participants keep their sockets and reconnect their streams; a session no engine
    /// can take is closed with `reason`. `release_old`: the old pipeline's engine still answers,
    /// so the old pipeline is released. The move is a transition of the session's media owner:
    /// the session's other steps wait for it, reads and other sessions do not.
    pub async fn rehome_session(
        self: &Arc<Self>,
        session_id: &str,
        reason: &str,
        release_old: bool,
        still_broken: impl FnOnce(&SessionMedia) -> bool + Send + 'static,
    ) {
        let Some(owner) = self.session(session_id) else {
            return;
        };
        let (outcome, moved) = tokio::sync::oneshot::channel();
        let (app, sid) = (self.clone(), session_id.to_string());
        owner
            .transition(move |slot| {
                let steer = slot.record.as_ref()?.props.steer();
                let far = slot
                    .media
                    .as_ref()
                    .filter(|m| still_broken(m))?
                    .far_engines();
                Some(Box::pin(async move {
                    let placed = match app.place(&sid, &steer).await {
                        Err(e) => match app.place_on_spanned(&sid, &far).await {
                            Some(p) => Ok(p),
                            None => Err(e),
                        },
                        ok => ok,
                    };
                    let step: Step<Session, SessionMedia> = Box::new(move |slot| {
                        let _ = outcome.send(app.commit_rehoming(&sid, slot, placed));
                    });
                    step
                }))
            })
            .await;
        match moved.await {
            Ok(Rehomed::Moved { old, far }) => {
                if release_old {
                    // Drained on purpose: the old engine still holds the session's objects.
                    let _ = tokio::time::timeout(Duration::from_secs(2), old.release()).await;
                }
                // The far sites go; relays are rebuilt from the new engine as subscribers come
                // back.
                self.release(session_id, far).await;
            }
            Ok(Rehomed::Nowhere(far)) => {
                // The engines the session spanned may still answer.
                self.release(session_id, far).await;
                self.close_session(session_id, reason).await;
            }
            Ok(Rehomed::Closed) | Err(_) => {}
        }
    }

    /// A re-homing's placement, applied by the session's owner.
    fn commit_rehoming(
        &self,
        session_id: &str,
        slot: &mut Slot<Session, SessionMedia>,
        placed: Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error>,
    ) -> Rehomed {
        let (Some(record), Some(m)) = (slot.record.as_mut(), slot.media.as_mut()) else {
            // Closed while the new pipeline was being made.
            if let Ok((engine, _, pipeline)) = placed {
                self.unclaim(pipeline.id());
                self.engine_left(&engine, session_id);
                tokio::spawn(async move {
                    let _ = pipeline.release().await;
                });
            }
            return Rehomed::Closed;
        };
        match placed {
            Ok((new_engine, client, pipeline)) => {
                let old = m.pipeline.clone();
                let (old_engine, far) = m.rehome(new_engine.clone(), client, pipeline);
                tracing::info!(session = %session_id, from = %old_engine, to = %new_engine, "session re-homed");
                self.unclaim(old.id());
                if let Some(e) = self.pool.get(&old_engine) {
                    e.session_removed(session_id);
                }
                record.engine = Some(new_engine);
                self.changed(session_id);
                self.schedule_holds(session_id, &old_engine);
                Rehomed::Moved { old, far }
            }
            Err(e) => {
                tracing::warn!(session = %session_id, error = %e, "no engine can take the session; closing it");
                let far = slot.media.take().map(|mut m| {
                    self.unclaim(m.pipeline.id());
                    m.take_far()
                });
                Rehomed::Nowhere(far.unwrap_or_default())
            }
        }
    }

    // ---- leaving -------------------------------------------------------------------------

    /// Removes a participant: others get `participantLeft` (and, when `evicted`, everyone incl.
    /// the evicted one gets `participantEvicted`); its engine objects are released; the session
    /// closes when its last participant goes.
    pub async fn remove_participant(
        &self,
        session_id: &str,
        connection_id: &str,
        reason: &str,
        evicted: bool,
    ) {
        let (reg, webhook) = (self.reg.clone(), self.webhook.clone());
        let (connection, why) = (connection_id.to_string(), reason.to_string());
        // The record and the roster change in one step of the session's owner.
        let departed = self
            .on_session(session_id, move |s| {
                let d = s.depart(&connection, &why, evicted)?;
                let mut reg = reg.lock();
                // Delivered before the participant leaves the roster: an evicted one hears it too.
                reg.deliver(&d.notices);
                webhook.departure(s, &d.gone, &d.cut, &why);
                let socket = d.rpc.as_ref().and_then(|r| reg.roster.remove(r)?.socket);
                Some((d.rpc, d.empty, socket))
            })
            .await
            .flatten();
        let Some((rpc, empty, socket)) = departed else {
            return;
        };
        if let Some(r) = &rpc {
            self.cluster.participant_left(r);
        }
        if let (true, Some(Attached { tx, .. })) = (evicted, socket) {
            // OpenVidu closes the evicted socket after a grace period; the client leaves on
            // the notification.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let _ = tx.send(Outgoing::Close("evicted"));
            });
        }
        let connection = connection_id.to_string();
        self.release_detached(session_id, move |m| Some(m.detach_participant(&connection)))
            .await;
        if empty {
            let reason = Some("lastParticipantLeft");
            self.close_session_where(session_id, reason, |s| {
                s.active().next().is_none() && s.engine.is_some()
            })
            .await;
        }
    }

    /// `DELETE /sessions/{id}` and shutdown: every participant is evicted with `reason`, the
    /// pipeline released, the session removed. False when the session is unknown.
    pub async fn close_session(&self, session_id: &str, reason: &str) -> bool {
        self.close_session_where(session_id, Some(reason), |_| true)
            .await
    }

    /// Closes the session if `when` holds for its record then (the last participant left: the
    /// session and its pipeline go, as OpenVidu destroys it). In one step of its owner the
    /// record and media are taken, every participant still there hears `reason` and leaves the
    /// roster, the webhook hears it, and the session leaves the index; its engine objects are
    /// released after. No `reason`: the session goes silently (OpenVidu's garbage collection of
    /// sessions nobody joined).
    async fn close_session_where(
        &self,
        session_id: &str,
        reason: Option<&str>,
        when: impl FnOnce(&Session) -> bool + Send + 'static,
    ) -> bool {
        let Some(owner) = self.session(session_id) else {
            return false;
        };
        let (reg, webhook, me) = (self.reg.clone(), self.webhook.clone(), owner.clone());
        let (sid, why) = (session_id.to_string(), reason.map(str::to_string));
        let closed = owner
            .slot(false, move |slot| {
                if !when(slot.record.as_ref()?) {
                    return None;
                }
                let (s, media) = (slot.record.take()?, slot.media.take());
                let mut reg = reg.lock();
                if reg.sessions.get(&sid).is_some_and(|o| o.same(&me)) {
                    reg.sessions.remove(&sid);
                }
                reg.holds.forget(&sid);
                let (notices, rpcs) = s.close(why.as_deref().unwrap_or_default());
                reg.deliver(&notices);
                for r in &rpcs {
                    reg.roster.remove(r);
                }
                if let Some(why) = &why {
                    webhook.session_closed(&s, why);
                }
                Some((s.engine, rpcs, media))
            })
            .await
            .flatten();
        let Some((engine, rpcs, media)) = closed else {
            return false;
        };
        self.cluster.session_closed(session_id);
        for r in &rpcs {
            self.cluster.participant_left(r);
        }
        self.relay_views.lock().remove(session_id);
        if let Some(mut m) = media {
            self.unclaim(m.pipeline.id());
            let far = m.take_far();
            self.release(session_id, far).await;
            m.release_all().await;
        }
        if let Some(engine) = engine {
            self.engine_left(&engine, session_id);
        }
        true
    }

    /// `mediaNodeStatusChanged` of `engine` from `old` to `new`.
    pub fn hook_node_status(&self, engine: &crate::pool::EngineSnapshot, old: &str, new: &str) {
        let f = events::node_status(engine, old, new);
        self.webhook.emit("mediaNodeStatusChanged", None, f);
    }

    /// Every session, closed with `reason` (graceful shutdown).
    pub async fn close_all(&self, reason: &str) {
        let ids: Vec<String> = self.reg.lock().sessions.keys().cloned().collect();
        for id in ids {
            self.close_session(&id, reason).await;
        }
    }

    /// A socket dropped: its participant keeps its place for the reconnection window, then is
    /// evicted with `networkDisconnect` (`evict_lapsed`).
    pub fn socket_lost(&self, rpc: &str, socket: u64) {
        let now = tokio::time::Instant::now().into_std();
        if self.reg.lock().roster.detach(rpc, socket, now) {
            self.timers_changed.notify_one();
        }
    }
}

/// Runs what falls due: participants whose reconnection window lapsed are evicted
/// (`networkDisconnect`), re-homed sessions' nudges and stale-stream waits end. Sleeps until
/// the next deadline.
async fn run_timers(app: std::sync::Weak<App>) {
    loop {
        let Some(strong) = app.upgrade() else { return };
        // `notify_one` leaves a permit when nobody waits, so a change made after this read
        // still wakes the wait below.
        let (changed, shutdown) = (strong.timers_changed.clone(), strong.shutdown.clone());
        let next = {
            let mut reg = strong.reg.lock();
            match (reg.roster.next_deadline(), reg.holds.earliest()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        drop(strong);
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let until = next.map_or(far, tokio::time::Instant::from_std);
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = changed.notified() => continue,
            _ = shutdown.cancelled() => return,
        }
        let Some(app) = app.upgrade() else { return };
        let now = tokio::time::Instant::now().into_std();
        let (gone, holds) = {
            let mut reg = app.reg.lock();
            (reg.roster.lapsed(now), reg.holds.due(now))
        };
        for m in gone {
            tracing::info!(session = %m.session_id, connection = %m.connection_id, "participant did not reconnect; evicting");
            app.remove_participant(&m.session_id, &m.connection_id, "networkDisconnect", false)
                .await;
        }
        for h in holds {
            match h {
                Hold::Nudge { session } => app.nudge(&session).await,
                Hold::StaleStreams { session } => app.unpublish_stale(&session).await,
            }
        }
    }
}

/// Drops sessions created by REST that nobody joined within the threshold (OpenVidu's
/// `OPENVIDU_SESSIONS_GARBAGE_*`; silently, as OpenVidu: no webhook event), releasing their id
/// in a cluster too.
async fn collect_garbage(app: std::sync::Weak<App>) {
    let Some(interval) = app
        .upgrade()
        .map(|a| Duration::from_secs(a.settings.openvidu_sessions_garbage_interval))
    else {
        return;
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(app) = app.upgrade() else { return };
        if app.shutdown.is_cancelled() {
            return;
        }
        let threshold_ms = app.settings.openvidu_sessions_garbage_threshold * 1000;
        let now = ids::now_ms();
        for (id, _) in app.sessions() {
            let unused = move |s: &Session| {
                s.engine.is_none()
                    && s.active().next().is_none()
                    && now.saturating_sub(s.created_at) >= threshold_ms
            };
            app.close_session_where(&id, None, unused).await;
        }
    }
}

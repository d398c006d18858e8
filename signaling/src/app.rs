//! Signaling's shared state and the lifecycle operations the REST API and the browser protocol
//! both use. The registry lock guards the sessions' plain state and is never held across an
//! `.await`; each session's media has one owner task (`media/owner.rs`) that applies its
//! changes in order and runs placement and re-homing as transitions, so nothing waits on a lock
//! across an engine round trip.

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
use crate::media::owner::{Owner, Slot, Step};
use crate::media::{Bandwidth, Released, SessionMedia};
use crate::model::{Connection, ConnectionProps, Publisher, Session, SessionProps};
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
    pub sessions: BTreeMap<String, Session>,
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

/// The handle to a session media's owner task.
pub(crate) type MediaOwner = Owner<SessionMedia>;

pub struct App {
    /// This process's identity, tagged on every pipeline it creates (`ownership.rs`); its node
    /// id in a cluster.
    pub instance: String,
    /// The other signaling nodes, when there are any (`cluster/`).
    pub cluster: Cluster,
    /// Which session each of our live pipelines belongs to (pipeline id → session id).
    pub(crate) pipelines: Mutex<HashMap<String, String>>,
    pub settings: SignalingSettings,
    pub reg: Mutex<Registry>,
    /// Each session's media owner (a map lookup under this lock, never held across `.await`).
    media: Mutex<HashMap<String, MediaOwner>>,
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
            reg: Mutex::new(Registry::new()),
            media: Mutex::new(HashMap::new()),
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
        let mut reg = self.reg.lock();
        if reg.sessions.contains_key(&id) {
            return Err(Error::SessionExists(id));
        }
        let s = Session::new(id.clone(), props, ids::now_ms());
        let json = s.rest_json(false);
        self.webhook
            .emit("sessionCreated", Some((&id, s.created_at)), Map::new());
        self.changed(&id);
        reg.sessions.insert(id, s);
        Ok(json)
    }

    /// `POST /sessions/{id}/connection`: a pending connection with its token.
    pub fn create_connection(&self, session_id: &str, props: ConnectionProps) -> Option<Value> {
        let mut reg = self.reg.lock();
        let s = reg.sessions.get_mut(session_id)?;
        let id = ids::connection_id();
        let token = format!(
            "{}?sessionId={}&token={}",
            self.settings.public_ws_url(),
            session_id,
            ids::token_id()
        );
        let c = Connection {
            id,
            token,
            props,
            created_at: ids::now_ms(),
            active: None,
            publisher: None,
            subscriptions: Vec::new(),
        };
        let json = c.rest_json(session_id);
        s.add(c);
        self.changed(session_id);
        Some(json)
    }

    /// `session_id` changed: in a cluster its snapshot is written again shortly.
    pub fn changed(&self, session_id: &str) {
        if self.cluster.enabled() {
            self.dirty.mark(session_id);
        }
    }

    // ---- notifications -------------------------------------------------------------------

    /// Sends to one connection of a session (if it has a live socket).
    pub fn send_to(&self, session_id: &str, connection_id: &str, n: &Notification) {
        let reg = self.reg.lock();
        let rpc = reg
            .sessions
            .get(session_id)
            .and_then(|s| s.connections.get(connection_id))
            .and_then(|c| c.active.as_ref())
            .map(|a| a.rpc.clone());
        if let Some(tx) = rpc.and_then(|r| reg.roster.socket(&r)) {
            let _ = tx.send(Outgoing::Text(n.to_text()));
        }
    }

    /// Delivers notices from the session core to the participants' sockets (those on one now).
    pub fn deliver(&self, notices: &[Notice]) {
        self.reg.lock().deliver(notices);
    }

    /// Sends to every active connection of a session except `except`.
    pub fn broadcast(&self, session_id: &str, except: Option<&str>, n: &Notification) {
        let text = n.to_text();
        let reg = self.reg.lock();
        let Some(s) = reg.sessions.get(session_id) else {
            return;
        };
        for c in s.active().filter(|c| Some(c.id.as_str()) != except) {
            let tx = c.active.as_ref().and_then(|a| reg.roster.socket(&a.rpc));
            if let Some(tx) = tx {
                let _ = tx.send(Outgoing::Text(text.clone()));
            }
        }
    }

    // ---- media -------------------------------------------------------------------------

    /// Every session's media owner (for the rare walks over all sessions' media).
    pub(crate) fn media_owners(&self) -> Vec<(String, MediaOwner)> {
        self.media
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The owner of the session's media, started when it has none yet (its first join).
    fn media_owner(&self, session_id: &str) -> MediaOwner {
        self.media
            .lock()
            .entry(session_id.to_string())
            .or_insert_with(|| Owner::spawn(None))
            .clone()
    }

    /// The owner of the session's media, if it has one.
    pub(crate) fn existing_media(&self, session_id: &str) -> Option<MediaOwner> {
        self.media.lock().get(session_id).cloned()
    }

    fn take_media_owner(&self, session_id: &str) -> Option<MediaOwner> {
        self.media.lock().remove(session_id)
    }

    /// Gives the session the media a node adopting it rebuilt (`cluster/adopt.rs`).
    pub(crate) async fn install_media(&self, session_id: &str, m: SessionMedia) {
        self.relay_views
            .lock()
            .insert(session_id.to_string(), m.view.clone());
        let owner = self.media_owner(session_id);
        let clash = owner
            .slot(true, move |s| match s.media {
                Some(_) => Some(m),
                None => {
                    s.media = Some(m);
                    None
                }
            })
            .await
            .flatten();
        if let Some(m) = clash {
            tracing::warn!(session = %session_id, "adopted media for a session that has some; releasing the adopted objects");
            self.unclaim(m.pipeline.id());
            m.release_all().await;
        }
    }

    /// Takes engine objects out of the session's media (`take`, a step of its owner) and releases
    /// them after.
    pub async fn release_detached(
        &self,
        session_id: &str,
        take: impl FnOnce(&mut SessionMedia) -> Option<Released> + Send + 'static,
    ) {
        let gone = match self.existing_media(session_id) {
            Some(owner) => owner.with(take).await.flatten(),
            None => None,
        };
        self.changed(session_id);
        if let Some(gone) = gone {
            self.release(session_id, gone).await;
        }
    }

    /// Whether `connection` is still a joined participant of `session_id` (it may have left
    /// while its engine work ran).
    pub fn still_joined(&self, session_id: &str, connection: &str) -> bool {
        self.reg
            .lock()
            .sessions
            .get(session_id)
            .and_then(|s| s.connections.get(connection))
            .is_some_and(|c| c.active.is_some())
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
    /// Placement is the media owner's transition: joins arriving meanwhile wait for it, not for
    /// a lock, and other sessions never do.
    pub async fn ensure_pipeline(self: &Arc<Self>, session_id: &str) -> Result<(), Error> {
        if !self.reg.lock().sessions.contains_key(session_id) {
            return Err(Error::SessionClosed(session_id.to_string()));
        }
        let owner = self.media_owner(session_id);
        let (outcome, placed) = tokio::sync::oneshot::channel();
        let (app, sid, me) = (self.clone(), session_id.to_string(), owner.clone());
        owner
            .transition(move |slot| {
                if slot.media.is_some() || slot.closed {
                    let done = slot.media.is_some();
                    let _ = outcome.send(done.then_some(()).ok_or(Error::SessionClosed(sid)));
                    return None;
                }
                Some(Box::pin(async move {
                    let placed = app.place(&sid).await;
                    let step: Step<SessionMedia> = Box::new(move |slot| {
                        let _ = outcome.send(app.commit_placement(&sid, &me, slot, placed));
                    });
                    step
                }))
            })
            .await;
        placed
            .await
            .unwrap_or_else(|_| Err(Error::SessionClosed(session_id.to_string())))
    }

    /// The placement's result, applied by the session's media owner. The session may have been
    /// closed while the pipeline was being made: then nobody would ever release it, so it goes
    /// now.
    fn commit_placement(
        &self,
        session_id: &str,
        me: &MediaOwner,
        slot: &mut Slot<SessionMedia>,
        placed: Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error>,
    ) -> Result<(), Error> {
        let (engine, client, pipeline) = placed?;
        let live = !slot.closed && {
            let mut reg = self.reg.lock();
            match reg.sessions.get_mut(session_id) {
                Some(s) => {
                    s.engine = Some(engine.clone());
                    true
                }
                None => false,
            }
        };
        if !live {
            // Drop the owner this join started for the closed session, if it is still there.
            {
                let mut owners = self.media.lock();
                if owners.get(session_id).is_some_and(|o| o.same(me)) {
                    owners.remove(session_id);
                }
            }
            self.unclaim(pipeline.id());
            if let Some(e) = self.pool.get(&engine) {
                e.session_removed(session_id);
            }
            tokio::spawn(async move {
                let _ = pipeline.release().await;
            });
            return Err(Error::SessionClosed(session_id.to_string()));
        }
        let m = SessionMedia::new(session_id.to_string(), engine, client, pipeline);
        self.relay_views
            .lock()
            .insert(session_id.to_string(), m.view.clone());
        slot.media = Some(m);
        self.changed(session_id);
        Ok(())
    }

    /// A new pipeline for `session_id` on an admitted engine, claimed and tagged as ours.
    async fn place(
        &self,
        session_id: &str,
    ) -> Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error> {
        let mut tried = Vec::new();
        for _ in 0..self.pool.all().len().max(1) {
            let engine = match self.pick_engine(session_id, &tried).await {
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
        session_id: &str,
        tried: &[String],
    ) -> Result<Arc<crate::pool::Engine>, String> {
        let steer = self
            .reg
            .lock()
            .sessions
            .get(session_id)
            .map(|s| s.props.steer())
            .unwrap_or_default();
        let shared = self.cluster.enabled()
            && self.settings.pool_strategy == rtcpool_config::Strategy::WeightedRoundRobin;
        if shared {
            let candidates: Vec<(String, u32)> = self
                .pool
                .admitted_soon(&steer)
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
        self.pool.pick_soon_steered(&steer).await
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

    /// The nudge of a re-homed session fell due.
    async fn nudge(&self, session_id: &str) {
        let Some(owner) = self.existing_media(session_id) else {
            return;
        };
        let unsettled = owner.with(|m| m.unsettled.clone()).await;
        let Some(unsettled) = unsettled else {
            return;
        };
        let reg = self.reg.lock();
        let Some(s) = reg.sessions.get(session_id) else {
            return;
        };
        for c in unsettled {
            let socket = s
                .connections
                .get(&c)
                .and_then(|c| c.active.as_ref())
                .and_then(|a| reg.roster.socket(&a.rpc));
            if let Some(tx) = socket {
                tracing::info!(session = %session_id, connection = %c, "nudging participant to reconnect its media");
                let _ = tx.send(Outgoing::Close("media moved to another engine"));
            }
        }
    }

    /// The wait for a re-homed session's publishers ended: those that did not come back are
    /// unpublished.
    async fn unpublish_stale(self: &Arc<Self>, session_id: &str) {
        let Some(owner) = self.existing_media(session_id) else {
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
        let sessions: Vec<String> = self
            .reg
            .lock()
            .sessions
            .values()
            .filter(|s| s.engine.as_deref() == Some(engine_id))
            .map(|s| s.id.clone())
            .collect();
        for session_id in sessions {
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
        let Some(owner) = self.existing_media(session_id) else {
            return;
        };
        let (outcome, moved) = tokio::sync::oneshot::channel();
        let (app, sid) = (self.clone(), session_id.to_string());
        owner
            .transition(move |slot| {
                let far = slot
                    .media
                    .as_ref()
                    .filter(|m| still_broken(m))?
                    .far_engines();
                Some(Box::pin(async move {
                    let placed = match app.place(&sid).await {
                        Err(e) => match app.place_on_spanned(&sid, &far).await {
                            Some(p) => Ok(p),
                            None => Err(e),
                        },
                        ok => ok,
                    };
                    let step: Step<SessionMedia> = Box::new(move |slot| {
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

    /// A re-homing's placement, applied by the session's media owner.
    fn commit_rehoming(
        &self,
        session_id: &str,
        slot: &mut Slot<SessionMedia>,
        placed: Result<(String, kms_client::KurentoClient, kms_client::MediaPipeline), Error>,
    ) -> Rehomed {
        let Some(m) = slot.media.as_mut() else {
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
                if let Some(s) = self.reg.lock().sessions.get_mut(session_id) {
                    s.engine = Some(new_engine);
                }
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
        let evicted_socket = {
            let mut reg = self.reg.lock();
            let Some(d) = reg
                .sessions
                .get_mut(session_id)
                .and_then(|s| s.depart(connection_id, reason, evicted))
            else {
                return;
            };
            // Delivered before the participant leaves the roster: an evicted one hears it too.
            reg.deliver(&d.notices);
            if let Some(s) = reg.sessions.get(session_id) {
                self.hook_departure(s, &d.gone, &d.cut, reason);
            }
            if let Some(r) = &d.rpc {
                self.cluster.participant_left(r);
            }
            d.rpc
                .and_then(|r| reg.roster.remove(&r))
                .and_then(|m| m.socket)
        };
        if let (true, Some(Attached { tx, .. })) = (evicted, evicted_socket) {
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
        let empty = self
            .reg
            .lock()
            .sessions
            .get(session_id)
            .is_none_or(|s| s.active().next().is_none());
        if empty {
            self.close_session_if_empty(session_id).await;
        }
    }

    /// The last participant left: the session and its pipeline go (OpenVidu destroys it).
    async fn close_session_if_empty(&self, session_id: &str) {
        let engine = {
            let mut reg = self.reg.lock();
            let Some(s) = reg.sessions.get(session_id) else {
                return;
            };
            if s.active().next().is_some() || s.engine.is_none() {
                return;
            }
            reg.holds.forget(session_id);
            let s = reg.sessions.remove(session_id);
            self.cluster.session_closed(session_id);
            if let Some(s) = &s {
                let fields = events::session_destroyed(s, "lastParticipantLeft", ids::now_ms());
                self.webhook
                    .emit("sessionDestroyed", Some((&s.id, s.created_at)), fields);
            }
            s.and_then(|s| s.engine)
        };
        self.release_media(session_id, engine).await;
    }

    async fn release_media(&self, session_id: &str, engine: Option<String>) {
        self.relay_views.lock().remove(session_id);
        if let Some(owner) = self.take_media_owner(session_id) {
            if let Some(mut m) = owner.close().await {
                self.unclaim(m.pipeline.id());
                let far = m.take_far();
                self.release(session_id, far).await;
                m.release_all().await;
            }
        }
        if let Some(engine) = engine {
            self.engine_left(&engine, session_id);
        }
    }

    /// `DELETE /sessions/{id}` and shutdown: every participant is evicted with `reason`, the
    /// pipeline released, the session removed. False when the session is unknown.
    pub async fn close_session(&self, session_id: &str, reason: &str) -> bool {
        let engine = {
            let mut reg = self.reg.lock();
            let Some(s) = reg.sessions.remove(session_id) else {
                return false;
            };
            self.cluster.session_closed(session_id);
            reg.holds.forget(session_id);
            let (notices, rpcs) = s.close(reason);
            reg.deliver(&notices);
            self.hook_close(&s, reason);
            for r in &rpcs {
                reg.roster.remove(r);
                self.cluster.participant_left(r);
            }
            s.engine
        };
        self.release_media(session_id, engine).await;
        true
    }

    /// Webhook events of a participant that left `s` (already out of it): the streams it
    /// published (and the others' subscriptions to it) and received, then `participantLeft`.
    fn hook_departure(&self, s: &Session, gone: &Connection, cut: &[(String, u64)], reason: &str) {
        if !self.webhook.enabled() {
            return;
        }
        let now = ids::now_ms();
        let session = Some((s.id.as_str(), s.created_at));
        let destroyed = "webrtcConnectionDestroyed";
        if let Some(p) = &gone.publisher {
            self.hook_stream_ended((&s.id, s.created_at), &gone.id, p, cut, reason);
        }
        for (stream, since) in &gone.subscriptions {
            let Some(owner) = s.by_stream(stream) else {
                continue;
            };
            if let Some(p) = &owner.publisher {
                let f = events::webrtc_connection(
                    &owner.id,
                    p,
                    Some(&gone.id),
                    *since,
                    Some((reason, now)),
                );
                self.webhook.emit(destroyed, session, f);
            }
        }
        let f = events::participant(gone, Some((reason, now)));
        self.webhook.emit("participantLeft", session, f);
    }

    /// Webhook events of a session closed with `reason`: every participant's streams and
    /// departure, then `sessionDestroyed`.
    fn hook_close(&self, s: &Session, reason: &str) {
        if !self.webhook.enabled() {
            return;
        }
        for c in s.active() {
            if let Some(p) = &c.publisher {
                // Its subscribers' ends are reported with their own departures below.
                self.hook_stream_ended((&s.id, s.created_at), &c.id, p, &[], reason);
            }
            // Its subscriptions and its departure (its own stream was just reported).
            let mut own = c.clone();
            own.publisher = None;
            self.hook_departure(s, &own, &[], reason);
        }
        let f = events::session_destroyed(s, reason, ids::now_ms());
        self.webhook
            .emit("sessionDestroyed", Some((&s.id, s.created_at)), f);
    }

    /// `webrtcConnectionDestroyed` of `owner`'s stream `p` ended with `reason`: for each
    /// subscription to it in `cut` (subscriber, since), then for the publication itself.
    pub fn hook_stream_ended(
        &self,
        session: (&str, u64),
        owner: &str,
        p: &Publisher,
        cut: &[(String, u64)],
        reason: &str,
    ) {
        if !self.webhook.enabled() {
            return;
        }
        let now = ids::now_ms();
        let ended = Some((reason, now));
        for (sub, since) in cut {
            let f = events::webrtc_connection(owner, p, Some(sub), *since, ended);
            self.webhook
                .emit("webrtcConnectionDestroyed", Some(session), f);
        }
        let f = events::webrtc_connection(owner, p, None, p.created_at, ended);
        self.webhook
            .emit("webrtcConnectionDestroyed", Some(session), f);
    }

    /// `mediaNodeStatusChanged` of `engine` from `old` to `new`.
    pub fn hook_node_status(&self, engine: &crate::pool::EngineSnapshot, old: &str, new: &str) {
        let f = events::node_status(engine, old, new);
        self.webhook.emit("mediaNodeStatusChanged", None, f);
    }

    /// Every session, closed with `openviduServerStopped` (graceful shutdown).
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
/// `OPENVIDU_SESSIONS_GARBAGE_*`).
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
        let mut reg = app.reg.lock();
        reg.sessions.retain(|_, s| {
            s.engine.is_some()
                || s.active().next().is_some()
                || now.saturating_sub(s.created_at) < threshold_ms
        });
    }
}

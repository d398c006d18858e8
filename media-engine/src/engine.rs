//! The engine's shared state and the operations every RPC handler builds on: sessions and
//! sockets, object creation and the release cascade, and event delivery.

use kms_client::wire::events::{self, name, Event};
use kms_client::wire::{Class, ObjectId, OnEvent, RpcError, SessionId};
use parking_lot::Mutex;
use rtcpool_config::EngineSettings;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::{Objects, Sessions, SocketId};
use crate::media::endpoint::EndpointHandle;
use crate::media::flow::{now_millis, EventTx};
use crate::media::hub::Ports;
use crate::media::passthrough::PassThroughMedia;
use crate::media::worker::{Placement, Workers};

/// The media side of an object.
pub enum Media {
    /// A pipeline's seat on a media worker: its endpoints live there.
    Pipeline(Placement),
    Endpoint(EndpointHandle),
    PassThrough(PassThroughMedia),
}

impl Media {
    pub fn ports(&self) -> Option<Arc<Ports>> {
        match self {
            Media::Pipeline(_) => None,
            Media::Endpoint(e) => Some(e.ports.clone()),
            Media::PassThrough(p) => Some(p.ports.clone()),
        }
    }
}

/// A socket's outgoing queue (bounded in bytes: a client that stops reading is cut).
pub type SocketTx = kms_client::outbox::Outbox<String>;

/// What happened to sockets, for `/health`.
#[derive(Default)]
pub struct SocketStats {
    /// Upgrades and `/health` requests refused for a missing or wrong secret.
    pub refused: AtomicU64,
    /// Sockets closed because their client did not read (send queue overflow).
    pub closed_slow: AtomicU64,
    /// Sockets closed because their client sent nothing for `idle_timeout_secs`.
    pub closed_idle: AtomicU64,
}

/// Everything behind one lock. Held only for map look-ups and updates, never across an
/// `.await`: media work happens on the endpoint actors.
pub struct State {
    pub objects: Objects,
    pub sessions: Sessions,
    pub sockets: HashMap<SocketId, SocketTx>,
    pub media: HashMap<ObjectId, Media>,
}

pub struct Engine {
    pub settings: EngineSettings,
    pub server_id: String,
    pub state: Mutex<State>,
    pub workers: Workers,
    pub events: EventTx,
    pub cancel: CancellationToken,
    pub sockets_stats: SocketStats,
    next_socket: AtomicU64,
}

impl Engine {
    pub fn new(settings: EngineSettings, workers: Workers, cancel: CancellationToken) -> Arc<Self> {
        let (events, rx) = mpsc::unbounded_channel();
        let engine = Arc::new(Self {
            server_id: uuid::Uuid::new_v4().to_string(),
            state: Mutex::new(State {
                objects: Objects::new(unix_now()),
                sessions: Sessions::default(),
                sockets: HashMap::new(),
                media: HashMap::new(),
            }),
            settings,
            workers,
            events,
            cancel,
            sockets_stats: SocketStats::default(),
            next_socket: AtomicU64::new(1),
        });
        tokio::spawn(deliver_events(Arc::downgrade(&engine), rx));
        tokio::spawn(collect_expired_sessions(Arc::downgrade(&engine)));
        engine
    }

    pub fn register_socket(&self, tx: SocketTx) -> SocketId {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        self.state.lock().sockets.insert(id, tx);
        id
    }

    pub fn socket_closed(&self, socket: SocketId) {
        let mut st = self.state.lock();
        st.sockets.remove(&socket);
        st.sessions.detach(socket, Instant::now());
    }

    /// Makes `socket` carry `session`, unless the socket has closed meanwhile (a slow request
    /// that completes after its socket died must not tie the session to a dead socket: the
    /// session would never start its expiry window).
    pub fn bind(&self, session: &SessionId, socket: SocketId) {
        let mut st = self.state.lock();
        if st.sockets.contains_key(&socket) {
            st.sessions.bind(session, socket);
        } else {
            st.sessions.known_detached(session, Instant::now());
        }
    }

    pub fn session_exists(&self, session: &SessionId) -> bool {
        self.state.lock().sessions.exists(session)
    }

    /// Creates an object (and its media), announcing it to ServerManager subscribers.
    pub async fn create(
        &self,
        class: Class,
        pipeline: Option<&str>,
        session: &SessionId,
    ) -> Result<ObjectId, RpcError> {
        let limits = (self.settings.max_pipelines, self.settings.max_endpoints);
        let id = self
            .state
            .lock()
            .objects
            .create(class, pipeline, session, limits, unix_now())?;
        let media = match class {
            Class::WebRtcEndpoint => {
                let worker = match pipeline.and_then(|p| {
                    match self.state.lock().media.get(&ObjectId(p.to_string())) {
                        Some(Media::Pipeline(seat)) => Some(seat.worker.clone()),
                        _ => None,
                    }
                }) {
                    Some(w) => w,
                    None => self.workers.place().worker.clone(),
                };
                match EndpointHandle::spawn(
                    id.0.clone(),
                    self.workers.factory.clone(),
                    worker,
                    self.events.clone(),
                    &self.cancel,
                ) {
                    Ok(h) => Media::Endpoint(h),
                    Err(e) => {
                        self.state.lock().objects.release(id.as_str());
                        return Err(e);
                    }
                }
            }
            Class::PassThrough => Media::PassThrough(PassThroughMedia::spawn(&self.cancel)),
            _ => Media::Pipeline(self.workers.place()),
        };
        // The pipeline may have been released while the endpoint was being built.
        let orphan = {
            let mut st = self.state.lock();
            if st.objects.get(id.as_str()).is_err() {
                Some(media)
            } else {
                st.media.insert(id.clone(), media);
                None
            }
        };
        if let Some(media) = orphan {
            close_media(media).await;
            return Err(crate::core::not_found_error(pipeline.unwrap_or_default()));
        }
        self.emit_manager(name::OBJECT_CREATED, json!({"object": id.as_str()}));
        Ok(id)
    }

    /// Releases objects (pipelines with their children); unknown ids are ignored.
    pub async fn release(&self, ids: &[ObjectId]) {
        let mut doomed = Vec::new();
        {
            let mut st = self.state.lock();
            for id in ids {
                for (gone, _) in st.objects.release(id.as_str()) {
                    st.sessions.forget_object(&gone);
                    if let Some(m) = st.media.remove(&gone) {
                        doomed.push((gone, m));
                    }
                }
            }
        }
        for (id, media) in doomed {
            close_media(media).await;
            self.emit_manager(name::OBJECT_DESTROYED, json!({"objectId": id.as_str()}));
        }
    }

    pub fn endpoint(&self, id: &str) -> Option<EndpointHandle> {
        match self.state.lock().media.get(&ObjectId(id.to_string())) {
            Some(Media::Endpoint(h)) => Some(h.clone()),
            _ => None,
        }
    }

    pub fn ports(&self, id: &str) -> Option<Arc<Ports>> {
        self.state
            .lock()
            .media
            .get(&ObjectId(id.to_string()))
            .and_then(Media::ports)
    }

    pub fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn emit_manager(&self, kind: &'static str, fields: Value) {
        self.emit(events::build(
            ObjectId::server_manager().as_str(),
            kind,
            false,
            now_millis(),
            fields,
        ));
    }

    /// Releases the objects of sessions whose reconnection window has passed.
    async fn expire_sessions(&self) {
        let window = Duration::from_secs(self.settings.session_timeout_secs);
        let orphans = {
            let mut st = self.state.lock();
            let expired = st.sessions.expire(Instant::now(), window);
            let mut orphans = Vec::new();
            for s in &expired {
                tracing::info!(session = %s, "session expired; releasing its objects");
                orphans.extend(st.objects.unref_session(s));
            }
            orphans
        };
        self.release(&orphans).await;
    }

    /// Releases everything (shutdown).
    pub async fn release_all(&self) {
        let pipelines = self.state.lock().objects.pipelines();
        self.release(&pipelines).await;
    }
}

async fn close_media(media: Media) {
    match media {
        Media::Endpoint(h) => h.close().await,
        Media::PassThrough(p) => p.release(),
        Media::Pipeline(_) => {}
    }
}

/// Routes each event to the socket currently carrying every subscribed session.
async fn deliver_events(engine: std::sync::Weak<Engine>, mut rx: mpsc::UnboundedReceiver<Event>) {
    while let Some(mut ev) = rx.recv().await {
        let Some(engine) = engine.upgrade() else {
            break;
        };
        let st = engine.state.lock();
        let subscribers = st.sessions.subscribers(&ev.object, ev.kind);
        if subscribers.is_empty() {
            continue;
        }
        if let Ok(entry) = st.objects.get(&ev.object) {
            if entry.send_tags_in_events {
                let tags: Vec<Value> = entry
                    .tags
                    .iter()
                    .map(|(k, v)| kms_client::wire::complex::tag(k, v))
                    .collect();
                ev.data["tags"] = Value::Array(tags);
            }
        }
        let Ok(text) = serde_json::to_string(&OnEvent::new(&ev.object, ev.kind, ev.data)) else {
            continue;
        };
        for s in subscribers {
            if let Some(tx) = st
                .sessions
                .socket_of(&s)
                .and_then(|sock| st.sockets.get(&sock))
            {
                let _ = tx.send(text.clone());
            }
        }
    }
}

async fn collect_expired_sessions(engine: std::sync::Weak<Engine>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(engine) = engine.upgrade() else {
            break;
        };
        if engine.cancel.is_cancelled() {
            break;
        }
        engine.expire_sessions().await;
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

//! A session's media on its engine: one MediaPipeline; per publisher a WebRtcEndpoint feeding a
//! PassThrough; per subscription a WebRtcEndpoint fed from that PassThrough. ICE candidates are
//! relayed both ways with OpenVidu's endpoint naming; candidates that arrive before their
//! endpoint exists are held.

use kms_client::wire::IceCandidate;
use kms_client::{KurentoClient, MediaPipeline, PassThrough, Subscription, WebRtcEndpoint};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::rpc::wire::{Code, Notification, RpcError};

pub struct SessionMedia {
    pub session_id: String,
    pub engine_id: String,
    pub client: KurentoClient,
    pub pipeline: MediaPipeline,
    publishers: HashMap<String, PublisherMedia>,
    /// By (subscriber connection, publisher connection).
    subscribers: HashMap<(String, String), SubscriberMedia>,
    /// Candidates for endpoints not created yet, by (owner connection, endpointName).
    pending_ice: HashMap<(String, String), Vec<IceCandidate>>,
    /// Candidates recently given to an existing endpoint, by the same key: a browser renegotiating
    /// (`reconnectStream`) trickles its new candidates as soon as it has them, often before its
    /// request arrives, so they reach the endpoint being replaced; the new one gets them too.
    recent_ice: HashMap<(String, String), std::collections::VecDeque<(Instant, IceCandidate)>>,
    /// Publishers whose engine was lost: waiting for their `reconnectStream` on the new engine.
    stale_publishers: HashMap<String, String>,
    /// Woken whenever a publisher (re)publishes, for subscribers waiting on it.
    pub ready: Arc<Notify>,
    /// Since the last re-homing: participants that have not yet re-established their media.
    pub unsettled: std::collections::BTreeSet<String>,
    /// Bumped by each re-homing: work prepared against an older pipeline is not committed.
    generation: u64,
    /// Publishers whose (re)publication is being negotiated.
    publishing: std::collections::HashSet<String>,
}

/// Where a publisher's media stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherState {
    Live,
    /// Its engine was lost; it will come back with `reconnectStream`.
    Stale,
    Absent,
}

struct PublisherMedia {
    stream_id: String,
    endpoint: WebRtcEndpoint,
    hub: PassThrough,
    relay: JoinHandle<()>,
}

pub struct SubscriberMedia {
    endpoint: WebRtcEndpoint,
    relay: JoinHandle<()>,
}

/// A session's media as engine object ids: what a node adopting the session needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MediaIds {
    pub engine: String,
    pub pipeline: String,
    /// (publisher connection, stream id, endpoint, PassThrough).
    pub publishers: Vec<(String, String, String, String)>,
    /// (subscriber connection, publisher connection, endpoint).
    pub subscribers: Vec<(String, String, String)>,
}

/// How long candidates given to an endpoint are also offered to its replacement.
const RECENT_ICE: Duration = Duration::from_secs(10);

/// Bandwidth limits (kbps) applied to every endpoint, as OpenVidu does.
#[derive(Debug, Clone, Copy)]
pub struct Bandwidth {
    pub max_recv: u32,
    pub min_recv: u32,
    pub max_send: u32,
    pub min_send: u32,
}

/// An engine failure as the browser sees it: the cause is logged here once; the participant
/// gets a safe message (an SDP the engine refused, or a generic media error).
pub fn media_err(e: kms_client::ClientError) -> RpcError {
    tracing::warn!(%e, "engine operation failed");
    match e.code() {
        Some(c) if (40200..40300).contains(&c) => {
            RpcError::new(Code::MediaSdp, "The media server could not process the SDP")
        }
        _ => RpcError::new(Code::MediaEndpoint, "Media server error"),
    }
}

impl SessionMedia {
    pub fn new(
        session_id: String,
        engine_id: String,
        client: KurentoClient,
        pipeline: MediaPipeline,
    ) -> Self {
        Self {
            session_id,
            engine_id,
            client,
            pipeline,
            publishers: HashMap::new(),
            subscribers: HashMap::new(),
            pending_ice: HashMap::new(),
            recent_ice: HashMap::new(),
            stale_publishers: HashMap::new(),
            ready: Arc::new(Notify::new()),
            unsettled: Default::default(),
            generation: 0,
            publishing: Default::default(),
        }
    }

    pub fn ids(&self) -> MediaIds {
        let mut publishers: Vec<_> = self
            .publishers
            .iter()
            .map(|(owner, p)| {
                let (ep, hub) = (p.endpoint.id().to_string(), p.hub.id().to_string());
                (owner.clone(), p.stream_id.clone(), ep, hub)
            })
            .collect();
        publishers.sort();
        let mut subscribers: Vec<_> = self
            .subscribers
            .iter()
            .map(|((s, p), m)| (s.clone(), p.clone(), m.endpoint.id().to_string()))
            .collect();
        subscribers.sort();
        MediaIds {
            engine: self.engine_id.clone(),
            pipeline: self.pipeline.id().to_string(),
            publishers,
            subscribers,
        }
    }

    /// The media of a session adopted from a dead node, on `client` (this node's connection to
    /// the same engine): every object becomes this client's too (Kurento `ref`, or the event
    /// subscription that relays an endpoint's candidates), so it outlives the dead node's
    /// Kurento session. Nothing is renegotiated. Fails when the pipeline is gone.
    pub async fn adopt(
        app: Weak<App>,
        session_id: &str,
        ids: &MediaIds,
        client: KurentoClient,
    ) -> Result<Self, kms_client::ClientError> {
        let pipeline = MediaPipeline::from_id(client.clone(), ids.pipeline.clone());
        pipeline.hold().await?;
        let mut m = Self::new(
            session_id.to_string(),
            ids.engine.clone(),
            client.clone(),
            pipeline,
        );
        for (owner, stream_id, ep, hub) in &ids.publishers {
            let endpoint = WebRtcEndpoint::from_id(client.clone(), ep.clone());
            let hub = PassThrough::from_id(client.clone(), hub.clone());
            let _ = hub.hold().await;
            let relay = hold_relaying(&app, session_id, owner, owner, stream_id, &endpoint).await;
            let p = PublisherMedia {
                stream_id: stream_id.clone(),
                endpoint,
                hub,
                relay,
            };
            m.publishers.insert(owner.clone(), p);
        }
        for (subscriber, publisher, ep) in &ids.subscribers {
            let Some(stream) = m.publishers.get(publisher).map(|p| p.stream_id.clone()) else {
                continue;
            };
            let endpoint = WebRtcEndpoint::from_id(client.clone(), ep.clone());
            let name = format!("{subscriber}_{stream}");
            let relay =
                hold_relaying(&app, session_id, subscriber, publisher, &name, &endpoint).await;
            let key = (subscriber.clone(), publisher.clone());
            m.subscribers
                .insert(key, SubscriberMedia { endpoint, relay });
        }
        Ok(m)
    }

    /// The session moves to a new engine: the old engine's objects are gone with it, so every
    /// handle is dropped; publishers wait for their `reconnectStream`, and subscribers simply
    /// subscribe again (their `reconnectStream`). Returns the old engine id.
    pub fn rehome(
        &mut self,
        engine_id: String,
        client: KurentoClient,
        pipeline: MediaPipeline,
    ) -> String {
        for (owner, p) in self.publishers.drain() {
            p.relay.abort();
            self.unsettled.insert(owner.clone());
            self.stale_publishers.insert(owner, p.stream_id);
        }
        for ((subscriber, _), s) in self.subscribers.drain() {
            s.relay.abort();
            self.unsettled.insert(subscriber);
        }
        self.pending_ice.clear();
        self.recent_ice.clear();
        self.publishing.clear();
        self.client = client;
        self.pipeline = pipeline;
        self.generation += 1;
        std::mem::replace(&mut self.engine_id, engine_id)
    }

    /// Whether `object` (the pipeline, or an endpoint or PassThrough) is part of this session's
    /// live media.
    pub fn uses(&self, object: &str) -> bool {
        self.pipeline.id() == object
            || self
                .publishers
                .values()
                .any(|p| p.endpoint.id() == object || p.hub.id() == object)
            || self.subscribers.values().any(|s| s.endpoint.id() == object)
    }

    /// Publishers still waiting for their `reconnectStream` after a re-homing.
    pub fn stale_publishers(&self) -> Vec<String> {
        self.stale_publishers.keys().cloned().collect()
    }

    pub fn publisher_state(&self, publisher: &str) -> PublisherState {
        if self.publishers.contains_key(publisher) {
            PublisherState::Live
        } else if self.stale_publishers.contains_key(publisher) {
            PublisherState::Stale
        } else {
            PublisherState::Absent
        }
    }

    /// `publishVideo`, step 1 (under the session's lock): refuses a second publication and
    /// marks this one in progress; the engine work then runs without the lock
    /// (`PublicationPlan::negotiate`), and `commit_publication` or `abort_publication` ends it.
    pub fn plan_publication(
        &mut self,
        app: Weak<App>,
        owner: &str,
        stream_id: &str,
    ) -> Result<PublicationPlan, RpcError> {
        if self.publishers.contains_key(owner) || self.publishing.contains(owner) {
            return Err(RpcError::new(
                Code::UserAlreadyStreaming,
                "The user is already publishing",
            ));
        }
        Ok(self.new_plan(app, owner, stream_id.to_string(), None, false))
    }

    /// `reconnectStream` of a publisher, step 1: a fresh endpoint on the same PassThrough (the
    /// subscribers' endpoints stay as they are), or, when the session's engine was lost, a fresh
    /// publication with the same stream id on its new engine.
    pub fn plan_republication(
        &mut self,
        app: Weak<App>,
        owner: &str,
    ) -> Result<PublicationPlan, RpcError> {
        if self.publishing.contains(owner) {
            return Err(RpcError::new(
                Code::Generic,
                "A reconnection of this stream is in progress",
            ));
        }
        if let Some(stream_id) = self.stale_publishers.remove(owner) {
            return Ok(self.new_plan(app, owner, stream_id, None, true));
        }
        let Some(p) = self.publishers.get(owner) else {
            return Err(RpcError::new(
                Code::UserNotStreaming,
                "The user is not publishing",
            ));
        };
        let replaces = Some((p.hub.clone(), p.endpoint.clone()));
        let stream_id = p.stream_id.clone();
        Ok(self.new_plan(app, owner, stream_id, replaces, false))
    }

    fn new_plan(
        &mut self,
        app: Weak<App>,
        owner: &str,
        stream_id: String,
        replaces: Option<(PassThrough, WebRtcEndpoint)>,
        was_stale: bool,
    ) -> PublicationPlan {
        self.publishing.insert(owner.to_string());
        PublicationPlan {
            at: EndpointSite {
                app,
                session_id: self.session_id.clone(),
                pipeline: self.pipeline.clone(),
            },
            owner: owner.to_string(),
            stream_id,
            replaces,
            was_stale,
            generation: self.generation,
        }
    }

    /// A publication whose engine work failed: no longer in progress (a stale publisher stays
    /// stale).
    pub fn abort_publication(&mut self, failed: &PublicationFailed) {
        self.publishing.remove(&failed.owner);
        if failed.was_stale && failed.generation == self.generation {
            self.stale_publishers
                .insert(failed.owner.clone(), failed.stream_id.clone());
        }
    }

    /// Step 3 (under the lock again): the negotiated endpoint publishes, unless the session
    /// moved or (for a replacement) the stream ended meanwhile. Returns what is to be done
    /// without the lock: the endpoint it replaces, to release, and the candidates that arrived
    /// for it meanwhile (with those recently given to the one it replaces).
    pub fn commit_publication(
        &mut self,
        n: NegotiatedPublication,
    ) -> Result<(Option<WebRtcEndpoint>, Vec<IceCandidate>, WebRtcEndpoint), Released> {
        self.publishing.remove(&n.owner);
        let replaced_live = match &n.replaces {
            None => true,
            Some(hub_id) => self
                .publishers
                .get(&n.owner)
                .is_some_and(|p| p.hub.id() == hub_id),
        };
        if n.generation != self.generation || !replaced_live {
            return Err(Released::from(n));
        }
        self.unsettled.remove(&n.owner);
        let held = self.take_held_ice(&(n.owner.clone(), n.owner.clone()));
        let endpoint = n.endpoint.clone();
        let new = PublisherMedia {
            stream_id: n.stream_id,
            endpoint: n.endpoint,
            hub: n.hub,
            relay: n.relay,
        };
        let old = self.publishers.insert(n.owner, new).map(|old| {
            old.relay.abort();
            old.endpoint
        });
        self.ready.notify_waiters();
        Ok((old, held, endpoint))
    }

    /// `receiveVideoFrom` (client offer), step 1 (under the session's lock): what a subscription
    /// to `publisher` needs, taken so the engine work can run without the lock.
    pub fn plan_subscription(
        &self,
        app: Weak<App>,
        subscriber: &str,
        publisher: &str,
    ) -> Result<SubscriptionPlan, RpcError> {
        let Some(p) = self.publishers.get(publisher) else {
            return Err(RpcError::new(
                Code::UserNotStreaming,
                format!("Connection {publisher} is not publishing"),
            ));
        };
        Ok(SubscriptionPlan {
            at: EndpointSite {
                app,
                session_id: self.session_id.clone(),
                pipeline: self.pipeline.clone(),
            },
            subscriber: subscriber.to_string(),
            publisher: publisher.to_string(),
            hub: p.hub.clone(),
            name: format!("{subscriber}_{}", p.stream_id),
            generation: self.generation,
        })
    }

    /// Step 3 (under the lock again): the negotiated endpoint becomes the subscription, replacing
    /// an older one (make before break), unless the session moved or the publisher went meanwhile.
    /// Returns what is to be done without the lock: the replaced subscription to release and the
    /// candidates that arrived for the new endpoint while it was being made.
    pub fn commit_subscription(
        &mut self,
        s: NegotiatedSubscription,
    ) -> Result<(Option<SubscriberMedia>, Vec<IceCandidate>, WebRtcEndpoint), Released> {
        let current = self
            .publishers
            .get(&s.publisher)
            .is_some_and(|p| p.hub.id() == s.hub_id);
        if s.generation != self.generation || !current {
            return Err(Released::from(s));
        }
        self.unsettled.remove(&s.subscriber);
        let key = (s.subscriber, s.publisher);
        let held = self.take_held_ice(&key);
        let endpoint = s.media.endpoint.clone();
        let old = self.subscribers.insert(key, s.media);
        Ok((old, held, endpoint))
    }

    /// Candidates for the endpoint `key` names that arrived before it existed (and, for a
    /// replacement, those recently given to the one it replaces).
    fn take_held_ice(&mut self, key: &(String, String)) -> Vec<IceCandidate> {
        let recent = self.recent_ice.remove(key).unwrap_or_default();
        let fresh = recent
            .into_iter()
            .filter(|(at, _)| at.elapsed() < RECENT_ICE)
            .map(|(_, c)| c);
        let held = self.pending_ice.remove(key).unwrap_or_default();
        fresh.chain(held).collect()
    }

    /// `onIceCandidate`, under the lock: `endpoint_name` is the connection id of the stream's
    /// owner. Returns the endpoint to give the candidate to (without the lock), or holds the
    /// candidate until that endpoint exists.
    pub fn route_ice_candidate(
        &mut self,
        caller: &str,
        endpoint_name: &str,
        c: &IceCandidate,
    ) -> Option<WebRtcEndpoint> {
        let key = (caller.to_string(), endpoint_name.to_string());
        let ep = if caller == endpoint_name {
            self.publishers.get(caller).map(|p| p.endpoint.clone())
        } else {
            self.subscribers.get(&key).map(|s| s.endpoint.clone())
        };
        match ep {
            Some(ep) => {
                let recent = self.recent_ice.entry(key).or_default();
                if recent.len() >= 32 {
                    recent.pop_front();
                }
                recent.push_back((Instant::now(), c.clone()));
                Some(ep)
            }
            None => {
                let held = self.pending_ice.entry(key).or_default();
                if held.len() < 64 {
                    held.push(c.clone());
                }
                None
            }
        }
    }

    /// Takes `publisher`'s endpoint and PassThrough and every subscription to it out of the
    /// session (their candidate relays stop now); the engine objects are released by the caller,
    /// without the session's lock (`Released::release`).
    pub fn detach_publisher(&mut self, publisher: &str) -> Released {
        let mut gone = Released::default();
        let keys: Vec<(String, String)> = self
            .subscribers
            .keys()
            .filter(|(_, p)| p == publisher)
            .cloned()
            .collect();
        for k in keys {
            if let Some(s) = self.subscribers.remove(&k) {
                gone.subscriber(s);
            }
        }
        if let Some(p) = self.publishers.remove(publisher) {
            p.relay.abort();
            gone.endpoints.push(p.endpoint);
            gone.hubs.push(p.hub);
        }
        self.stale_publishers.remove(publisher);
        self.pending_ice
            .retain(|(o, s), _| o != publisher && s != publisher);
        self.recent_ice
            .retain(|(o, s), _| o != publisher && s != publisher);
        gone
    }

    /// Takes one subscription out of the session (None when there is none).
    pub fn detach_subscription(&mut self, subscriber: &str, publisher: &str) -> Option<Released> {
        let s = self
            .subscribers
            .remove(&(subscriber.to_string(), publisher.to_string()))?;
        let mut gone = Released::default();
        gone.subscriber(s);
        Some(gone)
    }

    /// Takes everything a participant owns (its publication and its subscriptions) out of the
    /// session.
    pub fn detach_participant(&mut self, connection: &str) -> Released {
        let mut gone = self.detach_publisher(connection);
        let mine: Vec<(String, String)> = self
            .subscribers
            .keys()
            .filter(|(s, _)| s == connection)
            .cloned()
            .collect();
        for k in mine {
            if let Some(s) = self.subscribers.remove(&k) {
                gone.subscriber(s);
            }
        }
        self.pending_ice.retain(|(o, _), _| o != connection);
        self.recent_ice.retain(|(o, _), _| o != connection);
        gone
    }

    /// Releases the pipeline (the engine releases its children).
    pub async fn release_all(mut self) {
        for (_, p) in self.publishers.drain() {
            p.relay.abort();
        }
        for (_, s) in self.subscribers.drain() {
            s.relay.abort();
        }
        let _ = self.pipeline.release().await;
    }
}

/// An adopted endpoint: this client subscribes to its candidates (which also makes it one of
/// the endpoint's holders) and relays them to `owner`.
async fn hold_relaying(
    app: &Weak<App>,
    session: &str,
    owner: &str,
    sender: &str,
    name: &str,
    ep: &WebRtcEndpoint,
) -> JoinHandle<()> {
    match ep.subscribe("IceCandidateFound").await {
        Ok(found) => tokio::spawn(relay_candidates(
            app.clone(),
            session.to_string(),
            owner.to_string(),
            sender.to_string(),
            name.to_string(),
            found,
        )),
        Err(e) => {
            tracing::warn!(endpoint = %ep.id(), %e, "adopted endpoint not held");
            tokio::spawn(async {})
        }
    }
}

/// Forwards an endpoint's IceCandidateFound events to the participant that owns it.
async fn relay_candidates(
    app: Weak<App>,
    session: String,
    owner: String,
    sender: String,
    endpoint_name: String,
    mut found: Subscription,
) {
    while let Some(ev) = found.next().await {
        let Some(c) = ev.ice_candidate() else {
            continue;
        };
        let Some(app) = app.upgrade() else { return };
        let n = Notification::IceCandidate {
            sender_connection_id: sender.clone(),
            endpoint_name: endpoint_name.clone(),
            sdp_m_line_index: c.sdp_m_line_index,
            sdp_mid: c.sdp_mid,
            candidate: c.candidate,
        };
        app.send_to(&session, &owner, &n);
    }
}

/// Where a new endpoint is made: the session's pipeline (a cheap handle), and whom its
/// candidates are for.
struct EndpointSite {
    app: Weak<App>,
    session_id: String,
    pipeline: MediaPipeline,
}

impl EndpointSite {
    /// A new endpoint named `name` that answered `offer`, trickles its candidates to `owner`
    /// (tagged with `sender`) and, for a publisher, feeds `feeds`.
    async fn open(
        &self,
        owner: &str,
        sender: &str,
        name: &str,
        offer: &str,
        bw: Bandwidth,
        feeds: Option<&PassThrough>,
    ) -> Result<(WebRtcEndpoint, String, JoinHandle<()>), RpcError> {
        let ep = self.new_endpoint(name, bw).await?;
        let result = async {
            let found = ep.subscribe("IceCandidateFound").await.map_err(media_err)?;
            let answer = ep.process_offer(offer).await.map_err(media_err)?;
            if let Some(hub) = feeds {
                ep.connect(hub.id(), None).await.map_err(media_err)?;
            }
            let relay = tokio::spawn(relay_candidates(
                self.app.clone(),
                self.session_id.clone(),
                owner.to_string(),
                sender.to_string(),
                name.to_string(),
                found,
            ));
            if let Err(e) = ep.gather_candidates().await {
                relay.abort();
                return Err(media_err(e));
            }
            Ok::<_, RpcError>((answer, relay))
        }
        .await;
        match result {
            Ok((answer, relay)) => Ok((ep, answer, relay)),
            Err(e) => {
                let _ = ep.release().await;
                Err(e)
            }
        }
    }

    async fn new_endpoint(&self, name: &str, bw: Bandwidth) -> Result<WebRtcEndpoint, RpcError> {
        let ep = self
            .pipeline
            .create_webrtc_endpoint()
            .await
            .map_err(media_err)?;
        let (a, b, c, d, e) = futures::join!(
            ep.set_name(name),
            ep.set_bandwidth("maxVideoRecvBandwidth", bw.max_recv),
            ep.set_bandwidth("minVideoRecvBandwidth", bw.min_recv),
            ep.set_bandwidth("maxVideoSendBandwidth", bw.max_send),
            ep.set_bandwidth("minVideoSendBandwidth", bw.min_send),
        );
        if let Err(err) = a.and(b).and(c).and(d).and(e) {
            let _ = ep.release().await;
            return Err(media_err(err));
        }
        Ok(ep)
    }
}

/// A (re)publication being made: everything its engine work needs, without the session's lock.
pub struct PublicationPlan {
    at: EndpointSite,
    owner: String,
    stream_id: String,
    /// The PassThrough and endpoint a same-engine `reconnectStream` replaces.
    replaces: Option<(PassThrough, WebRtcEndpoint)>,
    was_stale: bool,
    generation: u64,
}

/// What `abort_publication` needs to know about a publication that failed.
pub struct PublicationFailed {
    owner: String,
    stream_id: String,
    was_stale: bool,
    generation: u64,
}

/// A negotiated publisher endpoint feeding its PassThrough, not yet the session's.
pub struct NegotiatedPublication {
    owner: String,
    stream_id: String,
    endpoint: WebRtcEndpoint,
    hub: PassThrough,
    relay: JoinHandle<()>,
    /// The id of the PassThrough of the publication it replaces.
    replaces: Option<String>,
    generation: u64,
}

impl PublicationPlan {
    /// Step 2 (no lock): a new PassThrough (or the one being kept), the endpoint feeding it,
    /// its answer. Make before break: a replaced endpoint keeps publishing until the commit,
    /// and gets the PassThrough back if the new one took it and then failed.
    pub async fn negotiate(
        self,
        offer: &str,
        bw: Bandwidth,
    ) -> Result<(NegotiatedPublication, String), (RpcError, PublicationFailed)> {
        let failed = PublicationFailed {
            owner: self.owner.clone(),
            stream_id: self.stream_id.clone(),
            was_stale: self.was_stale,
            generation: self.generation,
        };
        let hub = match &self.replaces {
            Some((hub, _)) => hub.clone(),
            None => match self.at.pipeline.create_pass_through().await {
                Ok(h) => h,
                Err(e) => return Err((media_err(e), failed)),
            },
        };
        let opened = self
            .at
            .open(
                &self.owner,
                &self.owner,
                &self.stream_id,
                offer,
                bw,
                Some(&hub),
            )
            .await;
        match opened {
            Ok((endpoint, answer, relay)) => Ok((
                NegotiatedPublication {
                    owner: self.owner,
                    stream_id: self.stream_id,
                    endpoint,
                    replaces: self.replaces.map(|(h, _)| h.id().to_string()),
                    hub,
                    relay,
                    generation: self.generation,
                },
                answer,
            )),
            Err(e) => {
                match &self.replaces {
                    Some((hub, old)) => {
                        let _ = old.connect(hub.id(), None).await;
                    }
                    None => {
                        let _ = hub.release().await;
                    }
                }
                Err((e, failed))
            }
        }
    }
}

/// A subscription being made: everything its engine work needs, without the session's lock.
pub struct SubscriptionPlan {
    at: EndpointSite,
    subscriber: String,
    publisher: String,
    hub: PassThrough,
    name: String,
    generation: u64,
}

/// A negotiated subscriber endpoint, fed from its publisher, not yet part of the session.
pub struct NegotiatedSubscription {
    subscriber: String,
    publisher: String,
    hub_id: String,
    generation: u64,
    media: SubscriberMedia,
}

impl From<NegotiatedPublication> for Released {
    fn from(n: NegotiatedPublication) -> Self {
        n.relay.abort();
        Released {
            endpoints: vec![n.endpoint],
            hubs: if n.replaces.is_none() {
                vec![n.hub]
            } else {
                Vec::new()
            },
        }
    }
}

impl From<NegotiatedSubscription> for Released {
    fn from(s: NegotiatedSubscription) -> Self {
        let mut gone = Released::default();
        gone.subscriber(s.media);
        gone
    }
}

impl SubscriptionPlan {
    /// Step 2 (no lock): the endpoint, its answer, candidates trickling, fed from the publisher.
    pub async fn negotiate(
        self,
        offer: &str,
        bw: Bandwidth,
    ) -> Result<(NegotiatedSubscription, String), RpcError> {
        let (endpoint, answer, relay) = self
            .at
            .open(
                &self.subscriber,
                &self.publisher,
                &self.name,
                offer,
                bw,
                None,
            )
            .await?;
        if let Err(e) = self.hub.connect(endpoint.id(), None).await {
            relay.abort();
            let _ = endpoint.release().await;
            return Err(media_err(e));
        }
        Ok((
            NegotiatedSubscription {
                subscriber: self.subscriber,
                publisher: self.publisher,
                hub_id: self.hub.id().to_string(),
                generation: self.generation,
                media: SubscriberMedia { endpoint, relay },
            },
            answer,
        ))
    }
}

/// Engine objects taken out of a session, to release without its lock: subscriber endpoints
/// first, then publisher endpoints, then PassThroughs.
#[derive(Default)]
pub struct Released {
    endpoints: Vec<WebRtcEndpoint>,
    hubs: Vec<PassThrough>,
}

impl Released {
    fn subscriber(&mut self, s: SubscriberMedia) {
        s.relay.abort();
        self.endpoints.push(s.endpoint);
    }

    pub async fn release(self) {
        for ep in self.endpoints {
            let _ = ep.release().await;
        }
        for hub in self.hubs {
            let _ = hub.release().await;
        }
    }
}

impl SubscriberMedia {
    /// Stops its candidate relay and releases its endpoint.
    pub async fn release(self) {
        self.relay.abort();
        let _ = self.endpoint.release().await;
    }
}

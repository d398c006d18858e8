//! A session's media on its engine: one MediaPipeline; per publisher a WebRtcEndpoint feeding a
//! PassThrough; per subscription a WebRtcEndpoint fed from that PassThrough. ICE candidates are
//! relayed both ways with OpenVidu's endpoint naming; candidates that arrive before their
//! endpoint exists are held. A subscription the session's engine cannot take may go to another
//! engine, fed through a relay of its publisher (`relay.rs`).

pub mod relay;
mod span;
pub use span::sample_relays;
pub mod stats;
pub mod trace;

use kms_client::wire::IceCandidate;
use kms_client::{KurentoClient, MediaPipeline, PassThrough, Subscription, WebRtcEndpoint};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::error::Error;
use crate::rpc::wire::Notification;
use relay::{FarSite, GoneSite, RelayCell, RelayEntry};
use trace::SharedTrace;

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
    /// The engines other than its own that the session spans, by engine id.
    far: HashMap<String, FarSite>,
    /// Subscriptions being made, by the engine they go to (counted against its endpoint limit
    /// before their endpoints exist).
    in_flight: HashMap<String, usize>,
    /// The session's relays as the REST API and metrics show them (kept current by every
    /// change, read without asking the session's media owner).
    pub view: Arc<parking_lot::Mutex<Vec<RelayView>>>,
}

/// One relay as shown to operators.
#[derive(Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayView {
    pub stream_id: String,
    pub publisher: String,
    pub from_media_node_id: String,
    pub to_media_node_id: String,
    pub subscribers: usize,
    /// The subscribers' connection ids.
    pub connections: Vec<String>,
    pub ready: bool,
    #[serde(skip)]
    pub cell: Arc<RelayCell>,
}

impl RelayView {
    /// As the REST API shows it: with the packets and bytes its origin end sent.
    pub fn json(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering;
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["packetsSent"] = self.cell.packets_sent.load(Ordering::Relaxed).into();
        v["bytesSent"] = self.cell.bytes_sent.load(Ordering::Relaxed).into();
        v
    }
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
    ice: Candidates,
}

pub struct SubscriberMedia {
    endpoint: WebRtcEndpoint,
    ice: Candidates,
    /// The far engine it is on (None: the session's own).
    site: Option<String>,
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
    /// The engines the session spans besides its own (`relay.rs`).
    #[serde(default)]
    pub far: Vec<FarIds>,
}

/// A far site as engine object ids.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FarIds {
    pub engine: String,
    pub pipeline: String,
    /// (publisher connection, stream id, origin endpoint, far endpoint, far PassThrough).
    pub relays: Vec<(String, String, String, String, String)>,
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
pub fn media_err(e: kms_client::ClientError) -> Error {
    tracing::warn!(%e, "engine operation failed");
    match e.code() {
        Some(c) if (40200..40300).contains(&c) => Error::MediaSdp,
        _ => Error::Media,
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
            far: HashMap::new(),
            in_flight: HashMap::new(),
            view: Default::default(),
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
            .filter(|(_, m)| m.site.is_none())
            .map(|((s, p), m)| (s.clone(), p.clone(), m.endpoint.id().to_string()))
            .collect();
        subscribers.sort();
        let mut far: Vec<FarIds> = self
            .far
            .iter()
            .filter_map(|(engine, site)| {
                let mut relays: Vec<_> = site
                    .relays
                    .iter()
                    .filter_map(|(p, e)| {
                        let r = e.cell.built()?;
                        let ids = (r.out.id(), r.inn.id(), r.hub.id());
                        Some((
                            p.clone(),
                            e.stream_id.clone(),
                            ids.0.into(),
                            ids.1.into(),
                            ids.2.into(),
                        ))
                    })
                    .collect();
                relays.sort();
                let mut subscribers: Vec<_> = on_site(&self.subscribers, engine, None)
                    .map(|((s, p), m)| (s.clone(), p.clone(), m.endpoint.id().to_string()))
                    .collect();
                subscribers.sort();
                Some(FarIds {
                    engine: engine.clone(),
                    pipeline: site.pipeline_id()?.to_string(),
                    relays,
                    subscribers,
                })
            })
            .collect();
        far.sort_by(|a, b| a.engine.cmp(&b.engine));
        MediaIds {
            engine: self.engine_id.clone(),
            pipeline: self.pipeline.id().to_string(),
            publishers,
            subscribers,
            far,
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
                ice: relay,
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
            let site = None;
            m.subscribers.insert(
                key,
                SubscriberMedia {
                    endpoint,
                    ice: relay,
                    site,
                },
            );
        }
        for f in &ids.far {
            m.adopt_far(&app, f).await;
        }
        m.refresh_view();
        Ok(m)
    }

    /// A far site of an adopted session, on this node's connection to its engine: its pipeline,
    /// relays and subscriber endpoints become this client's too (Kurento `ref` or candidate
    /// subscriptions), so they outlive the dead node's Kurento session. A far engine this node
    /// cannot reach is left out (its subscribers reconnect their streams).
    async fn adopt_far(&mut self, app: &Weak<App>, f: &FarIds) {
        let Some(a) = app.upgrade() else { return };
        let Some(engine) = a.pool.get(&f.engine) else {
            return;
        };
        let Some(client) = engine.client() else {
            return;
        };
        let pipeline = MediaPipeline::from_id(client.clone(), f.pipeline.clone());
        if let Err(e) = pipeline.hold().await {
            tracing::warn!(session = %self.session_id, engine = %f.engine, %e, "far pipeline of the adopted session is gone");
            return;
        }
        a.claim(&f.pipeline, &self.session_id);
        engine.session_added(&self.session_id);
        let mut site = FarSite::adopted(f.engine.clone(), client.clone(), pipeline);
        for (publisher, stream_id, out, inn, hub) in &f.relays {
            let out = WebRtcEndpoint::from_id(self.client.clone(), out.clone());
            let inn = WebRtcEndpoint::from_id(client.clone(), inn.clone());
            let hub = PassThrough::from_id(client.clone(), hub.clone());
            let _ = futures::join!(out.hold(), inn.hold(), hub.hold());
            let entry = RelayEntry {
                cell: Arc::new(RelayCell::adopted(out, inn, hub)),
                stream_id: stream_id.clone(),
                pending: 0,
            };
            site.relays.insert(publisher.clone(), entry);
        }
        for (subscriber, publisher, ep) in &f.subscribers {
            let Some(stream) = self.publishers.get(publisher).map(|p| p.stream_id.clone()) else {
                continue;
            };
            let endpoint = WebRtcEndpoint::from_id(client.clone(), ep.clone());
            let name = format!("{subscriber}_{stream}");
            let ice = hold_relaying(
                app,
                &self.session_id,
                subscriber,
                publisher,
                &name,
                &endpoint,
            )
            .await;
            let media = SubscriberMedia {
                endpoint,
                ice,
                site: Some(f.engine.clone()),
            };
            self.subscribers
                .insert((subscriber.clone(), publisher.clone()), media);
        }
        self.far.insert(f.engine.clone(), site);
    }

    /// The session moves to a new engine: the old engine's objects are gone with it, so every
    /// handle is dropped; publishers wait for their `reconnectStream`, and subscribers simply
    /// subscribe again (their `reconnectStream`); relays are rebuilt from the new engine as they
    /// are needed. Returns the old engine id, and the far sites to release.
    pub fn rehome(
        &mut self,
        engine_id: String,
        client: KurentoClient,
        pipeline: MediaPipeline,
    ) -> (String, Released) {
        for (owner, p) in self.publishers.drain() {
            p.ice.abort();
            self.unsettled.insert(owner.clone());
            self.stale_publishers.insert(owner, p.stream_id);
        }
        for ((subscriber, _), s) in self.subscribers.drain() {
            s.ice.abort();
            self.unsettled.insert(subscriber);
        }
        self.pending_ice.clear();
        self.recent_ice.clear();
        self.publishing.clear();
        self.in_flight.clear();
        let far = self.take_far();
        self.client = client;
        self.pipeline = pipeline;
        self.generation += 1;
        (std::mem::replace(&mut self.engine_id, engine_id), far)
    }

    /// Every far site out of the session (its engines still answer: their pipelines go). The
    /// relays' origin ends are not released one by one: this happens when the origin pipeline
    /// goes too (session closed, or re-homed), which takes them with it — or is gone already.
    pub fn take_far(&mut self) -> Released {
        let mut gone = Released::default();
        for (_, site) in self.far.drain() {
            let (site, _) = site.gone(true);
            gone.sites.push(site);
        }
        self.refresh_view();
        gone
    }

    /// A far engine was lost: its subscribers' endpoints are gone with it (they reconnect their
    /// streams and are placed again), and its relays' origin ends are released.
    pub fn drop_site(&mut self, engine_id: &str, alive: bool) -> Option<Released> {
        let site = self.far.remove(engine_id)?;
        let mut gone = Released::default();
        let keys: Vec<(String, String)> = on_site(&self.subscribers, engine_id, None)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(s) = self.subscribers.remove(&k) {
                s.ice.abort();
                if alive {
                    gone.endpoints.push(s.endpoint);
                }
                self.unsettled.insert(k.0);
            }
        }
        let (site, relays) = site.gone(alive);
        gone.relays.extend(relays.into_iter().map(|r| (r, false)));
        gone.sites.push(site);
        self.refresh_view();
        Some(gone)
    }

    /// Every endpoint of the session, for `webRtcStats=true` (`stats.rs`).
    pub fn webrtc_targets(&self) -> Vec<stats::Target> {
        let mut out: Vec<stats::Target> = self
            .publishers
            .iter()
            .map(|(owner, p)| stats::Target {
                connection: owner.clone(),
                stream_id: p.stream_id.clone(),
                name: p.stream_id.clone(),
                endpoint: p.endpoint.clone(),
                trace: p.ice.trace.clone(),
            })
            .collect();
        for ((subscriber, publisher), m) in &self.subscribers {
            let Some(p) = self.publishers.get(publisher) else {
                continue;
            };
            out.push(stats::Target {
                connection: subscriber.clone(),
                stream_id: p.stream_id.clone(),
                name: format!("{subscriber}_{}", p.stream_id),
                endpoint: m.endpoint.clone(),
                trace: m.ice.trace.clone(),
            });
        }
        out
    }

    /// The engines other than its own the session spans.
    pub fn far_engines(&self) -> Vec<String> {
        self.far.keys().cloned().collect()
    }

    /// Whether the session has a pipeline on `engine_id` other than its own.
    pub fn spans(&self, engine_id: &str) -> bool {
        self.far.contains_key(engine_id)
    }

    /// What placing a subscription to `publisher` on a far engine depends on: per far engine the
    /// session spans, whether it already relays that publisher.
    pub fn far_sites(&self, publisher: &str) -> Vec<(String, bool)> {
        self.far
            .iter()
            .map(|(id, s)| (id.clone(), s.relays.contains_key(publisher)))
            .collect()
    }

    /// Subscriptions being made on `engine_id`.
    pub fn in_flight(&self, engine_id: &str) -> u64 {
        self.in_flight.get(engine_id).copied().unwrap_or(0) as u64
    }

    /// Relays no subscription uses or is being made through (and far sites left with none),
    /// taken out of the session.
    fn take_unused(&mut self, gone: &mut Released) {
        let subscribers = &self.subscribers;
        let used = |engine: &str, publisher: &str| {
            on_site(subscribers, engine, Some(publisher))
                .next()
                .is_some()
        };
        let mut empty = Vec::new();
        for (engine, site) in self.far.iter_mut() {
            let unused: Vec<String> = site
                .relays
                .iter()
                .filter(|(p, e)| e.pending == 0 && !used(engine, p))
                .map(|(p, _)| p.clone())
                .collect();
            for p in unused {
                if let Some(e) = site.relays.remove(&p) {
                    gone.relays.push((e.cell, true));
                }
            }
            if site.relays.is_empty() {
                empty.push(engine.clone());
            }
        }
        for engine in empty {
            if let Some(site) = self.far.remove(&engine) {
                let (site, _) = site.gone(true);
                gone.sites.push(site);
            }
        }
        self.refresh_view();
    }

    fn refresh_view(&self) {
        let mut v: Vec<RelayView> = Vec::new();
        for (engine, site) in &self.far {
            for (publisher, e) in &site.relays {
                let mut connections: Vec<String> =
                    on_site(&self.subscribers, engine, Some(publisher))
                        .map(|((s, _), _)| s.clone())
                        .collect();
                connections.sort();
                v.push(RelayView {
                    stream_id: e.stream_id.clone(),
                    publisher: publisher.clone(),
                    from_media_node_id: self.engine_id.clone(),
                    to_media_node_id: engine.clone(),
                    subscribers: connections.len(),
                    connections,
                    ready: e.cell.built().is_some(),
                    cell: e.cell.clone(),
                });
            }
        }
        v.sort_by(|a, b| {
            (&a.stream_id, &a.to_media_node_id).cmp(&(&b.stream_id, &b.to_media_node_id))
        });
        *self.view.lock() = v;
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
            || self.far.values().any(|site| {
                site.pipeline_id() == Some(object)
                    || site.relays.values().any(|r| r.cell.uses(object))
            })
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

    /// `publishVideo`, step 1 (a step of the session's media owner): refuses a second publication and
    /// marks this one in progress; the engine work then runs outside the owner
    /// (`PublicationPlan::negotiate`), and `commit_publication` or `abort_publication` ends it.
    pub fn plan_publication(
        &mut self,
        app: Weak<App>,
        owner: &str,
        stream_id: &str,
    ) -> Result<PublicationPlan, Error> {
        if self.publishers.contains_key(owner) || self.publishing.contains(owner) {
            return Err(Error::AlreadyPublishing);
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
    ) -> Result<PublicationPlan, Error> {
        if self.publishing.contains(owner) {
            return Err(Error::Reconnecting);
        }
        if let Some(stream_id) = self.stale_publishers.remove(owner) {
            return Ok(self.new_plan(app, owner, stream_id, None, true));
        }
        let Some(p) = self.publishers.get(owner) else {
            return Err(Error::NotPublishing);
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
                engine: self.engine_id.clone(),
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

    /// Step 3 (a step of the owner again): the negotiated endpoint publishes, unless the session
    /// moved or (for a replacement) the stream ended meanwhile. Returns what is to be done
    /// outside the owner: the endpoint it replaces, to release, and the candidates that arrived
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
        n.ice.trace.lock().client_candidates(&held);
        let endpoint = n.endpoint.clone();
        let new = PublisherMedia {
            stream_id: n.stream_id,
            endpoint: n.endpoint,
            hub: n.hub,
            ice: n.ice,
        };
        let old = self.publishers.insert(n.owner, new).map(|old| {
            old.ice.abort();
            old.endpoint
        });
        self.ready.notify_waiters();
        Ok((old, held, endpoint))
    }

    /// `receiveVideoFrom` (client offer), step 1 (a step of the session's media owner): what a subscription
    /// to `publisher` needs, taken so the engine work can run outside the owner. `far`: the
    /// engine it goes to when not the session's own (see `pool::select::span`), fed through a
    /// relay of the publisher made there on first demand.
    pub fn plan_subscription(
        &mut self,
        app: Weak<App>,
        subscriber: &str,
        publisher: &str,
        far: Option<(String, KurentoClient)>,
    ) -> Result<SubscriptionPlan, Error> {
        let Some(p) = self.publishers.get(publisher) else {
            return Err(Error::PublisherNotPublishing(publisher.to_string()));
        };
        let (hub, stream_id) = (p.hub.clone(), p.stream_id.clone());
        let engine = far
            .as_ref()
            .map_or_else(|| self.engine_id.clone(), |(e, _)| e.clone());
        let far = far.map(|(engine, client)| {
            let site = self
                .far
                .entry(engine.clone())
                .or_insert_with(|| FarSite::new(engine, client));
            let entry = site
                .relays
                .entry(publisher.to_string())
                .or_insert_with(|| RelayEntry {
                    cell: Arc::new(RelayCell::default()),
                    stream_id: stream_id.clone(),
                    pending: 0,
                });
            entry.pending += 1;
            FarPlan {
                site: site.shared.clone(),
                cell: entry.cell.clone(),
            }
        });
        *self.in_flight.entry(engine.clone()).or_default() += 1;
        if far.is_some() {
            self.refresh_view();
        }
        Ok(SubscriptionPlan {
            at: EndpointSite {
                app,
                session_id: self.session_id.clone(),
                pipeline: self.pipeline.clone(),
                engine: self.engine_id.clone(),
            },
            subscriber: subscriber.to_string(),
            publisher: publisher.to_string(),
            name: format!("{subscriber}_{stream_id}"),
            relay_name: format!("relay_{stream_id}_{engine}"),
            hub,
            engine,
            far,
            generation: self.generation,
        })
    }

    /// A planned subscription ended (made or not): it no longer counts against its engine or
    /// holds its relay. False when the session moved since it was planned.
    fn settle(&mut self, engine: &str, publisher: &str, far: bool, generation: u64) -> bool {
        if generation != self.generation {
            return false;
        }
        if let Some(n) = self.in_flight.get_mut(engine) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(engine);
            }
        }
        if far {
            if let Some(e) = self
                .far
                .get_mut(engine)
                .and_then(|s| s.relays.get_mut(publisher))
            {
                e.pending = e.pending.saturating_sub(1);
            }
        }
        true
    }

    /// A subscription whose engine work failed: what it held that nobody else uses.
    pub fn abort_subscription(&mut self, failed: &SubscriptionFailed) -> Released {
        let mut gone = Released::default();
        if self.settle(
            &failed.engine,
            &failed.publisher,
            failed.far,
            failed.generation,
        ) {
            self.take_unused(&mut gone);
        }
        gone
    }

    /// Step 3 (a step of the owner again): the negotiated endpoint becomes the subscription, replacing
    /// an older one (make before break), unless the session moved, the publisher went or the
    /// relay it goes through was dropped meanwhile. Returns what is to be done outside the owner:
    /// what to release (the replaced subscription, a relay it alone used) and the candidates that
    /// arrived for the new endpoint while it was being made.
    pub fn commit_subscription(
        &mut self,
        s: NegotiatedSubscription,
    ) -> Result<(Released, Vec<IceCandidate>, WebRtcEndpoint), Released> {
        let far = s.media.site.is_some();
        let current = self.settle(&s.engine, &s.publisher, far, s.generation)
            && self
                .publishers
                .get(&s.publisher)
                .is_some_and(|p| p.hub.id() == s.hub_id)
            && (!far
                || self
                    .far
                    .get(&s.engine)
                    .and_then(|site| site.relays.get(&s.publisher))
                    .is_some_and(|e| e.cell.built().is_some()));
        if !current {
            let mut gone = Released::from(s);
            if far {
                self.take_unused(&mut gone);
            }
            return Err(gone);
        }
        self.unsettled.remove(&s.subscriber);
        let key = (s.subscriber, s.publisher);
        let held = self.take_held_ice(&key);
        s.media.ice.trace.lock().client_candidates(&held);
        let endpoint = s.media.endpoint.clone();
        let mut gone = Released::default();
        if let Some(old) = self.subscribers.insert(key, s.media) {
            gone.subscriber(old);
        }
        self.take_unused(&mut gone);
        Ok((gone, held, endpoint))
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

    /// `onIceCandidate`, a step of the media owner: `endpoint_name` is the connection id of the stream's
    /// owner. Returns the endpoint to give the candidate to (outside the owner), or holds the
    /// candidate until that endpoint exists.
    pub fn route_ice_candidate(
        &mut self,
        caller: &str,
        endpoint_name: &str,
        c: &IceCandidate,
    ) -> Option<WebRtcEndpoint> {
        let key = (caller.to_string(), endpoint_name.to_string());
        let found = if caller == endpoint_name {
            self.publishers.get(caller).map(|p| (&p.endpoint, &p.ice))
        } else {
            self.subscribers.get(&key).map(|s| (&s.endpoint, &s.ice))
        };
        let ep = found.map(|(ep, ice)| {
            ice.trace.lock().client_candidate(c);
            ep.clone()
        });
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
    /// outside the session's media owner (`Released::release`).
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
            p.ice.abort();
            gone.endpoints.push(p.endpoint);
            gone.hubs.push(p.hub);
        }
        self.stale_publishers.remove(publisher);
        self.pending_ice
            .retain(|(o, s), _| o != publisher && s != publisher);
        self.recent_ice
            .retain(|(o, s), _| o != publisher && s != publisher);
        self.take_unused(&mut gone);
        gone
    }

    /// Takes one subscription out of the session (None when there is none).
    pub fn detach_subscription(&mut self, subscriber: &str, publisher: &str) -> Option<Released> {
        let s = self
            .subscribers
            .remove(&(subscriber.to_string(), publisher.to_string()))?;
        let mut gone = Released::default();
        gone.subscriber(s);
        self.take_unused(&mut gone);
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
        self.take_unused(&mut gone);
        gone
    }

    /// Releases the pipeline (the engine releases its children).
    pub async fn release_all(mut self) {
        for (_, p) in self.publishers.drain() {
            p.ice.abort();
        }
        for (_, s) in self.subscribers.drain() {
            s.ice.abort();
        }
        let _ = self.pipeline.release().await;
    }
}

/// The subscriptions on the far engine `engine` (to `publisher` only, when given).
fn on_site<'a>(
    subscribers: &'a HashMap<(String, String), SubscriberMedia>,
    engine: &'a str,
    publisher: Option<&'a str>,
) -> impl Iterator<Item = (&'a (String, String), &'a SubscriberMedia)> + 'a {
    subscribers.iter().filter(move |((_, p), m)| {
        m.site.as_deref() == Some(engine) && publisher.is_none_or(|x| x == p)
    })
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
) -> Candidates {
    let trace = SharedTrace::default();
    let task = match ep.subscribe("IceCandidateFound").await {
        Ok(found) => tokio::spawn(relay_candidates(
            app.clone(),
            session.to_string(),
            owner.to_string(),
            sender.to_string(),
            name.to_string(),
            found,
            trace.clone(),
        )),
        Err(e) => {
            tracing::warn!(endpoint = %ep.id(), %e, "adopted endpoint not held");
            tokio::spawn(async {})
        }
    };
    Candidates { task, trace }
}

/// An endpoint's candidate relay (its task) and what it saw (`trace.rs`).
pub struct Candidates {
    task: JoinHandle<()>,
    pub trace: SharedTrace,
}

impl Candidates {
    fn abort(&self) {
        self.task.abort();
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
    trace: SharedTrace,
) {
    while let Some(ev) = found.next().await {
        let Some(c) = ev.ice_candidate() else {
            continue;
        };
        trace.lock().server_candidate(&c, crate::ids::now_ms());
        let Some(app) = app.upgrade() else { return };
        let n = Notification::IceCandidate {
            sender_connection_id: sender.clone(),
            endpoint_name: endpoint_name.clone(),
            sdp_m_line_index: c.sdp_m_line_index,
            sdp_mid: c.sdp_mid,
            candidate: c.candidate,
        };
        app.send_to(&session, &owner, &n).await;
    }
}

/// Where a new endpoint is made: the session's pipeline (a cheap handle), and whom its
/// candidates are for.
struct EndpointSite {
    app: Weak<App>,
    session_id: String,
    pipeline: MediaPipeline,
    /// The pipeline's engine.
    engine: String,
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
    ) -> Result<(WebRtcEndpoint, String, Candidates), Error> {
        let ep = self.new_endpoint(name, bw).await?;
        let trace = SharedTrace::default();
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
                trace.clone(),
            ));
            if let Err(e) = ep.gather_candidates().await {
                relay.abort();
                return Err(media_err(e));
            }
            Ok::<_, Error>((answer, relay))
        }
        .await;
        match result {
            Ok((answer, task)) => Ok((ep, answer, Candidates { task, trace })),
            Err(e) => {
                let _ = ep.release().await;
                Err(e)
            }
        }
    }

    async fn new_endpoint(&self, name: &str, bw: Bandwidth) -> Result<WebRtcEndpoint, Error> {
        let ep = self
            .pipeline
            .create_webrtc_endpoint()
            .await
            .map_err(media_err)?;
        // Counted against the engine's endpoint limit now, before its ObjectCreated event
        // arrives: a burst of subscriptions sees the ones made a moment ago.
        if let Some(e) = self.app.upgrade().and_then(|a| a.pool.get(&self.engine)) {
            e.elements_found([ep.id().to_string()]);
        }
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

/// A (re)publication being made: everything its engine work needs, outside the media owner.
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
    ice: Candidates,
    /// The id of the PassThrough of the publication it replaces.
    replaces: Option<String>,
    generation: u64,
}

impl PublicationPlan {
    /// Step 2 (outside the owner): a new PassThrough (or the one being kept), the endpoint feeding it,
    /// its answer. Make before break: a replaced endpoint keeps publishing until the commit,
    /// and gets the PassThrough back if the new one took it and then failed.
    pub async fn negotiate(
        self,
        offer: &str,
        bw: Bandwidth,
    ) -> Result<(NegotiatedPublication, String), (Error, PublicationFailed)> {
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
                    ice: relay,
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

/// A subscription being made: everything its engine work needs, outside the media owner.
pub struct SubscriptionPlan {
    /// The session's own engine (where the publisher is).
    at: EndpointSite,
    subscriber: String,
    publisher: String,
    hub: PassThrough,
    name: String,
    relay_name: String,
    /// The engine the endpoint goes to.
    engine: String,
    /// When that is not the session's own: the far site and the relay it goes through.
    far: Option<FarPlan>,
    generation: u64,
}

struct FarPlan {
    site: Arc<relay::FarEngine>,
    cell: Arc<RelayCell>,
}

/// What `abort_subscription` needs to know about a subscription that failed.
pub struct SubscriptionFailed {
    publisher: String,
    engine: String,
    far: bool,
    generation: u64,
}

/// A negotiated subscriber endpoint, fed from its publisher, not yet part of the session.
pub struct NegotiatedSubscription {
    subscriber: String,
    publisher: String,
    hub_id: String,
    engine: String,
    generation: u64,
    media: SubscriberMedia,
}

impl From<NegotiatedPublication> for Released {
    fn from(n: NegotiatedPublication) -> Self {
        n.ice.abort();
        Released {
            endpoints: vec![n.endpoint],
            hubs: if n.replaces.is_none() {
                vec![n.hub]
            } else {
                Vec::new()
            },
            ..Default::default()
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
    /// Step 2 (outside the owner): the endpoint, its answer, candidates trickling, fed from the publisher
    /// (on a far engine: from the relay, made first if it is not there yet).
    pub async fn negotiate(
        self,
        offer: &str,
        bw: Bandwidth,
    ) -> Result<(NegotiatedSubscription, String), (Error, SubscriptionFailed)> {
        let failed = || SubscriptionFailed {
            publisher: self.publisher.clone(),
            engine: self.engine.clone(),
            far: self.far.is_some(),
            generation: self.generation,
        };
        let (site, source) = match &self.far {
            None => (None, self.hub.clone()),
            Some(far) => match self.reach(far).await {
                Ok((site, source)) => (Some(site), source),
                Err(e) => return Err((e, failed())),
            },
        };
        let at = site.as_ref().unwrap_or(&self.at);
        let (endpoint, answer, relay) = at
            .open(
                &self.subscriber,
                &self.publisher,
                &self.name,
                offer,
                bw,
                None,
            )
            .await
            .map_err(|e| (e, failed()))?;
        if let Err(e) = source.connect(endpoint.id(), None).await {
            relay.abort();
            let _ = endpoint.release().await;
            return Err((media_err(e), failed()));
        }
        let site = self.far.as_ref().map(|_| self.engine.clone());
        Ok((
            NegotiatedSubscription {
                subscriber: self.subscriber,
                publisher: self.publisher,
                hub_id: self.hub.id().to_string(),
                engine: self.engine,
                generation: self.generation,
                media: SubscriberMedia {
                    endpoint,
                    ice: relay,
                    site,
                },
            },
            answer,
        ))
    }

    /// The far engine's pipeline and the relay's PassThrough there, made if needed.
    async fn reach(&self, far: &FarPlan) -> Result<(EndpointSite, PassThrough), Error> {
        let pipeline = far
            .site
            .pipeline(&self.at.app, &self.at.session_id)
            .await
            .map_err(media_err)?;
        let relay = far
            .cell
            .get(&self.at.pipeline, &self.hub, &pipeline, &self.relay_name)
            .await
            .map_err(media_err)?;
        let site = EndpointSite {
            app: self.at.app.clone(),
            session_id: self.at.session_id.clone(),
            pipeline,
            engine: self.engine.clone(),
        };
        Ok((site, relay.hub.clone()))
    }
}

/// Engine objects taken out of a session, to release outside its media owner: subscriber endpoints
/// first, then publisher endpoints, then PassThroughs, then relays and far pipelines (the
/// caller, `App::release`, first unclaims the pipelines).
#[derive(Default)]
pub struct Released {
    endpoints: Vec<WebRtcEndpoint>,
    hubs: Vec<PassThrough>,
    /// Relays no longer used; `true`: their far ends are released too (false: they go with
    /// their far pipeline, or their engine is gone).
    relays: Vec<(Arc<RelayCell>, bool)>,
    pub sites: Vec<GoneSite>,
}

impl Released {
    fn subscriber(&mut self, s: SubscriberMedia) {
        s.ice.abort();
        self.endpoints.push(s.endpoint);
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
            && self.hubs.is_empty()
            && self.relays.is_empty()
            && self.sites.is_empty()
    }

    /// Through `App::release` (which forgets the far pipelines first).
    async fn release(self) {
        for ep in self.endpoints {
            let _ = ep.release().await;
        }
        for hub in self.hubs {
            let _ = hub.release().await;
        }
        for (cell, far_too) in self.relays {
            if let Some(r) = cell.built() {
                r.stop();
                let _ = r.out.release().await;
                if far_too {
                    let _ = futures::join!(r.inn.release(), r.hub.release());
                }
            }
        }
        for site in self.sites {
            if let (true, Some(p)) = (site.alive, site.pipeline) {
                let _ = p.release().await;
            }
        }
    }
}

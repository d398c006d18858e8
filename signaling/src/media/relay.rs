//! A session's publication carried to another engine (a *far site*) so that subscribers there
//! can be fed: on the session's engine (the origin) an outgoing WebRtcEndpoint fed from the
//! publisher's PassThrough; on the far engine an incoming WebRtcEndpoint feeding a PassThrough
//! there, which feeds that engine's subscribers. Signaling negotiates the pair like any two
//! Kurento endpoints (the far one offers, the origin one answers, candidates both ways), so any
//! Kurento-compatible engine can be either end. One relay per (publication, far engine), made on
//! the first subscription that needs it (concurrent ones wait for the same one), shared by every
//! subscriber there, released with the last of them; a far engine's pipeline goes with its last
//! relay.

use kms_client::{ClientError, KurentoClient, MediaPipeline, PassThrough, WebRtcEndpoint};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use crate::app::App;

/// A session's presence on an engine other than its own.
pub struct FarSite {
    pub shared: Arc<FarEngine>,
    /// By publisher connection.
    pub relays: HashMap<String, RelayEntry>,
}

/// What subscriptions being made on a far site share: the engine and the session's pipeline
/// there (made by the first of them).
pub struct FarEngine {
    pub engine_id: String,
    client: KurentoClient,
    pipeline: OnceCell<MediaPipeline>,
}

pub struct RelayEntry {
    pub cell: Arc<RelayCell>,
    pub stream_id: String,
    /// Subscriptions being made through it (it is not released while any is).
    pub pending: usize,
}

/// A relay, built once by whichever subscription gets there first.
#[derive(Default)]
pub struct RelayCell {
    built: OnceCell<Relay>,
    /// What its origin end sent, as the engine's statistics last said (`sample`).
    pub packets_sent: std::sync::atomic::AtomicU64,
    pub bytes_sent: std::sync::atomic::AtomicU64,
}

pub struct Relay {
    /// On the origin, fed from the publisher's PassThrough.
    pub out: WebRtcEndpoint,
    /// On the far engine, receiving from `out`.
    pub inn: WebRtcEndpoint,
    /// On the far engine, fed by `inn`; the far subscribers' source.
    pub hub: PassThrough,
    /// Carries each side's candidates to the other.
    exchange: JoinHandle<()>,
}

/// A far site that is no longer the session's: its pipeline is released (when its engine still
/// answers) and the engine forgets the session.
pub struct GoneSite {
    pub engine_id: String,
    pub pipeline: Option<MediaPipeline>,
    pub alive: bool,
}

impl FarSite {
    pub fn new(engine_id: String, client: KurentoClient) -> Self {
        Self {
            shared: Arc::new(FarEngine {
                engine_id,
                client,
                pipeline: OnceCell::new(),
            }),
            relays: HashMap::new(),
        }
    }

    /// A site taken over from a dead node, its pipeline already there.
    pub fn adopted(engine_id: String, client: KurentoClient, pipeline: MediaPipeline) -> Self {
        Self {
            shared: Arc::new(FarEngine {
                engine_id,
                client,
                pipeline: OnceCell::new_with(Some(pipeline)),
            }),
            relays: HashMap::new(),
        }
    }

    /// The site as it goes: its pipeline (if one was made) and its relays (whose origin ends
    /// are released one by one; the rest goes with the pipeline).
    pub fn gone(self, alive: bool) -> (GoneSite, Vec<Arc<RelayCell>>) {
        let site = GoneSite {
            engine_id: self.shared.engine_id.clone(),
            pipeline: self.shared.pipeline.get().cloned(),
            alive,
        };
        (site, self.relays.into_values().map(|e| e.cell).collect())
    }

    pub fn pipeline_id(&self) -> Option<&str> {
        self.shared.pipeline.get().map(|p| p.id())
    }
}

impl FarEngine {
    /// The session's pipeline on this engine, made (claimed and tagged as ours) by the first
    /// subscription that needs it.
    pub async fn pipeline(
        &self,
        app: &Weak<App>,
        session_id: &str,
    ) -> Result<MediaPipeline, ClientError> {
        self.pipeline
            .get_or_try_init(|| async {
                let p = self.client.create_pipeline().await?;
                if let Some(app) = app.upgrade() {
                    app.claim(p.id(), session_id);
                    if let Some(e) = app.pool.get(&self.engine_id) {
                        e.session_added(session_id);
                    }
                    let (p, me, s) = (p.clone(), app.instance.clone(), session_id.to_string());
                    tokio::spawn(async move { crate::ownership::tag(&p, &me, &s).await });
                }
                Ok(p)
            })
            .await
            .cloned()
    }
}

impl RelayCell {
    /// A relay taken over from a dead node (its candidates were exchanged long ago).
    pub fn adopted(out: WebRtcEndpoint, inn: WebRtcEndpoint, hub: PassThrough) -> Self {
        let relay = Relay {
            out,
            inn,
            hub,
            exchange: tokio::spawn(async {}),
        };
        Self {
            built: OnceCell::new_with(Some(relay)),
            ..Default::default()
        }
    }

    /// The relay, built now if nobody has yet (a failed build leaves it to the next caller).
    pub async fn get(
        &self,
        origin: &MediaPipeline,
        source: &PassThrough,
        far: &MediaPipeline,
        name: &str,
    ) -> Result<&Relay, ClientError> {
        self.built
            .get_or_try_init(|| build(origin, source, far, name))
            .await
    }

    pub fn built(&self) -> Option<&Relay> {
        self.built.get()
    }

    /// Reads what the origin end has sent so far (Kurento `getStats`, outgoing RTP streams).
    pub async fn sample(&self) {
        use std::sync::atomic::Ordering;
        let Some(r) = self.built() else {
            return;
        };
        let Ok(stats) = r.out.get_stats(None).await else {
            return;
        };
        let sum = |field: &str| -> u64 {
            stats
                .values()
                .filter(|s| s["type"] == "outboundrtp")
                .filter_map(|s| s[field].as_u64())
                .sum()
        };
        self.packets_sent
            .store(sum("packetsSent"), Ordering::Relaxed);
        self.bytes_sent.store(sum("bytesSent"), Ordering::Relaxed);
    }

    /// Whether `object` is one of its endpoints or its PassThrough.
    pub fn uses(&self, object: &str) -> bool {
        self.built()
            .is_some_and(|r| r.out.id() == object || r.inn.id() == object || r.hub.id() == object)
    }
}

impl Relay {
    /// Stops the candidate exchange; the caller releases the objects.
    pub fn stop(&self) {
        self.exchange.abort();
    }
}

async fn build(
    origin: &MediaPipeline,
    source: &PassThrough,
    far: &MediaPipeline,
    name: &str,
) -> Result<Relay, ClientError> {
    let out = origin.create_webrtc_endpoint().await?;
    let inn = match far.create_webrtc_endpoint().await {
        Ok(e) => e,
        Err(e) => {
            let _ = out.release().await;
            return Err(e);
        }
    };
    let hub = match far.create_pass_through().await {
        Ok(h) => h,
        Err(e) => {
            let _ = futures::join!(out.release(), inn.release());
            return Err(e);
        }
    };
    match wire(&out, &inn, &hub, source, name).await {
        Ok(exchange) => {
            tracing::info!(relay = %name, out = %out.id(), inn = %inn.id(), "relay made");
            Ok(Relay {
                out,
                inn,
                hub,
                exchange,
            })
        }
        Err(e) => {
            let _ = futures::join!(out.release(), inn.release(), hub.release());
            Err(e)
        }
    }
}

/// Negotiates `inn` (offer) with `out` (answer), starts the candidate exchange, and connects
/// source → out and inn → hub.
async fn wire(
    out: &WebRtcEndpoint,
    inn: &WebRtcEndpoint,
    hub: &PassThrough,
    source: &PassThrough,
    name: &str,
) -> Result<JoinHandle<()>, ClientError> {
    let (out_name, inn_name) = (format!("{name}_out"), format!("{name}_in"));
    let (a, b) = futures::join!(out.set_name(&out_name), inn.set_name(&inn_name));
    a.and(b)?;
    let (out_found, inn_found) = futures::join!(
        out.subscribe("IceCandidateFound"),
        inn.subscribe("IceCandidateFound")
    );
    let (out_found, inn_found) = (out_found?, inn_found?);
    let offer = inn.generate_offer(None).await?;
    let answer = out.process_offer(&offer).await?;
    inn.process_answer(&answer).await?;
    let exchange = tokio::spawn(exchange(out_found, inn.clone(), inn_found, out.clone()));
    let done = async {
        let (a, b) = futures::join!(out.gather_candidates(), inn.gather_candidates());
        a.and(b)?;
        let (a, b) = futures::join!(source.connect(out.id(), None), inn.connect(hub.id(), None));
        a.and(b)
    }
    .await;
    match done {
        Ok(()) => Ok(exchange),
        Err(e) => {
            exchange.abort();
            Err(e)
        }
    }
}

/// Gives each endpoint the candidates the other finds, until both stop.
async fn exchange(
    mut out_found: kms_client::Subscription,
    inn: WebRtcEndpoint,
    mut inn_found: kms_client::Subscription,
    out: WebRtcEndpoint,
) {
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            ev = out_found.next(), if a_open => match ev {
                Some(ev) => if let Some(c) = ev.ice_candidate() {
                    let _ = inn.add_ice_candidate(&c).await;
                },
                None => a_open = false,
            },
            ev = inn_found.next(), if b_open => match ev {
                Some(ev) => if let Some(c) = ev.ice_candidate() {
                    let _ = out.add_ice_candidate(&c).await;
                },
                None => b_open = false,
            },
        }
    }
}

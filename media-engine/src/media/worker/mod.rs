//! Media workers: a few threads (one per core by default), each owning one UDP socket, the
//! `rtc` peer connections placed on it, a timer heap and the routing tables. A pipeline lives on
//! one worker, so a packet fans out to its subscribers on the thread that received it; a
//! subscriber on another worker (a `connect` across pipelines) gets it through a bounded queue.
//! The control side (JSON-RPC) talks to workers over channels and never blocks their loop.

pub mod conn;
mod event_loop;
mod io;
pub mod routes;
pub mod stun;
pub mod timers;

use kms_client::wire::complex::{IceCandidate, OfferOptions};
use kms_client::wire::RpcError;
use parking_lot::Mutex;
use rtc::rtp;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::factory::{FactoryError, PcFactory};
use conn::Conn;

/// A connection's number on its worker (never reused).
pub type ConnKey = u64;

/// Packets waiting for another worker's subscribers; beyond this they are dropped (and the
/// subscriber asks for a keyframe).
const CROSS_QUEUE: usize = 4096;

/// One rewritten packet for one subscriber's sender.
pub struct Delivery {
    pub conn: ConnKey,
    pub sender: RTCRtpSenderId,
    pub packet: rtp::Packet,
}

pub type Reply<T> = oneshot::Sender<Result<T, RpcError>>;

pub enum Op {
    ProcessOffer(String, Reply<String>),
    GenerateOffer(OfferOptions, Reply<String>),
    ProcessAnswer(String, Reply<String>),
    GatherCandidates(Reply<()>),
    AddIceCandidate(IceCandidate, Reply<()>),
}

pub enum Ctl {
    Add(Box<Conn>),
    Op(ConnKey, Op),
    Close(ConnKey, oneshot::Sender<()>),
    /// Send a PLI for a publisher's track (rate-limited by the sender of this).
    Pli(ConnKey, RTCRtpReceiverId, u32),
}

/// Counters of one worker, shown in `/health`.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub connections: AtomicUsize,
    pub datagrams_in: AtomicU64,
    /// Loop turns (datagrams per turn = datagrams_in / turns).
    pub turns: AtomicU64,
    /// Connection timeouts handled (`handle_timeout` calls).
    pub timeouts: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub send_calls: AtomicU64,
    pub send_errors: AtomicU64,
    /// Non-STUN datagrams from addresses no connection knows.
    pub unknown_source: AtomicU64,
    /// STUN naming a ufrag no connection has.
    pub unknown_ufrag: AtomicU64,
    /// Datagrams a connection refused (bad DTLS/SRTP, replays, junk from a known address).
    pub refused: AtomicU64,
    /// Packets for another worker dropped because its queue was full.
    pub cross_dropped: AtomicU64,
    /// Routing-table and timer entries (zero when no connection is left).
    pub route_entries: AtomicUsize,
    pub timer_entries: AtomicUsize,
    /// Thread CPU time of the worker, microseconds.
    pub cpu_micros: AtomicU64,
}

pub struct WorkerShared {
    pub index: usize,
    /// Where the socket is bound.
    pub local: SocketAddr,
    /// The host candidate's address (`public_ip` when set).
    pub advertised: SocketAddr,
    pub stats: WorkerStats,
    ctl: mpsc::UnboundedSender<Ctl>,
    media: mpsc::Sender<Delivery>,
    next_key: AtomicU64,
    /// Pipelines placed here.
    pipelines: AtomicUsize,
}

#[derive(Clone)]
pub struct WorkerHandle(pub Arc<WorkerShared>);

impl WorkerHandle {
    pub fn index(&self) -> usize {
        self.0.index
    }

    pub fn new_key(&self) -> ConnKey {
        self.0.next_key.fetch_add(1, Ordering::Relaxed)
    }

    pub fn send(&self, ctl: Ctl) -> bool {
        self.0.ctl.send(ctl).is_ok()
    }

    /// Hands a packet to a subscriber of this worker: directly when called on the worker's own
    /// thread (it is sent with the rest of this turn's batch), through the bounded queue
    /// otherwise. False when it had to be dropped.
    pub fn deliver(&self, d: Delivery) -> bool {
        let local = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            match p.as_mut() {
                Some((index, queue)) if *index == self.0.index => {
                    queue.push(d);
                    None
                }
                _ => Some(d),
            }
        });
        match local {
            None => true,
            Some(d) => match self.0.media.try_send(d) {
                Ok(()) => true,
                Err(_) => {
                    self.0.stats.cross_dropped.fetch_add(1, Ordering::Relaxed);
                    false
                }
            },
        }
    }
}

thread_local! {
    /// On a worker thread: its index and the deliveries made during this loop turn.
    static PENDING: RefCell<Option<(usize, Vec<Delivery>)>> = const { RefCell::new(None) };
}

fn take_pending() -> Vec<Delivery> {
    PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some((_, q)) => std::mem::take(q),
        None => Vec::new(),
    })
}

/// How a worker uses its socket.
#[derive(Debug, Clone, Copy)]
pub struct IoSettings {
    /// UDP GSO for runs of datagrams to one destination.
    pub gso: bool,
}

/// A pipeline's seat on a worker, held for as long as the pipeline lives.
pub struct Placement {
    pub worker: WorkerHandle,
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.worker.0.pipelines.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every worker of the engine.
pub struct Workers {
    pub factory: Arc<PcFactory>,
    workers: Vec<WorkerHandle>,
}

impl Workers {
    /// Binds `count` sockets on `rtc_ip` (ports `udp_port`, `udp_port + 1`, …, or OS-chosen when
    /// `udp_port` is 0) and starts a thread for each.
    pub fn start(
        factory: PcFactory,
        count: usize,
        udp_port: u16,
        io: IoSettings,
        cancel: &CancellationToken,
    ) -> Result<Self, FactoryError> {
        let factory = Arc::new(factory);
        let mut workers = Vec::new();
        for index in 0..count.max(1) {
            let port = if udp_port == 0 {
                0
            } else {
                udp_port.saturating_add(index as u16)
            };
            let bind = SocketAddr::new(factory.rtc_ip, port);
            let socket = UdpSocket::bind(bind).map_err(|e| FactoryError::Bind(bind, e))?;
            let local = socket
                .local_addr()
                .map_err(|e| FactoryError::Bind(bind, e))?;
            let advertised = SocketAddr::new(factory.public_ip.unwrap_or(local.ip()), local.port());
            let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
            let (media_tx, media_rx) = mpsc::channel(CROSS_QUEUE);
            let shared = Arc::new(WorkerShared {
                index,
                local,
                advertised,
                stats: WorkerStats::default(),
                ctl: ctl_tx,
                media: media_tx,
                next_key: AtomicU64::new(1),
                pipelines: AtomicUsize::new(0),
            });
            let handle = WorkerHandle(shared);
            let run = event_loop::Worker::new(handle.clone(), socket, io, ctl_rx, media_rx);
            let cancel = cancel.clone();
            std::thread::Builder::new()
                .name(format!("media-worker-{index}"))
                .spawn(move || run.run(cancel))
                .map_err(FactoryError::Thread)?;
            workers.push(handle);
        }
        Ok(Self { factory, workers })
    }

    /// A seat for a new pipeline: the worker with the fewest pipelines.
    pub fn place(&self) -> Placement {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| {
                (
                    w.0.pipelines.load(Ordering::Relaxed),
                    w.0.stats.connections.load(Ordering::Relaxed),
                )
            })
            .cloned()
            .unwrap_or_else(|| self.workers[0].clone());
        worker.0.pipelines.fetch_add(1, Ordering::Relaxed);
        Placement { worker }
    }

    pub fn all(&self) -> &[WorkerHandle] {
        &self.workers
    }
}

/// Random ICE credentials: a 16-character ufrag (the routing key) and a 24-character password.
pub fn new_credentials() -> (String, String) {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    (a[..16].to_owned(), b[..24].to_owned())
}

/// Shared view of an endpoint's negotiation (getters read it without asking the worker).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub local_sdp: Option<String>,
    pub remote_sdp: Option<String>,
    pub connected: bool,
    pub media_connected: bool,
}

pub type SharedSnapshot = Arc<Mutex<Snapshot>>;

/// Per-worker counters for `/health`.
pub fn health(workers: &[WorkerHandle]) -> serde_json::Value {
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    workers
        .iter()
        .map(|w| {
            let s = &w.0.stats;
            serde_json::json!({
                "index": w.0.index,
                "udpPort": w.0.advertised.port(),
                "connections": s.connections.load(Ordering::Relaxed),
                "pipelines": w.0.pipelines.load(Ordering::Relaxed),
                "datagramsIn": r(&s.datagrams_in),
                "turns": r(&s.turns),
                "timeouts": r(&s.timeouts),
                "datagramsOut": r(&s.datagrams_out),
                "sendCalls": r(&s.send_calls),
                "sendErrors": r(&s.send_errors),
                "unknownSource": r(&s.unknown_source),
                "unknownUfrag": r(&s.unknown_ufrag),
                "refused": r(&s.refused),
                "crossDropped": r(&s.cross_dropped),
                "routeEntries": s.route_entries.load(Ordering::Relaxed),
                "timerEntries": s.timer_entries.load(Ordering::Relaxed),
                "cpuMicros": r(&s.cpu_micros),
            })
        })
        .collect()
}

/// Datagrams that reached no connection or that a connection refused, over every worker.
pub fn bad_datagrams(workers: &[WorkerHandle]) -> u64 {
    workers
        .iter()
        .map(|w| {
            let s = &w.0.stats;
            s.unknown_source.load(Ordering::Relaxed)
                + s.unknown_ufrag.load(Ordering::Relaxed)
                + s.refused.load(Ordering::Relaxed)
        })
        .sum()
}

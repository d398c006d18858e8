//! What the rest of the engine holds of a media worker: its handle (commands, counters, the
//! hand-off of packets for its subscribers) and the messages it takes. Nothing here knows the
//! worker's loop or its connections' insides.

use kms_client::wire::complex::{IceCandidate, OfferOptions};
use kms_client::wire::RpcError;
use parking_lot::Mutex;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::media::factory::PcFactory;
use crate::media::flow::EventTx;
use crate::media::hub::Ports;

/// A connection's number on its worker (never reused).
pub type ConnKey = u64;

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
    /// Kurento's `getStats` (of one media kind, or all).
    Stats(Option<crate::media::MediaKind>, Reply<serde_json::Value>),
}

pub enum Ctl {
    Add(Box<ConnInit>),
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
    /// Connections dropped because their code panicked (the worker carries on).
    pub panics: AtomicU64,
    pub datagrams_out: AtomicU64,
    /// UDP payload bytes received and handed to the kernel to send.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
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
    pub(super) ctl: mpsc::Sender<Ctl>,
    pub(super) media: mpsc::Sender<Delivery>,
    pub(super) next_key: AtomicU64,
    /// Pipelines placed here.
    pub(super) pipelines: AtomicUsize,
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

    /// Queues a command, waiting for room (the queue is bounded: a worker that falls behind
    /// slows its callers instead of growing memory). False when the worker is gone.
    pub async fn send(&self, ctl: Ctl) -> bool {
        self.0.ctl.send(ctl).await.is_ok()
    }

    /// Queues a command without waiting; false when the queue is full or the worker is gone.
    pub fn try_send(&self, ctl: Ctl) -> bool {
        self.0.ctl.try_send(ctl).is_ok()
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
    pub(super) static PENDING: RefCell<Option<(usize, Vec<Delivery>)>> = const { RefCell::new(None) };
}

pub(super) fn take_pending() -> Vec<Delivery> {
    PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some((_, q)) => std::mem::take(q),
        None => Vec::new(),
    })
}

/// Everything a worker needs to take over a new endpoint's connection (built by the control
/// side, so the worker's loop never pays for it).
pub struct ConnInit {
    pub key: ConnKey,
    pub id: String,
    pub pc: RTCPeerConnection,
    pub ufrag: String,
    pub pwd: String,
    pub factory: Arc<PcFactory>,
    pub worker: WorkerHandle,
    pub ports: Arc<Ports>,
    pub events: EventTx,
    pub snapshot: SharedSnapshot,
    pub cancel: CancellationToken,
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
    /// Media flowing in / out now, by kind (`MediaKind::index`), as the MediaFlowIn/Out events
    /// last said (`isMediaFlowingIn/Out`).
    pub flowing_in: [bool; 2],
    pub flowing_out: [bool; 2],
}

pub type SharedSnapshot = Arc<Mutex<Snapshot>>;

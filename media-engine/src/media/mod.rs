//! The media path, on webrtc-rs's sans-I/O core (`rtc`) driven by the engine's own media
//! workers: every element has one output [`hub::Hub`] per media kind and one input per kind;
//! `connect(source, sink)` points the sink's input at the source's hub. Packets travel as `Arc`s
//! and are handed on by direct call on the worker that read them: each subscriber's tap rewrites
//! SSRC / payload type / extensions / seq / ts and queues the packet for its peer connection,
//! which the worker writes and sends in batches.

pub mod endpoint;
pub mod factory;
pub mod flow;
pub mod hub;
pub mod leg;
pub mod passthrough;
pub mod publish;
pub mod rtcp_tap;
pub mod sdp;
pub mod sink;
pub mod srtp_keys;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};

/// The media kinds that carry RTP (DATA is accepted by `connect` but carries nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio = 0,
    Video = 1,
}

impl MediaKind {
    pub const ALL: [MediaKind; 2] = [MediaKind::Audio, MediaKind::Video];

    /// 0 for audio, 1 for video (per-kind arrays).
    pub fn index(self) -> usize {
        match self {
            MediaKind::Audio => 0,
            MediaKind::Video => 1,
        }
    }

    pub fn wire_name(self) -> &'static str {
        match self {
            MediaKind::Audio => "AUDIO",
            MediaKind::Video => "VIDEO",
        }
    }
}

/// Process-wide media counters (read by tests, the benchmark and `getStats`).
#[derive(Debug, Default)]
pub struct Counters {
    pub rtp_in: AtomicU64,
    pub rtp_out: AtomicU64,
    pub rtp_dropped: AtomicU64,
    pub duplicates: AtomicU64,
    pub keyframe_requests_in: AtomicU64,
    pub plis_sent: AtomicU64,
    pub peer_connections: AtomicU64,
    pub media_tasks: AtomicU64,
    /// Consumers attached to hubs (a subscriber's track or a PassThrough's relay).
    pub taps: AtomicU64,
    /// Connections whose DTLS chose an AEAD-GCM SRTP profile, and any other.
    pub srtp_gcm: AtomicU64,
    pub srtp_other: AtomicU64,
    /// Subscriber legs that went on the direct send path (`worker/conn/direct.rs`).
    pub direct_legs: AtomicU64,
    /// Of those, the ones without a peer connection: answered by the engine, on `rtc-ice` and
    /// `rtc-dtls` (`leg/`).
    pub leg_transports: AtomicU64,
    /// Packets a direct leg sent again for a NACK.
    pub retransmissions: AtomicU64,
}

pub static COUNTERS: Counters = Counters {
    rtp_in: AtomicU64::new(0),
    rtp_out: AtomicU64::new(0),
    rtp_dropped: AtomicU64::new(0),
    duplicates: AtomicU64::new(0),
    keyframe_requests_in: AtomicU64::new(0),
    plis_sent: AtomicU64::new(0),
    peer_connections: AtomicU64::new(0),
    media_tasks: AtomicU64::new(0),
    taps: AtomicU64::new(0),
    srtp_gcm: AtomicU64::new(0),
    srtp_other: AtomicU64::new(0),
    direct_legs: AtomicU64::new(0),
    leg_transports: AtomicU64::new(0),
    retransmissions: AtomicU64::new(0),
};

/// Counts a media task for as long as it lives (tests assert the count returns to zero).
pub struct TaskGuard;

impl TaskGuard {
    pub fn new() -> Self {
        COUNTERS.media_tasks.fetch_add(1, Ordering::Relaxed);
        TaskGuard
    }
}

impl Default for TaskGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        COUNTERS.media_tasks.fetch_sub(1, Ordering::Relaxed);
    }
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

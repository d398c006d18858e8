//! The direct send path of a subscriber leg (a connection that only sends). ICE, DTLS and
//! everything the peer sends us stay `rtc`'s; the leg's outgoing RTP and RTCP are the engine's:
//! each packet is marshalled and SRTP-protected with the leg's own context (keys from
//! `srtp_keys.rs`) and queued for the worker's socket, instead of being moved through the
//! connection's eight handler stages. The leg keeps what `rtc`'s interceptors kept for it: the
//! last 256 packets per stream for NACKs, and the counts its sender reports carry.
//!
//! Nothing else may protect with these keys: the factory builds such a connection without
//! `rtc`'s sender-report and NACK-responder interceptors, and it never writes RTP through `rtc`.

use bytes::{Bytes, BytesMut};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::media::srtp_keys::MasterKeys;
use crate::media::MediaKind;

/// How long a sent packet is kept for NACKs: libwebrtc's floor for its own history (a lost
/// packet is NACKed a round trip after it was due, and retried a few times within a second).
/// Kept by age, the history costs what the stream's packet rate needs: about 60 slots for a
/// 500 kbps camera instead of a fixed 256.
const KEEP: Duration = Duration::from_secs(1);
/// At most this many packets per stream however fast it sends (about a second of 2.5 Mbps).
const HISTORY_MAX: usize = 256;
/// Sender reports per stream, at most one per this interval.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A packet kept for NACKs, and how often it was sent again: its marshalled header inline and
/// its payload shared with the publisher's packet and every other subscriber's copy (a slot
/// costs about a hundred bytes and nothing on the heap). A header longer than `HEAD_MAX`, or a
/// padded packet, is kept whole instead.
#[derive(Clone)]
struct Kept {
    seq: u16,
    resent: u8,
    /// When it was sent, in milliseconds after the stream's `epoch`.
    sent_ms: u32,
    /// 0: `body` is the whole plaintext packet.
    head_len: u8,
    head: [u8; HEAD_MAX],
    body: Bytes,
}

const HEAD_MAX: usize = 56;

/// Times one packet is sent again at most, however often it is NACKed (a peer repeating NACKs
/// must not make the engine resend its whole history in a loop).
const MAX_RESENDS: u8 = 2;

/// An outgoing track as negotiated: its SSRC, its codec's RTP clock and its kind.
#[derive(Debug, Clone, Copy)]
pub struct Track {
    pub ssrc: u32,
    pub clock_rate: u32,
    pub kind: MediaKind,
}

/// One outgoing stream (SSRC) of the leg.
struct Stream {
    ssrc: u32,
    clock_rate: u32,
    /// Packets sent in the last `KEEP`, oldest first (their payloads are shared with the
    /// publisher's packet and every other subscriber's copy: a slot costs a header). Video
    /// only: the engine negotiates NACK for video codecs alone, and keeping audio cost a
    /// release per packet.
    history: VecDeque<Kept>,
    keeps_history: bool,
    /// What `Kept::sent_ms` counts from.
    epoch: Instant,
    packets: u64,
    /// Payload octets (what a sender report counts).
    octets: u64,
    /// Bytes of protected datagrams sent (what statistics show as bytesSent).
    bytes: u64,
    nacks: u64,
    retransmitted: u64,
    /// Last packet's RTP timestamp and when it was sent.
    last: Option<(u32, Instant)>,
    reported: Option<Instant>,
}

impl Stream {
    fn new(t: &Track, now: Instant) -> Self {
        Self {
            ssrc: t.ssrc,
            clock_rate: t.clock_rate,
            history: VecDeque::new(),
            keeps_history: t.kind == MediaKind::Video,
            epoch: now,
            packets: 0,
            octets: 0,
            bytes: 0,
            nacks: 0,
            retransmitted: 0,
            last: None,
            reported: None,
        }
    }

    fn ms(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u32::MAX)
    }

    /// Keeps `k` and lets go of what is older than `KEEP` or beyond `HISTORY_MAX`.
    fn keep(&mut self, k: Kept) {
        let oldest = k.sent_ms.saturating_sub(KEEP.as_millis() as u32);
        while self
            .history
            .front()
            .is_some_and(|f| f.sent_ms < oldest || self.history.len() >= HISTORY_MAX)
        {
            self.history.pop_front();
        }
        if self.history.len() == self.history.capacity() {
            // A quarter more at a time, not double: the history's size is the stream's rate.
            self.history.reserve_exact((self.history.len() / 4).max(8));
        }
        self.history.push_back(k);
    }

    /// The kept packet `seq`: where consecutive sequence numbers put it, else by search (after
    /// a gap, e.g. a switch of source).
    fn kept(&mut self, seq: u16) -> Option<&mut Kept> {
        let first = self.history.front()?.seq;
        let at = usize::from(seq.wrapping_sub(first));
        let i = if self.history.get(at).is_some_and(|k| k.seq == seq) {
            at
        } else {
            self.history.iter().position(|k| k.seq == seq)?
        };
        self.history.get_mut(i)
    }

    /// After a burst (a keyframe), memory follows the stream's rate back down.
    fn trim(&mut self) {
        if self.history.capacity() > 2 * self.history.len() + 32 {
            self.history
                .shrink_to(self.history.len() + self.history.len() / 2);
        }
    }
}

/// What statistics show of one outgoing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentCounts {
    pub packets: u64,
    pub bytes: u64,
    pub nacks: u64,
}

pub struct Direct {
    srtp: Context,
    /// The keys' generation (`MasterKeys::generation`).
    generation: u64,
    streams: Vec<Stream>,
    /// Retransmissions and reports, sent with the connection's next writes.
    queued: Vec<BytesMut>,
    buf: BytesMut,
}

impl Direct {
    pub fn new(
        now: Instant,
        keys: &MasterKeys,
        profile: ProtectionProfile,
        tracks: &[Track],
        crypto: &dyn rtc::crypto::RTCCrypto,
    ) -> Result<Self, rtc::shared::error::Error> {
        let srtp = Context::new(
            keys.key.as_ref(),
            keys.salt.as_ref(),
            profile,
            None,
            None,
            crypto,
        )?;
        Ok(Self {
            srtp,
            generation: keys.generation,
            streams: tracks.iter().map(|t| Stream::new(t, now)).collect(),
            queued: Vec::new(),
            buf: BytesMut::with_capacity(1500),
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Protects `packet` and appends the datagram for `dest` to `out`. False when it could not
    /// be (an SSRC the leg does not send, or SRTP refused it).
    pub fn send(
        &mut self,
        now: Instant,
        packet: rtp::Packet,
        dest: SocketAddr,
        out: &mut Vec<(SocketAddr, BytesMut)>,
    ) -> bool {
        let Some(i) = self
            .streams
            .iter()
            .position(|s| s.ssrc == packet.header.ssrc)
        else {
            return false;
        };
        self.buf.clear();
        self.buf.resize(packet.marshal_size(), 0);
        if packet.marshal_to(&mut self.buf).is_err() {
            return false;
        }
        let Ok(protected) = self.srtp.encrypt_rtp_with_header(&self.buf, &packet.header) else {
            return false;
        };
        let s = &mut self.streams[i];
        s.packets += 1;
        s.octets += packet.payload.len() as u64;
        s.bytes += protected.len() as u64;
        s.last = Some((packet.header.timestamp, now));
        if s.keeps_history {
            let seq = packet.header.sequence_number;
            let head_len = self.buf.len() - packet.payload.len();
            let mut kept = Kept {
                seq,
                resent: 0,
                sent_ms: s.ms(now),
                head_len: 0,
                head: [0; HEAD_MAX],
                body: packet.payload,
            };
            if head_len <= HEAD_MAX && self.buf[head_len..] == kept.body[..] {
                kept.head[..head_len].copy_from_slice(&self.buf[..head_len]);
                kept.head_len = head_len as u8;
            } else {
                kept.body = Bytes::copy_from_slice(&self.buf);
            }
            s.keep(kept);
        }
        out.push((dest, protected));
        true
    }

    /// Sends again what a NACK names and the history still has (same sequence numbers: a
    /// receiver that got the first copy drops the second as a replay).
    pub fn on_nack(&mut self, nack: &TransportLayerNack) {
        let Some(i) = self.streams.iter().position(|s| s.ssrc == nack.media_ssrc) else {
            return;
        };
        self.streams[i].nacks += 1;
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let Some(k) = self.streams[i].kept(seq) else {
                    continue;
                };
                if k.resent >= MAX_RESENDS {
                    continue;
                }
                k.resent += 1;
                self.buf.clear();
                self.buf
                    .extend_from_slice(&k.head[..usize::from(k.head_len)]);
                self.buf.extend_from_slice(&k.body);
                if let Ok(protected) = self.srtp.encrypt_rtp(&self.buf) {
                    let s = &mut self.streams[i];
                    s.retransmitted += 1;
                    crate::media::bump(&crate::media::COUNTERS.retransmissions);
                    s.bytes += protected.len() as u64;
                    self.queued.push(protected);
                }
            }
        }
    }

    /// A sender report for every stream that sent since its last one, at most one per second.
    pub fn reports(&mut self, now: Instant) {
        let wall = SystemTime::now();
        for i in 0..self.streams.len() {
            self.streams[i].trim();
            let s = &self.streams[i];
            let Some((ts, at)) = s.last else { continue };
            if s.reported
                .is_some_and(|r| now.duration_since(r) < REPORT_EVERY)
            {
                continue;
            }
            let elapsed = now.saturating_duration_since(at);
            let ticks = elapsed.as_micros() as u64 * u64::from(s.clock_rate) / 1_000_000;
            let sr = SenderReport {
                ssrc: s.ssrc,
                ntp_time: ntp(wall),
                rtp_time: ts.wrapping_add(ticks as u32),
                packet_count: s.packets as u32,
                octet_count: s.octets as u32,
                reports: vec![],
                profile_extensions: Bytes::new(),
            };
            let Ok(raw) = sr.marshal() else { continue };
            if let Ok(protected) = self.srtp.encrypt_rtcp(&raw) {
                self.queued.push(protected);
            }
            self.streams[i].reported = Some(now);
        }
    }

    /// Moves the queued retransmissions and reports to `out`, for `dest`.
    pub fn drain(&mut self, dest: SocketAddr, out: &mut Vec<(SocketAddr, BytesMut)>) {
        out.extend(self.queued.drain(..).map(|d| (dest, d)));
    }

    pub fn counts(&self, ssrc: u32) -> Option<SentCounts> {
        self.streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map(|s| SentCounts {
                packets: s.packets + s.retransmitted,
                bytes: s.bytes,
                nacks: s.nacks,
            })
    }

    /// Bytes of every datagram sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

/// RFC 3550 NTP timestamp (seconds since 1900 in the upper 32 bits, fraction below).
fn ntp(t: SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + UNIX_TO_NTP;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests;

//! The per-subscriber half of forwarding: a tap on the element's current input hub rewrites each
//! packet for this peer connection (SSRC, payload type, header-extension ids, and seq/timestamp
//! continuity across source switches) and hands it to the subscriber's worker without waiting;
//! a small task follows reconnections of the input.

use parking_lot::Mutex;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
use rtc::rtp_transceiver::RTCRtpSenderId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::flow::{EventTx, Flow};
use super::hub::{Attachment, Forwarded, Hub, SourceParams, Tap};
use super::worker::handle::{ConnKey, Delivery, WorkerHandle};
use super::{bump, MediaKind, TaskGuard, COUNTERS};

/// Extensions that describe the hop, not the media: never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
];

/// What a negotiated outgoing track accepts, and where its packets go.
pub struct SinkSpec {
    pub kind: MediaKind,
    pub worker: WorkerHandle,
    pub conn: ConnKey,
    pub sender: RTCRtpSenderId,
    pub ssrc: u32,
    pub codecs: Vec<RTCRtpCodecParameters>,
    /// (id, uri) negotiated on this peer connection.
    pub extensions: Vec<(u8, String)>,
    /// The peer connection is up (packets before that are dropped: nobody could decrypt them).
    pub writable: Arc<AtomicBool>,
    /// The endpoint's shared state (the flow state is kept there).
    pub snapshot: crate::media::worker::handle::SharedSnapshot,
}

type Input = watch::Receiver<Option<Arc<Hub>>>;

/// One outgoing track, fed by its source's hub.
struct SinkTap {
    worker: WorkerHandle,
    conn: ConnKey,
    sender: RTCRtpSenderId,
    writable: Arc<AtomicBool>,
    events: EventTx,
    state: Mutex<SinkState>,
}

struct SinkState {
    rw: Rewriter,
    flow: Flow,
}

impl Tap for SinkTap {
    fn deliver(&self, from: &Hub, f: &Arc<Forwarded>) {
        if !self.writable.load(Ordering::Relaxed) {
            bump(&COUNTERS.rtp_dropped);
            return;
        }
        let mut st = self.state.lock();
        let Some(packet) = st.rw.rewrite(f, f.at) else {
            bump(&COUNTERS.rtp_dropped);
            return;
        };
        let queued = self.worker.deliver(Delivery {
            conn: self.conn,
            sender: self.sender,
            packet,
        });
        if queued {
            bump(&COUNTERS.rtp_out);
            st.flow.packet(&self.events);
        } else {
            // The other worker's queue is full: this subscriber's decoder will need a keyframe.
            bump(&COUNTERS.rtp_dropped);
            from.request_keyframe();
        }
    }
}

/// Keeps the tap attached to whichever hub the element's input points at, and ticks its
/// MediaFlowOut state, until the endpoint is released.
pub async fn follow_input(
    spec: SinkSpec,
    mut input: Input,
    object: String,
    events: EventTx,
    cancel: CancellationToken,
) {
    let _guard = TaskGuard::new();
    let tap = Arc::new(SinkTap {
        worker: spec.worker,
        conn: spec.conn,
        sender: spec.sender,
        writable: spec.writable,
        events,
        state: Mutex::new(SinkState {
            rw: Rewriter::new(spec.ssrc, spec.codecs, spec.extensions),
            flow: Flow::outbound(&object, spec.kind).shown_in(spec.snapshot.clone()),
        }),
    });
    let mut attached = Attachment::new(tap.clone());
    if let Some(h) = attached.follow(input.borrow_and_update().clone()) {
        h.request_keyframe();
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = input.changed() => {
                if r.is_err() { break; }
                let hub = input.borrow_and_update().clone();
                if let Some(h) = attached.follow(hub) { h.request_keyframe(); }
            }
            _ = tick.tick() => {
                let mut st = tap.state.lock();
                st.flow.tick(Instant::now(), &tap.events);
            }
        }
    }
}

/// Per-outgoing-stream rewriting state.
pub struct Rewriter {
    ssrc: u32,
    codecs: Vec<RTCRtpCodecParameters>,
    extensions: Vec<(u8, String)>,
    source: Option<Arc<SourceParams>>,
    pt_map: Vec<(u8, Option<u8>)>,
    ext_map: Vec<(u8, Option<u8>)>,
    seq_offset: u16,
    ts_offset: u32,
    /// Last packet out: (seq, ts, when, clock rate).
    last: Option<(u16, u32, Instant, u32)>,
}

impl Rewriter {
    pub fn new(
        ssrc: u32,
        codecs: Vec<RTCRtpCodecParameters>,
        extensions: Vec<(u8, String)>,
    ) -> Self {
        let extensions = extensions
            .into_iter()
            .filter(|(_, u)| !HOP_BY_HOP.contains(&u.as_str()))
            .collect();
        Self {
            ssrc,
            codecs,
            extensions,
            source: None,
            pt_map: Vec::new(),
            ext_map: Vec::new(),
            seq_offset: 0,
            ts_offset: 0,
            last: None,
        }
    }

    /// The packet as this peer connection must see it; `None` when its codec was not negotiated
    /// here (the engine does not transcode).
    pub fn rewrite(&mut self, f: &Forwarded, now: Instant) -> Option<rtp::Packet> {
        let in_pt = f.packet.header.payload_type;
        if !self
            .source
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &f.source))
        {
            self.switch_source(f, now);
        }
        let out_pt = self.map_pt(in_pt, &f.source)?;
        let mut p = f.packet.clone();
        p.header.ssrc = self.ssrc;
        p.header.payload_type = out_pt;
        p.header.sequence_number = p.header.sequence_number.wrapping_add(self.seq_offset);
        p.header.timestamp = p.header.timestamp.wrapping_add(self.ts_offset);
        if !p.header.extensions.is_empty() {
            let exts = std::mem::take(&mut p.header.extensions);
            for mut e in exts {
                if let Some(id) = self.map_ext(e.id, &f.source) {
                    e.id = id;
                    p.header.extensions.push(e);
                }
            }
        }
        p.header.extension = !p.header.extensions.is_empty();
        let clock = f
            .source
            .codec(in_pt)
            .map(|c| c.rtp_codec.clock_rate)
            .unwrap_or(90_000);
        self.last = Some((p.header.sequence_number, p.header.timestamp, now, clock));
        Some(p)
    }

    /// Keeps seq and timestamp continuous for the receiver when the source changes: only
    /// "continuous seq + monotonic ts + keyframe" switched cleanly in measurements.
    fn switch_source(&mut self, f: &Forwarded, now: Instant) {
        self.source = Some(f.source.clone());
        self.pt_map.clear();
        self.ext_map.clear();
        if let Some((seq, ts, at, clock)) = self.last {
            let elapsed = now.duration_since(at).as_millis() as u64;
            let ticks = (elapsed * u64::from(clock) / 1000).max(1) as u32;
            self.seq_offset = seq
                .wrapping_add(1)
                .wrapping_sub(f.packet.header.sequence_number);
            self.ts_offset = ts
                .wrapping_add(ticks)
                .wrapping_sub(f.packet.header.timestamp);
        }
    }

    fn map_pt(&mut self, pt: u8, source: &SourceParams) -> Option<u8> {
        if let Some((_, out)) = self.pt_map.iter().find(|(i, _)| *i == pt) {
            return *out;
        }
        let out = source.codec(pt).and_then(|c| best_match(c, &self.codecs));
        self.pt_map.push((pt, out));
        out
    }

    fn map_ext(&mut self, id: u8, source: &SourceParams) -> Option<u8> {
        if let Some((_, out)) = self.ext_map.iter().find(|(i, _)| *i == id) {
            return *out;
        }
        let out = source
            .ext_uri(id)
            .and_then(|uri| self.extensions.iter().find(|(_, u)| u == uri))
            .map(|(i, _)| *i);
        self.ext_map.push((id, out));
        out
    }
}

/// The sink's payload type for the source's codec: same MIME type, and for H.264 the same
/// packetization mode and profile.
fn best_match(src: &RTCRtpCodecParameters, sink: &[RTCRtpCodecParameters]) -> Option<u8> {
    let same_mime = |c: &&RTCRtpCodecParameters| {
        c.rtp_codec
            .mime_type
            .eq_ignore_ascii_case(&src.rtp_codec.mime_type)
    };
    if let Some(exact) = sink
        .iter()
        .filter(same_mime)
        .find(|c| c.rtp_codec.sdp_fmtp_line == src.rtp_codec.sdp_fmtp_line)
    {
        return Some(exact.payload_type);
    }
    if src.rtp_codec.mime_type.eq_ignore_ascii_case("video/H264") {
        let key = |f: &str| {
            (
                fmtp(f, "packetization-mode"),
                fmtp(f, "profile-level-id").map(|p| p.chars().take(2).collect::<String>()),
            )
        };
        let want = key(&src.rtp_codec.sdp_fmtp_line);
        return sink
            .iter()
            .filter(same_mime)
            .find(|c| key(&c.rtp_codec.sdp_fmtp_line) == want)
            .map(|c| c.payload_type);
    }
    sink.iter().find(same_mime).map(|c| c.payload_type)
}

fn fmtp(line: &str, key: &str) -> Option<String> {
    line.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == key).then(|| v.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;

    fn codec(pt: u8, mime: &str, fmtp: &str) -> RTCRtpCodecParameters {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: fmtp.into(),
                rtcp_feedback: vec![],
            },
            payload_type: pt,
        }
    }

    fn packet(pt: u8, seq: u16, ts: u32, ext: &[(u8, &'static [u8])]) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.payload_type = pt;
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.ssrc = 1234;
        for (id, v) in ext {
            p.header.extensions.push(rtp::header::Extension {
                id: *id,
                payload: bytes::Bytes::from_static(v),
            });
        }
        p.header.extension = !ext.is_empty();
        p
    }

    #[test]
    fn rewrites_ssrc_pt_extensions_and_keeps_continuity() {
        let src_a = Arc::new(SourceParams {
            codecs: vec![codec(96, "video/VP8", "")],
            extensions: vec![
                (3, "urn:ietf:params:rtp-hdrext:toffset".into()),
                (4, HOP_BY_HOP[0].into()),
            ],
        });
        let src_b = Arc::new(SourceParams {
            codecs: vec![codec(120, "video/VP8", "")],
            extensions: vec![],
        });
        let mut rw = Rewriter::new(
            777,
            vec![
                codec(100, "video/H264", "packetization-mode=1"),
                codec(98, "video/VP8", ""),
            ],
            vec![
                (9, "urn:ietf:params:rtp-hdrext:toffset".into()),
                (10, HOP_BY_HOP[0].into()),
            ],
        );
        let t0 = Instant::now();
        let f = Forwarded {
            packet: packet(96, 10, 1000, &[(3, b"x"), (4, b"0")]),
            source: src_a.clone(),
            at: t0,
        };
        let out = rw.rewrite(&f, t0).map(|p| p.header);
        let Some(h) = out else { panic!("dropped") };
        assert_eq!(
            (h.ssrc, h.payload_type, h.sequence_number, h.timestamp),
            (777, 98, 10, 1000)
        );
        assert_eq!(
            h.extensions.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![9]
        );
        // Switch to another source with unrelated numbers: continuity is kept.
        let f = Forwarded {
            packet: packet(120, 5000, 77, &[]),
            source: src_b,
            at: t0,
        };
        let Some(h) = rw
            .rewrite(&f, t0 + Duration::from_millis(100))
            .map(|p| p.header)
        else {
            panic!("dropped")
        };
        assert_eq!(h.sequence_number, 11);
        assert_eq!(h.timestamp, 1000 + 9000);
        assert!(!h.extension);
        // A codec the sink did not negotiate is dropped.
        let src_c = Arc::new(SourceParams {
            codecs: vec![codec(45, "video/AV1", "")],
            extensions: vec![],
        });
        assert!(rw
            .rewrite(
                &Forwarded {
                    packet: packet(45, 1, 1, &[]),
                    source: src_c,
                    at: t0,
                },
                t0
            )
            .is_none());
    }

    #[test]
    fn h264_matches_on_mode_and_profile() {
        let src = codec(
            102,
            "video/H264",
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        );
        let sink = vec![
            codec(
                104,
                "video/H264",
                "packetization-mode=0;profile-level-id=42001f",
            ),
            codec(
                106,
                "video/H264",
                "packetization-mode=1;profile-level-id=42e01f",
            ),
        ];
        assert_eq!(best_match(&src, &sink), Some(106));
    }
}

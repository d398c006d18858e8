//! A webrtc-rs peer for tests: publishes synthetic media, or receives and counts it.

use crate::peer_factory::PcFactory;
use parking_lot::Mutex;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};

use crate::synth;

/// Per-kind packet counters of a receiving peer, and PLIs seen by a sending one.
#[derive(Default, Debug)]
pub struct Stats {
    pub audio_packets: AtomicU64,
    pub video_packets: AtomicU64,
    pub video_bytes: AtomicU64,
    /// The newest video sequence number received (for NACKs the tests send).
    pub video_last_seq: AtomicU64,
    pub plis_received: AtomicU64,
    /// Receive-side loss from sequence-number gaps (video and audio).
    pub video_lost: AtomicU64,
    pub audio_lost: AtomicU64,
    /// When the first RTP packet of any kind arrived.
    pub first_packet: std::sync::OnceLock<std::time::Instant>,
    /// When our offer was sent (set by the signaling client).
    pub requested: std::sync::OnceLock<std::time::Instant>,
    /// When the answer to our offer arrived (set by the signaling client).
    pub answered: std::sync::OnceLock<std::time::Instant>,
    /// When the peer connection reached "connected".
    pub connected_at: std::sync::OnceLock<std::time::Instant>,
    /// RFC 3550 interarrival jitter of the video stream, in milliseconds (f64 bits).
    pub video_jitter_ms: AtomicU64,
    /// Send → receive of stamped video packets (first of each frame), in µs: the latest
    /// [`DELAY_SAMPLES`] (`synth::stamp`; sender and receiver in one process).
    pub delays_us: parking_lot::Mutex<std::collections::VecDeque<u32>>,
}

/// How many send → receive delays a receiving peer keeps.
pub const DELAY_SAMPLES: usize = 2048;

impl Stats {
    pub fn audio(&self) -> u64 {
        self.audio_packets.load(Ordering::Relaxed)
    }
    pub fn video(&self) -> u64 {
        self.video_packets.load(Ordering::Relaxed)
    }
    pub fn plis(&self) -> u64 {
        self.plis_received.load(Ordering::Relaxed)
    }
    pub fn lost(&self) -> u64 {
        self.video_lost.load(Ordering::Relaxed) + self.audio_lost.load(Ordering::Relaxed)
    }
    pub fn jitter_ms(&self) -> f64 {
        f64::from_bits(self.video_jitter_ms.load(Ordering::Relaxed))
    }
}

struct Handler {
    stats: Arc<Stats>,
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    connected: watch::Sender<bool>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        if let Ok(c) = e.candidate.to_json() {
            let _ = self.candidates.send(c);
        }
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        if s == RTCPeerConnectionState::Connected {
            let _ = self.stats.connected_at.set(std::time::Instant::now());
        }
        self.connected
            .send_replace(s == RTCPeerConnectionState::Connected);
    }
    async fn on_track(&self, t: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(t);
    }
}

pub struct TestPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub stats: Arc<Stats>,
    pub candidates: Mutex<Option<mpsc::UnboundedReceiver<RTCIceCandidateInit>>>,
    pub connected: watch::Receiver<bool>,
    video_track: Option<Arc<TrackLocalStaticRTP>>,
    audio_track: Option<Arc<TrackLocalStaticRTP>>,
    remote_tracks: Arc<Mutex<Vec<Arc<dyn TrackRemote>>>>,
    cancel: CancellationToken,
}

fn factory() -> Result<PcFactory, anyhow::Error> {
    Ok(PcFactory::new("127.0.0.1".parse()?, None)?)
}

impl TestPeer {
    async fn build() -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>)> {
        let (ctx, crx) = mpsc::unbounded_channel();
        let (ttx, trx) = mpsc::unbounded_channel();
        let (conn_tx, conn_rx) = watch::channel(false);
        let stats = Arc::new(Stats::default());
        let pc = factory()?
            .build(
                Arc::new(Handler {
                    stats: stats.clone(),
                    candidates: ctx,
                    connected: conn_tx,
                    tracks: ttx,
                }),
                Vec::new(),
            )
            .await?;
        let peer = Self {
            pc,
            stats,
            candidates: Mutex::new(Some(crx)),
            connected: conn_rx,
            video_track: None,
            audio_track: None,
            remote_tracks: Arc::new(Mutex::new(Vec::new())),
            cancel: CancellationToken::new(),
        };
        Ok((peer, trx))
    }

    /// A peer that sends VP8 video and Opus audio (sendonly); it counts PLIs it receives.
    pub async fn publisher() -> anyhow::Result<Self> {
        let (mut peer, _tracks) = Self::build().await?;
        let stream = format!("pub-{}", std::process::id());
        for (kind, mime, clock, ch) in [
            (RtpCodecKind::Audio, "audio/opus", 48_000, 2),
            (RtpCodecKind::Video, "video/VP8", 90_000, 0),
        ] {
            let ssrc = rand_ssrc();
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                stream.clone(),
                format!("{kind}-track"),
                format!("{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: mime.into(),
                        clock_rate: clock,
                        channels: ch,
                        sdp_fmtp_line: String::new(),
                        rtcp_feedback: vec![],
                    },
                    ..Default::default()
                }],
            )));
            peer.pc
                .add_transceiver_from_track(
                    track.clone() as Arc<dyn TrackLocal>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .await?;
            let stats = peer.stats.clone();
            let t = track.clone();
            let cancel = peer.cancel.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        ev = t.poll() => match ev {
                            Some(TrackLocalEvent::OnRtcpPacket(pkts)) => {
                                let n = pkts.iter().filter(|p| p.as_any().is::<PictureLossIndication>()).count();
                                stats.plis_received.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            Some(_) => {}
                            None => break,
                        }
                    }
                }
            });
            match kind {
                RtpCodecKind::Video => peer.video_track = Some(track),
                _ => peer.audio_track = Some(track),
            }
        }
        Ok(peer)
    }

    /// A peer that only receives (recvonly audio + video) and counts what arrives.
    pub async fn subscriber() -> anyhow::Result<Self> {
        let (peer, tracks) = Self::build().await?;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            peer.pc
                .add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .await?;
        }
        peer.count_incoming(tracks);
        Ok(peer)
    }

    /// A receiving peer with no transceivers of its own: it answers a server's offer.
    pub async fn answerer() -> anyhow::Result<Self> {
        let (peer, tracks) = Self::build().await?;
        peer.count_incoming(tracks);
        Ok(peer)
    }

    /// Counts the packets of every track this peer receives.
    fn count_incoming(&self, mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>) {
        let (stats, remote, cancel) = (
            self.stats.clone(),
            self.remote_tracks.clone(),
            self.cancel.clone(),
        );
        tokio::spawn(async move {
            loop {
                let t = tokio::select! {
                    _ = cancel.cancelled() => break,
                    t = tracks.recv() => match t { Some(t) => t, None => break },
                };
                remote.lock().push(t.clone());
                tokio::spawn(count(t, stats.clone(), cancel.clone()));
            }
        });
    }

    pub async fn create_offer(&self) -> anyhow::Result<String> {
        let offer = self.pc.create_offer(None).await?;
        self.set_local(offer).await
    }

    pub async fn accept_offer(&self, sdp: &str) -> anyhow::Result<String> {
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp.to_string())?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        self.set_local(answer).await
    }

    /// Applies our description; returns the SDP as the peer connection now states it.
    async fn set_local(&self, desc: RTCSessionDescription) -> anyhow::Result<String> {
        self.pc.set_local_description(desc).await?;
        Ok(self
            .pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default())
    }

    pub async fn set_answer(&self, sdp: &str) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp.to_string())?)
            .await?;
        Ok(())
    }

    pub async fn add_candidate(&self, c: &kms_client::wire::IceCandidate) -> anyhow::Result<()> {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: c.candidate.clone(),
                sdp_mid: Some(c.sdp_mid.clone()),
                sdp_mline_index: Some(c.sdp_m_line_index as u16),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    pub async fn wait_connected(&self, within: Duration) -> bool {
        let mut rx = self.connected.clone();
        tokio::time::timeout(within, rx.wait_for(|c| *c))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    }

    /// Sends synthetic media until cancelled: `fps` VP8 frames of `frame_bytes` (keyframe every
    /// `keyframe_every` frames) and 50 Opus packets a second.
    pub fn start_sending(
        &self,
        fps: u32,
        frame_bytes: usize,
        keyframe_every: u32,
    ) -> CancellationToken {
        let stop = self.cancel.child_token();
        let (Some(video), Some(audio)) = (self.video_track.clone(), self.audio_track.clone())
        else {
            return stop;
        };
        let s = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut vseq, mut aseq, mut n, mut i) = (1u16, 1u16, 0u32, 0u32);
            let video_every = (50 / fps.max(1)).max(1);
            let (vssrc, assrc) = (
                video.ssrcs().await.first().copied().unwrap_or(0),
                audio.ssrcs().await.first().copied().unwrap_or(0),
            );
            loop {
                tokio::select! { _ = s.cancelled() => break, _ = tick.tick() => {} }
                let mut a = synth::opus_packet(&mut aseq, i * 960, 100);
                a.header.ssrc = assrc;
                a.header.payload_type = 111;
                let _ = audio.write_rtp(a).await;
                if i % video_every == 0 {
                    for (k, mut p) in synth::vp8_frame(
                        n,
                        frame_bytes,
                        n % keyframe_every.max(1) == 0,
                        &mut vseq,
                        n * 3000,
                    )
                    .into_iter()
                    .enumerate()
                    {
                        p.header.ssrc = vssrc;
                        p.header.payload_type = 96;
                        if k == 0 {
                            synth::stamp(&mut p, synth::clock_us());
                        }
                        let _ = video.write_rtp(p).await;
                    }
                    n += 1;
                }
                i += 1;
            }
        });
        stop
    }

    /// Sends a PLI for every video track this peer receives.
    pub async fn send_pli(&self) -> usize {
        self.feedback_on_video(|media_ssrc| {
            Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            })
        })
        .await
    }

    /// NACKs the `n` video packets before the newest one received (they did arrive: the sender's
    /// answer is what a test looks at). Returns how many tracks it was sent on.
    pub async fn send_nack(&self, n: u16) -> usize {
        use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
            nack_pairs_from_sequence_numbers, TransportLayerNack,
        };
        let last = self.stats.video_last_seq.load(Ordering::Relaxed) as u16;
        let seqs: Vec<u16> = (1..=n).rev().map(|i| last.wrapping_sub(i)).collect();
        self.feedback_on_video(|media_ssrc| {
            Box::new(TransportLayerNack {
                sender_ssrc: 0,
                media_ssrc,
                nacks: nack_pairs_from_sequence_numbers(&seqs),
            })
        })
        .await
    }

    /// Writes `packet(ssrc)` on every video track this peer receives; how many took it.
    async fn feedback_on_video(&self, packet: impl Fn(u32) -> Box<dyn rtc::rtcp::Packet>) -> usize {
        let tracks = self.remote_tracks.lock().clone();
        let mut sent = 0;
        for t in tracks {
            if t.kind().await == RtpCodecKind::Video {
                let ssrc = t.ssrcs().await.first().copied().unwrap_or(0);
                if t.write_rtcp(vec![packet(ssrc)]).await.is_ok() {
                    sent += 1;
                }
            }
        }
        sent
    }

    pub async fn close(&self) {
        self.cancel.cancel();
        let _ = self.pc.close().await;
    }
}

async fn count(t: Arc<dyn TrackRemote>, stats: Arc<Stats>, cancel: CancellationToken) {
    let kind = t.kind().await;
    let mut last_seq: Option<u16> = None;
    // RFC 3550 §6.4.1 jitter, video clock 90 kHz.
    let mut jitter = 0.0f64;
    let mut prev: Option<(std::time::Instant, u32)> = None;
    loop {
        let ev = tokio::select! { _ = cancel.cancelled() => break, ev = t.poll() => ev };
        let p = match ev {
            Some(TrackRemoteEvent::OnRtpPacket(p)) => p,
            Some(_) => continue,
            None => break,
        };
        let now = std::time::Instant::now();
        let _ = stats.first_packet.set(now);
        let (counter, lost) = match kind {
            RtpCodecKind::Audio => (&stats.audio_packets, &stats.audio_lost),
            _ => (&stats.video_packets, &stats.video_lost),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(l) = last_seq {
            let gap = p.header.sequence_number.wrapping_sub(l);
            if gap > 1 && gap < 0x8000 {
                lost.fetch_add(u64::from(gap - 1), Ordering::Relaxed);
            }
        }
        if last_seq.is_none_or(|l| p.header.sequence_number.wrapping_sub(l) < 0x8000) {
            last_seq = Some(p.header.sequence_number);
            if kind != RtpCodecKind::Audio {
                stats
                    .video_last_seq
                    .store(u64::from(p.header.sequence_number), Ordering::Relaxed);
            }
        }
        if kind != RtpCodecKind::Audio {
            stats
                .video_bytes
                .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
            if let Some(sent) = synth::sent_us(&p.payload) {
                let took = synth::clock_us().saturating_sub(sent);
                let mut d = stats.delays_us.lock();
                if d.len() >= DELAY_SAMPLES {
                    d.pop_front();
                }
                d.push_back(u32::try_from(took).unwrap_or(u32::MAX));
            }
            if let Some((t0, ts0)) = prev {
                let arrival = now.duration_since(t0).as_secs_f64() * 90_000.0;
                let sent = f64::from(p.header.timestamp.wrapping_sub(ts0) as i32);
                jitter += ((arrival - sent).abs() - jitter) / 16.0;
                stats
                    .video_jitter_ms
                    .store((jitter / 90.0).to_bits(), Ordering::Relaxed);
            }
            prev = Some((now, p.header.timestamp));
        }
    }
}

fn rand_ssrc() -> u32 {
    let b = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(1)
}

//! One WebRtcEndpoint's peer connection on its worker: Kurento's negotiation operations run
//! here synchronously, its events become Kurento events, its incoming RTP goes to the
//! endpoint's output hubs and its subscribers' keyframe requests go upstream.

use bytes::BytesMut;
use kms_client::wire::complex::{candidate_pair, IceCandidate};
use kms_client::wire::events::{self, name};
use rtc::media_stream::MediaStreamTrackId;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent, RTCTrackEventInit};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::{
    RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionState,
};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use super::handle::{ConnInit, ConnKey, SharedSnapshot, WorkerHandle};
use crate::media::factory::PcFactory;
use crate::media::flow::{now_millis, EventTx, Flow};
use crate::media::hub::{Forwarded, Hub, Ports, SourceParams};
use crate::media::publish::{self, SeqWindow};
use crate::media::srtp_keys::{self, KeyCapture};
use crate::media::{bump, MediaKind, COUNTERS};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

/// A remote track being received.
struct Inbound {
    hub: Arc<Hub>,
    source: Arc<SourceParams>,
    seen: SeqWindow,
    flow: Flow,
}

pub struct Conn {
    pub key: ConnKey,
    pub ufrag: String,
    id: String,
    pwd: String,
    stream_id: String,
    /// The endpoint's peer connection (boxed: 8.5 KB a leg without one should not carry);
    /// none once it runs on a direct leg.
    pc: Option<Box<RTCPeerConnection>>,
    /// A viewer's endpoint without a peer connection (`leg.rs`).
    leg: Option<Box<leg::Leg>>,
    factory: Arc<PcFactory>,
    worker: WorkerHandle,
    ports: Arc<Ports>,
    events: EventTx,
    snapshot: SharedSnapshot,
    /// Cancels the endpoint's helper tasks (sink followers, PLI limiters).
    cancel: CancellationToken,
    /// Packets may be written (DTLS and SRTP are up); read by this endpoint's sink taps.
    writable: Arc<AtomicBool>,
    gathering_requested: bool,
    gathering_complete: bool,
    /// Gathered before the client asked (`gatherCandidates`): held, since KMS emits none before.
    local_candidates: Vec<RTCIceCandidateInit>,
    /// Received before the remote description: applied after it.
    remote_candidates: Vec<RTCIceCandidateInit>,
    /// Local tracks added to an offer of ours, started once the answer arrives.
    pending_sinks: Vec<(MediaKind, RTCRtpSenderId)>,
    /// Our outgoing tracks by id (RTCP about them names them), with their kind.
    local_tracks: HashMap<MediaStreamTrackId, MediaKind>,
    inbound: HashMap<MediaStreamTrackId, Inbound>,
    last_ice: Option<&'static str>,
    /// Where the peer's last connectivity check (STUN) came from: the remote side of the
    /// selected pair when `rtc` has no statistics entry for it (a peer-reflexive candidate).
    stun_from: Option<SocketAddr>,
    /// A subscriber leg's SRTP key source (`direct_send`), and its direct send path once DTLS
    /// is up.
    keys: Option<Arc<KeyCapture>>,
    direct: Option<Direct>,
    /// Each outgoing track (what the direct path sends).
    out_tracks: Vec<direct::Track>,
    /// Where a subscriber leg's media goes: the selected pair's remote side (where `rtc` last
    /// sent anything but STUN, or the peer's authenticated RTCP last came from).
    media_dest: Option<SocketAddr>,
    /// Listed among this loop turn's touched connections (their writes and events need
    /// draining); managed by the worker loop.
    pub dirty: bool,
}

pub(crate) mod direct;
mod leg;
mod negotiate;
mod stats;

use direct::Direct;

impl Conn {
    pub fn new(init: ConnInit) -> Self {
        Self {
            key: init.key,
            ufrag: init.ufrag,
            id: init.id,
            pwd: init.pwd,
            stream_id: format!("rtcpool-{}", uuid::Uuid::new_v4().simple()),
            pc: Some(Box::new(init.pc)),
            leg: None,
            keys: None,
            direct: None,
            out_tracks: Vec::new(),
            media_dest: None,
            factory: init.factory,
            worker: init.worker,
            ports: init.ports,
            events: init.events,
            snapshot: init.snapshot,
            cancel: init.cancel,
            writable: Arc::new(AtomicBool::new(false)),
            gathering_requested: false,
            gathering_complete: false,
            local_candidates: Vec::new(),
            remote_candidates: Vec::new(),
            pending_sinks: Vec::new(),
            local_tracks: HashMap::new(),
            inbound: HashMap::new(),
            last_ice: None,
            stun_from: None,
            dirty: false,
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.worker.0.advertised
    }

    /// A datagram routed to this connection. False when the connection refused it.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> bool {
        if data.first().is_some_and(|b| *b < 2) {
            self.stun_from = Some(from);
        }
        if self.leg.is_some() {
            return self.leg_datagram(now, from, data);
        }
        let local_addr = self.local_addr();
        let Some(pc) = self.pc.as_mut() else {
            return false;
        };
        let ok = pc
            .handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(data),
            })
            .is_ok();
        // A subscriber's RTCP arrives from the address its media goes to: if ICE moved to
        // another pair, the direct path follows it.
        if ok && self.keys.is_some() && data.first().is_some_and(|b| (128..192).contains(b)) {
            self.media_dest = Some(from);
        }
        // Events first: a track's first packets arrive together with its OnTrack.
        self.drain_events(now);
        self.drain_reads(now);
        ok
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(l) = self.leg.as_mut() {
            l.transport_timeout(now);
            self.drain_leg(now);
        } else if let Some(pc) = self.pc.as_mut() {
            if let Err(e) = pc.handle_timeout(now) {
                tracing::debug!(%e, "timeout");
            }
        }
    }

    pub fn poll_timeout(&mut self) -> Option<Instant> {
        match (self.leg.as_mut(), self.pc.as_mut()) {
            (Some(l), _) => l.transport_poll_timeout(),
            (None, Some(pc)) => pc.poll_timeout(),
            (None, None) => None,
        }
    }

    /// Writes a rewritten packet on one of our senders: on the direct path straight into `out`
    /// (false: nothing to drain), else through `rtc` (true: the connection needs draining).
    pub fn write_rtp(
        &mut self,
        now: Instant,
        sender: RTCRtpSenderId,
        packet: rtp::Packet,
        out: &mut Vec<(SocketAddr, BytesMut)>,
    ) -> bool {
        if let (Some(d), Some(dest)) = (self.direct.as_mut(), self.media_dest) {
            if !d.send(now, packet, dest, out) {
                bump(&COUNTERS.rtp_dropped);
            }
            return false;
        }
        match self.pc.as_mut().and_then(|pc| pc.rtp_sender(sender)) {
            Some(mut s) => {
                if s.write_rtp(now, packet).is_err() {
                    bump(&COUNTERS.rtp_dropped);
                }
            }
            None => bump(&COUNTERS.rtp_dropped),
        }
        true
    }

    /// Once DTLS is up on a subscriber leg: its own SRTP context, from the keys `rtc` derived.
    fn start_direct(&mut self, cipher: &str, now: Instant) {
        let (Some(keys), Some(_)) = (self.keys.as_ref(), self.media_dest) else {
            return;
        };
        let Some(profile) = srtp_keys::profile_named(cipher) else {
            tracing::warn!(endpoint = %self.id, %cipher, "direct send: unknown SRTP profile");
            return;
        };
        let Some(master) = keys.local(profile) else {
            tracing::warn!(endpoint = %self.id, "direct send: no SRTP keys");
            return;
        };
        // Connected again after a spell of ICE disconnection, with the same DTLS session: the
        // send path keeps its SRTP state (a fresh context would reuse SRTCP indexes, i.e.
        // nonces, under the same keys).
        if self
            .direct
            .as_ref()
            .is_some_and(|d| d.generation() == master.generation)
        {
            return;
        }
        use rtc::crypto::RTCCryptoProvider;
        match Direct::new(now, &master, profile, &self.out_tracks, keys.crypto()) {
            Ok(d) => {
                bump(&COUNTERS.direct_legs);
                self.direct = Some(d);
            }
            Err(e) => tracing::warn!(endpoint = %self.id, %e, "direct send"),
        }
    }

    pub fn send_pli(&mut self, now: Instant, receiver: RTCRtpReceiverId, media_ssrc: u32) {
        if let Some(mut r) = self.pc.as_mut().and_then(|pc| pc.rtp_receiver(receiver)) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if r.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
                bump(&COUNTERS.plis_sent);
            }
        }
    }

    /// Everything the connection wants sent, in order: (destination, datagram).
    pub fn drain_writes(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) {
        if let Some(l) = self.leg.as_mut() {
            while let Some(w) = l.transport_transmit() {
                out.push(w);
            }
        }
        while let Some(w) = self.pc.as_mut().and_then(|pc| pc.poll_write()) {
            // DTLS (and SRTP) go over the selected pair only; STUN answers any pair's checks.
            if self.keys.is_some() && w.message.first().is_some_and(|b| *b >= 2) {
                self.media_dest = Some(w.transport.peer_addr);
            }
            out.push((w.transport.peer_addr, w.message));
        }
        self.drain_direct(out);
    }

    /// A direct leg's queued retransmissions and reports.
    fn drain_direct(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) {
        if let (Some(d), Some(dest)) = (self.direct.as_mut(), self.media_dest) {
            d.drain(dest, out);
        }
    }

    pub fn drain(&mut self, now: Instant) {
        self.drain_events(now);
        self.drain_reads(now);
    }

    fn drain_reads(&mut self, now: Instant) {
        while let Some(m) = self.pc.as_mut().and_then(|pc| pc.poll_read()) {
            match m.message {
                RTCMessage::RtpPacket(track, packet) => self.on_rtp(now, &track, packet),
                RTCMessage::RtcpPacket(track, pkts) => {
                    let Some(kind) = self.local_tracks.get(&track).copied() else {
                        continue;
                    };
                    if let Some(d) = self.direct.as_mut() {
                        for p in &pkts {
                            if let Some(n) = p.as_any().downcast_ref::<TransportLayerNack>() {
                                d.on_nack(n);
                            }
                        }
                    }
                    if pkts
                        .iter()
                        .any(|p| crate::media::rtcp_tap::is_keyframe_request(p.as_ref()))
                    {
                        bump(&COUNTERS.keyframe_requests_in);
                        if let Some(h) = self.ports.input(kind).borrow().as_ref() {
                            h.request_keyframe();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn on_rtp(&mut self, now: Instant, track: &str, packet: rtp::Packet) {
        let Some(t) = self.inbound.get_mut(track) else {
            return;
        };
        if !t.seen.insert(packet.header.sequence_number) {
            bump(&COUNTERS.duplicates);
            return;
        }
        bump(&COUNTERS.rtp_in);
        t.flow.packet(&self.events);
        t.hub.send(Arc::new(Forwarded {
            packet,
            source: t.source.clone(),
            at: now,
        }));
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(ev) = self.pc.as_mut().and_then(|pc| pc.poll_event()) {
            match ev {
                RTCPeerConnectionEvent::OnIceCandidateEvent(e) => {
                    if let Ok(c) = e.candidate.to_json() {
                        if self.gathering_requested {
                            self.emit_candidate(&c);
                        } else {
                            self.local_candidates.push(c);
                        }
                    }
                }
                RTCPeerConnectionEvent::OnIceGatheringStateChangeEvent(
                    RTCIceGatheringState::Complete,
                ) => {
                    self.gathering_complete = true;
                    if self.gathering_requested {
                        self.emit(name::ICE_GATHERING_DONE, json!({}));
                    }
                }
                RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(s) => {
                    self.on_ice_state(s, now)
                }
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => self.on_state(s, now),
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => self.on_track(init),
                _ => {}
            }
        }
    }

    fn on_ice_state(&mut self, s: RTCIceConnectionState, now: Instant) {
        let state = match s {
            RTCIceConnectionState::Checking => "CONNECTING",
            RTCIceConnectionState::Connected => "CONNECTED",
            RTCIceConnectionState::Completed => "READY",
            RTCIceConnectionState::Failed => "FAILED",
            RTCIceConnectionState::Disconnected | RTCIceConnectionState::Closed => "DISCONNECTED",
            _ => return,
        };
        if !self.ice_state(state) {
            return;
        }
        if state == "CONNECTED" {
            if let Some((local, remote)) = self.selected_pair(now) {
                let pair = candidate_pair("1", 1, &local, &remote);
                self.emit(
                    name::NEW_CANDIDATE_PAIR_SELECTED,
                    json!({"candidatePair": pair}),
                );
            }
        }
    }

    fn on_state(&mut self, s: RTCPeerConnectionState, now: Instant) {
        let now_connected = match s {
            RTCPeerConnectionState::Connected => true,
            RTCPeerConnectionState::Disconnected
            | RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed => false,
            _ => return,
        };
        if self.snapshot.lock().connected == now_connected {
            return;
        }
        if now_connected {
            let cipher = self.srtp_cipher(now);
            self.count_srtp_profile(&cipher);
            self.start_direct(&cipher, now);
        }
        self.set_connected(now_connected);
        if matches!(s, RTCPeerConnectionState::Failed) {
            self.emit_error("ICE or DTLS connection failed");
        }
    }

    /// ICE's state as Kurento names it, reported when it changed (true then).
    fn ice_state(&mut self, state: &'static str) -> bool {
        if self.last_ice == Some(state) {
            return false;
        }
        self.last_ice = Some(state);
        self.emit(
            name::ICE_COMPONENT_STATE_CHANGED,
            json!({"state": state, "streamId": 1, "componentId": 1}),
        );
        true
    }

    /// The connection can (or can no longer) carry media: Kurento's connection and media
    /// states; a new subscriber asks for a keyframe now, not whenever the encoder makes one.
    fn set_connected(&mut self, now_connected: bool) {
        {
            let mut snap = self.snapshot.lock();
            if snap.connected == now_connected {
                return;
            }
            snap.connected = now_connected;
            snap.media_connected = now_connected;
        }
        self.writable.store(now_connected, Ordering::Relaxed);
        if now_connected {
            for kind in MediaKind::ALL {
                if let Some(h) = self.ports.input(kind).borrow().as_ref() {
                    h.request_keyframe();
                }
            }
        }
        let (old, new) = if now_connected {
            ("DISCONNECTED", "CONNECTED")
        } else {
            ("CONNECTED", "DISCONNECTED")
        };
        self.emit(
            name::CONNECTION_STATE_CHANGED,
            json!({"oldState": old, "newState": new}),
        );
        self.emit(
            name::MEDIA_STATE_CHANGED,
            json!({"oldState": old, "newState": new}),
        );
    }

    fn on_track(&mut self, init: RTCTrackEventInit) {
        let Some(mut receiver) = self
            .pc
            .as_mut()
            .and_then(|pc| pc.rtp_receiver(init.receiver_id))
        else {
            return;
        };
        let kind = match receiver.track().kind() {
            RtpCodecKind::Audio => MediaKind::Audio,
            RtpCodecKind::Video => MediaKind::Video,
            _ => return,
        };
        if self.inbound.contains_key(&init.track_id) {
            return;
        }
        let p = receiver.get_parameters();
        let source = Arc::new(SourceParams {
            codecs: p.rtp_parameters.codecs.clone(),
            extensions: p
                .rtp_parameters
                .header_extensions
                .iter()
                .filter_map(|e| u8::try_from(e.id).ok().map(|i| (i, e.uri.clone())))
                .collect(),
        });
        let hub = self.ports.output(kind).clone();
        if kind == MediaKind::Video {
            tokio::spawn(publish::limit_plis(
                hub.clone(),
                self.worker.clone(),
                self.key,
                init.receiver_id,
                init.ssrc,
                self.cancel.clone(),
            ));
        }
        self.inbound.insert(
            init.track_id,
            Inbound {
                hub: hub.clone(),
                source,
                seen: SeqWindow::default(),
                flow: Flow::inbound(&self.id, kind).shown_in(self.snapshot.clone()),
            },
        );
        // Subscribers that were connected before the publisher's media arrived want a keyframe.
        hub.request_keyframe();
    }

    /// The SRTP protection profile DTLS chose, as `rtc` names it.
    fn srtp_cipher(&mut self, now: Instant) -> String {
        let Some(pc) = self.pc.as_mut() else {
            return String::new();
        };
        let report = pc.get_stats(now, rtc::statistics::StatsSelector::None);
        report
            .transport()
            .map(|t| t.srtp_cipher.clone())
            .unwrap_or_default()
    }

    /// Counts the profile for `/health` (GCM costs about a third of SHA1_80 per packet, and
    /// which one a peer ends up with is the peer's choice).
    fn count_srtp_profile(&self, cipher: &str) {
        tracing::debug!(endpoint = %self.id, %cipher, "connected");
        if cipher.contains("GCM") {
            bump(&COUNTERS.srtp_gcm);
        } else {
            bump(&COUNTERS.srtp_other);
        }
    }

    /// About every second: MediaFlowIn NOT_FLOWING after a quiet spell; a direct leg's sender
    /// reports (into `out`).
    pub fn tick(&mut self, now: Instant, out: &mut Vec<(SocketAddr, BytesMut)>) {
        for t in self.inbound.values_mut() {
            t.flow.tick(now, &self.events);
        }
        if let Some(d) = self.direct.as_mut() {
            d.reports(now);
        }
        self.drain_direct(out);
    }

    fn selected_pair(&mut self, now: Instant) -> Option<(String, String)> {
        use rtc::statistics::StatsSelector;
        let report = self.pc.as_mut()?.get_stats(now, StatsSelector::None);
        let pair = report.candidate_pairs().find(|p| p.nominated)?;
        let describe = |id: &str, local: bool| {
            stats::candidate_entry(&report, id, local).map(stats::candidate_line)
        };
        Some((
            describe(&pair.local_candidate_id, true)?,
            describe(&pair.remote_candidate_id, false)?,
        ))
    }

    /// Closes the peer connection or the leg (its last writes, DTLS's close_notify, are drained
    /// by the caller) and ends the endpoint's tasks.
    pub fn close(&mut self, now: Instant) {
        self.direct = None;
        self.cancel.cancel();
        self.writable.store(false, Ordering::Relaxed);
        self.ports.disconnect_all();
        if let Some(Err(e)) = self.pc.as_mut().map(|pc| pc.close()) {
            tracing::debug!(%e, "close");
        }
        if let Some(l) = self.leg.as_mut() {
            l.close(now);
        }
        self.inbound.clear();
    }

    /// After a panic in this connection's code: tell its client and let go of everything it
    /// holds (the peer connection itself is dropped without a goodbye).
    pub fn fail(&mut self) {
        self.direct = None;
        self.cancel.cancel();
        self.writable.store(false, Ordering::Relaxed);
        self.ports.disconnect_all();
        self.inbound.clear();
        {
            let mut snap = self.snapshot.lock();
            snap.connected = false;
            snap.media_connected = false;
        }
        self.emit_error("Media error: this endpoint's connection failed");
    }

    fn emit_candidate(&self, c: &RTCIceCandidateInit) {
        let cand = IceCandidate {
            candidate: c.candidate.clone(),
            sdp_mid: c.sdp_mid.clone().unwrap_or_else(|| "0".into()),
            sdp_m_line_index: c.sdp_mline_index.map(u32::from).unwrap_or(0),
        };
        self.emit(
            name::ICE_CANDIDATE_FOUND,
            json!({"candidate": cand.to_wire()}),
        );
    }

    fn emit_error(&self, description: &str) {
        let fields =
            json!({"description": description, "errorCode": 40003, "type": "STREAM_ERROR_FAILED"});
        // `type` of an Error event is the error type, so it is set here rather than by `build`.
        let _ = self.events.send(events::build(
            &self.id,
            name::ERROR,
            false,
            now_millis(),
            fields,
        ));
    }

    fn emit(&self, kind: &'static str, fields: serde_json::Value) {
        let _ = self
            .events
            .send(events::build(&self.id, kind, true, now_millis(), fields));
    }
}

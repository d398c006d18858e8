//! A WebRtcEndpoint that only sends (a viewer's) on a direct leg (`media/leg/`): its answer is
//! the engine's own, its ICE and DTLS run on `rtc-ice` + `rtc-dtls`, its media on the direct send
//! path; the peer connection it was created with is dropped. Kurento sees the same endpoint:
//! the same events (ICE states, candidates, the selected pair, connection and media states), the
//! same statistics' shapes, keyframe requests and NACKs answered as on `rtc`.

use bytes::BytesMut;
use kms_client::wire::complex::candidate_pair;
use kms_client::wire::events::name;
use rtc::ice::state::ConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::srtp::protection_profile::ProtectionProfile;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Instant;

use super::{direct, Conn, Direct};
use crate::media::leg::answer::{self, Agreed, Local, Outgoing};
use crate::media::leg::transport::{LegEvent, Transport};
use crate::media::sdp::Section;
use crate::media::sink::{self, SinkSpec};
use crate::media::{bump, MediaKind, COUNTERS};

pub struct Leg {
    transport: Transport,
    /// The crypto the leg's send path is keyed with (the one its DTLS used).
    provider: std::sync::Arc<dyn rtc::crypto::RTCCryptoProvider>,
    agreed: Vec<Agreed>,
    /// The selected pair, as candidate lines (local, remote).
    pub selected: Option<(String, String)>,
    /// The SRTP profile DTLS agreed, as `rtc` names it in statistics.
    pub cipher: &'static str,
    /// Bytes of the peer's RTCP received (statistics).
    pub bytes_received: u64,
}

impl Leg {
    pub fn agreed(&self) -> &[Agreed] {
        &self.agreed
    }

    pub fn transport_timeout(&mut self, now: Instant) {
        self.transport.handle_timeout(now);
    }

    pub fn transport_poll_timeout(&mut self) -> Option<Instant> {
        self.transport.poll_timeout()
    }

    pub fn transport_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        self.transport.poll_transmit()
    }

    /// The endpoint is released: the peer is told (DTLS close_notify).
    pub fn close(&mut self, now: Instant) {
        self.transport.close(now);
    }
}

impl Conn {
    /// `processOffer` on a direct leg, when the offer allows one: the peer only receives, takes
    /// the DTLS client role, and the engine has a codec it asks for. `None`: answer on `rtc`.
    pub(super) fn answer_on_leg(
        &mut self,
        offer: &str,
        sections: &[Section],
        now: Instant,
    ) -> Option<String> {
        if !(self.factory.direct_legs && self.factory.direct_send)
            || sections.iter().any(|s| s.remote_sends)
        {
            return None;
        }
        let mut sends: Vec<Outgoing> = Vec::new();
        for s in sections.iter().filter(|s| s.remote_receives) {
            if !sends.iter().any(|o| o.kind == s.kind) {
                sends.push(Outgoing {
                    kind: s.kind,
                    ssrc: super::negotiate::rand_ssrc(),
                    rtx_ssrc: None,
                });
            }
        }
        let tls = match self.factory.leg_tls() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(endpoint = %self.id, %e, "direct leg: no DTLS configuration");
                return None;
            }
        };
        let host = crate::media::factory::host_candidate(self.local_addr())
            .map(|c| format!("candidate:{}", c.marshal()));
        let candidates: Vec<String> = host.iter().cloned().collect();
        let local = Local {
            ufrag: &self.ufrag,
            pwd: &self.pwd,
            fingerprint: &tls.fingerprint,
            cname: &self.stream_id,
            stream: &self.stream_id,
            session_id: u64::from(super::negotiate::rand_ssrc()),
            candidates: &candidates,
        };
        let a = match answer::answer(offer, &local, &sends) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(endpoint = %self.id, %why, "answered on rtc instead");
                return None;
            }
        };
        let transport = Transport::new(
            now,
            self.local_addr(),
            &self.ufrag,
            &self.pwd,
            tls.dtls,
            tls.provider.clone(),
        )
        .and_then(|mut t| {
            t.start(now, &a.remote_ufrag, &a.remote_pwd, &a.remote_fingerprint)?;
            Ok(t)
        });
        let mut transport = match transport {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(endpoint = %self.id, %e, "direct leg: transport");
                return None;
            }
        };
        let trickled = std::mem::take(&mut self.remote_candidates);
        let offered = a.remote_candidates.iter().map(String::as_str);
        for c in offered.chain(trickled.iter().map(|c| c.candidate.as_str())) {
            if let Err(e) = transport.add_remote_candidate(c) {
                tracing::debug!(%e, "remote candidate refused");
            }
        }
        // The peer connection this endpoint was created with goes: the leg replaces it.
        if let Some(mut pc) = self.pc.take() {
            let _ = pc.close();
        }
        self.keys = None;
        self.out_tracks = a
            .agreed
            .iter()
            .map(|g| direct::Track {
                ssrc: g.ssrc,
                clock_rate: g.clock_rate,
                kind: g.kind,
            })
            .collect();
        {
            let mut snap = self.snapshot.lock();
            snap.remote_sdp = Some(offer.to_string());
            snap.local_sdp = Some(a.sdp.clone());
        }
        // Its host candidate is in the answer, and also held until `gatherCandidates` asks for
        // it (as on `rtc`).
        let mid = a.agreed.first().map(|g| g.mid.clone());
        for candidate in candidates {
            self.local_candidates.push(RTCIceCandidateInit {
                candidate,
                sdp_mid: mid.clone(),
                sdp_mline_index: Some(0),
                ..Default::default()
            });
        }
        self.gathering_complete = true;
        if self.gathering_requested {
            self.emit_gathered();
        }
        for (i, g) in a.agreed.iter().enumerate() {
            self.start_leg_sink(i, g);
        }
        bump(&COUNTERS.direct_legs);
        bump(&COUNTERS.leg_transports);
        self.leg = Some(Box::new(Leg {
            transport,
            provider: tls.provider,
            agreed: a.agreed,
            selected: None,
            cipher: "",
            bytes_received: 0,
        }));
        Some(a.sdp)
    }

    /// A tap from the element's input to outgoing stream `i`, rewritten to what was agreed.
    fn start_leg_sink(&mut self, i: usize, g: &Agreed) {
        let mime = match g.kind {
            MediaKind::Audio => format!("audio/{}", g.codec),
            MediaKind::Video => format!("video/{}", g.codec),
        };
        let spec = SinkSpec {
            kind: g.kind,
            worker: self.worker.clone(),
            conn: self.key,
            sender: RTCRtpSenderId::from(i),
            ssrc: g.ssrc,
            codecs: vec![RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: mime,
                    clock_rate: g.clock_rate,
                    channels: 0,
                    sdp_fmtp_line: g.fmtp.clone(),
                    rtcp_feedback: vec![],
                },
                payload_type: g.pt,
            }],
            // None agreed: the publisher's extensions are taken off.
            extensions: Vec::new(),
            writable: self.writable.clone(),
            snapshot: self.snapshot.clone(),
        };
        tokio::spawn(sink::follow_input(
            spec,
            self.ports.input(g.kind).subscribe(),
            self.id.clone(),
            self.events.clone(),
            self.cancel.clone(),
        ));
    }

    /// A datagram for the leg. False when it refused it.
    pub(super) fn leg_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> bool {
        let Some(leg) = self.leg.as_mut() else {
            return false;
        };
        let taken = match leg
            .transport
            .handle_datagram(now, from, BytesMut::from(data))
        {
            Ok(Some(rtcp)) => {
                leg.bytes_received += data.len() as u64;
                self.leg_rtcp(rtcp);
                true
            }
            Ok(None) => true,
            Err(_) => false,
        };
        self.drain_leg(now);
        taken
    }

    /// The peer's RTCP: NACKs to the send path, keyframe requests upstream.
    fn leg_rtcp(&mut self, mut rtcp: BytesMut) {
        let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut rtcp) else {
            return;
        };
        let kinds: Vec<(u32, MediaKind)> = self
            .leg
            .as_ref()
            .map(|l| l.agreed.iter().map(|g| (g.ssrc, g.kind)).collect())
            .unwrap_or_default();
        for p in &packets {
            if let (Some(d), Some(n)) = (
                self.direct.as_mut(),
                p.as_any().downcast_ref::<TransportLayerNack>(),
            ) {
                d.on_nack(n);
            }
            if !crate::media::rtcp_tap::is_keyframe_request(p.as_ref()) {
                continue;
            }
            let kind = p
                .destination_ssrc()
                .iter()
                .find_map(|s| kinds.iter().find(|(k, _)| k == s).map(|(_, kind)| *kind))
                .unwrap_or(MediaKind::Video);
            bump(&COUNTERS.keyframe_requests_in);
            if let Some(h) = self.ports.input(kind).borrow().as_ref() {
                h.request_keyframe();
            }
        }
    }

    /// The leg's events as Kurento's.
    pub(super) fn drain_leg(&mut self, now: Instant) {
        while let Some(e) = self.leg.as_mut().and_then(|l| l.transport.poll_event()) {
            match e {
                LegEvent::Ice(s) => self.on_leg_ice(s),
                LegEvent::Selected { local, remote, to } => {
                    let lines = (local, remote);
                    if let Some(l) = self.leg.as_mut() {
                        l.selected = Some(lines.clone());
                    }
                    self.media_dest = Some(to);
                    if self.last_ice == Some("CONNECTED") {
                        self.emit_pair(&lines);
                    }
                }
                LegEvent::Secure { keys, profile } => {
                    let cipher = match profile {
                        ProtectionProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
                        _ => "SRTP_AES128_CM_HMAC_SHA1_80",
                    };
                    if let Some(l) = self.leg.as_mut() {
                        l.cipher = cipher;
                    }
                    self.count_srtp_profile(cipher);
                    let direct = self.leg.as_ref().map(|l| {
                        Direct::new(now, &keys, profile, &self.out_tracks, l.provider.crypto())
                    });
                    match direct {
                        Some(Ok(d)) => self.direct = Some(d),
                        Some(Err(e)) => tracing::warn!(endpoint = %self.id, %e, "direct leg: SRTP"),
                        None => {}
                    }
                    self.media_dest = self.leg.as_ref().and_then(|l| l.transport.remote());
                    self.set_connected(true);
                }
                LegEvent::Failed(why) => {
                    tracing::info!(endpoint = %self.id, %why, "direct leg failed");
                    self.set_connected(false);
                    self.emit_error("ICE or DTLS connection failed");
                }
            }
        }
    }

    fn on_leg_ice(&mut self, s: ConnectionState) {
        let state = match s {
            ConnectionState::Checking => "CONNECTING",
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Completed => "READY",
            ConnectionState::Failed => "FAILED",
            ConnectionState::Disconnected | ConnectionState::Closed => "DISCONNECTED",
            _ => return,
        };
        if !self.ice_state(state) {
            return;
        }
        if state == "CONNECTED" {
            if let Some(lines) = self.leg.as_ref().and_then(|l| l.selected.clone()) {
                self.emit_pair(&lines);
            }
        }
        // Consent lost: nothing can be sent until ICE is back (DTLS and SRTP stay as they are).
        if matches!(s, ConnectionState::Failed | ConnectionState::Disconnected) {
            self.set_connected(false);
            if s == ConnectionState::Failed {
                self.emit_error("ICE or DTLS connection failed");
            }
        } else if s == ConnectionState::Connected
            && self.leg.as_ref().is_some_and(|l| l.transport.is_secure())
        {
            self.set_connected(true);
        }
    }

    fn emit_pair(&self, (local, remote): &(String, String)) {
        let pair = candidate_pair("1", 1, local, remote);
        self.emit(
            name::NEW_CANDIDATE_PAIR_SELECTED,
            json!({"candidatePair": pair}),
        );
    }

    /// A candidate of the peer, for the leg.
    pub(super) fn leg_candidate(&mut self, candidate: &str) -> Result<(), String> {
        match self.leg.as_mut() {
            Some(l) => l
                .transport
                .add_remote_candidate(candidate)
                .map_err(|e| e.to_string()),
            None => Err("no leg".into()),
        }
    }
}

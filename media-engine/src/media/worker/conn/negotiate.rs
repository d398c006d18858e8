//! Kurento's negotiation operations on one endpoint's connection: processOffer, generateOffer,
//! processAnswer, gatherCandidates, addIceCandidate, run synchronously on the worker.

use kms_client::wire::complex::{IceCandidate, OfferOptions};
use kms_client::wire::{ErrorCode, RpcError};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{RTCIceCandidate, RTCIceCandidateInit};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use serde_json::json;
use std::time::Instant;

use super::Conn;
use crate::media::factory::{host_candidate, Role};
use crate::media::sink::{self, SinkSpec};
use crate::media::worker::handle::Op;
use crate::media::{sdp, MediaKind};
use kms_client::wire::events::name;

impl Conn {
    pub fn handle_op(&mut self, op: Op, now: Instant) {
        match op {
            Op::ProcessOffer(sdp, r) => {
                let result = self.process_offer(sdp, now);
                if result.is_err() && self.snapshot.lock().local_sdp.is_none() {
                    // A refused offer may have been half applied: start again from a clean
                    // peer connection so the endpoint can still negotiate.
                    self.reset_pc();
                }
                let _ = r.send(result);
            }
            Op::GenerateOffer(o, r) => {
                let _ = r.send(self.generate_offer(o, now));
            }
            Op::ProcessAnswer(sdp, r) => {
                let _ = r.send(self.process_answer(sdp, now));
            }
            Op::GatherCandidates(r) => {
                let _ = r.send(self.gather());
            }
            Op::AddIceCandidate(c, r) => {
                let _ = r.send(self.add_candidate(c));
            }
            Op::Stats(kind, r) => {
                let _ = r.send(Ok(self.kurento_stats(kind, now)));
            }
        }
    }

    fn reset_pc(&mut self) {
        self.rebuild(Role::Both);
        self.remote_candidates.clear();
        let mut snap = self.snapshot.lock();
        snap.remote_sdp = None;
        snap.local_sdp = None;
    }

    /// A fresh peer connection (same credentials: the worker routes by them).
    fn rebuild(&mut self, role: Role) {
        if let Some(pc) = self.pc.as_mut() {
            let _ = pc.close();
        }
        self.leg = None;
        match self.factory.build(&self.ufrag, &self.pwd, role) {
            Ok(b) => {
                self.pc = Some(Box::new(b.pc));
                self.keys = b.keys;
            }
            Err(e) => tracing::warn!(%e, "could not rebuild the peer connection"),
        }
        self.direct = None;
        self.out_tracks.clear();
        self.local_candidates.clear();
        self.local_tracks.clear();
        self.gathering_complete = false;
    }

    fn process_offer(&mut self, offer: String, now: Instant) -> Result<String, RpcError> {
        if self.snapshot.lock().remote_sdp.is_some() {
            return Err(RpcError::new(
                ErrorCode::SdpEndPointAlreadyNegotiated,
                "Endpoint already negotiated",
            ));
        }
        let sections = sdp::sections(&offer)
            .ok_or_else(|| RpcError::new(ErrorCode::SdpParseError, "Offer is not an SDP"))?;
        if let Some(missing) = sdp::missing_transport(&offer) {
            return Err(RpcError::new(
                ErrorCode::SdpParseError,
                format!("Invalid SDP offer: no {missing}"),
            ));
        }
        // A viewer's offer is answered by the engine itself, on a leg without a peer connection.
        if let Some(answer) = self.answer_on_leg(&offer, &sections, now) {
            return Ok(answer);
        }
        // `rtc` keeps its own copies of the offer, parsed and as text, for the connection's
        // life: give it only the codecs the answer can accept.
        let desc =
            RTCSessionDescription::offer(sdp::only_forwarded_codecs(&offer)).map_err(|e| {
                RpcError::new(ErrorCode::SdpParseError, format!("Invalid SDP offer: {e}"))
            })?;
        // The offer says which way media will flow: a connection that only sends (or only
        // receives) is rebuilt without the other direction's interceptors.
        let role = if !sections.iter().any(|s| s.remote_sends) {
            Role::Send
        } else if !sections.iter().any(|s| s.remote_receives) {
            Role::Receive
        } else {
            Role::Both
        };
        if role != Role::Both {
            self.rebuild(role);
        }
        self.pc()?.set_remote_description(now, desc).map_err(|e| {
            RpcError::new(
                ErrorCode::SdpEndPointProcessOfferError,
                format!("Cannot process offer: {e}"),
            )
        })?;
        self.snapshot.lock().remote_sdp = Some(offer);
        // Tracks are added after the remote description so they take the offer's m-lines and
        // its negotiated ids.
        let mut added = Vec::new();
        for s in sections.iter().filter(|s| s.remote_receives) {
            if added.iter().any(|(k, _)| *k == s.kind) {
                continue;
            }
            added.push((s.kind, self.add_local_track(s.kind, &s.codecs)?));
        }
        self.add_host_candidate();
        let answer = self.pc()?.create_answer(None).map_err(offer_err)?;
        self.pc()?
            .set_local_description(now, answer)
            .map_err(offer_err)?;
        let local = self.record_local_description();
        self.apply_remote_candidates();
        for (kind, sender) in added {
            self.start_sink(kind, sender);
        }
        Ok(local)
    }

    fn generate_offer(&mut self, o: OfferOptions, now: Instant) -> Result<String, RpcError> {
        if self.snapshot.lock().local_sdp.is_some() {
            return Err(RpcError::new(
                ErrorCode::SdpEndPointAlreadyNegotiated,
                "Endpoint already negotiated",
            ));
        }
        let _ = o; // offerToReceive* shape the direction in KMS; ours are always sendrecv.
        for kind in MediaKind::ALL {
            let sender = self.add_local_track(kind, &[])?;
            self.pending_sinks.push((kind, sender));
        }
        self.add_host_candidate();
        let err = |e: rtc::shared::error::Error| {
            RpcError::new(
                ErrorCode::SdpEndPointGenerateOfferError,
                format!("Cannot generate offer: {e}"),
            )
        };
        let offer = self.pc()?.create_offer(None).map_err(err)?;
        self.pc()?.set_local_description(now, offer).map_err(err)?;
        let local = self.record_local_description();
        Ok(local)
    }

    fn process_answer(&mut self, answer: String, now: Instant) -> Result<String, RpcError> {
        let (has_local, has_remote) = {
            let s = self.snapshot.lock();
            (s.local_sdp.is_some(), s.remote_sdp.is_some())
        };
        if self.pending_sinks.is_empty() && !has_remote && !has_local {
            return Err(RpcError::new(
                ErrorCode::SdpEndPointNotOfferGenerated,
                "No offer was generated",
            ));
        }
        if has_remote {
            return Err(RpcError::new(
                ErrorCode::SdpEndPointAlreadyNegotiated,
                "Endpoint already negotiated",
            ));
        }
        sdp::sections(&answer)
            .ok_or_else(|| RpcError::new(ErrorCode::SdpParseError, "Answer is not an SDP"))?;
        let desc = RTCSessionDescription::answer(answer.clone()).map_err(|e| {
            RpcError::new(ErrorCode::SdpParseError, format!("Invalid SDP answer: {e}"))
        })?;
        self.pc()?.set_remote_description(now, desc).map_err(|e| {
            RpcError::new(
                ErrorCode::SdpEndPointProcessAnswerError,
                format!("Cannot process answer: {e}"),
            )
        })?;
        self.snapshot.lock().remote_sdp = Some(answer);
        self.apply_remote_candidates();
        for (kind, sender) in std::mem::take(&mut self.pending_sinks) {
            self.start_sink(kind, sender);
        }
        Ok(self.snapshot.lock().local_sdp.clone().unwrap_or_default())
    }

    /// The local description as it now stands, kept for `getLocalSessionDescriptor`.
    fn record_local_description(&mut self) -> String {
        let local = self
            .pc
            .as_ref()
            .and_then(|pc| pc.local_description())
            .map(|d| d.sdp)
            .unwrap_or_default();
        self.snapshot.lock().local_sdp = Some(local.clone());
        local
    }

    /// The worker's socket address as this connection's one host candidate, then the end of
    /// gathering. Kept until `gatherCandidates` asks for them (KMS emits none before).
    fn add_host_candidate(&mut self) {
        let local_addr = self.local_addr();
        let Some(pc) = self.pc.as_mut() else {
            return;
        };
        if self.gathering_complete {
            return;
        }
        let host = host_candidate(local_addr).and_then(|c| RTCIceCandidate::from(&c).to_json());
        match host {
            Ok(init) => {
                if let Err(e) = pc.add_local_candidate(init) {
                    tracing::warn!(%e, "host candidate refused");
                }
            }
            Err(e) => tracing::warn!(%e, "host candidate"),
        }
        let _ = pc.add_local_candidate(RTCIceCandidateInit::default());
    }

    fn add_local_track(
        &mut self,
        kind: MediaKind,
        preferred: &[(String, u32)],
    ) -> Result<RTCRtpSenderId, RpcError> {
        let ssrc = rand_ssrc();
        let codec = pick_codec(kind, preferred);
        let out = super::direct::Track {
            ssrc,
            clock_rate: codec.clock_rate,
            kind,
        };
        let rtp_kind = match kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let track_id = format!(
            "{}-{}",
            kind.wire_name().to_ascii_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let track = MediaStreamTrack::new(
            self.stream_id.clone(),
            track_id.clone(),
            kind.wire_name().to_ascii_lowercase(),
            rtp_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let sender = self.pc()?.add_track(track).map_err(offer_err)?;
        self.local_tracks.insert(track_id, kind);
        self.out_tracks.push(out);
        Ok(sender)
    }

    /// Attaches a tap for this outgoing track to the element's input hub.
    fn start_sink(&mut self, kind: MediaKind, sender_id: RTCRtpSenderId) {
        let Some(mut sender) = self.pc.as_mut().and_then(|pc| pc.rtp_sender(sender_id)) else {
            return;
        };
        let ssrc = sender.track().ssrcs().next().unwrap_or(0);
        let params = sender.get_parameters().rtp_parameters.clone();
        let extensions = params
            .header_extensions
            .iter()
            .filter_map(|e| u8::try_from(e.id).ok().map(|id| (id, e.uri.clone())))
            .collect();
        let spec = SinkSpec {
            kind,
            worker: self.worker.clone(),
            conn: self.key,
            sender: sender_id,
            ssrc,
            codecs: params.codecs,
            extensions,
            writable: self.writable.clone(),
            snapshot: self.snapshot.clone(),
        };
        tokio::spawn(sink::follow_input(
            spec,
            self.ports.input(kind).subscribe(),
            self.id.clone(),
            self.events.clone(),
            self.cancel.clone(),
        ));
    }

    fn gather(&mut self) -> Result<(), RpcError> {
        if self.gathering_requested {
            return Ok(());
        }
        self.gathering_requested = true;
        self.emit(
            name::ICE_COMPONENT_STATE_CHANGED,
            json!({"state": "GATHERING", "streamId": 1, "componentId": 1}),
        );
        self.emit_gathered();
        Ok(())
    }

    /// The candidates held until `gatherCandidates` asked, and the end of gathering once done.
    pub(super) fn emit_gathered(&mut self) {
        for c in std::mem::take(&mut self.local_candidates) {
            self.emit_candidate(&c);
        }
        if self.gathering_complete {
            self.emit(name::ICE_GATHERING_DONE, json!({}));
        }
    }

    /// The peer connection, for the operations only it can do (none once on a direct leg).
    fn pc(&mut self) -> Result<&mut rtc::peer_connection::RTCPeerConnection, RpcError> {
        self.pc.as_deref_mut().ok_or_else(|| {
            RpcError::new(
                ErrorCode::SdpEndPointAlreadyNegotiated,
                "Endpoint already negotiated",
            )
        })
    }

    fn add_candidate(&mut self, c: IceCandidate) -> Result<(), RpcError> {
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: Some(c.sdp_mid),
            sdp_mline_index: u16::try_from(c.sdp_m_line_index).ok(),
            ..Default::default()
        };
        if self.snapshot.lock().remote_sdp.is_none() {
            if self.remote_candidates.len() < 64 {
                self.remote_candidates.push(init);
            }
            return Ok(());
        }
        if self.leg.is_some() {
            return self.leg_candidate(&init.candidate).map_err(|e| {
                RpcError::new(
                    ErrorCode::IceAddCandidateError,
                    format!("Cannot add candidate: {e}"),
                )
            });
        }
        self.pc()?.add_remote_candidate(init).map_err(|e| {
            RpcError::new(
                ErrorCode::IceAddCandidateError,
                format!("Cannot add candidate: {e}"),
            )
        })
    }

    fn apply_remote_candidates(&mut self) {
        let Some(pc) = self.pc.as_mut() else {
            return;
        };
        for c in std::mem::take(&mut self.remote_candidates) {
            if let Err(e) = pc.add_remote_candidate(c) {
                tracing::debug!(%e, "queued remote candidate rejected");
            }
        }
    }
}

fn offer_err(e: rtc::shared::error::Error) -> RpcError {
    RpcError::new(
        ErrorCode::SdpEndPointProcessOfferError,
        format!("Cannot negotiate: {e}"),
    )
}

pub(super) fn rand_ssrc() -> u32 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(1)
}

/// Our track's codec: the remote's first choice among what we forward, VP8/Opus otherwise.
fn pick_codec(kind: MediaKind, preferred: &[(String, u32)]) -> RTCRtpCodec {
    let codec = |mime: &str, clock: u32, channels: u16, fmtp: &str| RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate: clock,
        channels,
        sdp_fmtp_line: fmtp.into(),
        rtcp_feedback: vec![],
    };
    match kind {
        MediaKind::Audio => codec("audio/opus", 48_000, 2, "minptime=10;useinbandfec=1"),
        MediaKind::Video => {
            let first = preferred
                .iter()
                .map(|(n, _)| n.to_ascii_uppercase())
                .find(|n| matches!(n.as_str(), "VP8" | "H264"));
            match first.as_deref() {
                Some("H264") => codec(
                    "video/H264",
                    90_000,
                    0,
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                ),
                _ => codec("video/VP8", 90_000, 0, ""),
            }
        }
    }
}

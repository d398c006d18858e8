//! WebRtcEndpoint: one owning task per peer connection. Commands come in over a channel; the
//! peer connection's callbacks only forward into the same task, never capture its owner.

use kms_client::wire::complex::{candidate_pair, IceCandidate, OfferOptions};
use kms_client::wire::events::{self, name};
use kms_client::wire::{ErrorCode, RpcError};
use parking_lot::Mutex;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCIceConnectionState,
    RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RtpSender;

use super::factory::PcFactory;
use super::flow::{now_millis, EventTx};
use super::hub::{Ports, SourceParams};
use super::sink::{relay_sink_rtcp, write_to_sink, SinkSpec};
use super::{bump, publish, sdp, MediaKind, TaskGuard, COUNTERS};

/// Readable without asking the actor (getters must not queue behind a slow negotiation).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub local_sdp: Option<String>,
    pub remote_sdp: Option<String>,
    pub connected: bool,
    pub media_connected: bool,
}

#[derive(Clone)]
pub struct EndpointHandle {
    cmd: mpsc::Sender<Cmd>,
    pub ports: Arc<Ports>,
    pub snapshot: Arc<Mutex<Snapshot>>,
}

type Reply<T> = oneshot::Sender<Result<T, RpcError>>;

enum Cmd {
    ProcessOffer(String, Reply<String>),
    GenerateOffer(OfferOptions, Reply<String>),
    ProcessAnswer(String, Reply<String>),
    GatherCandidates(Reply<()>),
    AddIceCandidate(IceCandidate, Reply<()>),
    Close(oneshot::Sender<()>),
}

enum PcEvent {
    Candidate(RTCIceCandidateInit),
    Gathering(RTCIceGatheringState),
    Ice(RTCIceConnectionState),
    State(RTCPeerConnectionState),
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    tx: mpsc::UnboundedSender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        if let Ok(init) = e.candidate.to_json() {
            let _ = self.tx.send(PcEvent::Candidate(init));
        }
    }
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        let _ = self.tx.send(PcEvent::Gathering(s));
    }
    async fn on_ice_connection_state_change(&self, s: RTCIceConnectionState) {
        let _ = self.tx.send(PcEvent::Ice(s));
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.tx.send(PcEvent::State(s));
    }
    async fn on_track(&self, t: Arc<dyn TrackRemote>) {
        let _ = self.tx.send(PcEvent::Track(t));
    }
}

impl EndpointHandle {
    /// Builds the peer connection (binding its UDP socket) and starts the owning task.
    pub async fn spawn(
        id: String,
        factory: Arc<PcFactory>,
        events: EventTx,
        parent: &CancellationToken,
    ) -> Result<Self, RpcError> {
        let (pc_tx, pc_rx) = mpsc::unbounded_channel();
        let pc = factory
            .build(Arc::new(Handler { tx: pc_tx.clone() }), Vec::new())
            .await
            .map_err(|e| {
                tracing::warn!(%e, "peer connection could not be built");
                RpcError::new(
                    ErrorCode::NotEnoughResources,
                    "Could not create the WebRTC endpoint",
                )
            })?;
        bump(&COUNTERS.peer_connections);
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let ports = Ports::new();
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let actor = Actor {
            stream_id: format!("rtcpool-{}", uuid::Uuid::new_v4().simple()),
            id,
            pc,
            factory,
            pc_tx,
            ports: ports.clone(),
            events,
            cancel: parent.child_token(),
            snapshot: snapshot.clone(),
            gathering_requested: false,
            gathering_complete: false,
            local_candidates: Vec::new(),
            remote_candidates: Vec::new(),
            pending_sinks: Vec::new(),
            connected: watch::channel(false).0,
            last_ice: None,
        };
        tokio::spawn(actor.run(cmd_rx, pc_rx));
        Ok(Self {
            cmd: cmd_tx,
            ports,
            snapshot,
        })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, RpcError> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    pub async fn process_offer(&self, offer: String) -> Result<String, RpcError> {
        self.ask(|r| Cmd::ProcessOffer(offer, r)).await
    }

    pub async fn generate_offer(&self, o: OfferOptions) -> Result<String, RpcError> {
        self.ask(|r| Cmd::GenerateOffer(o, r)).await
    }

    pub async fn process_answer(&self, answer: String) -> Result<String, RpcError> {
        self.ask(|r| Cmd::ProcessAnswer(answer, r)).await
    }

    pub async fn gather_candidates(&self) -> Result<(), RpcError> {
        self.ask(Cmd::GatherCandidates).await
    }

    pub async fn add_ice_candidate(&self, c: IceCandidate) -> Result<(), RpcError> {
        self.ask(|r| Cmd::AddIceCandidate(c, r)).await
    }

    /// Closes the peer connection and ends every task of the endpoint; waits for it.
    pub async fn close(&self) {
        self.ports.disconnect_all();
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn gone() -> RpcError {
    RpcError::new(ErrorCode::MediaObjectNotFound, "Endpoint has been released")
}

/// A local track added to the peer connection: kind, track, its SSRC and its sender.
type LocalTrack = (MediaKind, Arc<TrackLocalStaticRTP>, u32, Arc<dyn RtpSender>);

struct Actor {
    id: String,
    stream_id: String,
    pc: Arc<dyn PeerConnection>,
    factory: Arc<PcFactory>,
    pc_tx: mpsc::UnboundedSender<PcEvent>,
    ports: Arc<Ports>,
    events: EventTx,
    cancel: CancellationToken,
    snapshot: Arc<Mutex<Snapshot>>,
    gathering_requested: bool,
    gathering_complete: bool,
    /// Gathered before the client asked (`gatherCandidates`): held, since KMS emits none before.
    local_candidates: Vec<RTCIceCandidateInit>,
    /// Received before the remote description: applied after it.
    remote_candidates: Vec<RTCIceCandidateInit>,
    /// Local tracks added to an offer of ours, started once the answer arrives.
    pending_sinks: Vec<LocalTrack>,
    connected: watch::Sender<bool>,
    last_ice: Option<&'static str>,
}

impl Actor {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut pc_events: mpsc::UnboundedReceiver<PcEvent>,
    ) {
        let _guard = TaskGuard::new();
        let closer = loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Close(done)) => break Some(done),
                    Some(cmd) => self.handle(cmd).await,
                    None => break None,
                },
                Some(ev) = pc_events.recv() => self.on_pc_event(ev).await,
            }
        };
        self.cancel.cancel();
        self.ports.disconnect_all();
        if let Err(e) = self.pc.close().await {
            tracing::debug!(%e, "close");
        }
        COUNTERS.peer_connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(done) = closer {
            let _ = done.send(());
        }
    }

    async fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::ProcessOffer(sdp, r) => {
                let result = self.process_offer(sdp).await;
                if result.is_err() && self.snapshot.lock().local_sdp.is_none() {
                    // A refused offer may have been half applied: start again from a clean
                    // peer connection so the endpoint can still negotiate.
                    self.reset_pc().await;
                }
                let _ = r.send(result);
            }
            Cmd::GenerateOffer(o, r) => {
                let _ = r.send(self.generate_offer(o).await);
            }
            Cmd::ProcessAnswer(sdp, r) => {
                let _ = r.send(self.process_answer(sdp).await);
            }
            Cmd::GatherCandidates(r) => {
                let _ = r.send(self.gather());
            }
            Cmd::AddIceCandidate(c, r) => {
                let _ = r.send(self.add_candidate(c).await);
            }
            Cmd::Close(_) => {}
        }
    }

    async fn reset_pc(&mut self) {
        let _ = self.pc.close().await;
        match self
            .factory
            .build(
                Arc::new(Handler {
                    tx: self.pc_tx.clone(),
                }),
                Vec::new(),
            )
            .await
        {
            Ok(pc) => self.pc = pc,
            Err(e) => tracing::warn!(%e, "could not rebuild the peer connection"),
        }
        self.local_candidates.clear();
        self.remote_candidates.clear();
        self.gathering_complete = false;
        let mut snap = self.snapshot.lock();
        snap.remote_sdp = None;
        snap.local_sdp = None;
    }

    async fn process_offer(&mut self, offer: String) -> Result<String, RpcError> {
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
        let desc = RTCSessionDescription::offer(offer.clone()).map_err(|e| {
            RpcError::new(ErrorCode::SdpParseError, format!("Invalid SDP offer: {e}"))
        })?;
        self.pc.set_remote_description(desc).await.map_err(|e| {
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
            if added.iter().any(|(k, _, _, _)| *k == s.kind) {
                continue;
            }
            added.push(self.add_local_track(s.kind, &s.codecs).await?);
        }
        let answer = self.pc.create_answer(None).await.map_err(offer_err)?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(offer_err)?;
        let local = self
            .pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default();
        self.snapshot.lock().local_sdp = Some(local.clone());
        self.apply_remote_candidates().await;
        for (kind, track, ssrc, sender) in added {
            self.start_sink(kind, track, ssrc, sender).await;
        }
        Ok(local)
    }

    async fn generate_offer(&mut self, o: OfferOptions) -> Result<String, RpcError> {
        if self.snapshot.lock().local_sdp.is_some() {
            return Err(RpcError::new(
                ErrorCode::SdpEndPointAlreadyNegotiated,
                "Endpoint already negotiated",
            ));
        }
        let _ = o; // offerToReceive* shape the direction in KMS; ours are always sendrecv.
        for kind in MediaKind::ALL {
            let added = self.add_local_track(kind, &[]).await?;
            self.pending_sinks.push(added);
        }
        let err = |e: webrtc::error::Error| {
            RpcError::new(
                ErrorCode::SdpEndPointGenerateOfferError,
                format!("Cannot generate offer: {e}"),
            )
        };
        let offer = self.pc.create_offer(None).await.map_err(err)?;
        self.pc.set_local_description(offer).await.map_err(err)?;
        let local = self
            .pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default();
        self.snapshot.lock().local_sdp = Some(local.clone());
        Ok(local)
    }

    async fn process_answer(&mut self, answer: String) -> Result<String, RpcError> {
        if self.pending_sinks.is_empty()
            && self.snapshot.lock().remote_sdp.is_none()
            && self.snapshot.lock().local_sdp.is_none()
        {
            return Err(RpcError::new(
                ErrorCode::SdpEndPointNotOfferGenerated,
                "No offer was generated",
            ));
        }
        if self.snapshot.lock().remote_sdp.is_some() {
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
        self.pc.set_remote_description(desc).await.map_err(|e| {
            RpcError::new(
                ErrorCode::SdpEndPointProcessAnswerError,
                format!("Cannot process answer: {e}"),
            )
        })?;
        self.snapshot.lock().remote_sdp = Some(answer);
        self.apply_remote_candidates().await;
        for (kind, track, ssrc, sender) in std::mem::take(&mut self.pending_sinks) {
            self.start_sink(kind, track, ssrc, sender).await;
        }
        Ok(self.snapshot.lock().local_sdp.clone().unwrap_or_default())
    }

    async fn add_local_track(
        &mut self,
        kind: MediaKind,
        preferred: &[(String, u32)],
    ) -> Result<LocalTrack, RpcError> {
        let ssrc = rand_ssrc();
        let codec = pick_codec(kind, preferred);
        let rtp_kind = match kind {
            MediaKind::Audio => RtpCodecKind::Audio,
            MediaKind::Video => RtpCodecKind::Video,
        };
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            self.stream_id.clone(),
            format!(
                "{}-{}",
                kind.wire_name().to_ascii_lowercase(),
                uuid::Uuid::new_v4().simple()
            ),
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
        )));
        let sender = self
            .pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .map_err(offer_err)?;
        Ok((kind, track, ssrc, sender))
    }

    async fn start_sink(
        &mut self,
        kind: MediaKind,
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        sender: Arc<dyn RtpSender>,
    ) {
        let Ok(params) = sender.get_parameters().await else {
            return;
        };
        let extensions = params
            .rtp_parameters
            .header_extensions
            .iter()
            .filter_map(|e| u8::try_from(e.id).ok().map(|id| (id, e.uri.clone())))
            .collect();
        let spec = SinkSpec {
            kind,
            track: track.clone(),
            ssrc,
            codecs: params.rtp_parameters.codecs,
            extensions,
        };
        let input = self.ports.input(kind).subscribe();
        tokio::spawn(relay_sink_rtcp(track, input.clone(), self.cancel.clone()));
        tokio::spawn(write_to_sink(
            spec,
            input,
            self.connected.subscribe(),
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
        for c in std::mem::take(&mut self.local_candidates) {
            self.emit_candidate(&c);
        }
        if self.gathering_complete {
            self.emit(name::ICE_GATHERING_DONE, json!({}));
        }
        Ok(())
    }

    async fn add_candidate(&mut self, c: IceCandidate) -> Result<(), RpcError> {
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: Some(c.sdp_mid),
            sdp_mline_index: u16::try_from(c.sdp_m_line_index).ok(),
            ..Default::default()
        };
        if self.snapshot.lock().remote_sdp.is_none() {
            self.remote_candidates.push(init);
            return Ok(());
        }
        self.pc.add_ice_candidate(init).await.map_err(|e| {
            RpcError::new(
                ErrorCode::IceAddCandidateError,
                format!("Cannot add candidate: {e}"),
            )
        })
    }

    async fn apply_remote_candidates(&mut self) {
        for c in std::mem::take(&mut self.remote_candidates) {
            if let Err(e) = self.pc.add_ice_candidate(c).await {
                tracing::debug!(%e, "queued remote candidate rejected");
            }
        }
    }

    async fn on_pc_event(&mut self, ev: PcEvent) {
        match ev {
            PcEvent::Candidate(c) => {
                if self.gathering_requested {
                    self.emit_candidate(&c);
                } else {
                    self.local_candidates.push(c);
                }
            }
            PcEvent::Gathering(RTCIceGatheringState::Complete) => {
                self.gathering_complete = true;
                if self.gathering_requested {
                    self.emit(name::ICE_GATHERING_DONE, json!({}));
                }
            }
            PcEvent::Gathering(_) => {}
            PcEvent::Ice(s) => self.on_ice_state(s).await,
            PcEvent::State(s) => self.on_state(s),
            PcEvent::Track(t) => self.on_track(t).await,
        }
    }

    async fn on_ice_state(&mut self, s: RTCIceConnectionState) {
        let state = match s {
            RTCIceConnectionState::Checking => "CONNECTING",
            RTCIceConnectionState::Connected => "CONNECTED",
            RTCIceConnectionState::Completed => "READY",
            RTCIceConnectionState::Failed => "FAILED",
            RTCIceConnectionState::Disconnected | RTCIceConnectionState::Closed => "DISCONNECTED",
            _ => return,
        };
        if self.last_ice == Some(state) {
            return;
        }
        self.last_ice = Some(state);
        self.emit(
            name::ICE_COMPONENT_STATE_CHANGED,
            json!({"state": state, "streamId": 1, "componentId": 1}),
        );
        if state == "CONNECTED" {
            if let Some((local, remote)) = self.selected_pair().await {
                let pair = candidate_pair("1", 1, &local, &remote);
                self.emit(
                    name::NEW_CANDIDATE_PAIR_SELECTED,
                    json!({"candidatePair": pair}),
                );
            }
        }
    }

    fn on_state(&mut self, s: RTCPeerConnectionState) {
        let now_connected = match s {
            RTCPeerConnectionState::Connected => true,
            RTCPeerConnectionState::Disconnected
            | RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Closed => false,
            _ => return,
        };
        let was = self.snapshot.lock().connected;
        if was == now_connected {
            return;
        }
        {
            let mut snap = self.snapshot.lock();
            snap.connected = now_connected;
            snap.media_connected = now_connected;
        }
        self.connected.send_replace(now_connected);
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
        if matches!(s, RTCPeerConnectionState::Failed) {
            self.emit_error("ICE or DTLS connection failed");
        }
    }

    async fn on_track(&mut self, track: Arc<dyn TrackRemote>) {
        let kind = match track.kind().await {
            RtpCodecKind::Audio => MediaKind::Audio,
            RtpCodecKind::Video => MediaKind::Video,
            _ => return,
        };
        let source = Arc::new(self.source_params(&track).await);
        let hub = self.ports.output(kind).clone();
        tokio::spawn(publish::read_remote_track(
            track,
            kind,
            source,
            hub.clone(),
            self.id.clone(),
            self.events.clone(),
            self.cancel.clone(),
        ));
        // Subscribers that were connected before the publisher's media arrived want a keyframe.
        hub.request_keyframe();
    }

    /// The meaning of this publisher's payload types and extension ids.
    async fn source_params(&self, track: &Arc<dyn TrackRemote>) -> SourceParams {
        let id = track.track_id().await;
        for r in self.pc.get_receivers().await {
            if r.track().track_id().await != id {
                continue;
            }
            if let Ok(p) = r.get_parameters().await {
                return SourceParams {
                    codecs: p.rtp_parameters.codecs,
                    extensions: p
                        .rtp_parameters
                        .header_extensions
                        .iter()
                        .filter_map(|e| u8::try_from(e.id).ok().map(|i| (i, e.uri.clone())))
                        .collect(),
                };
            }
        }
        SourceParams::default()
    }

    async fn selected_pair(&self) -> Option<(String, String)> {
        use webrtc::peer_connection::{RTCStatsReportEntry, StatsSelector};
        let report = self
            .pc
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        let pair = report.candidate_pairs().find(|p| p.nominated)?;
        let describe = |id: &str| match report.get(id) {
            Some(
                RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c),
            ) => Some(format!(
                "candidate:1 1 {} {} {} {} typ {}",
                c.protocol.to_ascii_uppercase(),
                c.priority,
                c.address.clone().unwrap_or_default(),
                c.port,
                c.candidate_type
            )),
            _ => None,
        };
        Some((
            describe(&pair.local_candidate_id)?,
            describe(&pair.remote_candidate_id)?,
        ))
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

fn offer_err(e: webrtc::error::Error) -> RpcError {
    RpcError::new(
        ErrorCode::SdpEndPointProcessOfferError,
        format!("Cannot negotiate: {e}"),
    )
}

fn rand_ssrc() -> u32 {
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

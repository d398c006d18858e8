//! Kurento's `getStats` on a WebRtcEndpoint: the connection's `rtc` statistics in the shapes a
//! Kurento client reads (a map of id → `RTCInboundRTPStreamStats`, `RTCOutboundRTPStreamStats`,
//! `RTCIceCandidatePairStats`, `RTCTransportStats`, `EndpointStats`, each with `__module__`,
//! `__type__`, Kurento's `type` name, `timestamp` in seconds and `timestampMillis`).

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::StatsSelector;
use serde_json::{json, Map, Value};
use std::time::Instant;

use super::Conn;
use crate::media::flow::now_millis;
use crate::media::MediaKind;

impl Conn {
    /// The statistics of this endpoint's connection; RTP streams of `kind` only when given.
    pub fn kurento_stats(&mut self, kind: Option<MediaKind>, now: Instant) -> Value {
        let Some(pc) = self.pc.as_mut() else {
            return self.leg_stats(kind);
        };
        let report = pc.get_stats(now, StatsSelector::None);
        let mut report_out = Report::new();
        let mut put = |id: &str, ty: &str, kurento_type: &str, fields: Value| {
            report_out.put(id, ty, kurento_type, fields)
        };
        let wanted = |k: RtpCodecKind| match kind {
            None => true,
            Some(MediaKind::Audio) => k == RtpCodecKind::Audio,
            Some(MediaKind::Video) => k == RtpCodecKind::Video,
        };
        for s in report.inbound_rtp_streams() {
            let r = &s.received_rtp_stream_stats;
            let base = &r.rtp_stream_stats;
            if !wanted(base.kind) {
                continue;
            }
            let received = r.packets_received;
            let lost = r.packets_lost.max(0) as u64;
            put(
                &base.stats.id,
                "inboundrtp",
                "RTCInboundRTPStreamStats",
                with_stream(
                    base,
                    json!({
                        "associateStatsId": "",
                        "mediaTrackId": s.track_identifier,
                        "firCount": s.fir_count,
                        "pliCount": s.pli_count,
                        "nackCount": s.nack_count,
                        "packetsLost": lost,
                        "fractionLost": if received + lost > 0 { lost as f64 / (received + lost) as f64 } else { 0.0 },
                        "packetsReceived": received,
                        "bytesReceived": s.bytes_received,
                        "jitter": r.jitter,
                    }),
                ),
            );
        }
        for s in report.outbound_rtp_streams() {
            let sent = &s.sent_rtp_stream_stats;
            let base = &sent.rtp_stream_stats;
            if !wanted(base.kind) {
                continue;
            }
            // A direct leg's packets never go through `rtc`: its own counts stand.
            let (packets_sent, bytes_sent, nack_count) =
                match self.direct.as_ref().and_then(|d| d.counts(base.ssrc)) {
                    Some(c) => (c.packets, c.bytes, c.nacks as u32),
                    None => (sent.packets_sent, sent.bytes_sent, s.nack_count),
                };
            put(
                &base.stats.id,
                "outboundrtp",
                "RTCOutboundRTPStreamStats",
                with_stream(
                    base,
                    json!({
                        "associateStatsId": s.remote_id,
                        "mediaTrackId": s.media_source_id,
                        "firCount": s.fir_count,
                        "pliCount": s.pli_count,
                        "nackCount": nack_count,
                        "packetsLost": 0,
                        "fractionLost": 0.0,
                        "packetsSent": packets_sent,
                        "bytesSent": bytes_sent,
                        "targetBitrate": s.target_bitrate,
                        "roundTripTime": 0.0,
                    }),
                ),
            );
        }
        let direct_bytes = self.direct.as_ref().map_or(0, |d| d.bytes_sent());
        let nominated: Vec<(String, String)> = report
            .candidate_pairs()
            .filter(|p| p.nominated)
            .map(|p| (p.local_candidate_id.clone(), p.remote_candidate_id.clone()))
            .collect();
        for (local, remote) in &nominated {
            for (id, ty, is_local) in [
                (local, "localcandidate", true),
                (remote, "remotecandidate", false),
            ] {
                let Some(c) = candidate_entry(&report, id, is_local) else {
                    // A peer-reflexive remote candidate has no entry: the address its checks
                    // come from stands for it.
                    if let (false, Some(from)) = (is_local, self.stun_from) {
                        let line = format!(
                            "candidate:1 1 UDP 0 {} {} typ prflx",
                            from.ip(),
                            from.port()
                        );
                        put(
                            id,
                            ty,
                            "RTCIceCandidateAttributes",
                            json!({
                                "ipAddress": from.ip().to_string(),
                                "portNumber": from.port(),
                                "transport": "udp",
                                "candidateType": "prflx",
                                "priority": 0,
                                "addressSourceUrl": "",
                                "candidate": line,
                            }),
                        );
                    }
                    continue;
                };
                let address = c.address.clone().unwrap_or_default();
                put(
                    id,
                    ty,
                    "RTCIceCandidateAttributes",
                    json!({
                        "ipAddress": address,
                        "portNumber": c.port,
                        "transport": c.protocol.to_string().to_ascii_lowercase(),
                        "candidateType": c.candidate_type.to_string(),
                        "priority": c.priority,
                        "addressSourceUrl": "",
                        "candidate": candidate_line(c),
                    }),
                );
            }
        }
        for p in report.candidate_pairs().filter(|p| p.nominated) {
            put(
                &p.stats.id,
                "candidatepair",
                "RTCIceCandidatePairStats",
                json!({
                    "transportId": p.transport_id,
                    "localCandidateId": p.local_candidate_id,
                    "remoteCandidateId": p.remote_candidate_id,
                    "state": serde_json::to_value(p.state).unwrap_or(Value::Null),
                    "priority": 0,
                    "nominated": p.nominated,
                    "writable": p.nominated,
                    "readable": p.packets_received > 0,
                    "bytesSent": p.bytes_sent + direct_bytes,
                    "bytesReceived": p.bytes_received,
                    "roundTripTime": p.current_round_trip_time,
                    "availableOutgoingBitrate": p.available_outgoing_bitrate,
                    "availableIncomingBitrate": p.available_incoming_bitrate,
                }),
            );
        }
        if let Some(t) = report.transport() {
            put(
                &t.stats.id,
                "transport",
                "RTCTransportStats",
                json!({
                    "bytesSent": t.bytes_sent + direct_bytes,
                    "bytesReceived": t.bytes_received,
                    "rtcpTransportStatsId": "",
                    "activeConnection": !t.selected_candidate_pair_id.is_empty(),
                    "selectedCandidatePairId": t.selected_candidate_pair_id,
                    "localCertificateId": t.local_certificate_id,
                    "remoteCertificateId": t.remote_certificate_id,
                    "srtpCipher": t.srtp_cipher,
                }),
            );
        }
        report_out.endpoint(&self.id);
        report_out.done()
    }

    /// The same shapes for a direct leg (`leg.rs`): its outgoing streams, the selected pair and
    /// its candidates, the transport, the endpoint.
    fn leg_stats(&self, kind: Option<MediaKind>) -> Value {
        let mut r = Report::new();
        let Some(leg) = self.leg.as_ref() else {
            r.endpoint(&self.id);
            return r.done();
        };
        let transport = "RTCTransport_0_1";
        let sent = self.direct.as_ref().map_or(0, |d| d.bytes_sent());
        for g in leg
            .agreed()
            .iter()
            .filter(|g| kind.is_none_or(|k| k == g.kind))
        {
            let kind = match g.kind {
                MediaKind::Audio => "audio",
                MediaKind::Video => "video",
            };
            let c = self.direct.as_ref().and_then(|d| d.counts(g.ssrc));
            r.put(
                &format!("RTCOutboundRTP{kind}Stream_{}", g.ssrc),
                "outboundrtp",
                "RTCOutboundRTPStreamStats",
                json!({
                    "associateStatsId": "",
                    "mediaTrackId": format!("{kind}-{}", g.ssrc),
                    "firCount": 0,
                    "pliCount": 0,
                    "nackCount": c.map_or(0, |c| c.nacks),
                    "packetsLost": 0,
                    "fractionLost": 0.0,
                    "packetsSent": c.map_or(0, |c| c.packets),
                    "bytesSent": c.map_or(0, |c| c.bytes),
                    "targetBitrate": 0.0,
                    "roundTripTime": 0.0,
                    "ssrc": g.ssrc.to_string(),
                    "kind": kind,
                    "isRemote": false,
                    "transportId": transport,
                    "codecId": format!("RTCCodec_{}_{}", g.mid, g.pt),
                    "sliCount": 0,
                    "remb": 0,
                }),
            );
        }
        let pair = "RTCIceCandidatePair_leg";
        if let Some((local, remote)) = &leg.selected {
            for (id, ty, line) in [
                ("RTCLocalIceCandidate_leg", "localcandidate", local),
                ("RTCRemoteIceCandidate_leg", "remotecandidate", remote),
            ] {
                r.put(id, ty, "RTCIceCandidateAttributes", candidate_fields(line));
            }
            r.put(
                pair,
                "candidatepair",
                "RTCIceCandidatePairStats",
                json!({
                    "transportId": transport,
                    "localCandidateId": "RTCLocalIceCandidate_leg",
                    "remoteCandidateId": "RTCRemoteIceCandidate_leg",
                    "state": "succeeded",
                    "priority": 0,
                    "nominated": true,
                    "writable": true,
                    "readable": leg.bytes_received > 0,
                    "bytesSent": sent,
                    "bytesReceived": leg.bytes_received,
                    "roundTripTime": 0.0,
                    "availableOutgoingBitrate": 0.0,
                    "availableIncomingBitrate": 0.0,
                }),
            );
        }
        r.put(
            transport,
            "transport",
            "RTCTransportStats",
            json!({
                "bytesSent": sent,
                "bytesReceived": leg.bytes_received,
                "rtcpTransportStatsId": "",
                "activeConnection": leg.selected.is_some(),
                "selectedCandidatePairId": if leg.selected.is_some() { pair } else { "" },
                "localCertificateId": "",
                "remoteCertificateId": "",
                "srtpCipher": leg.cipher,
            }),
        );
        r.endpoint(&self.id);
        r.done()
    }
}

/// Kurento's statistics map being built: id → fields with the common ones added.
struct Report {
    out: Map<String, Value>,
    ms: u64,
}

impl Report {
    fn new() -> Self {
        Self {
            out: Map::new(),
            ms: now_millis() as u64,
        }
    }

    fn put(&mut self, id: &str, ty: &str, kurento_type: &str, mut fields: Value) {
        fields["__module__"] = json!("kurento");
        fields["__type__"] = json!(kurento_type);
        fields["id"] = json!(id);
        fields["type"] = json!(ty);
        fields["timestamp"] = json!(self.ms as f64 / 1000.0);
        fields["timestampMillis"] = json!(self.ms);
        self.out.insert(id.to_string(), fields);
    }

    /// The endpoint's own entry (Kurento's `EndpointStats`; latencies are not measured).
    fn endpoint(&mut self, id: &str) {
        self.put(
            id,
            "endpoint",
            "EndpointStats",
            json!({
                "inputAudioLatency": 0,
                "inputVideoLatency": 0,
                "audioE2ELatency": 0,
                "videoE2ELatency": 0,
                "inputLatency": [],
                "E2ELatency": [],
            }),
        );
    }

    fn done(self) -> Value {
        Value::Object(self.out)
    }
}

/// A candidate's fields from its SDP line (`candidate:<foundation> <component> <transport>
/// <priority> <address> <port> typ <type> …`).
fn candidate_fields(line: &str) -> Value {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let at = |i: usize| parts.get(i).copied().unwrap_or_default();
    json!({
        "ipAddress": at(4),
        "portNumber": at(5).parse::<u16>().unwrap_or(0),
        "transport": at(2).to_ascii_lowercase(),
        "candidateType": at(7),
        "priority": at(3).parse::<u64>().unwrap_or(0),
        "addressSourceUrl": "",
        "candidate": line,
    })
}

/// A candidate of the report by the id a candidate pair names it with: `rtc` files candidates
/// under `RTCLocalIceCandidate_<id>` / `RTCRemoteIceCandidate_<id>` while its pairs name the
/// bare `<id>`.
pub fn candidate_entry<'a>(
    report: &'a rtc::statistics::report::RTCStatsReport,
    id: &str,
    local: bool,
) -> Option<&'a rtc::statistics::stats::ice_candidate::RTCIceCandidateStats> {
    use rtc::statistics::report::RTCStatsReportEntry;
    let prefixed = if local {
        format!("RTCLocalIceCandidate_{id}")
    } else {
        format!("RTCRemoteIceCandidate_{id}")
    };
    match report.get(&prefixed).or_else(|| report.get(id))? {
        RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c) => Some(c),
        _ => None,
    }
}

/// A candidate as an SDP candidate line (what NewCandidatePairSelected and OpenVidu's
/// `localCandidate` / `remoteCandidate` carry).
pub fn candidate_line(c: &rtc::statistics::stats::ice_candidate::RTCIceCandidateStats) -> String {
    format!(
        "candidate:1 1 {} {} {} {} typ {}",
        c.protocol.to_string().to_ascii_uppercase(),
        c.priority,
        c.address.clone().unwrap_or_default(),
        c.port,
        c.candidate_type
    )
}

/// Adds what Kurento's RTP stream stats share (`RTCRTPStreamStats`) to `fields`.
fn with_stream(
    base: &rtc::statistics::stats::rtp_stream::RTCRtpStreamStats,
    mut fields: Value,
) -> Value {
    let shared = json!({
        "ssrc": base.ssrc.to_string(),
        "kind": kind_name(base.kind),
        "isRemote": false,
        "transportId": base.transport_id,
        "codecId": base.codec_id,
        "sliCount": 0,
        "remb": 0,
    });
    if let (Some(f), Some(s)) = (fields.as_object_mut(), shared.as_object()) {
        f.extend(s.clone());
    }
    fields
}

fn kind_name(k: RtpCodecKind) -> &'static str {
    match k {
        RtpCodecKind::Audio => "audio",
        _ => "video",
    }
}

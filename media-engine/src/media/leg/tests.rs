//! A sending leg against real offers, and against an `rtc` peer connection in memory: the
//! answer is accepted, ICE and DTLS come up, media sent by the direct path is decoded by the
//! peer as its tracks, and the peer's RTCP is opened by the leg.

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidate;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use super::answer::{answer, Local, Outgoing, Refused};
use super::transport::{Dropped, LegEvent, Transport};
use crate::media::worker::conn::direct::{Direct, Track};
use crate::media::MediaKind;

/// The video packet the network loses in the media test.
const LOST: u16 = 10;

const CHROMIUM_OFFER: &str = include_str!("../../../examples/chromium-recvonly-offer.sdp");

fn local<'a>(fingerprint: &'a str) -> Local<'a> {
    Local {
        ufrag: "legufrag0001",
        pwd: "legpasswordlegpasswordle",
        fingerprint,
        cname: "rtcpool",
        stream: "stream-1",
        session_id: 42,
        candidates: &[],
    }
}

const SENDS: [Outgoing; 2] = [
    Outgoing {
        kind: MediaKind::Audio,
        ssrc: 1001,
        rtx_ssrc: None,
    },
    Outgoing {
        kind: MediaKind::Video,
        ssrc: 2001,
        rtx_ssrc: Some(2002),
    },
];

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn chromiums_offer_gets_opus_and_vp8_with_rtx_and_nothing_else() {
    let a = ok(answer(CHROMIUM_OFFER, &local("sha-256 AA:BB"), &SENDS));
    let got: Vec<_> = a
        .agreed
        .iter()
        .map(|g| {
            (
                g.mid.as_str(),
                g.codec.as_str(),
                g.pt,
                g.rtx,
                g.nack,
                g.keyframes,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("0", "opus", 111, None, false, false),
            ("1", "VP8", 96, Some((97, 2002)), true, true),
        ]
    );
    assert!(a.remote_fingerprint.starts_with("sha-256 1F:EE:11"));
    assert!(!a.remote_ufrag.is_empty() && !a.remote_pwd.is_empty());
    // One codec (and its RTX) per section: none of the 42 others Chromium offered.
    assert!(a.sdp.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"));
    assert!(a.sdp.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"));
    assert!(a.sdp.contains("a=group:BUNDLE 0 1\r\n"));
    assert!(a.sdp.contains("a=setup:passive\r\n"));
    assert!(a.sdp.contains("a=ssrc-group:FID 2001 2002\r\n"));
    assert!(!a.sdp.contains("VP9") && !a.sdp.contains("AV1") && !a.sdp.contains("H264"));
    assert!(
        a.sdp.len() < 2_000,
        "answer of {} bytes:\n{}",
        a.sdp.len(),
        a.sdp
    );
    // rtc itself reads it as an answer.
    assert!(RTCSessionDescription::answer(a.sdp).is_ok());
    // The leg's candidates go in every accepted section: the peer need not wait for a trickle.
    let host = ["candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host".to_string()];
    let with = Local {
        candidates: &host,
        ..local("sha-256 AA:BB")
    };
    let a = ok(answer(CHROMIUM_OFFER, &with, &SENDS));
    assert_eq!(
        a.sdp
            .matches("a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n")
            .count(),
        2
    );
}

#[test]
fn sections_without_a_stream_are_rejected_and_bad_offers_refused() {
    // Video only: the audio section is rejected, port 0, out of the bundle.
    let a = ok(answer(CHROMIUM_OFFER, &local("sha-256 AA"), &SENDS[1..]));
    assert_eq!(a.agreed.len(), 1);
    assert!(a
        .sdp
        .contains("m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"));
    assert!(a.sdp.contains("a=group:BUNDLE 1\r\n"));
    // The peer sends only: nothing for a sending leg to do.
    let sendonly = CHROMIUM_OFFER.replace("a=recvonly", "a=sendonly");
    assert_eq!(
        answer(&sendonly, &local("x"), &SENDS).err(),
        Some(Refused::Nothing)
    );
    // The peer wants to be the DTLS server.
    let passive = CHROMIUM_OFFER.replace("a=setup:actpass", "a=setup:passive");
    assert!(matches!(
        answer(&passive, &local("x"), &SENDS),
        Err(Refused::DtlsRole(_))
    ));
    let no_fp: String = CHROMIUM_OFFER
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    assert!(matches!(
        answer(&no_fp, &local("x"), &SENDS),
        Err(Refused::Missing(_))
    ));
    assert!(matches!(
        answer("hello", &local("x"), &SENDS),
        Err(Refused::Parse(_))
    ));
}

/// A receive-only audio + video `rtc` peer and its offer, applied.
fn recvonly_peer(now: Instant) -> (RTCPeerConnection, String) {
    let mut media = MediaEngine::default();
    ok(media.register_default_codecs());
    // Its interceptors send receiver reports and NACKs, as a browser does.
    let registry = ok(register_default_interceptors(Registry::new(), &mut media));
    let mut pc = ok(RTCPeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(now));
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        ok(pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        ));
    }
    let offer = ok(pc.create_offer(None));
    let sdp = offer.sdp.clone();
    ok(pc.set_local_description(now, offer));
    (pc, sdp)
}

fn tagged(now: Instant, from: SocketAddr, to: SocketAddr, message: BytesMut) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: to,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message,
    }
}

/// What the leg saw of the peer over the run.
#[derive(Default)]
struct Seen {
    /// How long after the start DTLS was up.
    secure_at: Option<Duration>,
    rtcp: usize,
    nacks: usize,
    /// The lost packet reached the peer, sent again after its NACK.
    recovered: bool,
    failed: Option<String>,
    /// What the leg sent when closed: (to the peer, first byte).
    closed_with: Option<(bool, Option<u8>)>,
    deaf_after_close: bool,
    dropped: Vec<Dropped>,
}

/// An `rtc` peer and a leg (that expects `fingerprint`, the peer's own when `None`) run for up
/// to 10 s of virtual time; the leg sends media once secure.
fn run(fingerprint: Option<&str>) -> (Seen, std::collections::HashMap<u32, usize>) {
    let t0 = Instant::now();
    let provider = ok(rtc::crypto::default_provider());
    let cert = ok(crate::media::factory::new_certificate());
    let server = ok(super::dtls_server(&provider, &cert, false));
    let fp = ok(super::fingerprint(&provider, &cert));
    let engine: SocketAddr = ok("127.0.0.1:40000".parse());
    let peer_addr: SocketAddr = ok("127.0.0.2:20000".parse());
    let stranger: SocketAddr = ok("127.0.0.3:20000".parse());

    let (mut peer, offer) = recvonly_peer(t0);
    let l = local(&fp);
    let a = ok(answer(&offer, &l, &SENDS));
    ok(peer.set_remote_description(t0, ok(RTCSessionDescription::answer(a.sdp.clone()))));
    let host = ok(crate::media::factory::host_candidate(peer_addr));
    let peer_host = ok(RTCIceCandidate::from(&host).to_json());
    let engine_host =
        ok(RTCIceCandidate::from(&ok(crate::media::factory::host_candidate(engine))).to_json());
    ok(peer.add_local_candidate(peer_host.clone()));
    ok(peer.add_remote_candidate(engine_host));

    let mut leg = ok(Transport::new(
        t0,
        engine,
        l.ufrag,
        l.pwd,
        server,
        provider.clone(),
    ));
    let expected = fingerprint.unwrap_or(&a.remote_fingerprint);
    ok(leg.start(t0, &a.remote_ufrag, &a.remote_pwd, expected));
    ok(leg.add_remote_candidate(&peer_host.candidate));
    // A browser's mDNS candidate: never resolved (no multicast query ever leaves the leg).
    let _ = leg.add_remote_candidate("candidate:9 1 udp 2113937151 4c1f-peer.local 50000 typ host");

    let tracks: Vec<Track> = a
        .agreed
        .iter()
        .map(|g| Track {
            ssrc: g.ssrc,
            clock_rate: g.clock_rate,
            kind: g.kind,
        })
        .collect();
    let mut direct: Option<Direct> = None;
    let mut seen = Seen::default();
    let mut received = std::collections::HashMap::<u32, usize>::new();
    let mut out = Vec::new();
    let mut now = t0;
    let mut seq = 0u16;
    for _ in 0..2_000 {
        now += Duration::from_millis(5);
        leg.handle_timeout(now);
        ok(peer.handle_timeout(now));
        // A stranger's datagrams never reach DTLS or SRTCP.
        let garbage = BytesMut::from(&[0x80u8, 200, 0, 1, 9, 9, 9, 9][..]);
        if let Err(d) = leg.handle_datagram(now, stranger, garbage) {
            seen.dropped.push(d);
        }
        while let Some((to, d)) = leg.poll_transmit() {
            assert_eq!(to, peer_addr);
            ok(peer.handle_read(tagged(now, engine, peer_addr, d)));
        }
        while let Some(w) = peer.poll_write() {
            match leg.handle_datagram(now, peer_addr, w.message) {
                Ok(Some(mut rtcp)) => {
                    seen.rtcp += 1;
                    // NACKs go to the sending path, which sends the packets again.
                    for p in rtc::rtcp::packet::unmarshal(&mut rtcp).unwrap_or_default() {
                        if let Some(n) = p.as_any().downcast_ref::<TransportLayerNack>() {
                            seen.nacks += 1;
                            if let Some(d) = direct.as_mut() {
                                d.on_nack(n);
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(d) => seen.dropped.push(d),
            }
        }
        while let Some(e) = leg.poll_event() {
            match e {
                LegEvent::Secure { keys, profile } => {
                    seen.secure_at = Some(now - t0);
                    direct = Some(ok(Direct::new(
                        now,
                        &keys,
                        profile,
                        &tracks,
                        provider.crypto(),
                    )));
                }
                LegEvent::Failed(why) => seen.failed = Some(why),
                _ => {}
            }
        }
        // Once secure: a packet per stream every 20 ms.
        if let (Some(d), Some(dest)) = (direct.as_mut(), leg.remote()) {
            if (now - t0).as_millis().is_multiple_of(20) {
                seq = seq.wrapping_add(1);
                for g in &a.agreed {
                    let mut p = rtc::rtp::Packet::default();
                    p.header.version = 2;
                    p.header.payload_type = g.pt;
                    p.header.ssrc = g.ssrc;
                    p.header.sequence_number = seq;
                    p.header.timestamp = u32::from(seq) * 960;
                    p.payload = Bytes::from_static(&[0x90, 0x80, 0, 0, 0x10, 0, 0, 0]);
                    assert!(d.send(now, p, dest, &mut out));
                }
                for (to, datagram) in out.drain(..) {
                    // The network loses the video packet 10.
                    if seq == LOST
                        && datagram.len() > 20
                        && datagram[8..12] == 2001u32.to_be_bytes()
                    {
                        continue;
                    }
                    ok(peer.handle_read(tagged(now, engine, to, datagram)));
                }
            }
        }
        if let Some(d) = direct.as_mut() {
            d.drain(peer_addr, &mut out);
            for (to, datagram) in out.drain(..) {
                ok(peer.handle_read(tagged(now, engine, to, datagram)));
            }
        }
        while peer.poll_event().is_some() {}
        while let Some(m) = peer.poll_read() {
            if let RTCMessage::RtpPacket(_, p) = m.message {
                *received.entry(p.header.ssrc).or_default() += 1;
                if p.header.ssrc == 2001 && p.header.sequence_number == LOST {
                    seen.recovered = true;
                }
            }
        }
        let done = received.values().all(|n| *n >= 50) && received.len() == 2 && seen.recovered;
        if done || seen.failed.is_some() {
            break;
        }
    }
    // Released: the peer is told with DTLS's close_notify (an alert record, content type 21).
    leg.close(now);
    seen.closed_with = leg
        .poll_transmit()
        .map(|(to, d)| (to == peer_addr, d.first().copied()));
    // ... and hears nothing more.
    let hello = BytesMut::from(&[22u8, 0xfe, 0xfd, 0, 0][..]);
    if let Err(d) = leg.handle_datagram(now, peer_addr, hello) {
        seen.dropped.push(d);
        seen.deaf_after_close = true;
    }
    (seen, received)
}

#[test]
fn media_flows_to_an_rtc_peer_and_its_rtcp_comes_back() {
    let (seen, received) = run(None);
    assert_eq!(seen.failed, None);
    let secure = seen.secure_at;
    assert!(
        secure.is_some_and(|t| t < Duration::from_secs(2)),
        "secure after {secure:?}"
    );
    assert!(
        received.get(&1001).is_some_and(|n| *n >= 50),
        "{received:?}"
    );
    assert!(
        received.get(&2001).is_some_and(|n| *n >= 50),
        "{received:?}"
    );
    assert!(
        seen.rtcp > 0,
        "no RTCP opened from the peer; dropped: {:?}",
        seen.dropped
            .iter()
            .filter(|d| **d != Dropped::Unknown)
            .collect::<Vec<_>>()
    );
    assert!(seen.nacks > 0, "the peer never NACKed the lost packet");
    assert!(seen.recovered, "the lost packet was not sent again");
    assert!(seen.dropped.contains(&Dropped::Unknown));
    assert_eq!(seen.closed_with, Some((true, Some(21))));
    assert!(seen.deaf_after_close);
}

#[test]
fn a_peer_whose_certificate_is_not_the_offered_one_gets_no_keys() {
    let other = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    let (seen, received) = run(Some(other));
    assert!(seen.failed.is_some_and(|why| why.contains("fingerprint")));
    assert_eq!(seen.secure_at, None);
    assert!(received.is_empty(), "{received:?}");
}

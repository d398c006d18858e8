//! How much memory one engine peer connection holds in `rtc` itself (heap held, over 200):
//! built (per role), then negotiated as a subscriber leg is (a receive-only offer, two outgoing
//! tracks, the answer), from a webrtc-rs peer's offer and from Chromium's, whole and without the
//! codecs the engine never accepts (as the engine gives offers to `rtc`); then connected: ICE and
//! DTLS done with an `rtc` peer in memory, the peer dropped (the method of `leg_memory`, which
//! measures the same leg without an `RTCPeerConnection`).
//!
//!     cargo run --release -p media-engine --example pc_memory

use media_engine::media::factory::{host_candidate, PcFactory, Role};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{RTCIceCandidate, RTCIceCandidateInit};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::net::SocketAddr;
use std::time::Duration;
use std::time::Instant;

const N: usize = 200;

/// Every allocation counted, so a figure is the heap the connections hold (resident-size
/// deltas within one process depend on which freed pages get reused).
#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes live now.
fn live() -> isize {
    let s = HEAP.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// A receive-only audio + video peer (as a subscriber's bot makes one), and its offer, applied.
fn recvonly_peer() -> anyhow::Result<(RTCPeerConnection, String)> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_media_engine(media)
        .build(Instant::now())?;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )?;
    }
    let offer = pc.create_offer(None)?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(Instant::now(), offer)?;
    Ok((pc, sdp))
}

/// A receive-only audio + video offer, as a subscriber's browser or bot makes it.
fn recvonly_offer() -> anyhow::Result<String> {
    Ok(recvonly_peer()?.1)
}

#[allow(clippy::print_stdout)] // the figures are this tool's output
fn main() -> anyhow::Result<()> {
    let f = PcFactory::new("127.0.0.1".parse()?, None, false, true, false)?;
    for role in [Role::Both, Role::Send, Role::Receive] {
        let before = live();
        let mut pcs = Vec::new();
        for i in 0..N {
            pcs.push(f.build(&format!("ufrag{i:011}"), "passwordpasswordpassword", role)?);
        }
        println!(
            "{role:?}, built: {:.1} KB per connection",
            (live() - before) as f64 / N as f64 / 1000.0
        );
        drop(pcs);
    }
    // A webrtc-rs peer's offer (the bots'), and Chromium 156's (captured: `pc.addTransceiver`
    // audio and video, `recvonly`, `createOffer`), each whole and as the engine hands it to `rtc`.
    let chromium = include_str!("chromium-recvonly-offer.sdp");
    for (who, offer) in [
        ("webrtc-rs", recvonly_offer()?),
        ("Chromium", chromium.to_owned()),
    ] {
        let trimmed = media_engine::media::sdp::only_forwarded_codecs(&offer);
        println!("{who}'s offer:");
        negotiated(&f, &offer)?;
        negotiated(&f, &trimmed)?;
    }
    connected(&f)?;
    Ok(())
}

/// A subscriber leg as the engine negotiates one from `offer`: remote description, its two
/// outgoing tracks, the answer.
fn leg(f: &PcFactory, i: usize, offer: &str, now: Instant) -> anyhow::Result<RTCPeerConnection> {
    let mut pc = f
        .build(
            &format!("ufrag{i:011}"),
            "passwordpasswordpassword",
            Role::Send,
        )?
        .pc;
    pc.set_remote_description(now, RTCSessionDescription::offer(offer.to_owned())?)?;
    for (kind, mime, clock, channels) in [
        (RtpCodecKind::Audio, "audio/opus", 48_000, 2),
        (RtpCodecKind::Video, "video/VP8", 90_000, 0),
    ] {
        let name = if kind == RtpCodecKind::Audio {
            "audio"
        } else {
            "video"
        };
        pc.add_track(MediaStreamTrack::new(
            "stream".into(),
            format!("{name}-{i}"),
            name.into(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(1000 + i as u32 * 2 + u32::from(kind == RtpCodecKind::Video)),
                    ..Default::default()
                },
                codec: RTCRtpCodec {
                    mime_type: mime.into(),
                    clock_rate: clock,
                    channels,
                    ..Default::default()
                },
                ..Default::default()
            }],
        ))?;
    }
    let answer = pc.create_answer(None)?;
    pc.set_local_description(now, answer)?;
    Ok(pc)
}

/// Heap held by `N` subscriber legs negotiated from `offer`.
#[allow(clippy::print_stdout)]
fn negotiated(f: &PcFactory, offer: &str) -> anyhow::Result<()> {
    let before = live();
    let mut legs = Vec::new();
    for i in 0..N {
        legs.push(leg(f, i, offer, Instant::now())?);
    }
    println!(
        "  Send, negotiated as a subscriber leg (offer {} bytes): {:.1} KB per connection",
        offer.len(),
        (live() - before) as f64 / N as f64 / 1000.0
    );
    Ok(())
}

/// `addr` as a host candidate, for `add_*_candidate`.
fn host(addr: SocketAddr) -> anyhow::Result<RTCIceCandidateInit> {
    Ok(RTCIceCandidate::from(&host_candidate(addr)?).to_json()?)
}

/// Everything `from` (at `from_addr`) has to send, handed to `to` (at `to_addr`); both drained of
/// events and reads. True once `to` reported `Connected`.
fn carry(
    now: Instant,
    from: &mut RTCPeerConnection,
    from_addr: SocketAddr,
    to: &mut RTCPeerConnection,
    to_addr: SocketAddr,
) -> anyhow::Result<bool> {
    while let Some(d) = from.poll_write() {
        to.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: to_addr,
                peer_addr: from_addr,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: d.message,
        })?;
    }
    let mut connected = false;
    while let Some(e) = to.poll_event() {
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
            RTCPeerConnectionState::Connected,
        ) = e
        {
            connected = true;
        }
    }
    while to.poll_read().is_some() {}
    Ok(connected)
}

/// Heap held by `N` subscriber legs (the engine's, from a webrtc-rs peer's offer without the
/// codecs it never accepts) once ICE and DTLS are done with their peers, in memory and on
/// virtual time; the peers are dropped before counting: the same method as `leg_memory`.
#[allow(clippy::print_stdout)]
fn connected(f: &PcFactory) -> anyhow::Result<()> {
    let engine: SocketAddr = "127.0.0.1:40000".parse()?;
    let before = live();
    let mut legs = Vec::new();
    for i in 0..N {
        let mut now = Instant::now();
        let (mut peer, offer) = recvonly_peer()?;
        let peer_addr: SocketAddr = format!("127.0.0.2:{}", 20_000 + i).parse()?;
        peer.add_local_candidate(host(peer_addr)?)?;
        let mut leg = leg(
            f,
            i,
            &media_engine::media::sdp::only_forwarded_codecs(&offer),
            now,
        )?;
        leg.add_local_candidate(host(engine)?)?;
        let answer = leg
            .local_description()
            .ok_or_else(|| anyhow::anyhow!("no answer"))?;
        peer.set_remote_description(now, answer)?;
        leg.add_remote_candidate(host(peer_addr)?)?;
        peer.add_remote_candidate(host(engine)?)?;
        let (mut up, mut peer_up) = (false, false);
        for _ in 0..2_000 {
            now += Duration::from_millis(5);
            leg.handle_timeout(now)?;
            peer.handle_timeout(now)?;
            peer_up |= carry(now, &mut leg, engine, &mut peer, peer_addr)?;
            up |= carry(now, &mut peer, peer_addr, &mut leg, engine)?;
            if up && peer_up {
                break;
            }
        }
        anyhow::ensure!(up && peer_up, "leg {i} did not connect");
        drop(peer);
        legs.push(leg);
    }
    println!(
        "Send, negotiated and connected (ICE and DTLS done): {:.1} KB per connection",
        (live() - before) as f64 / N as f64 / 1000.0
    );
    Ok(())
}

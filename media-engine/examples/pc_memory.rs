//! How much memory one engine peer connection holds in `rtc` itself (heap held, over 200):
//! built (per role), then negotiated as a subscriber leg is (a receive-only offer, two outgoing
//! tracks, the answer), from a webrtc-rs peer's offer and from Chromium's, whole and without the
//! codecs the engine never accepts (as the engine gives offers to `rtc`).
//!
//!     cargo run --release -p media-engine --example pc_memory

use media_engine::media::factory::{PcFactory, Role};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
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

/// A receive-only audio + video offer, as a subscriber's browser or bot makes it.
fn recvonly_offer() -> anyhow::Result<String> {
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
    Ok(offer.sdp)
}

#[allow(clippy::print_stdout)] // the figures are this tool's output
fn main() -> anyhow::Result<()> {
    let f = PcFactory::new("127.0.0.1".parse()?, None, false, true)?;
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
    Ok(())
}

/// Resident growth of `N` subscriber legs negotiated from `offer`.
#[allow(clippy::print_stdout)]
fn negotiated(f: &PcFactory, offer: &str) -> anyhow::Result<()> {
    let before = live();
    let mut legs = Vec::new();
    for i in 0..N {
        let mut pc = f
            .build(
                &format!("ufrag{i:011}"),
                "passwordpasswordpassword",
                Role::Send,
            )?
            .pc;
        let now = Instant::now();
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
        legs.push(pc);
    }
    println!(
        "  Send, negotiated as a subscriber leg (offer {} bytes): {:.1} KB per connection",
        offer.len(),
        (live() - before) as f64 / N as f64 / 1000.0
    );
    Ok(())
}

//! A prototype of the other design for the engine's send path (issue 11, "blocked means
//! measured"): what forwarding one packet to one subscriber costs when the engine does it on
//! webrtc-rs's lower crates itself — rewrite the header, marshal, SRTP-encrypt with the leg's own
//! `rtc::srtp` context, keep the packet for NACK, count it for the sender report — instead of
//! pushing it through an `rtc` peer connection's eight handler stages and interceptors
//! (`write_rtp` + `poll_write`, 36–39 % of the engine's CPU at the capacity load).
//!
//! Shape of the capacity scenario (10 rooms × 6, 500 kbps video + 40 kbps audio): every incoming
//! packet goes to the 5 other participants of its room, one packet per leg at a time, legs
//! visited in fan-out order over all 300 subscriber legs (cold caches, as in the engine). Prints
//! µs of CPU per forwarded packet for each SRTP profile, and the same with a real loopback
//! `sendto` of every datagram (to one socket a thread keeps draining).
//!
//!     target/release/bench-sendpath [--packets 200000] [--legs 300] [--fanout 5]

use bytes::{Bytes, BytesMut};
use clap::Parser;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;
use rtc::srtp::option::srtp_no_replay_protection;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "CPU per forwarded packet on rtc's lower crates (SRTP context per leg)")]
struct Args {
    /// Incoming packets to forward.
    #[arg(long, default_value_t = 200_000)]
    packets: usize,
    /// Subscriber legs (300 = 10 rooms × 6 participants × 5 subscriptions).
    #[arg(long, default_value_t = 300)]
    legs: usize,
    /// Subscribers per incoming packet.
    #[arg(long, default_value_t = 5)]
    fanout: usize,
}

/// One subscriber leg: its SRTP context, the rewrite state and what the engine keeps per packet.
struct Leg {
    srtp: Context,
    ssrc: u32,
    seq: u16,
    /// The last 256 packets sent (for NACK → RTX), as the engine's NACK history keeps them.
    history: VecDeque<Bytes>,
    /// Sender-report counters.
    packets: u64,
    octets: u64,
}

const HISTORY: usize = 256;

fn leg(i: usize, profile: ProtectionProfile) -> anyhow::Result<Leg> {
    let provider = rtc::crypto::default_provider().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut key = vec![0u8; profile.key_len()];
    let mut salt = vec![0u8; profile.salt_len()];
    for (j, b) in key.iter_mut().chain(salt.iter_mut()).enumerate() {
        *b = (i * 31 + j * 7) as u8;
    }
    let srtp = Context::new(
        &key,
        &salt,
        profile,
        Some(srtp_no_replay_protection()),
        None,
        provider.crypto(),
    )?;
    Ok(Leg {
        srtp,
        ssrc: 0x1000 + i as u32,
        seq: i as u16,
        history: VecDeque::with_capacity(HISTORY),
        packets: 0,
        octets: 0,
    })
}

/// Publishers' packets as they arrive: video (1,100-byte payloads) and audio (100 bytes)
/// in the 500 + 40 kbps mix (≈ 57 video and 50 audio packets per second).
fn incoming(n: usize) -> Vec<rtp::Packet> {
    (0..n)
        .map(|i| {
            let video = i % 107 < 57;
            let mut p = rtp::Packet::default();
            p.header.version = 2;
            p.header.payload_type = if video { 96 } else { 111 };
            p.header.sequence_number = i as u16;
            p.header.timestamp = (i as u32).wrapping_mul(1500);
            p.header.ssrc = 0xdead_0000 + (i % 60) as u32;
            p.payload = Bytes::from(vec![(i % 251) as u8; if video { 1100 } else { 100 }]);
            p
        })
        .collect()
}

/// Forwards `packets` to `fanout` legs each; calls `sent` with every protected datagram.
fn forward(
    legs: &mut [Leg],
    packets: &[rtp::Packet],
    fanout: usize,
    mut sent: impl FnMut(&[u8]),
) -> anyhow::Result<(f64, usize)> {
    let rooms = (legs.len() / fanout).max(1);
    let mut buf = BytesMut::with_capacity(1500);
    let t0 = cpu_micros();
    let mut forwarded = 0;
    for (i, p) in packets.iter().enumerate() {
        let room = i % rooms;
        for k in 0..fanout {
            let l = &mut legs[(room * fanout + k) % legs.len()];
            // Rewrite: the leg's SSRC, its own sequence numbers.
            let mut h = p.header.clone();
            h.ssrc = l.ssrc;
            h.sequence_number = l.seq;
            l.seq = l.seq.wrapping_add(1);
            let out = rtp::Packet {
                header: h,
                payload: p.payload.clone(),
            };
            buf.clear();
            buf.resize(out.marshal_size(), 0);
            out.marshal_to(&mut buf)?;
            let plain = buf.split().freeze();
            let protected = l.srtp.encrypt_rtp_with_header(&plain, &out.header)?;
            if l.history.len() == HISTORY {
                l.history.pop_front();
            }
            l.history.push_back(plain);
            l.packets += 1;
            l.octets += out.payload.len() as u64;
            sent(&protected);
            forwarded += 1;
        }
    }
    let cpu = cpu_micros() - t0;
    Ok((cpu as f64 / forwarded as f64, forwarded))
}

/// This thread's CPU time in µs.
fn cpu_micros() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |ns| ns / 1000)
}

#[allow(clippy::print_stdout)] // the figures are this tool's output
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let packets = incoming(args.packets);
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let to = receiver.local_addr()?;
    std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        while receiver.recv(&mut b).is_ok() {}
    });
    let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
    println!(
        "forwarding {} packets × {} subscribers over {} legs",
        args.packets, args.fanout, args.legs
    );
    for (name, profile) in [
        ("AEAD_AES_128_GCM", ProtectionProfile::AeadAes128Gcm),
        (
            "AES_CM_128_HMAC_SHA1_80",
            ProtectionProfile::Aes128CmHmacSha1_80,
        ),
    ] {
        let mut legs = (0..args.legs)
            .map(|i| leg(i, profile))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Warm-up, then the measured passes.
        forward(
            &mut legs,
            &packets[..packets.len().min(10_000)],
            args.fanout,
            |_| {},
        )?;
        let mut bytes = 0usize;
        let (us, n) = forward(&mut legs, &packets, args.fanout, |d| bytes += d.len())?;
        let t = Instant::now();
        let (us_sent, _) = forward(&mut legs, &packets, args.fanout, |d| {
            let _ = sender.send_to(d, to);
        })?;
        println!(
            "{name:<24} {us:.2} µs per forwarded packet (rewrite, marshal, encrypt, NACK copy, SR counts; {n} packets, {:.1} MB); with a loopback sendto each: {us_sent:.2} µs ({:.1} s)",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

//! The direct send path against a peer's SRTP context with the same keys.

use super::*;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers;
use rtc::shared::marshal::Unmarshal;
use rtc::srtp::option::srtp_no_replay_protection;

const P: ProtectionProfile = ProtectionProfile::AeadAes128Gcm;

fn keys() -> MasterKeys {
    use rtc::crypto::SecretVec;
    MasterKeys {
        key: SecretVec::new(vec![7; P.key_len()]),
        salt: SecretVec::new(vec![9; P.salt_len()]),
        generation: 1,
    }
}

fn crypto() -> std::sync::Arc<dyn rtc::crypto::RTCCryptoProvider> {
    match rtc::crypto::default_provider() {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    }
}

/// The receiving side: a context with the same keys, as the peer derives them.
fn receiver() -> Context {
    let k = keys();
    match Context::new(
        k.key.as_ref(),
        k.salt.as_ref(),
        P,
        Some(srtp_no_replay_protection()),
        None,
        crypto().crypto(),
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// A leg sending one video stream (SSRC 11), from `now`.
fn direct_at(now: Instant) -> Direct {
    let video = Track {
        ssrc: 11,
        clock_rate: 90_000,
        kind: MediaKind::Video,
    };
    match Direct::new(now, &keys(), P, &[video], crypto().crypto()) {
        Ok(d) => d,
        Err(e) => panic!("direct: {e}"),
    }
}

fn direct() -> Direct {
    direct_at(Instant::now())
}

fn packet(ssrc: u32, seq: u16) -> rtp::Packet {
    let mut p = rtp::Packet::default();
    p.header.version = 2;
    p.header.payload_type = 96;
    p.header.ssrc = ssrc;
    p.header.sequence_number = seq;
    p.header.timestamp = u32::from(seq) * 3000;
    p.payload = Bytes::from(vec![seq as u8; 100]);
    p
}

#[test]
fn sends_protected_packets_answers_nacks_and_reports() {
    let dest = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut d = direct();
    let mut rx = receiver();
    let mut out = Vec::new();
    let t0 = Instant::now();
    for seq in 100..110 {
        assert!(d.send(t0, packet(11, seq), dest, &mut out));
    }
    assert!(!d.send(t0, packet(12, 1), dest, &mut out), "unknown SSRC");
    assert_eq!(out.len(), 10);
    for (i, (to, datagram)) in out.iter().enumerate() {
        assert_eq!(*to, dest);
        let Ok(plain) = rx.decrypt_rtp(datagram) else {
            panic!("decrypt")
        };
        let mut b = &plain[..];
        let Ok(p) = rtp::Packet::unmarshal(&mut b) else {
            panic!("rtp")
        };
        assert_eq!(p.header.sequence_number, 100 + i as u16);
        assert_eq!(p.payload.len(), 100);
    }
    // A NACK for two kept packets and one never sent.
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 11,
        nacks: nack_pairs_from_sequence_numbers(&[103, 105, 500]),
    };
    d.on_nack(&nack);
    let mut again = Vec::new();
    d.drain(dest, &mut again);
    assert_eq!(again.len(), 2);
    let mut fresh = receiver();
    let seqs: Vec<u16> = again
        .iter()
        .filter_map(|(_, b)| fresh.decrypt_rtp(b).ok())
        .filter_map(|plain| rtp::Header::unmarshal(&mut &plain[..]).ok())
        .map(|h| h.sequence_number)
        .collect();
    assert_eq!(seqs, vec![103, 105]);
    // The same NACK over and over: each packet is resent twice at most.
    for _ in 0..5 {
        d.on_nack(&nack);
    }
    let mut repeats = Vec::new();
    d.drain(dest, &mut repeats);
    assert_eq!(repeats.len(), 2);
    // One report per second per stream.
    d.reports(t0 + Duration::from_millis(10));
    d.reports(t0 + Duration::from_millis(500));
    let mut reports = Vec::new();
    d.drain(dest, &mut reports);
    assert_eq!(reports.len(), 1);
    let Ok(plain) = rx.decrypt_rtcp(&reports[0].1) else {
        panic!("srtcp")
    };
    let Ok(sr) = SenderReport::unmarshal(&mut &plain[..]) else {
        panic!("sr")
    };
    assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (11, 10, 1000));
    let Some(c) = d.counts(11) else {
        panic!("counts")
    };
    assert_eq!((c.packets, c.nacks), (14, 6));
}

#[test]
fn a_packet_with_a_long_header_is_kept_whole_and_resent_intact() {
    let dest = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut d = direct();
    let mut p = packet(11, 7);
    p.header.extension = true;
    p.header.extension_profile = 0xBEDE;
    for id in 1..=12u8 {
        p.header.extensions.push(rtp::header::Extension {
            id,
            payload: Bytes::from(vec![id; 4]),
        });
    }
    let mut out = Vec::new();
    assert!(d.send(Instant::now(), p, dest, &mut out));
    d.on_nack(&TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 11,
        nacks: nack_pairs_from_sequence_numbers(&[7]),
    });
    d.drain(dest, &mut out);
    assert_eq!(out.len(), 2);
    let mut rx = receiver();
    let mut rx2 = receiver();
    let Ok(first) = rx.decrypt_rtp(&out[0].1) else {
        panic!("decrypt")
    };
    let Ok(again) = rx2.decrypt_rtp(&out[1].1) else {
        panic!("decrypt")
    };
    assert_eq!(first, again);
    assert!(first.len() > 12 + HEAD_MAX);
}

/// The sequence numbers in `out`, as `rx` decrypts them (it saw the first copies: it knows the
/// rollover counter, and takes a resend although it is a replay).
fn seqs(rx: &mut Context, out: &[(SocketAddr, BytesMut)]) -> Vec<u16> {
    out.iter()
        .filter_map(|(_, b)| rx.decrypt_rtp(b).ok())
        .filter_map(|plain| rtp::Header::unmarshal(&mut &plain[..]).ok())
        .map(|h| h.sequence_number)
        .collect()
}

#[test]
fn history_is_kept_for_a_second_and_at_most_its_cap() {
    let dest = SocketAddr::from(([127, 0, 0, 1], 5000));
    let t0 = Instant::now();
    let mut d = direct_at(t0);
    let mut out = Vec::new();
    // 60 packets a second for two seconds, across the sequence number wrap.
    for i in 0..120u16 {
        let at = t0 + Duration::from_millis(u64::from(i) * 1000 / 60);
        assert!(d.send(at, packet(11, 65_500u16.wrapping_add(i)), dest, &mut out));
    }
    let mut rx = receiver();
    assert_eq!(seqs(&mut rx, &out).len(), 120);
    let nack = |seqs: &[u16]| TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 11,
        nacks: nack_pairs_from_sequence_numbers(seqs),
    };
    // The first second is gone, the last one (across the wrap) is there.
    let old = 65_500u16.wrapping_add(10);
    let recent = [65_500u16.wrapping_add(70), 65_500u16.wrapping_add(119)];
    d.on_nack(&nack(&[old, recent[0], recent[1]]));
    let mut again = Vec::new();
    d.drain(dest, &mut again);
    assert_eq!(seqs(&mut rx, &again), recent.to_vec());
    let kept = d.streams[0].history.len();
    assert!(
        (55..=62).contains(&kept),
        "{kept} packets kept for 60 packets/s"
    );
    // A gap in sequence numbers (another source): both sides of it are found.
    let at = t0 + Duration::from_millis(2_010);
    assert!(d.send(at, packet(11, 9_000), dest, &mut out));
    d.on_nack(&nack(&[9_000, 65_500u16.wrapping_add(118)]));
    let mut after_gap = Vec::new();
    d.drain(dest, &mut after_gap);
    assert_eq!(seqs(&mut rx, &after_gap).len(), 2);
    // However fast the stream, no more than the cap; and memory follows the rate down.
    for i in 0..2_000u16 {
        assert!(d.send(at, packet(11, 10_000 + i), dest, &mut out));
    }
    assert_eq!(d.streams[0].history.len(), HISTORY_MAX);
    let later = at + Duration::from_secs(3);
    assert!(d.send(later, packet(11, 20_000), dest, &mut out));
    d.reports(later);
    assert_eq!(d.streams[0].history.len(), 1);
    assert!(d.streams[0].history.capacity() < 64);
}

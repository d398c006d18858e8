//! Synthetic media: RTP packets shaped like real VP8 video (keyframes with the VP8 start code,
//! 1100-byte fragments) and 20 ms Opus frames.

use bytes::Bytes;
use rtc::rtp;

/// Builds the RTP packets of video frame `n`: a keyframe every `keyframe_every` frames.
pub fn vp8_frame(n: u32, bytes: usize, keyframe: bool, seq: &mut u16, ts: u32) -> Vec<rtp::Packet> {
    const MTU_PAYLOAD: usize = 1100;
    let mut frame = Vec::with_capacity(bytes.max(10));
    // VP8 frame tag: bit 0 = 0 for a keyframe, show_frame bit set; then the start code.
    let tag: u8 = if keyframe { 0x10 } else { 0x11 };
    frame.extend_from_slice(&[tag, 0x02, 0x00]);
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]); // 640x480
    }
    while frame.len() < bytes {
        frame.push((n as usize + frame.len()) as u8);
    }
    let chunks: Vec<&[u8]> = frame.chunks(MTU_PAYLOAD).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            // VP8 payload descriptor: S bit on the first packet of the frame.
            let mut payload = Vec::with_capacity(c.len() + 1);
            payload.push(if i == 0 { 0x10 } else { 0x00 });
            payload.extend_from_slice(c);
            let mut p = rtp::Packet::default();
            p.header.version = 2;
            p.header.sequence_number = *seq;
            *seq = seq.wrapping_add(1);
            p.header.timestamp = ts;
            p.header.marker = i == last;
            p.payload = Bytes::from(payload);
            p
        })
        .collect()
}

/// One 20 ms Opus packet of `bytes` bytes.
pub fn opus_packet(seq: &mut u16, ts: u32, bytes: usize) -> rtp::Packet {
    let mut p = rtp::Packet::default();
    p.header.version = 2;
    p.header.sequence_number = *seq;
    *seq = seq.wrapping_add(1);
    p.header.timestamp = ts;
    p.payload = Bytes::from(vec![0xfc; bytes.max(3)]);
    p
}

/// Marks the send time in a packet's last 12 bytes (a tag and µs on [`clock_us`]), so that a
/// receiver in the same process can tell how long the packet took (`sent_us`). Packets under
/// 32 bytes are left alone.
pub fn stamp(p: &mut rtp::Packet, now_us: u64) {
    if p.payload.len() < 32 {
        return;
    }
    let mut b = p.payload.to_vec();
    let n = b.len();
    b[n - 12..n - 8].copy_from_slice(&STAMP_TAG);
    b[n - 8..].copy_from_slice(&now_us.to_be_bytes());
    p.payload = Bytes::from(b);
}

/// The send time [`stamp`] put in `payload`, if any.
pub fn sent_us(payload: &[u8]) -> Option<u64> {
    let n = payload.len();
    if n < 32 || payload[n - 12..n - 8] != STAMP_TAG {
        return None;
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&payload[n - 8..]);
    Some(u64::from_be_bytes(t))
}

const STAMP_TAG: [u8; 4] = *b"STMP";

/// µs since this process's first call: the clock of [`stamp`] (one process sends and receives).
pub fn clock_us() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let e = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(e.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_short_or_plain_packets_have_none() {
        let mut seq = 0;
        let mut frame = vp8_frame(1, 2000, false, &mut seq, 0);
        stamp(&mut frame[0], 123_456);
        assert_eq!(sent_us(&frame[0].payload), Some(123_456));
        assert_eq!(sent_us(&frame[1].payload), None);
        let mut short = opus_packet(&mut seq, 0, 10);
        stamp(&mut short, 1);
        assert_eq!(sent_us(&short.payload), None);
    }
}

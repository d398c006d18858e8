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

//! The little SDP reading the engine does itself: which m-sections want media from us, and
//! which codec the remote prefers for each. Full parsing and validation is webrtc-rs's.

use super::MediaKind;

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: MediaKind,
    /// The remote wants to receive on this section (`sendrecv` or `recvonly`).
    pub remote_receives: bool,
    /// The remote sends on this section (`sendrecv` or `sendonly`).
    pub remote_sends: bool,
    /// Codec names (`VP8`, `opus`, …) in the remote's preference order, with clock rate.
    pub codecs: Vec<(String, u32)>,
}

/// The audio/video sections of an SDP, in order. `None` when it is not SDP at all.
pub fn sections(sdp: &str) -> Option<Vec<Section>> {
    if !sdp.trim_start().starts_with("v=0") {
        return None;
    }
    let mut out: Vec<Section> = Vec::new();
    let mut pts: Vec<String> = Vec::new();
    let mut current: Option<Section> = None;
    let mut rtpmap: Vec<(String, String, u32)> = Vec::new();
    let finish = |cur: Option<Section>,
                  pts: &[String],
                  rtpmap: &[(String, String, u32)],
                  out: &mut Vec<Section>| {
        if let Some(mut s) = cur {
            for pt in pts {
                if let Some((_, name, clock)) = rtpmap.iter().find(|(p, _, _)| p == pt) {
                    s.codecs.push((name.clone(), *clock));
                }
            }
            out.push(s);
        }
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            finish(current.take(), &pts, &rtpmap, &mut out);
            rtpmap.clear();
            let mut parts = m.split_whitespace();
            let kind = match parts.next() {
                Some("audio") => Some(MediaKind::Audio),
                Some("video") => Some(MediaKind::Video),
                _ => None,
            };
            pts = parts.skip(2).map(str::to_string).collect();
            current = kind.map(|kind| Section {
                kind,
                remote_receives: true,
                remote_sends: true,
                codecs: Vec::new(),
            });
        } else if let Some(s) = current.as_mut() {
            match line {
                "a=sendonly" => (s.remote_receives, s.remote_sends) = (false, true),
                "a=recvonly" => (s.remote_receives, s.remote_sends) = (true, false),
                "a=inactive" => (s.remote_receives, s.remote_sends) = (false, false),
                _ => {
                    if let Some(rest) = line.strip_prefix("a=rtpmap:") {
                        let mut it = rest.splitn(2, ' ');
                        let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
                            continue;
                        };
                        let mut e = enc.split('/');
                        let name = e.next().unwrap_or_default().to_string();
                        let clock = e.next().and_then(|c| c.parse().ok()).unwrap_or(90_000);
                        rtpmap.push((pt.to_string(), name, clock));
                    }
                }
            }
        }
    }
    finish(current.take(), &pts, &rtpmap, &mut out);
    Some(out)
}

/// The first transport attribute a WebRTC description must have but lacks, if any.
pub fn missing_transport(sdp: &str) -> Option<&'static str> {
    [
        ("a=ice-ufrag:", "ICE username (a=ice-ufrag)"),
        ("a=ice-pwd:", "ICE password (a=ice-pwd)"),
        ("a=fingerprint:", "DTLS fingerprint (a=fingerprint)"),
    ]
    .into_iter()
    .find(|(attr, _)| !sdp.contains(attr))
    .map(|(_, what)| what)
}

/// Codecs the engine forwards (the factory registers these alone).
fn forwarded(name: &str) -> bool {
    ["opus", "VP8", "H264"]
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// `sdp` without the codecs the engine never accepts: in each audio/video section, the payload
/// types of other codecs (and their RTX, FEC and RED formats) leave the `m=` line with their
/// `rtpmap`, `fmtp` and `rtcp-fb` lines. The answer is the same either way (it only ever
/// accepts forwarded codecs); what changes is what `rtc` parses and keeps per connection, which
/// for a browser's offer of a dozen video codecs is most of its description. A section with no
/// forwarded codec is left as it is (the answer rejects it as before).
pub fn only_forwarded_codecs(sdp: &str) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len());
    let lines: Vec<&str> = sdp.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let end = lines[i + 1..]
            .iter()
            .position(|l| l.starts_with("m="))
            .map_or(lines.len(), |p| i + 1 + p);
        let block = &lines[i..end];
        match block.first().and_then(|l| l.strip_prefix("m=")) {
            Some(m) if m.starts_with("audio ") || m.starts_with("video ") => {
                trim_section(block, eol, &mut out);
            }
            _ => {
                for l in block {
                    out.push_str(l);
                    out.push_str(eol);
                }
            }
        }
        i = end;
    }
    out
}

/// One media section (its `m=` line first) into `out`, keeping only forwarded payload types.
fn trim_section(block: &[&str], eol: &str, out: &mut String) {
    // The payload type an attribute line is about (`a=rtpmap:96 …` → "96").
    let pt_of = |line: &str, attr: &str| -> Option<String> {
        line.strip_prefix(attr)
            .and_then(|rest| rest.split([' ', '\t']).next())
            .map(str::to_owned)
    };
    let mut keep: Vec<String> = block
        .iter()
        .filter_map(|l| {
            let pt = pt_of(l, "a=rtpmap:")?;
            let name = l.split_whitespace().nth(1)?.split('/').next()?;
            forwarded(name).then_some(pt)
        })
        .collect();
    if keep.is_empty() {
        for l in block {
            out.push_str(l);
            out.push_str(eol);
        }
        return;
    }
    // Retransmission formats of kept codecs (`a=fmtp:97 apt=96`).
    let rtx: Vec<String> = block
        .iter()
        .filter_map(|l| {
            let pt = pt_of(l, "a=fmtp:")?;
            let apt = l.split_once("apt=")?.1.split(';').next()?.trim();
            let is_rtx = block.iter().any(|m| {
                pt_of(m, "a=rtpmap:").as_deref() == Some(pt.as_str())
                    && m.split_whitespace()
                        .nth(1)
                        .is_some_and(|n| n.to_ascii_lowercase().starts_with("rtx/"))
            });
            (is_rtx && keep.iter().any(|k| k == apt)).then_some(pt)
        })
        .collect();
    keep.extend(rtx);
    let mut fields = block[0].split(' ');
    let head: Vec<&str> = fields.by_ref().take(3).collect();
    let formats: Vec<&str> = fields.filter(|f| keep.iter().any(|k| k == f)).collect();
    out.push_str(&head.join(" "));
    for f in formats {
        out.push(' ');
        out.push_str(f);
    }
    out.push_str(eol);
    for l in &block[1..] {
        let about = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
            .iter()
            .find_map(|a| pt_of(l, a));
        if about.is_some_and(|pt| pt != "*" && !keep.contains(&pt)) {
            continue;
        }
        out.push_str(l);
        out.push_str(eol);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directions_and_codec_order() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 102 96\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\na=sendonly\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        let s = sections(sdp).unwrap_or_default();
        assert_eq!(s.len(), 2);
        assert!(s[0].remote_receives && !s[0].remote_sends);
        assert_eq!(s[0].codecs, vec![("opus".to_string(), 48000)]);
        assert!(!s[1].remote_receives && s[1].remote_sends);
        assert_eq!(s[1].codecs[0].0, "H264");
        assert!(sections("garbage").is_none());
    }

    #[test]
    fn keeps_only_forwarded_codecs_and_their_rtx() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
            a=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10\r\na=rtpmap:63 red/48000/2\r\n\
            a=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 35\r\na=mid:1\r\na=rtcp-fb:* nack\r\n\
            a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\n\
            a=fmtp:97 apt=96\r\na=rtpmap:98 VP9/90000\r\na=rtcp-fb:98 nack\r\n\
            a=fmtp:98 profile-id=0\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n\
            a=rtpmap:35 AV1/90000\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:2\r\na=rtpmap:98 VP9/90000\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";
        let trimmed = only_forwarded_codecs(sdp);
        let want = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
            a=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=rtcp-fb:* nack\r\n\
            a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\n\
            a=fmtp:97 apt=96\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:2\r\na=rtpmap:98 VP9/90000\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";
        assert_eq!(trimmed, want);
        // What the engine reads from the offer is the same before and after.
        assert_eq!(
            sections(&trimmed).map(|s| s.len()),
            sections(sdp).map(|s| s.len())
        );
    }
}

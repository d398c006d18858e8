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
}

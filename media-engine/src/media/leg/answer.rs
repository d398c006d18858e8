//! A sending leg's SDP answer, written by the engine itself: nothing of the offer is kept but
//! what the leg needs (the peer's ICE credentials and candidates, and per stream the payload
//! types, SSRCs and feedback agreed). `rtc`'s peer connection keeps both descriptions parsed and
//! as text for the connection's life (about 35 KB of a subscriber leg, `examples/pc_memory.rs`).
//!
//! The rules are the ones the engine's `rtc` path follows: the peer's first offered codec the
//! engine forwards (Opus; VP8 or H.264), its RTX when offered, NACK/PLI/FIR when offered; one
//! outgoing stream per kind; DTLS server (`setup:passive`), BUNDLE, RTCP multiplexed. Sections
//! the leg has nothing to send on, and data channels, are rejected (port 0).

use rtc::sdp::description::media::MediaDescription;
use rtc::sdp::util::Codec;
use rtc::sdp::SessionDescription;
use std::fmt::Write as _;
use std::io::Cursor;

use crate::media::MediaKind;

/// What the leg sends of one kind.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing {
    pub kind: MediaKind,
    pub ssrc: u32,
    /// Its retransmission stream (video), used when the peer offers RTX.
    pub rtx_ssrc: Option<u32>,
}

/// The leg's side of the answer.
pub struct Local<'a> {
    pub ufrag: &'a str,
    pub pwd: &'a str,
    /// `sha-256 AB:CD:…` of the engine's certificate.
    pub fingerprint: &'a str,
    pub cname: &'a str,
    /// The media stream id its tracks carry (`msid`).
    pub stream: &'a str,
    /// The `o=` line's session id.
    pub session_id: u64,
    /// The leg's candidates (`candidate:` values), written into the answer: the peer can start
    /// its checks without waiting for them to be trickled (a signaling round trip).
    pub candidates: &'a [String],
}

/// What was agreed for one outgoing stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreed {
    pub mid: String,
    pub kind: MediaKind,
    /// The codec's name as offered (`opus`, `VP8`, `H264`), clock rate and format parameters.
    pub codec: String,
    pub clock_rate: u32,
    pub fmtp: String,
    pub pt: u8,
    pub ssrc: u32,
    /// (payload type, SSRC) of its retransmissions, when agreed.
    pub rtx: Option<(u8, u32)>,
    pub nack: bool,
    /// PLI or FIR: the peer may ask for keyframes.
    pub keyframes: bool,
}

/// The answer, and what the leg keeps of the offer.
#[derive(Debug)]
pub struct Answer {
    pub sdp: String,
    pub agreed: Vec<Agreed>,
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// The peer's certificate fingerprint (`sha-256 AB:…`), checked once DTLS is up.
    pub remote_fingerprint: String,
    /// The offer's `a=candidate` values (those it trickles come later).
    pub remote_candidates: Vec<String>,
}

/// Why an offer cannot be answered by a sending leg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not an SDP offer: {0}")]
    Parse(String),
    #[error("no {0} in the offer")]
    Missing(&'static str),
    /// The peer insists on being the DTLS server (`setup:passive`).
    #[error("the offer's DTLS role is {0}")]
    DtlsRole(String),
    #[error("nothing in the offer to send on")]
    Nothing,
}

/// Writes the answer to `offer` for a leg that sends `sends` (one per kind at most).
pub fn answer(offer: &str, local: &Local, sends: &[Outgoing]) -> Result<Answer, Refused> {
    let desc = SessionDescription::unmarshal(&mut Cursor::new(offer.as_bytes()))
        .map_err(|e| Refused::Parse(e.to_string()))?;
    let session_attr = |key: &str| desc.attribute(key).cloned();
    let mut remote_ufrag = None;
    let mut remote_pwd = None;
    let mut remote_fingerprint = None;
    let mut remote_candidates = Vec::new();
    let mut sections = String::new();
    let mut agreed = Vec::new();
    let mut bundle = Vec::new();
    for m in &desc.media_descriptions {
        let attr = |key: &str| m.attribute(key).flatten().map(str::to_string);
        let mid = attr("mid").ok_or(Refused::Missing("a=mid"))?;
        remote_ufrag = remote_ufrag.or_else(|| attr("ice-ufrag").or(session_attr("ice-ufrag")));
        remote_pwd = remote_pwd.or_else(|| attr("ice-pwd").or(session_attr("ice-pwd")));
        remote_fingerprint = remote_fingerprint
            .or_else(|| attr("fingerprint").or(session_attr("fingerprint")))
            .filter(|f| f.starts_with("sha-256 "));
        if let Some(setup) = attr("setup").or(session_attr("setup")) {
            if setup == "passive" {
                return Err(Refused::DtlsRole(setup));
            }
        }
        for a in m.attributes.iter().filter(|a| a.key == "candidate") {
            if let Some(v) = &a.value {
                if !remote_candidates.contains(v) {
                    remote_candidates.push(v.clone());
                }
            }
        }
        let kind = match m.media_name.media.as_str() {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        };
        let peer_receives = !m.has_attribute("sendonly") && !m.has_attribute("inactive");
        let send = kind
            .filter(|_| peer_receives && m.media_name.port.value != 0)
            .and_then(|k| sends.iter().find(|s| s.kind == k))
            .filter(|s| !agreed.iter().any(|a: &Agreed| a.kind == s.kind));
        let chosen = send.and_then(|s| choose(m, s.kind).map(|c| (s, c)));
        let Some((send, (pt, codec, rtx_pt))) = chosen else {
            reject(&mut sections, m, &mid);
            continue;
        };
        let fb = |what: &str| {
            codec
                .rtcp_feedback
                .iter()
                .any(|f| f.eq_ignore_ascii_case(what))
        };
        let rtx = rtx_pt.zip(send.rtx_ssrc);
        let a = Agreed {
            mid: mid.clone(),
            kind: send.kind,
            codec: codec.name.clone(),
            clock_rate: codec.clock_rate,
            fmtp: codec.fmtp.clone(),
            pt,
            ssrc: send.ssrc,
            rtx,
            nack: fb("nack"),
            keyframes: fb("nack pli") || fb("ccm fir"),
        };
        accept(
            &mut sections,
            &m.media_name.protos.join("/"),
            &a,
            &codec,
            local,
        );
        bundle.push(mid);
        agreed.push(a);
    }
    if agreed.is_empty() {
        return Err(Refused::Nothing);
    }
    let remote_ufrag = remote_ufrag.ok_or(Refused::Missing("a=ice-ufrag"))?;
    let remote_pwd = remote_pwd.ok_or(Refused::Missing("a=ice-pwd"))?;
    let remote_fingerprint = remote_fingerprint.ok_or(Refused::Missing("a=fingerprint sha-256"))?;
    let mut sdp = String::with_capacity(512 + sections.len());
    let _ = write!(
        sdp,
        "v=0\r\no=- {} 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\na=msid-semantic: WMS {}\r\n",
        local.session_id,
        bundle.join(" "),
        local.stream
    );
    sdp.push_str(&sections);
    Ok(Answer {
        sdp,
        agreed,
        remote_ufrag,
        remote_pwd,
        remote_fingerprint,
        remote_candidates,
    })
}

/// The peer's first offered codec the engine forwards for `kind` (the `m=` line's order is the
/// peer's preference), with the payload type of its RTX when offered.
fn choose(m: &MediaDescription, kind: MediaKind) -> Option<(u8, Codec, Option<u8>)> {
    let codecs = m.codecs();
    let forwards = |c: &Codec| match kind {
        MediaKind::Audio => c.name.eq_ignore_ascii_case("opus"),
        MediaKind::Video => {
            c.name.eq_ignore_ascii_case("VP8")
                || (c.name.eq_ignore_ascii_case("H264") && c.fmtp.contains("packetization-mode=1"))
        }
    };
    let (pt, codec) = m
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| codecs.get(&pt).map(|c| (pt, c)))
        .find(|(_, c)| forwards(c))?;
    let apt = format!("apt={pt}");
    let rtx = codecs
        .values()
        .filter(|c| c.name.eq_ignore_ascii_case("rtx"))
        .find(|c| c.fmtp.split(';').any(|p| p.trim() == apt))
        .map(|c| c.payload_type);
    Some((pt, codec.clone(), rtx))
}

/// A rejected section: port 0, its mid, nothing else agreed.
fn reject(out: &mut String, m: &MediaDescription, mid: &str) {
    let first = m.media_name.formats.first().map_or("0", String::as_str);
    let _ = write!(
        out,
        "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\na=mid:{}\r\na=inactive\r\n",
        m.media_name.media,
        m.media_name.protos.join("/"),
        first,
        mid
    );
}

/// An accepted section: the leg sends `a` on it.
fn accept(out: &mut String, protos: &str, a: &Agreed, codec: &Codec, local: &Local) {
    let kind = match a.kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    };
    let track = format!("{}-{}", kind, a.ssrc);
    let mut formats = a.pt.to_string();
    if let Some((rtx_pt, _)) = a.rtx {
        let _ = write!(formats, " {rtx_pt}");
    }
    let _ = write!(
        out,
        "m={kind} 9 {protos} {formats}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=ice-options:trickle\r\na=fingerprint:{}\r\n\
         a=setup:passive\r\na=mid:{}\r\na=sendonly\r\na=msid:{} {track}\r\na=rtcp-mux\r\n",
        local.ufrag, local.pwd, local.fingerprint, a.mid, local.stream
    );
    let channels = match codec.encoding_parameters.as_str() {
        "" => String::new(),
        p => format!("/{p}"),
    };
    let _ = write!(
        out,
        "a=rtpmap:{} {}/{}{channels}\r\n",
        a.pt, codec.name, codec.clock_rate
    );
    if a.nack {
        let _ = write!(out, "a=rtcp-fb:{} nack\r\n", a.pt);
    }
    for fb in ["nack pli", "ccm fir"] {
        if codec
            .rtcp_feedback
            .iter()
            .any(|f| f.eq_ignore_ascii_case(fb))
        {
            let _ = write!(out, "a=rtcp-fb:{} {fb}\r\n", a.pt);
        }
    }
    if !codec.fmtp.is_empty() {
        let _ = write!(out, "a=fmtp:{} {}\r\n", a.pt, codec.fmtp);
    }
    if let Some((rtx_pt, rtx_ssrc)) = a.rtx {
        let _ = write!(
            out,
            "a=rtpmap:{rtx_pt} rtx/{}\r\na=fmtp:{rtx_pt} apt={}\r\na=ssrc-group:FID {} {rtx_ssrc}\r\n",
            codec.clock_rate, a.pt, a.ssrc
        );
    }
    for c in local.candidates {
        let _ = write!(out, "a={}\r\n", c.strip_prefix("a=").unwrap_or(c));
    }
    let mut ssrcs = vec![a.ssrc];
    ssrcs.extend(a.rtx.map(|(_, s)| s));
    for s in ssrcs {
        let _ = write!(
            out,
            "a=ssrc:{s} cname:{}\r\na=ssrc:{s} msid:{} {track}\r\n",
            local.cname, local.stream
        );
    }
}

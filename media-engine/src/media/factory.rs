//! Builds every `rtc` peer connection of the engine with the same settings: the engine's one
//! DTLS certificate, the ICE credentials the worker routes by, mDNS off, DTLS server when
//! answering, the NACK storm fix (at most 3 NACKs per lost packet) and the keyframe-request tap.
//! No sockets here: the connection's host candidate is its worker's socket address.

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, ReceiverReportBuilder, Registry,
    SenderReportBuilder, Slot, TwccReceiverBuilder,
};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::rtcp_tap::KeyframeRequestTap;
use super::srtp_keys::KeyCapture;
use crate::error::Error;
use std::sync::Arc;

/// Application-most slot, above every built-in interceptor.
const TAP_SLOT: usize = 14_000;

/// Packets kept per outgoing stream for retransmission (a power of two). 256 covers about a
/// second of a 2.5 Mbps camera and several of audio, far beyond the few round trips a NACK takes;
/// webrtc-rs's default of 1024 kept ~4× more memory per subscriber for nothing.
const NACK_HISTORY: u16 = 256;

/// Which way media flows on a connection, which decides its interceptors: every interceptor is
/// a stage each packet is moved through, so a connection only has the ones its direction uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not known yet (created, or we make the offer): every interceptor.
    Both,
    /// The remote only sends to us (a publisher): receiver reports, NACK generation (at most 3
    /// per lost packet), transport-wide congestion feedback.
    Receive,
    /// The remote only receives from us (a subscriber): sender reports, the NACK responder, and
    /// the tap that hands the subscriber's keyframe requests to the engine.
    Send,
}

pub struct PcFactory {
    /// One DTLS certificate for every peer connection (as KMS does): generating a key pair per
    /// connection cost each subscription time and CPU. Renewed a day before it expires.
    certificate: parking_lot::Mutex<RTCCertificate>,
    pub rtc_ip: IpAddr,
    pub public_ip: Option<IpAddr>,
    /// Offer only the AEAD-GCM SRTP profiles (`srtp_gcm_only`).
    pub gcm_only: bool,
    /// Subscriber legs send RTP/RTCP themselves (`direct_send`, `worker/conn/direct.rs`).
    pub direct_send: bool,
    /// Subscriber legs run without a peer connection (`direct_legs`, `media/leg/`).
    pub direct_legs: bool,
    /// What those legs share: the DTLS server configuration and the certificate's fingerprint,
    /// made again when the certificate is renewed.
    legs: parking_lot::Mutex<Option<(RTCCertificate, LegTls)>>,
}

/// The DTLS server configuration and certificate fingerprint every direct leg shares.
#[derive(Clone)]
pub struct LegTls {
    pub dtls: Arc<rtc::dtls::config::HandshakeConfig>,
    pub fingerprint: Arc<str>,
    pub provider: Arc<dyn rtc::crypto::RTCCryptoProvider>,
}

/// A new peer connection, and for a direct subscriber leg the provider its SRTP keys are read
/// from.
pub struct Built {
    pub pc: RTCPeerConnection,
    pub keys: Option<Arc<KeyCapture>>,
}

/// `addr` (a worker's socket address) as a UDP host candidate, component 1.
pub fn host_candidate(
    addr: std::net::SocketAddr,
) -> Result<rtc::ice::candidate::Candidate, rtc::shared::error::Error> {
    use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig};
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
}

/// A fresh ECDSA P-256 DTLS certificate (the test peers use it too).
pub fn new_certificate() -> Result<RTCCertificate, Error> {
    let provider =
        rtc::crypto::default_provider().map_err(|e| Error::Certificate(e.to_string()))?;
    let params = CertificateParams::new(vec!["rtcpool".to_owned()])
        .map_err(|e| Error::Certificate(e.to_string()))?;
    Ok(RTCCertificate::generate(
        provider.crypto(),
        rtc::crypto::SignatureScheme::EcdsaP256Sha256,
        params,
    )?)
}

impl PcFactory {
    pub fn new(
        rtc_ip: IpAddr,
        public_ip: Option<IpAddr>,
        gcm_only: bool,
        direct_send: bool,
        direct_legs: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            certificate: parking_lot::Mutex::new(new_certificate()?),
            rtc_ip,
            public_ip,
            gcm_only,
            direct_send,
            direct_legs,
            legs: parking_lot::Mutex::new(None),
        })
    }

    /// What a direct leg needs of the engine's certificate (`media/leg/`).
    pub fn leg_tls(&self) -> Result<LegTls, Error> {
        let cert = self.certificate()?;
        let mut legs = self.legs.lock();
        if let Some((_, tls)) = legs.as_ref().filter(|(c, _)| *c == cert) {
            return Ok(tls.clone());
        }
        let provider = rtc::crypto::default_provider().map_err(|e| Error::Crypto(e.to_string()))?;
        let tls = LegTls {
            dtls: crate::media::leg::dtls_server(&provider, &cert, self.gcm_only)?,
            fingerprint: crate::media::leg::fingerprint(&provider, &cert)?.into(),
            provider,
        };
        *legs = Some((cert, tls.clone()));
        Ok(tls)
    }

    /// A peer connection whose local ICE credentials are `ufrag`/`pwd`.
    pub fn build(&self, ufrag: &str, pwd: &str, role: Role) -> Result<Built, Error> {
        let mut media = MediaEngine::default();
        register_forwarded_codecs(&mut media)?;
        // Registers the feedback and header extensions the interceptors below rely on; the
        // chain itself is built by hand to cap NACKs per packet (webrtc-rs 0.21 re-NACKs packets
        // recovered through RTX forever otherwise).
        let _ = register_default_interceptors(Registry::new(), &mut media)?;
        let sends = role != Role::Receive;
        let receives = role != Role::Send;
        // A subscriber leg on the direct path sends its RTP and RTCP itself: `rtc` must not
        // protect anything with the same keys, so it gets no sender reports and no NACK responder.
        let direct = role == Role::Send && self.direct_send;
        let keys = if direct {
            Some(KeyCapture::new().map_err(|e| Error::Crypto(e.to_string()))?)
        } else {
            None
        };
        let mut registry = Registry::new();
        if direct {
            registry = registry.with(Slot::from(TAP_SLOT), KeyframeRequestTap::with_nacks());
        } else if sends {
            registry = registry
                .with(Slot::SenderReport, SenderReportBuilder::new().build())
                .with(
                    Slot::NackResponder,
                    NackResponderBuilder::new().with_size(NACK_HISTORY).build(),
                )
                .with(Slot::from(TAP_SLOT), KeyframeRequestTap::default());
        }
        if receives {
            registry = registry
                .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
                .with(
                    Slot::NackGenerator,
                    NackGeneratorBuilder::new()
                        .with_max_nacks_per_packet(3)
                        .build(),
                )
                .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build());
        }
        let mut setting = SettingEngineBuilder::new()
            .with_ice_credentials(ufrag.to_owned(), pwd.to_owned())
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // Answering as the DTLS server: the offerer (browser or peer) starts the handshake
            // once its own ICE side is up. As client, our ClientHello could arrive before the
            // offerer was ready and be lost, costing a 1 s retransmission per connection.
            .with_answering_dtls_role(RTCDtlsRole::Server)
            // Checks from the other side often arrive before its trickled candidate, making the
            // pair peer-reflexive; the default 1 s wait before accepting such a pair delayed every
            // connection by about a second. Loopback/host pairs need no wait.
            .with_host_acceptance_min_wait(Some(Duration::ZERO))
            .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
            // Connectivity checks every 50 ms instead of 200 (same 1.4 s budget): on loopback and
            // LANs a pair is confirmed and nominated in one or two rounds.
            .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(28))
            .with_network_types(vec![if self.rtc_ip.is_ipv4() {
                NetworkType::Udp4
            } else {
                NetworkType::Udp6
            }]);
        if self.gcm_only {
            use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
            // 128-bit only: offered both, Chromium takes AES-256-GCM (its own order), which
            // costs more per packet for no benefit here.
            setting = setting
                .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm]);
        }
        if let Some(k) = &keys {
            setting = setting.with_crypto_provider(k.clone());
        }
        let pc = RTCPeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_certificates(vec![self.certificate()?])
                    .build(),
            )
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting.build())
            .build(Instant::now())?;
        Ok(Built { pc, keys })
    }

    /// The shared certificate, renewed when it is within a day of expiring.
    fn certificate(&self) -> Result<RTCCertificate, Error> {
        let mut c = self.certificate.lock();
        let renew = c
            .expires
            .duration_since(std::time::SystemTime::now())
            .map(|left| left < Duration::from_secs(86_400))
            .unwrap_or(true);
        if renew {
            *c = new_certificate()?;
        }
        Ok(c.clone())
    }
}

/// Only the codecs the engine forwards (Opus, VP8, H.264 with RTX): an answer never accepts a
/// codec no publisher could feed (webrtc-rs's defaults would echo VP9, AV1 and H.265 from a
/// browser's offer), and each connection's codec tables stay small.
fn register_forwarded_codecs(media: &mut MediaEngine) -> Result<(), Error> {
    use rtc::peer_connection::configuration::media_engine::{
        MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
    };
    use rtc::rtp_transceiver::rtp_sender::{
        RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
    };
    let codec = |mime: &str, clock_rate, channels, fmtp: &str, fb: &[(&str, &str)], pt| {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: fb
                    .iter()
                    .map(|(typ, parameter)| RTCPFeedback {
                        typ: (*typ).to_owned(),
                        parameter: (*parameter).to_owned(),
                    })
                    .collect(),
            },
            payload_type: pt,
        }
    };
    media.register_codec(
        codec(
            MIME_TYPE_OPUS,
            48_000,
            2,
            "minptime=10;useinbandfec=1",
            &[],
            111,
        ),
        RtpCodecKind::Audio,
    )?;
    let fb: &[(&str, &str)] = &[
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ];
    let h264 = |mode: u8, profile: &str| {
        format!("level-asymmetry-allowed=1;packetization-mode={mode};profile-level-id={profile}")
    };
    // (payload type, RTX payload type, MIME type, fmtp)
    let video: [(u8, u8, &str, String); 6] = [
        (96, 97, MIME_TYPE_VP8, String::new()),
        (102, 103, MIME_TYPE_H264, h264(1, "42001f")),
        (127, 104, MIME_TYPE_H264, h264(0, "42001f")),
        (125, 105, MIME_TYPE_H264, h264(1, "42e01f")),
        (108, 109, MIME_TYPE_H264, h264(0, "42e01f")),
        (123, 124, MIME_TYPE_H264, h264(1, "640032")),
    ];
    for (pt, rtx, mime, fmtp) in video {
        media.register_codec(codec(mime, 90_000, 0, &fmtp, fb, pt), RtpCodecKind::Video)?;
        media.register_codec(
            codec(MIME_TYPE_RTX, 90_000, 0, &format!("apt={pt}"), &[], rtx),
            RtpCodecKind::Video,
        )?;
    }
    Ok(())
}

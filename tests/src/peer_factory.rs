//! Builds the test peers' `webrtc` peer connections (the browsers' side of every test, the bot
//! and the load generator): loopback-safe UDP binding on one address (never a wildcard), mDNS
//! off, the NACK storm fix (at most 3 NACKs per lost packet) and the keyframe-request tap (so a
//! sending peer sees the PLIs the engine relays).

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{
    NackGeneratorBuilder, NackResponderBuilder, Registry, Slot, TwccReceiverBuilder,
};
use std::net::IpAddr;
use std::sync::Arc;
use webrtc::peer_connection::RTCCertificate;
use webrtc::peer_connection::{
    configure_rtcp_reports, register_default_interceptors, MediaEngine, PeerConnection,
    PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateType, RTCIceServer, SettingEngineBuilder,
};
use webrtc::runtime::Runtime;

use media_engine::media::rtcp_tap::KeyframeRequestTap;

/// Application-most slot, above every built-in interceptor.
const TAP_SLOT: usize = 14_000;

pub struct PcFactory {
    /// One DTLS certificate for every peer connection (as KMS does): generating a key pair per
    /// connection cost each subscription time and CPU. Renewed a day before it expires.
    certificate: parking_lot::Mutex<RTCCertificate>,
    rtc_ip: IpAddr,
    public_ip: Option<IpAddr>,
    runtime: Arc<dyn Runtime>,
}

#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error("no async runtime available for webrtc")]
    NoRuntime,
    #[error("webrtc: {0}")]
    Webrtc(#[from] webrtc::error::Error),
    #[error("DTLS certificate: {0}")]
    Certificate(String),
}

fn new_certificate() -> Result<RTCCertificate, FactoryError> {
    media_engine::media::factory::new_certificate()
        .map_err(|e| FactoryError::Certificate(e.to_string()))
}

impl PcFactory {
    pub fn new(rtc_ip: IpAddr, public_ip: Option<IpAddr>) -> Result<Self, FactoryError> {
        let runtime = webrtc::runtime::default_runtime().ok_or(FactoryError::NoRuntime)?;
        Ok(Self {
            certificate: parking_lot::Mutex::new(new_certificate()?),
            rtc_ip,
            public_ip,
            runtime,
        })
    }

    pub async fn build(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
        ice_servers: Vec<RTCIceServer>,
    ) -> Result<Arc<dyn PeerConnection>, FactoryError> {
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        // Registers the feedback and header extensions the interceptors below rely on; the
        // chain itself is built by hand to cap NACKs per packet (webrtc-rs 0.21 re-NACKs packets
        // recovered through RTX forever otherwise).
        let _ = register_default_interceptors(Registry::new(), &mut media)?;
        let registry = configure_rtcp_reports(Registry::new())
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(
                Slot::NackGenerator,
                NackGeneratorBuilder::new()
                    .with_max_nacks_per_packet(3)
                    .build(),
            )
            .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build())
            .with(Slot::from(TAP_SLOT), KeyframeRequestTap::default());
        let mut setting = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // Answering as the DTLS server: the offerer (browser or peer) starts the handshake
            // once its own ICE side is up. As client, our ClientHello could arrive before the
            // offerer was ready and be lost, costing a 1 s retransmission per connection.
            .with_answering_dtls_role(rtc::peer_connection::transport::RTCDtlsRole::Server)
            // Checks from the other side often arrive before its trickled candidate, making the
            // pair peer-reflexive; the default 1 s wait before accepting such a pair delayed every
            // connection by about a second. Loopback/host pairs need no wait.
            .with_host_acceptance_min_wait(Some(std::time::Duration::ZERO))
            .with_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO))
            // Connectivity checks every 50 ms instead of 200 (same 1.4 s budget): on loopback and
            // LANs a pair is confirmed and nominated in one or two rounds.
            .with_ice_connection_attempts(Some(std::time::Duration::from_millis(50)), Some(28))
            .with_network_types(vec![if self.rtc_ip.is_ipv4() {
                NetworkType::Udp4
            } else {
                NetworkType::Udp6
            }]);
        if let Some(ip) = self.public_ip {
            setting = setting.with_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
        }
        let addr = self.udp_addr()?;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers)
                    .with_certificates(vec![self.certificate()?])
                    .build(),
            )
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting.build())
            .with_handler(handler)
            .with_runtime(self.runtime.clone())
            .with_udp_addrs(vec![addr])
            .build()
            .await?;
        Ok(Arc::new(pc))
    }

    /// The shared certificate, renewed when it is within a day of expiring.
    fn certificate(&self) -> Result<RTCCertificate, FactoryError> {
        let mut c = self.certificate.lock();
        let renew = c
            .expires
            .duration_since(std::time::SystemTime::now())
            .map(|left| left < std::time::Duration::from_secs(86_400))
            .unwrap_or(true);
        if renew {
            *c = new_certificate()?;
        }
        Ok(c.clone())
    }

    /// `rtc_ip:0`: the OS chooses the port.
    fn udp_addr(&self) -> Result<String, FactoryError> {
        Ok(std::net::SocketAddr::new(self.rtc_ip, 0).to_string())
    }
}

//! A sending leg's transport on webrtc-rs's lower crates, without a peer connection: an
//! `rtc-ice` agent (full ICE, controlled, the engine's host candidate), an `rtc-dtls` endpoint
//! (server, the engine's one certificate and configuration) and, once DTLS is up, the SRTP keys
//! for the leg's sending path and the context that opens the peer's RTCP. Plain state: datagrams
//! and time in, datagrams and events out.
//!
//! Only the peer is heard: DTLS and SRTCP are taken from the peer's candidates (those its offer
//! or its trickle named, or that proved our password in a check) and DTLS from one of them only;
//! the peer's certificate must match the fingerprint its offer announced before any key is
//! handed out.

use bytes::BytesMut;
use rtc::crypto::{HashAlgorithm, RTCCryptoProvider, SecretVec};
use rtc::dtls::config::HandshakeConfig;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::agent::Agent;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::ice::state::ConnectionState;
use rtc::ice::Event;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc::srtp::config::{Config as SrtpConfig, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::srtp_keys::MasterKeys;

/// What the transport reports (no `Debug`: it carries keys).
pub enum LegEvent {
    Ice(ConnectionState),
    /// ICE selected this pair (as `candidate:` lines): media goes to `to` from now on.
    Selected {
        local: String,
        remote: String,
        to: SocketAddr,
    },
    /// DTLS is up and the peer proved its certificate: the sending path's keys.
    Secure {
        keys: MasterKeys,
        profile: ProtectionProfile,
    },
    /// The handshake failed, or the peer's certificate is not the one its offer announced.
    Failed(String),
}

/// Why a datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// From an address ICE has not validated.
    Unknown,
    /// Not STUN, DTLS or SRTCP, or refused by the layer it went to.
    Malformed,
    /// SRTCP before DTLS was up, or that did not authenticate (or a replay).
    Unauthenticated,
}

pub struct Transport {
    ice: Agent,
    dtls: Endpoint,
    local: SocketAddr,
    /// The selected pair's remote side: where media goes.
    remote: Option<SocketAddr>,
    /// The address the peer's DTLS handshake came from (its session is keyed by it).
    dtls_peer: Option<SocketAddr>,
    /// The `sha-256` fingerprint the peer's offer announced (lower case, `:`-separated).
    fingerprint: String,
    provider: Arc<dyn RTCCryptoProvider>,
    /// Opens the peer's SRTCP once DTLS is up.
    srtcp: Option<Context>,
    events: VecDeque<LegEvent>,
    secure: bool,
    closed: bool,
}

/// How often ICE checks run while connecting (libwebrtc: 50 ms at first).
const CHECK_INTERVAL: Duration = Duration::from_millis(50);

impl Transport {
    /// A transport at `local` with the engine's credentials for this leg; connectivity checks
    /// start once the peer's are known ([`Transport::start`]).
    pub fn new(
        now: Instant,
        local: SocketAddr,
        ufrag: &str,
        pwd: &str,
        dtls: Arc<HandshakeConfig>,
        provider: Arc<dyn RTCCryptoProvider>,
    ) -> Result<Self, rtc::shared::error::Error> {
        // As the engine's `rtc` connections run ICE (`factory.rs`): no mDNS (a remote `.local`
        // candidate is dropped, never queried), checks every 50 ms for the same 1.4 s budget,
        // host and peer-reflexive pairs accepted without waiting, one address family.
        let config = AgentConfig {
            local_ufrag: ufrag.to_string(),
            local_pwd: pwd.to_string(),
            multicast_dns_mode: MulticastDnsMode::Disabled,
            check_interval: CHECK_INTERVAL,
            max_binding_requests: Some(28),
            host_acceptance_min_wait: Some(Duration::ZERO),
            prflx_acceptance_min_wait: Some(Duration::ZERO),
            network_types: vec![if local.is_ipv4() {
                NetworkType::Udp4
            } else {
                NetworkType::Udp6
            }],
            ..Default::default()
        };
        let mut ice = Agent::new(now, Arc::new(config), provider.clone())?;
        ice.add_local_candidate(crate::media::factory::host_candidate(local)?)?;
        Ok(Self {
            ice,
            dtls: Endpoint::new(local, TransportProtocol::UDP, Some(dtls)),
            local,
            remote: None,
            dtls_peer: None,
            fingerprint: String::new(),
            provider,
            srtcp: None,
            events: VecDeque::new(),
            secure: false,
            closed: false,
        })
    }

    /// The peer's ICE credentials and certificate fingerprint (`sha-256 AB:…`, from its offer):
    /// connectivity checks start, as the controlled agent.
    pub fn start(
        &mut self,
        now: Instant,
        remote_ufrag: &str,
        remote_pwd: &str,
        fingerprint: &str,
    ) -> Result<(), rtc::shared::error::Error> {
        self.fingerprint = fingerprint
            .strip_prefix("sha-256 ")
            .unwrap_or(fingerprint)
            .trim()
            .to_ascii_lowercase();
        self.ice.start_connectivity_checks(
            now,
            false,
            remote_ufrag.to_string(),
            remote_pwd.to_string(),
        )
    }

    /// A candidate of the peer (from its offer or trickled), as an SDP `candidate:` value.
    pub fn add_remote_candidate(&mut self, c: &str) -> Result<(), rtc::shared::error::Error> {
        let c = c.trim();
        let c = c.strip_prefix("a=").unwrap_or(c);
        let c =
            rtc::ice::candidate::unmarshal_candidate(c.strip_prefix("candidate:").unwrap_or(c))?;
        self.ice.add_remote_candidate(c)?;
        Ok(())
    }

    /// A datagram from `from`. STUN goes to ICE; DTLS and SRTCP are heard only from the peer's
    /// candidates, and nothing once closed. Returns the peer's RTCP, opened, when it was SRTCP.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: BytesMut,
    ) -> Result<Option<BytesMut>, Dropped> {
        if self.closed {
            return Err(Dropped::Unknown);
        }
        // RFC 7983: the first byte tells STUN (0–3), DTLS (20–63) and RTP/RTCP (128–191) apart.
        match datagram.first().copied() {
            Some(0..=3) => {
                let message = TransportMessage {
                    now,
                    transport: self.context(from),
                    message: datagram,
                };
                self.ice
                    .handle_read(message)
                    .map_err(|_| Dropped::Malformed)?;
                self.drain_ice();
                Ok(None)
            }
            Some(20..=63) if self.dtls_peer.is_none_or(|p| p == from) && self.heard(now, from) => {
                self.dtls_peer = Some(from);
                let events = self
                    .dtls
                    .read(now, from, None, datagram)
                    .map_err(|_| Dropped::Malformed)?;
                if events
                    .iter()
                    .any(|e| matches!(e, EndpointEvent::HandshakeComplete))
                {
                    self.secured(now, from);
                }
                Ok(None)
            }
            Some(128..=191) if self.heard(now, from) => {
                let srtcp = self.srtcp.as_mut().ok_or(Dropped::Unauthenticated)?;
                // RTCP's packet types are 192–223 (RFC 5761); the leg receives no RTP.
                if !matches!(datagram.get(1), Some(192..=223)) {
                    return Err(Dropped::Malformed);
                }
                srtcp
                    .decrypt_rtcp(&datagram)
                    .map(Some)
                    .map_err(|_| Dropped::Unauthenticated)
            }
            Some(20..=63 | 128..=191) => Err(Dropped::Unknown),
            _ => Err(Dropped::Malformed),
        }
    }

    /// Runs what fell due (ICE checks and keepalives, DTLS retransmissions).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.ice.handle_timeout(now);
        // DTLS has a timer only once the peer's handshake began.
        let due = self
            .dtls_peer
            .filter(|r| self.dtls.poll_timeout(r).is_some_and(|t| t <= now));
        if let Some(remote) = due {
            if let Err(e) = self.dtls.handle_timeout(remote, now) {
                self.events.push_back(LegEvent::Failed(e.to_string()));
            }
        }
        self.drain_ice();
    }

    /// When [`Transport::handle_timeout`] is next due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let ice = self.ice.poll_timeout();
        let dtls = self.dtls_peer.and_then(|r| self.dtls.poll_timeout(&r));
        match (ice, dtls) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next datagram to send: (destination, bytes).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, BytesMut)> {
        if let Some(t) = self.ice.poll_write() {
            return Some((t.transport.peer_addr, t.message));
        }
        self.dtls
            .poll_transmit()
            .map(|t| (t.transport.peer_addr, t.message))
    }

    /// Ends the DTLS session: its close_notify is queued for [`Transport::poll_transmit`], and
    /// nothing more is heard.
    pub fn close(&mut self, now: Instant) {
        if let Some(peer) = self.dtls_peer {
            let _ = self.dtls.stop(now, peer);
        }
        self.srtcp = None;
        self.secure = false;
        // A late datagram must not reach the DTLS server, which would take it for a new
        // handshake.
        self.closed = true;
    }

    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    /// Where media goes (the selected pair's remote side, else where DTLS came from).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote.or(self.dtls_peer)
    }

    /// Whether `from` is one of the peer's candidates (what `rtc` accepts non-STUN traffic
    /// from); it counts as the peer being heard for ICE's consent.
    fn heard(&mut self, now: Instant, from: SocketAddr) -> bool {
        let context = self.context(from);
        self.ice.is_valid_non_stun_traffic(now, context)
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    fn context(&self, peer: SocketAddr) -> TransportContext {
        TransportContext {
            local_addr: self.local,
            peer_addr: peer,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        }
    }

    fn drain_ice(&mut self) {
        while let Some(e) = self.ice.poll_event() {
            match e.event {
                Event::ConnectionStateChange(s) => self.events.push_back(LegEvent::Ice(s)),
                Event::SelectedCandidatePairChange(local, remote) => {
                    // The DTLS session stays with the address it began on; a later pair
                    // change (the peer's network moved) keeps its keys and SRTP state.
                    self.remote = Some(remote.addr());
                    self.events.push_back(LegEvent::Selected {
                        local: format!("candidate:{}", local.marshal()),
                        remote: format!("candidate:{}", remote.marshal()),
                        to: remote.addr(),
                    });
                }
                _ => {}
            }
        }
    }

    /// DTLS completed with `peer`: its certificate is checked, then the keys are derived.
    fn secured(&mut self, now: Instant, peer: SocketAddr) {
        match self.keys(peer) {
            Ok((keys, profile, srtcp)) => {
                self.srtcp = Some(srtcp);
                self.secure = true;
                self.events.push_back(LegEvent::Secure { keys, profile });
            }
            Err(why) => {
                let _ = self.dtls.stop(now, peer);
                self.events.push_back(LegEvent::Failed(why));
            }
        }
    }

    fn keys(&self, peer: SocketAddr) -> Result<(MasterKeys, ProtectionProfile, Context), String> {
        let state = self
            .dtls
            .get_connection_state(peer)
            .ok_or("no DTLS state")?;
        let crypto = self.provider.crypto();
        let cert = state
            .peer_certificates
            .first()
            .ok_or("the peer sent no certificate")?;
        let hash = crypto
            .hash(HashAlgorithm::Sha256, cert)
            .map_err(|e| e.to_string())?;
        let seen: Vec<String> = hash.iter().map(|b| format!("{b:02x}")).collect();
        if seen.join(":") != self.fingerprint {
            return Err("the peer's certificate does not match its offer's fingerprint".into());
        }
        let profile = match state.srtp_protection_profile() {
            rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => {
                ProtectionProfile::AeadAes128Gcm
            }
            rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
                ProtectionProfile::Aes128CmHmacSha1_80
            }
            other => return Err(format!("unsupported SRTP profile {other:?}")),
        };
        let mut config = SrtpConfig {
            profile,
            ..Default::default()
        };
        let material = state
            .export_keying_material(LABEL_EXTRACTOR_DTLS_SRTP, &[], config.keying_material_len())
            .map_err(|e| e.to_string())?;
        config
            .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
            .map_err(|e| e.to_string())?;
        let k = &config.keys;
        let srtcp = Context::new(
            &k.remote_master_key,
            &k.remote_master_salt,
            profile,
            Some(rtc::srtp::option::srtp_replay_protection(64)),
            Some(rtc::srtp::option::srtcp_replay_protection(64)),
            crypto,
        )
        .map_err(|e| e.to_string())?;
        let keys = MasterKeys {
            key: SecretVec::new(k.local_master_key.to_vec()),
            salt: SecretVec::new(k.local_master_salt.to_vec()),
            generation: 1,
        };
        Ok((keys, profile, srtcp))
    }
}

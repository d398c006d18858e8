//! A direct leg's transport measured for memory: the engine's own
//! `media_engine::media::leg::transport::Transport` (an `rtc-ice` agent, an `rtc-dtls` server
//! endpoint, the keys and the SRTCP context once DTLS is up) instead of an `RTCPeerConnection`.
//! Each of 200 legs completes ICE (full, controlled, one host candidate) and a DTLS handshake
//! (AES-128-GCM, the engine's one certificate and shared configuration, the peer's fingerprint
//! checked) with a peer made of the same crates, in memory and on virtual time; the peers are then
//! dropped and the heap the legs still hold is counted.
//!
//!     cargo run --release -p media-engine --example leg_memory

use bytes::BytesMut;
use media_engine::media::leg::transport::{LegEvent, Transport};
use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc::dtls::crypto::Certificate;
use rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::agent::agent_config::AgentConfig;
use rtc::ice::agent::Agent;
use rtc::ice::state::ConnectionState;
use rtc::ice::Event;
use rtc::sansio::Protocol;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every allocation counted (see `pc_memory`).
#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn live() -> isize {
    let s = HEAP.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

const N: usize = 200;

/// One side of a connection: its ICE agent, its DTLS endpoint, its address.
struct Side {
    ice: Agent,
    dtls: Endpoint,
    addr: SocketAddr,
    connected: bool,
    handshaken: bool,
}

fn side(
    now: Instant,
    provider: &Arc<dyn RTCCryptoProvider>,
    addr: SocketAddr,
    ufrag: String,
    dtls_server: Option<Arc<HandshakeConfig>>,
) -> anyhow::Result<Side> {
    let config = AgentConfig {
        local_ufrag: ufrag,
        local_pwd: "passwordpasswordpassword".into(),
        check_interval: Duration::from_millis(50),
        host_acceptance_min_wait: Some(Duration::ZERO),
        ..Default::default()
    };
    let mut ice = Agent::new(now, Arc::new(config), provider.clone())?;
    let host = media_engine::media::factory::host_candidate(addr)?;
    ice.add_local_candidate(host)?;
    Ok(Side {
        ice,
        dtls: Endpoint::new(addr, TransportProtocol::UDP, dtls_server),
        addr,
        connected: false,
        handshaken: false,
    })
}

fn dtls_config(
    provider: &Arc<dyn RTCCryptoProvider>,
    cert: &Certificate,
    client: bool,
) -> anyhow::Result<Arc<HandshakeConfig>> {
    Ok(Arc::new(
        ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert.clone()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(client, None)?,
    ))
}

/// Everything the peer has to send, handed to the leg; true once the leg reported its keys.
fn to_leg(now: Instant, peer: &mut Side, leg: &mut Transport) -> bool {
    let mut datagrams: Vec<BytesMut> = Vec::new();
    while let Some(t) = peer.ice.poll_write() {
        datagrams.push(t.message);
    }
    while let Some(t) = peer.dtls.poll_transmit() {
        datagrams.push(t.message);
    }
    for d in datagrams {
        let _ = leg.handle_datagram(now, peer.addr, d);
    }
    let mut secure = false;
    while let Some(e) = leg.poll_event() {
        secure |= matches!(e, LegEvent::Secure { .. });
    }
    secure
}

/// Everything the leg has to send, handed to the peer.
fn to_peer(
    now: Instant,
    leg: &mut Transport,
    engine: SocketAddr,
    peer: &mut Side,
) -> anyhow::Result<()> {
    while let Some((_, d)) = leg.poll_transmit() {
        if rtc::stun::message::is_stun_message(&d) {
            peer.ice.handle_read(TransportMessage {
                now,
                transport: TransportContext {
                    local_addr: peer.addr,
                    peer_addr: engine,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: d,
            })?;
        } else {
            for e in peer.dtls.read(now, engine, None, d)? {
                if matches!(e, EndpointEvent::HandshakeComplete) {
                    peer.handshaken = true;
                }
            }
        }
    }
    while let Some(e) = peer.ice.poll_event() {
        if let Event::ConnectionStateChange(ConnectionState::Connected) = e.event {
            peer.connected = true;
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // the figures are this tool's output
fn main() -> anyhow::Result<()> {
    let provider = rtc::crypto::default_provider().map_err(|e| anyhow::anyhow!("{e}"))?;
    // The engine's certificate and the one DTLS configuration every leg shares.
    let cert = media_engine::media::factory::new_certificate()?;
    let server = media_engine::media::leg::dtls_server(&provider, &cert, true)?;
    let fingerprint = media_engine::media::leg::fingerprint(&provider, &cert)?;
    let client = dtls_config(&provider, &cert.dtls_certificate, true)?;
    let engine_addr: SocketAddr = "127.0.0.1:40000".parse()?;
    let t0 = Instant::now();
    let before = live();
    let mut legs = Vec::new();
    let mut peer_bytes = 0isize;
    for i in 0..N {
        let mut now = t0;
        let ufrag = format!("leg{i:09}");
        let mut leg = Transport::new(
            now,
            engine_addr,
            &ufrag,
            "passwordpasswordpassword",
            server.clone(),
            provider.clone(),
        )?;
        let peer_addr: SocketAddr = format!("127.0.0.2:{}", 20_000 + i).parse()?;
        let mut peer = side(now, &provider, peer_addr, format!("peer{i:08}"), None)?;
        let peer_host = peer.ice.get_local_candidates()[0].marshal();
        leg.add_remote_candidate(&peer_host)?;
        peer.ice
            .add_remote_candidate(media_engine::media::factory::host_candidate(engine_addr)?)?;
        let (pu, pp) = {
            let c = peer.ice.get_local_credentials();
            (c.ufrag.clone(), c.pwd.clone())
        };
        leg.start(now, &pu, &pp, &fingerprint)?;
        peer.ice
            .start_connectivity_checks(now, true, ufrag, "passwordpasswordpassword".into())?;
        let mut dtls_started = false;
        let mut secure = false;
        for _ in 0..400 {
            now += Duration::from_millis(5);
            leg.handle_timeout(now);
            peer.ice.handle_timeout(now)?;
            secure |= to_leg(now, &mut peer, &mut leg);
            to_peer(now, &mut leg, engine_addr, &mut peer)?;
            if peer.connected && !dtls_started {
                peer.dtls.connect(now, engine_addr, client.clone(), None)?;
                dtls_started = true;
            }
            if secure && peer.handshaken {
                break;
            }
        }
        anyhow::ensure!(secure, "leg {i}: no keys");
        let held_with_peer = live();
        drop(peer);
        peer_bytes += held_with_peer - live();
        legs.push(leg);
    }
    let held = live() - before;
    println!(
        "{N} direct legs' transports (media_engine::media::leg::transport, ICE and DTLS done, keys derived): {:.1} KB per leg (the peers held {:.1} KB each)",
        held as f64 / N as f64 / 1000.0,
        peer_bytes as f64 / N as f64 / 1000.0
    );
    drop(legs);
    Ok(())
}

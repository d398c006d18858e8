//! The other design of a subscriber leg, measured for memory: what a leg would hold if it ran on
//! webrtc-rs's lower crates (an `rtc-ice` agent, an `rtc-dtls` endpoint, the two SRTP contexts
//! a leg needs) instead of an `RTCPeerConnection`. No SDP is kept: the engine would answer from
//! its own template. Each of 200 legs completes ICE (full, controlled, one host candidate, as the
//! engine runs it) and a DTLS handshake (server, AES-128-GCM, the engine's one certificate) with
//! a peer made of the same crates, in memory and on virtual time; the peers are then dropped and
//! the heap the legs still hold is counted.
//!
//!     cargo run --release -p media-engine --example leg_memory

use bytes::BytesMut;
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
use rtc::srtp::config::{Config as SrtpConfig, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
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

/// What a leg keeps once up: its transport, and the SRTP contexts (media out, feedback in).
struct Leg {
    _transport: Side,
    _srtp: (Context, Context),
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

/// Everything `from` has to send, handed to `to` (STUN to ICE, the rest to DTLS).
fn carry(now: Instant, from: &mut Side, to: &mut Side) -> anyhow::Result<()> {
    let mut datagrams: Vec<BytesMut> = Vec::new();
    while let Some(t) = from.ice.poll_write() {
        datagrams.push(t.message);
    }
    while let Some(t) = from.dtls.poll_transmit() {
        datagrams.push(t.message);
    }
    for d in datagrams {
        if rtc::stun::message::is_stun_message(&d) {
            to.ice.handle_read(TransportMessage {
                now,
                transport: TransportContext {
                    local_addr: to.addr,
                    peer_addr: from.addr,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: d,
            })?;
        } else {
            for e in to.dtls.read(now, from.addr, None, d)? {
                if matches!(e, EndpointEvent::HandshakeComplete) {
                    to.handshaken = true;
                }
            }
        }
    }
    while let Some(e) = to.ice.poll_event() {
        if let Event::ConnectionStateChange(ConnectionState::Connected) = e.event {
            to.connected = true;
        }
    }
    Ok(())
}

/// The leg's SRTP contexts from its DTLS session, as `rtc` derives them.
fn srtp(
    leg: &Side,
    peer: SocketAddr,
    crypto: &dyn rtc::crypto::RTCCrypto,
) -> anyhow::Result<(Context, Context)> {
    let state = leg
        .dtls
        .get_connection_state(peer)
        .ok_or_else(|| anyhow::anyhow!("no DTLS state"))?;
    let mut config = SrtpConfig {
        profile: ProtectionProfile::AeadAes128Gcm,
        ..Default::default()
    };
    let material = state.export_keying_material(
        LABEL_EXTRACTOR_DTLS_SRTP,
        &[],
        config.keying_material_len(),
    )?;
    config.set_session_keys_from_keying_material(material.as_ref(), state.is_client())?;
    let k = &config.keys;
    Ok((
        Context::new(
            &k.local_master_key,
            &k.local_master_salt,
            config.profile,
            None,
            None,
            crypto,
        )?,
        Context::new(
            &k.remote_master_key,
            &k.remote_master_salt,
            config.profile,
            Some(rtc::srtp::option::srtp_replay_protection(64)),
            Some(rtc::srtp::option::srtcp_replay_protection(64)),
            crypto,
        )?,
    ))
}

#[allow(clippy::print_stdout)] // the figures are this tool's output
fn main() -> anyhow::Result<()> {
    let provider = rtc::crypto::default_provider().map_err(|e| anyhow::anyhow!("{e}"))?;
    let cert = Certificate::generate_self_signed(vec!["rtcpool".to_owned()], provider.crypto())?;
    // One server configuration and certificate for every leg, as the engine has one.
    let server = dtls_config(&provider, &cert, false)?;
    let client = dtls_config(&provider, &cert, true)?;
    let engine_addr: SocketAddr = "127.0.0.1:40000".parse()?;
    let t0 = Instant::now();
    let before = live();
    let mut legs = Vec::new();
    let mut peer_bytes = 0isize;
    for i in 0..N {
        let mut now = t0;
        let mut leg = side(
            now,
            &provider,
            engine_addr,
            format!("leg{i:09}"),
            Some(server.clone()),
        )?;
        let peer_addr: SocketAddr = format!("127.0.0.2:{}", 20_000 + i).parse()?;
        let mut peer = side(now, &provider, peer_addr, format!("peer{i:08}"), None)?;
        let leg_host = leg.ice.get_local_candidates()[0].clone();
        let peer_host = peer.ice.get_local_candidates()[0].clone();
        leg.ice.add_remote_candidate(peer_host)?;
        peer.ice.add_remote_candidate(leg_host)?;
        let creds = |s: &Side| {
            let c = s.ice.get_local_credentials();
            (c.ufrag.clone(), c.pwd.clone())
        };
        let (pu, pp) = creds(&peer);
        let (lu, lp) = creds(&leg);
        leg.ice.start_connectivity_checks(now, false, pu, pp)?;
        peer.ice.start_connectivity_checks(now, true, lu, lp)?;
        let mut dtls_started = false;
        for _ in 0..400 {
            now += Duration::from_millis(5);
            leg.ice.handle_timeout(now)?;
            peer.ice.handle_timeout(now)?;
            carry(now, &mut peer, &mut leg)?;
            carry(now, &mut leg, &mut peer)?;
            if leg.connected && peer.connected && !dtls_started {
                peer.dtls.connect(now, engine_addr, client.clone(), None)?;
                dtls_started = true;
            }
            if leg.handshaken && peer.handshaken {
                break;
            }
        }
        anyhow::ensure!(leg.handshaken, "leg {i}: no handshake");
        let keys = srtp(&leg, peer_addr, provider.crypto())?;
        let held_with_peer = live();
        drop(peer);
        peer_bytes += held_with_peer - live();
        legs.push(Leg {
            _transport: leg,
            _srtp: keys,
        });
    }
    let held = live() - before;
    println!(
        "{N} subscriber legs on rtc-ice + rtc-dtls + SRTP (ICE and DTLS done, no SDP kept): {:.1} KB per leg (the peers held {:.1} KB each)",
        held as f64 / N as f64 / 1000.0,
        peer_bytes as f64 / N as f64 / 1000.0
    );
    drop(legs);
    Ok(())
}

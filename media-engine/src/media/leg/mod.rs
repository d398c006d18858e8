//! Sending legs without a peer connection: the parts of a subscriber's WebRtcEndpoint built
//! directly on webrtc-rs's lower crates, so that a leg holds what it uses and no more (issue 11's
//! memory target: a connected `rtc` peer connection holds 99.4 KB for such a leg, the same leg on
//! `rtc-ice` + `rtc-dtls` + SRTP 18.6 KB; `examples/pc_memory.rs`, `examples/leg_memory.rs`).
//!
//! | concept | file |
//! |---|---|
//! | the answer the engine writes itself, and what it keeps of the offer | `answer.rs` |
//! | ICE, DTLS and the SRTP keys, as plain state | `transport.rs` |
//!
//! The leg's outgoing media is the direct send path's (`worker/conn/direct.rs`), keyed from
//! [`transport::LegEvent::Secure`]. Not yet used by the worker: a leg still runs on `rtc`.

pub mod answer;
pub mod transport;

#[cfg(test)]
mod tests;

use rtc::crypto::RTCCryptoProvider;
use rtc::dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::peer_connection::certificate::RTCCertificate;
use std::sync::Arc;

/// The DTLS server configuration every leg of an engine shares: its one certificate, AES-GCM
/// SRTP first (0.53 µs against 1.40 µs per packet for AES-CM + HMAC-SHA1-80; only it with
/// `gcm_only`, the engine's `srtp_gcm_only`), a client certificate required. The certificate is checked against the offer's fingerprint by the leg
/// itself, once the handshake is done (`transport.rs`), so one configuration serves every peer.
pub fn dtls_server(
    provider: &Arc<dyn RTCCryptoProvider>,
    certificate: &RTCCertificate,
    gcm_only: bool,
) -> Result<Arc<HandshakeConfig>, rtc::shared::error::Error> {
    let mut profiles = vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm];
    if !gcm_only {
        profiles.push(SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80);
    }
    Ok(Arc::new(
        ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![certificate.dtls_certificate.clone()])
            .with_srtp_protection_profiles(profiles)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .build(false, None)?,
    ))
}

/// The engine certificate's fingerprint as an answer's `a=fingerprint` value (`sha-256 AB:…`).
pub fn fingerprint(
    provider: &Arc<dyn RTCCryptoProvider>,
    certificate: &RTCCertificate,
) -> Result<String, rtc::shared::error::Error> {
    let fps = certificate.get_fingerprints(provider.crypto())?;
    let fp = fps
        .into_iter()
        .find(|f| f.algorithm == "sha-256")
        .ok_or(rtc::shared::error::Error::ErrNonCertificate)?;
    Ok(format!("sha-256 {}", fp.value.to_ascii_uppercase()))
}

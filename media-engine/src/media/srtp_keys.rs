//! A connection's SRTP sending keys, as `rtc` derives them. `rtc` keeps a connection's SRTP
//! contexts (and the DTLS state they come from) private, but it takes its cryptography from a
//! provider the application may give each connection. This provider hands every operation to
//! webrtc-rs's own, and remembers the master key and salt SRTP's key derivation (RFC 3711 §4.3)
//! is run with, so the engine's direct send path (`worker/conn/direct.rs`) can build its own
//! context for the connection's outgoing packets.
//!
//! When DTLS completes, `rtc` builds the local (sending) context first and the remote one second
//! (`rtc` 0.21.1 `handler/dtls.rs`, `update_srtp_contexts`); each derivation starts with the
//! SRTP encryption key (label 0, block 0), whose input block is the master salt followed by
//! zeros. Block encryption is used by SRTP's key derivation only (DTLS and SRTP use the keyed
//! AEAD, stream-cipher and HMAC objects), so each run of calls with one key is one context.

use parking_lot::Mutex;
use rtc::crypto::{
    ActiveKeyExchange, AeadAlgorithm, AeadCipher, BlockCipherAlgorithm, CbcAlgorithm, CbcCipher,
    CryptoAlgorithm, CryptoError, HashAlgorithm, HmacAlgorithm, KeyExchangeAlgorithm, Mac,
    PublicKey, RTCCrypto, RTCCryptoProvider, RTCRandom, SecretVec, SignatureScheme, SigningKey,
    StreamCipherAlgorithm,
};
use rtc::srtp::protection_profile::ProtectionProfile;
use std::sync::Arc;

/// A master key and salt of one SRTP context.
pub struct MasterKeys {
    pub key: SecretVec,
    pub salt: SecretVec,
    /// Which DTLS handshake of the connection they come from (1, 2, …): a send path built from
    /// one generation keeps its SRTP state (rollover counter, SRTCP index) for as long as those
    /// keys are in use, and is rebuilt only when a new handshake brings new keys.
    pub generation: u64,
}

#[derive(Default)]
struct Seen {
    /// Contexts derived so far (counted to pair them: local, remote, local, remote…).
    contexts: u64,
    /// The master key of the derivation under way.
    current: Option<SecretVec>,
    /// The newest local (sending) context's key and first block.
    local: Option<(SecretVec, [u8; 16])>,
}

/// Webrtc-rs's default provider, remembering the SRTP master keys it derives from.
pub struct KeyCapture {
    inner: Arc<dyn RTCCryptoProvider>,
    seen: Mutex<Seen>,
}

impl KeyCapture {
    pub fn new() -> Result<Arc<Self>, CryptoError> {
        Ok(Arc::new(Self {
            inner: rtc::crypto::default_provider()?,
            seen: Mutex::new(Seen::default()),
        }))
    }

    /// The sending master key and salt for `profile`, once DTLS has completed; `None` before.
    pub fn local(&self, profile: ProtectionProfile) -> Option<MasterKeys> {
        let seen = self.seen.lock();
        let (key, block) = seen.local.as_ref()?;
        let salt_len = profile.salt_len();
        if key.len() != profile.key_len() || salt_len > block.len() {
            return None;
        }
        Some(MasterKeys {
            key: SecretVec::new(key.as_ref().to_vec()),
            salt: SecretVec::new(block[..salt_len].to_vec()),
            generation: seen.contexts.div_ceil(2),
        })
    }

    fn observe(&self, key: &[u8], block: &[u8]) {
        let mut seen = self.seen.lock();
        if seen.current.as_ref().is_some_and(|k| k.as_ref() == key) {
            return;
        }
        // A new context: local when it is the first of its pair.
        seen.current = Some(SecretVec::new(key.to_vec()));
        seen.contexts += 1;
        if seen.contexts % 2 == 1 {
            let mut first = [0u8; 16];
            let n = block.len().min(16);
            first[..n].copy_from_slice(&block[..n]);
            seen.local = Some((SecretVec::new(key.to_vec()), first));
        }
    }
}

/// The SRTP profile `rtc` reports for a connection (`RTCTransportStats::srtp_cipher`).
pub fn profile_named(name: &str) -> Option<ProtectionProfile> {
    Some(match name {
        "SRTP_AEAD_AES_128_GCM" => ProtectionProfile::AeadAes128Gcm,
        "SRTP_AEAD_AES_256_GCM" => ProtectionProfile::AeadAes256Gcm,
        "SRTP_AES128_CM_HMAC_SHA1_80" => ProtectionProfile::Aes128CmHmacSha1_80,
        "SRTP_AES128_CM_HMAC_SHA1_32" => ProtectionProfile::Aes128CmHmacSha1_32,
        _ => return None,
    })
}

impl RTCCryptoProvider for KeyCapture {
    fn name(&self) -> &'static str {
        "rtcpool key capture"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self
    }

    fn random(&self) -> &dyn RTCRandom {
        self.inner.random()
    }
}

impl RTCCrypto for KeyCapture {
    fn supports(&self, algorithm: CryptoAlgorithm) -> bool {
        self.inner.crypto().supports(algorithm)
    }

    fn hash(&self, algorithm: HashAlgorithm, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.crypto().hash(algorithm, data)
    }

    fn block_encrypt(
        &self,
        algorithm: BlockCipherAlgorithm,
        key: &[u8],
        block: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.observe(key, block);
        self.inner.crypto().block_encrypt(algorithm, key, block)
    }

    fn new_hmac(&self, algorithm: HmacAlgorithm, key: &[u8]) -> Result<Box<dyn Mac>, CryptoError> {
        self.inner.crypto().new_hmac(algorithm, key)
    }

    fn new_stream_cipher(
        &self,
        algorithm: StreamCipherAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn rtc::crypto::StreamCipher>, CryptoError> {
        self.inner.crypto().new_stream_cipher(algorithm, key)
    }

    fn new_aead(
        &self,
        algorithm: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn AeadCipher>, CryptoError> {
        self.inner.crypto().new_aead(algorithm, key)
    }

    fn new_cbc(
        &self,
        algorithm: CbcAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn CbcCipher>, CryptoError> {
        self.inner.crypto().new_cbc(algorithm, key)
    }

    fn start_key_exchange(
        &self,
        algorithm: KeyExchangeAlgorithm,
    ) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        self.inner.crypto().start_key_exchange(algorithm)
    }

    fn generate_signing_key(
        &self,
        scheme: SignatureScheme,
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().generate_signing_key(scheme)
    }

    fn import_signing_key(
        &self,
        scheme: SignatureScheme,
        pkcs8_der: &[u8],
    ) -> Result<Arc<dyn SigningKey>, CryptoError> {
        self.inner.crypto().import_signing_key(scheme, pkcs8_der)
    }

    fn verify_signature(
        &self,
        scheme: SignatureScheme,
        public_key: PublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner
            .crypto()
            .verify_signature(scheme, public_key, message, signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::srtp::context::Context;

    fn context(c: &KeyCapture, key: &[u8], salt: &[u8], p: ProtectionProfile) -> Context {
        match Context::new(key, salt, p, None, None, c.crypto()) {
            Ok(ctx) => ctx,
            Err(e) => panic!("context: {e}"),
        }
    }

    #[test]
    fn the_local_context_of_each_pair_is_remembered() {
        for p in [
            ProtectionProfile::AeadAes128Gcm,
            ProtectionProfile::Aes128CmHmacSha1_80,
            ProtectionProfile::AeadAes256Gcm,
        ] {
            let Ok(c) = KeyCapture::new() else {
                panic!("provider")
            };
            assert!(c.local(p).is_none());
            let key = |b: u8| vec![b; p.key_len()];
            let salt = |b: u8| (0..p.salt_len() as u8).map(|i| i ^ b).collect::<Vec<_>>();
            // As `rtc` does when DTLS completes: local, then remote.
            let _l = context(&c, &key(1), &salt(0x10), p);
            let _r = context(&c, &key(2), &salt(0x20), p);
            let Some(k) = c.local(p) else {
                panic!("no keys")
            };
            assert_eq!(
                (k.key.as_ref(), k.salt.as_ref()),
                (&key(1)[..], &salt(0x10)[..])
            );
            assert_eq!(k.generation, 1);
            // A new handshake (ICE restart): the newest local context wins.
            let _l = context(&c, &key(3), &salt(0x30), p);
            let _r = context(&c, &key(4), &salt(0x40), p);
            let Some(k) = c.local(p) else {
                panic!("no keys")
            };
            assert_eq!(
                (k.key.as_ref(), k.salt.as_ref()),
                (&key(3)[..], &salt(0x30)[..])
            );
            assert_eq!(k.generation, 2);
        }
    }
}

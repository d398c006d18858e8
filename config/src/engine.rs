//! Settings of the `media-engine` binary. Every knob is documented in
//! `media-engine/media-engine.sample.toml`.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

use crate::load::{ConfigError, Validate};

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// WebSocket address; the Kurento endpoint is `ws://<listen>/kurento`.
    pub listen: SocketAddr,
    /// Address the WebRTC UDP sockets bind and advertise.
    pub rtc_ip: IpAddr,
    /// Address advertised instead of `rtc_ip` (NAT 1:1, Kurento's `externalIPv4`).
    pub public_ip: Option<IpAddr>,
    /// Media worker threads, each with its own UDP socket and peer connections; `0` means one
    /// per CPU core.
    pub workers: usize,
    /// UDP port of the first worker; worker `i` binds `udp_port + i`. `0` lets the OS choose.
    pub udp_port: u16,
    /// Send runs of datagrams to one destination with UDP GSO where the kernel supports it.
    pub udp_gso: bool,
    /// Offer only the AEAD_AES_128_GCM SRTP profile. Chromium lists AES_CM_128_HMAC_SHA1_80 first
    /// and gets it whichever DTLS role the engine takes; GCM costs about a third as much per
    /// packet. Off by default: SHA1_80 is the one profile every WebRTC peer must support.
    pub srtp_gcm_only: bool,
    /// Subscriber legs (connections that only send) protect and send their RTP and RTCP
    /// themselves instead of through `rtc`'s per-connection pipeline; ICE and DTLS stay `rtc`'s.
    pub direct_send: bool,
    /// Subscriber legs answered from the engine's own template and run on `rtc-ice` + `rtc-dtls`
    /// without a peer connection (about a third of the memory); offers it cannot answer (the
    /// peer sends media too, or insists on the DTLS server role) still get a peer connection.
    pub direct_legs: bool,
    pub max_pipelines: usize,
    pub max_endpoints: usize,
    /// Largest accepted WebSocket message, bytes.
    pub max_message_size: usize,
    /// How long a session's objects outlive its socket before they are released, seconds.
    pub session_timeout_secs: u64,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
    /// Shared secret every client must present (HTTP Basic password on the WebSocket upgrade and
    /// on `/health`). Required when `listen` is not a loopback address, unless `insecure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Accept clients without a secret on a non-loopback address (explicit opt-out).
    pub insecure: bool,
    /// A WebSocket that sends nothing (not even a ping) for this long is closed, seconds.
    pub idle_timeout_secs: u64,
    /// An HTTP request's headers must arrive within this many seconds (1–30).
    pub http_header_timeout_secs: u64,
    /// Bytes of responses and events queued for one WebSocket before it is closed (1009-style
    /// overflow: a client that does not read is cut, nobody else is affected).
    pub max_send_queue_bytes: usize,
}

impl std::fmt::Debug for EngineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSettings")
            .field("listen", &self.listen)
            .field("rtc_ip", &self.rtc_ip)
            .field("public_ip", &self.public_ip)
            .field("workers", &self.workers)
            .field("udp_port", &self.udp_port)
            .field("secret", &self.secret.as_ref().map(|_| "(hidden)"))
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
            rtc_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: None,
            workers: 0,
            udp_port: 0,
            udp_gso: true,
            srtp_gcm_only: false,
            direct_send: true,
            direct_legs: true,
            max_pipelines: 1000,
            max_endpoints: 4000,
            max_message_size: 1 << 20,
            session_timeout_secs: 240,
            log: "info,rtc_ice=error,rtc_dtls=error,rtc=error,webrtc=error".into(),
            secret: None,
            insecure: false,
            idle_timeout_secs: 120,
            http_header_timeout_secs: 10,
            max_send_queue_bytes: 8 << 20,
        }
    }
}

impl EngineSettings {
    /// How many media workers run: `workers`, or one per core when it is 0.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

impl Validate for EngineSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.rtc_ip.is_unspecified() {
            return Err(ConfigError::invalid(
                "rtc_ip",
                self.rtc_ip,
                "must be a concrete address (a wildcard would advertise every interface)",
            ));
        }
        if self.workers > 256 {
            return Err(ConfigError::invalid(
                "workers",
                self.workers,
                "0 (one per core) to 256",
            ));
        }
        if self.udp_port != 0 && usize::from(self.udp_port) + self.worker_count() > 65_536 {
            return Err(ConfigError::invalid(
                "udp_port",
                self.udp_port,
                "udp_port + workers must stay within 65535",
            ));
        }
        if self.max_pipelines == 0 {
            return Err(ConfigError::invalid(
                "max_pipelines",
                0,
                "must be at least 1",
            ));
        }
        if self.max_endpoints == 0 {
            return Err(ConfigError::invalid(
                "max_endpoints",
                0,
                "must be at least 1",
            ));
        }
        if self.max_message_size < 4096 {
            return Err(ConfigError::invalid(
                "max_message_size",
                self.max_message_size,
                "must be at least 4096 bytes",
            ));
        }
        if let Some(secret) = &self.secret {
            if secret.is_empty() || secret.chars().any(|c| c.is_control() || c == ':') {
                return Err(ConfigError::invalid(
                    "secret",
                    "(hidden)",
                    "non-empty, no ':' and no control characters",
                ));
            }
        } else if !self.listen.ip().is_loopback() && !self.insecure {
            return Err(ConfigError::invalid(
                "secret",
                format!("unset while listening on {}", self.listen),
                "an engine reachable from other hosts needs --secret (or `secret` in its config); pass --insecure to accept anyone who can reach it",
            ));
        }
        if self.idle_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "idle_timeout_secs",
                0,
                "must be at least 1",
            ));
        }
        if !(1..=30).contains(&self.http_header_timeout_secs) {
            return Err(ConfigError::invalid(
                "http_header_timeout_secs",
                self.http_header_timeout_secs,
                "1–30 seconds",
            ));
        }
        if self.max_send_queue_bytes < self.max_message_size {
            return Err(ConfigError::invalid(
                "max_send_queue_bytes",
                self.max_send_queue_bytes,
                "at least max_message_size",
            ));
        }
        if self.session_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "session_timeout_secs",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load;
    use serde_json::json;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn layers_apply_in_order_and_bad_values_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("e.toml", "max_pipelines = 7\nrtc_ip = \"127.0.0.2\"")?;
            jail.set_env("RTCPOOL_ENGINE_MAX_PIPELINES", "9");
            let flags = json!({"rtc_ip": "127.0.0.3"});
            let s: EngineSettings = load(
                Some(std::path::Path::new("e.toml")),
                "RTCPOOL_ENGINE_",
                &flags,
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(s.max_pipelines, 9);
            assert_eq!(s.rtc_ip.to_string(), "127.0.0.3");
            assert_eq!(s.listen.port(), 8888);

            jail.set_env("RTCPOOL_ENGINE_MAX_PIPELINES", "lots");
            let e = load::<EngineSettings, _>(None, "RTCPOOL_ENGINE_", &json!({}))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("max_pipelines"), "{e}");
            jail.clear_env();
            let e =
                load::<EngineSettings, _>(None, "X_", &json!({"udp_port": 65535, "workers": 4}))
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
            assert!(e.contains("`udp_port` = 65535"), "{e}");
            let open = json!({"listen": "0.0.0.0:8888"});
            let e = load::<EngineSettings, _>(None, "X_", &open)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("secret") && e.contains("0.0.0.0:8888"), "{e}");
            let ok = json!({"listen": "0.0.0.0:8888", "insecure": true});
            assert!(load::<EngineSettings, _>(None, "X_", &ok).is_ok());
            jail.set_env("X_SECRET", "s3cret");
            let s: EngineSettings = load(None, "X_", &open).map_err(|e| e.to_string())?;
            assert_eq!(s.secret.as_deref(), Some("s3cret"));
            assert!(!format!("{s:?}").contains("s3cret"));
            Ok(())
        });
    }
}

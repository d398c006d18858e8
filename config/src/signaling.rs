//! Settings of the `signaling` binary. Keys are OpenVidu's environment variable names
//! (lower-cased), a contract other tools rely on; the sample `signaling/signaling.sample.toml`
//! documents each.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::load::{ConfigError, Validate};

/// Environment variables read without prefix (OpenVidu's names).
pub const SIGNALING_ENV_KEYS: &[&str] = &[
    "SERVER_PORT",
    "SERVER_ADDRESS",
    "HTTPS_PORT",
    "OPENVIDU_SECRET",
    "DOMAIN_OR_PUBLIC_IP",
    "KMS_URIS",
    "KMS_WEIGHTS",
    "OPENVIDU_WEBRTC_ICE_SERVERS",
    "OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH",
    "OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH",
    "OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH",
    "OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH",
    "OPENVIDU_SESSIONS_GARBAGE_INTERVAL",
    "OPENVIDU_SESSIONS_GARBAGE_THRESHOLD",
    "CERTIFICATE_PATH",
    "PRIVATE_KEY_PATH",
    "LOCAL_ENGINES",
    "ENGINE_BINARY",
    "STATIC_DIR",
    "RTCPOOL_LOG",
    "DEMO_TOKENS",
    "POOL_STRATEGY",
    "POOL_CPU_LIMIT",
    "POOL_MAX_ENDPOINTS",
    "POOL_HEALTH_INTERVAL_MS",
    "POOL_STALE_AFTER_MS",
    "POOL_PING_TIMEOUT_MS",
    "POOL_RECONNECT_WINDOW_MS",
    "POOL_MAX_FAILS",
    "POOL_CLIENT_NUDGE_MS",
    "METRICS_PUBLIC",
    "HTTP_HEADER_TIMEOUT_SECS",
    "HTTP_BODY_TIMEOUT_SECS",
    "WS_MAX_SEND_QUEUE_BYTES",
    "POOL_ORPHAN_GRACE_MS",
    "LOCAL_ENGINES_SECRET",
    "POOL_STALE_STREAM_MS",
    "OPENVIDU_WEBHOOK",
    "OPENVIDU_WEBHOOK_ENDPOINT",
    "OPENVIDU_WEBHOOK_HEADERS",
    "OPENVIDU_WEBHOOK_EVENTS",
    "WEBHOOK_TIMEOUT_MS",
    "WEBHOOK_QUEUE",
    "OPENVIDU_CDR",
    "OPENVIDU_CDR_PATH",
    "REDIS_URL",
    "CLUSTER_NODE_URL",
    "CLUSTER_NODE_TTL_MS",
    "CLUSTER_NAME",
    "POOL_LABEL_FALLBACK",
    "POOL_SESSION_SPAN",
];

/// Every webhook event signaling sends (OpenVidu's names; the default of
/// `OPENVIDU_WEBHOOK_EVENTS`).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "sessionCreated",
    "sessionDestroyed",
    "participantJoined",
    "participantLeft",
    "webrtcConnectionCreated",
    "webrtcConnectionDestroyed",
    "signalSent",
    "nodeCrashed",
    "nodeRecovered",
    "mediaNodeStatusChanged",
];

/// Free-form labels of an engine (`zone = "a"`), shown by the operators' API.
pub type Labels = std::collections::BTreeMap<String, String>;

/// How a new session's engine is chosen among the admitted ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// nginx's smooth weighted round robin over the configured weights (default).
    WeightedRoundRobin,
    /// The engine with the lowest load (CPU), ties by fewer endpoints.
    LeastLoaded,
    /// Smooth weighted round robin with weight × (1 − load) (OWT's weight-robin).
    LoadWeighted,
}

/// Where a session asking for engine labels goes when no engine carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelFallback {
    /// To any engine (the default).
    Any,
    /// Nowhere: its first join fails with the reason.
    None,
}

/// Whether a session may grow past its engine: subscribers the session's engine cannot take
/// are placed on another engine, fed through a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionSpan {
    /// Every endpoint of a session on its one engine (the behaviour before relays).
    Never,
    /// Subscribers go to another engine when the session's engine is not admitted (the default).
    WhenFull,
}

/// One engine of a TOML `engines` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineEntry {
    pub uri: String,
    #[serde(default = "one")]
    pub weight: i64,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceServer {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalingSettings {
    pub server_port: u16,
    pub server_address: IpAddr,
    /// Public port put in token URLs (defaults to `server_port`).
    pub https_port: Option<u16>,
    pub openvidu_secret: String,
    pub domain_or_public_ip: String,
    /// Engines to use; unset → start `local_engines` media-engine processes.
    #[serde(deserialize_with = "crate::json_or_native::deserialize_opt")]
    pub kms_uris: Option<Vec<String>>,
    #[serde(deserialize_with = "crate::json_or_native::deserialize_opt")]
    pub kms_weights: Option<Vec<i64>>,
    #[serde(deserialize_with = "crate::json_or_native::deserialize")]
    pub openvidu_webrtc_ice_servers: Vec<IceServer>,
    pub openvidu_streams_video_max_recv_bandwidth: u32,
    pub openvidu_streams_video_min_recv_bandwidth: u32,
    pub openvidu_streams_video_max_send_bandwidth: u32,
    pub openvidu_streams_video_min_send_bandwidth: u32,
    pub openvidu_sessions_garbage_interval: u64,
    pub openvidu_sessions_garbage_threshold: u64,
    /// PEM certificate chain and key: when both are set, HTTPS/WSS.
    pub certificate_path: Option<PathBuf>,
    pub private_key_path: Option<PathBuf>,
    pub local_engines: usize,
    /// The secret local engines require (random per engine when unset). Set it only to reach
    /// the local engines with another Kurento client (tests, debugging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_engines_secret: Option<String>,
    /// media-engine binary for local engines (default: next to the signaling binary).
    pub engine_binary: Option<PathBuf>,
    pub static_dir: PathBuf,
    pub rtcpool_log: String,
    /// Serve `POST /demo/token` for the demo page (an application server's job in production).
    pub demo_tokens: bool,
    /// Engines as a TOML list of `{uri, weight, labels}` (instead of KMS_URIS/KMS_WEIGHTS).
    pub engines: Option<Vec<EngineEntry>>,
    pub pool_strategy: Strategy,
    /// A session asking for labels (`mediaNodeLabels`) that no engine carries: `any` engine
    /// takes it, or `none` does.
    pub pool_label_fallback: LabelFallback,
    /// `when-full`: a subscriber the session's engine cannot take goes to another engine, fed
    /// through a relay; `never`: every endpoint stays on the session's engine.
    pub pool_session_span: SessionSpan,
    /// An engine at or above this CPU % takes no new sessions.
    pub pool_cpu_limit: f64,
    /// An engine with this many endpoints takes no new sessions.
    pub pool_max_endpoints: u64,
    /// How often each engine's health (ping RTT, CPU, memory, endpoints) is sampled (≤ 2000).
    pub pool_health_interval_ms: u64,
    /// Stats older than this make an engine not admitted.
    pub pool_stale_after_ms: u64,
    /// An engine ping unanswered this long counts as a lost connection (a frozen engine).
    pub pool_ping_timeout_ms: u64,
    /// After a lost connection, how long to wait for the same engine process before re-homing.
    pub pool_reconnect_window_ms: u64,
    /// nginx's max_fails: a failed placement lowers the effective weight by weight / max_fails.
    pub pool_max_fails: u32,
    /// After a session is re-homed, participants that have not reconnected their streams this
    /// long after the engine dropped get their WebSocket closed: openvidu-browser reconnects it at
    /// once and re-establishes every broken stream, instead of waiting out its 4 s ICE grace.
    /// 0 disables.
    pub pool_client_nudge_ms: u64,
    /// Serve `/metrics` without credentials (otherwise the REST API's Basic auth).
    pub metrics_public: bool,
    /// An HTTP request's headers must arrive within this many seconds (1–30).
    pub http_header_timeout_secs: u64,
    /// A request body must arrive within this many seconds (1–30).
    pub http_body_timeout_secs: u64,
    /// Bytes queued for one browser WebSocket before it is closed (a client that does not read).
    pub ws_max_send_queue_bytes: usize,
    /// Pipelines another (dead) signaling process left on an engine are released when nobody
    /// reclaimed them this long after we connected (the engine's own session timeout).
    pub pool_orphan_grace_ms: u64,
    /// After a session is re-homed, a publisher that has not re-published its stream within this
    /// long is unpublished (`participantUnpublished`, reason `mediaServerDisconnect`): a stream
    /// that cannot continue stops being advertised.
    pub pool_stale_stream_ms: u64,
    /// POST lifecycle events to `openvidu_webhook_endpoint` (OpenVidu's webhook).
    pub openvidu_webhook: bool,
    pub openvidu_webhook_endpoint: String,
    /// Extra request headers, each `"Name: value"` (a JSON array in the environment). Values are
    /// never shown (they are usually credentials).
    #[serde(deserialize_with = "crate::json_or_native::deserialize")]
    pub openvidu_webhook_headers: Vec<String>,
    /// Which events to send (a JSON array in the environment); empty means all of
    /// [`WEBHOOK_EVENTS`].
    #[serde(deserialize_with = "crate::json_or_native::deserialize")]
    pub openvidu_webhook_events: Vec<String>,
    /// One delivery attempt's time limit (three attempts, with backoff, before an event is
    /// counted as failed).
    pub webhook_timeout_ms: u64,
    /// Events waiting for delivery at most; beyond it they are dropped (and counted): a slow
    /// receiver never slows a session.
    pub webhook_queue: usize,
    /// Record the same events, one JSON line each (`{"event": {…}}`), in
    /// `openvidu_cdr_path/CDR.<date>_<start time>.log` (OpenVidu's CDR).
    pub openvidu_cdr: bool,
    pub openvidu_cdr_path: PathBuf,
    /// A cluster of signaling nodes sharing this Redis (or Valkey) server: `redis://[:password@]host:port[/db]`
    /// (`rediss://` for TLS), or the primary of a Sentinel-watched service:
    /// `redis+sentinel://[:password@]host:port[,host:port…]/service[/db]`. Unset: one node,
    /// everything in process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// How the other nodes of the cluster reach this one (`http[s]://host:port`); default: this
    /// node's own address and port.
    pub cluster_node_url: Option<String>,
    /// A node that has not refreshed its heartbeat this long is dead to the others.
    pub cluster_node_ttl_ms: u64,
    /// Prefix of the cluster's keys in Redis: several clusters can share one Redis.
    pub cluster_name: String,
}

/// Without the secrets (OPENVIDU_SECRET, engine URIs' user-info, the local engines' secret), so
/// settings can be logged.
impl std::fmt::Debug for SignalingSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uris = self.kms_uris.as_ref().map(|u| {
            u.iter()
                .map(|x| kms_client::uri::redact(x))
                .collect::<Vec<_>>()
        });
        f.debug_struct("SignalingSettings")
            .field("server_address", &self.server_address)
            .field("server_port", &self.server_port)
            .field("domain_or_public_ip", &self.domain_or_public_ip)
            .field("kms_uris", &uris)
            .field("pool_strategy", &self.pool_strategy)
            .field("demo_tokens", &self.demo_tokens)
            .field("metrics_public", &self.metrics_public)
            .field("openvidu_webhook", &self.openvidu_webhook)
            .field("openvidu_webhook_endpoint", &self.openvidu_webhook_endpoint)
            .field("openvidu_webhook_headers", &self.webhook_header_names())
            .field("redis_url", &self.redis_url_shown())
            .field("cluster_node_url", &self.node_url())
            .finish_non_exhaustive()
    }
}

impl Default for SignalingSettings {
    fn default() -> Self {
        Self {
            server_port: 4443,
            server_address: IpAddr::from([127, 0, 0, 1]),
            https_port: None,
            openvidu_secret: "MY_SECRET".into(),
            domain_or_public_ip: "127.0.0.1".into(),
            kms_uris: None,
            kms_weights: None,
            openvidu_webrtc_ice_servers: Vec::new(),
            openvidu_streams_video_max_recv_bandwidth: 1000,
            openvidu_streams_video_min_recv_bandwidth: 300,
            openvidu_streams_video_max_send_bandwidth: 1000,
            openvidu_streams_video_min_send_bandwidth: 300,
            openvidu_sessions_garbage_interval: 900,
            openvidu_sessions_garbage_threshold: 3600,
            certificate_path: None,
            private_key_path: None,
            local_engines: 2,
            local_engines_secret: None,
            engine_binary: None,
            static_dir: PathBuf::from("static"),
            rtcpool_log: "info,rtc=error,webrtc=error".into(),
            demo_tokens: false,
            engines: None,
            pool_strategy: Strategy::WeightedRoundRobin,
            pool_label_fallback: LabelFallback::Any,
            pool_session_span: SessionSpan::WhenFull,
            pool_cpu_limit: 90.0,
            pool_max_endpoints: 2000,
            pool_health_interval_ms: 1000,
            pool_stale_after_ms: 5000,
            pool_ping_timeout_ms: 3000,
            pool_reconnect_window_ms: 3000,
            pool_max_fails: 1,
            pool_client_nudge_ms: 6000,
            metrics_public: false,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 10,
            ws_max_send_queue_bytes: 4 << 20,
            pool_orphan_grace_ms: 240_000,
            pool_stale_stream_ms: 30_000,
            openvidu_webhook: false,
            openvidu_webhook_endpoint: String::new(),
            openvidu_webhook_headers: Vec::new(),
            openvidu_webhook_events: Vec::new(),
            webhook_timeout_ms: 5_000,
            webhook_queue: 10_000,
            openvidu_cdr: false,
            openvidu_cdr_path: PathBuf::from("/opt/openvidu/cdr"),
            redis_url: None,
            cluster_node_url: None,
            cluster_node_ttl_ms: 5_000,
            cluster_name: "rtcpool".into(),
        }
    }
}

impl SignalingSettings {
    /// The webhook headers as (name, value) pairs.
    pub fn webhook_headers(&self) -> Vec<(String, String)> {
        self.openvidu_webhook_headers
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// The webhook headers' names only (their values are not shown anywhere).
    pub fn webhook_header_names(&self) -> Vec<String> {
        self.webhook_headers().into_iter().map(|(n, _)| n).collect()
    }

    /// The webhook events to send (all when none are listed).
    pub fn webhook_events(&self) -> BTreeSet<String> {
        if self.openvidu_webhook_events.is_empty() {
            WEBHOOK_EVENTS.iter().map(|e| e.to_string()).collect()
        } else {
            self.openvidu_webhook_events.iter().cloned().collect()
        }
    }

    /// `(redis_url, cluster_name)` when this node is part of a cluster.
    pub fn redis(&self) -> Option<(&str, &str)> {
        self.redis_url
            .as_deref()
            .map(|u| (u, self.cluster_name.as_str()))
    }

    /// `redis_url` without its password (for logs and `GET /config`).
    pub fn redis_url_shown(&self) -> Option<String> {
        self.redis_url.as_deref().map(redact_url)
    }

    /// How the other nodes reach this one: `cluster_node_url`, or this node's address and port
    /// (127.0.0.1 when it listens on every address).
    pub fn node_url(&self) -> String {
        self.node_url_on(self.server_port)
    }

    /// [`Self::node_url`] for a node listening on `port` (the port actually bound).
    pub fn node_url_on(&self, port: u16) -> String {
        if let Some(u) = &self.cluster_node_url {
            return u.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls() { "https" } else { "http" };
        let host = match self.server_address {
            a if a.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        format!("{scheme}://{host}:{port}")
    }

    pub fn tls(&self) -> bool {
        self.certificate_path.is_some() && self.private_key_path.is_some()
    }

    /// `ws[s]://DOMAIN[:PORT]` (the token URL base; no path, as OpenVidu).
    pub fn public_ws_url(&self) -> String {
        let (scheme, default_port) = if self.tls() { ("wss", 443) } else { ("ws", 80) };
        let port = self.https_port.unwrap_or(self.server_port);
        if port == default_port {
            format!("{scheme}://{}", self.domain_or_public_ip)
        } else {
            format!("{scheme}://{}:{port}", self.domain_or_public_ip)
        }
    }

    /// Weights aligned with `kms_uris` (1 each when not given).
    pub fn weights(&self) -> Vec<u32> {
        let n = self.kms_uris.as_ref().map(Vec::len).unwrap_or(0);
        match &self.kms_weights {
            Some(w) => w.iter().map(|x| u32::try_from(*x).unwrap_or(1)).collect(),
            None => vec![1; n],
        }
    }

    /// The configured engines as (uri, weight, labels), from `engines` or KMS_URIS/KMS_WEIGHTS;
    /// `None` when neither is set (local engines are started).
    pub fn engine_list(&self) -> Option<Vec<(String, u32, Labels)>> {
        if let Some(e) = &self.engines {
            return Some(
                e.iter()
                    .map(|x| {
                        (
                            x.uri.clone(),
                            u32::try_from(x.weight).unwrap_or(1),
                            x.labels.clone(),
                        )
                    })
                    .collect(),
            );
        }
        let uris = self.kms_uris.as_ref()?;
        Some(
            uris.iter()
                .cloned()
                .zip(self.weights())
                .map(|(u, w)| (u, w, Default::default()))
                .collect(),
        )
    }
}

impl Validate for SignalingSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let secret_ok = !self.openvidu_secret.is_empty()
            && self
                .openvidu_secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !secret_ok {
            return Err(ConfigError::invalid(
                "OPENVIDU_SECRET",
                "(hidden)",
                "non-empty, only a-z A-Z 0-9 _ -",
            ));
        }
        if self.domain_or_public_ip.is_empty() || self.domain_or_public_ip.contains(['/', ' ', '?'])
        {
            return Err(ConfigError::invalid(
                "DOMAIN_OR_PUBLIC_IP",
                &self.domain_or_public_ip,
                "a host name or IP address",
            ));
        }
        if let Some(list) = &self.engines {
            if self.kms_uris.is_some() || self.kms_weights.is_some() {
                return Err(ConfigError::invalid(
                    "engines",
                    "set together with KMS_URIS",
                    "use either the `engines` list or KMS_URIS/KMS_WEIGHTS",
                ));
            }
            if list.is_empty() {
                return Err(ConfigError::invalid(
                    "engines",
                    "[]",
                    "at least one {uri, weight}",
                ));
            }
            let mut seen = BTreeSet::new();
            for e in list {
                check_uri("engines.uri", &e.uri)?;
                if !seen.insert(e.uri.trim_end_matches('/')) {
                    return Err(ConfigError::invalid(
                        "engines.uri",
                        kms_client::uri::redact(&e.uri),
                        "duplicate engine URI",
                    ));
                }
                if e.weight <= 0 || e.weight > i64::from(u32::MAX) {
                    return Err(ConfigError::invalid(
                        "engines.weight",
                        e.weight,
                        "weights must be positive integers",
                    ));
                }
            }
        }
        if !(1.0..=100.0).contains(&self.pool_cpu_limit) {
            return Err(ConfigError::invalid(
                "POOL_CPU_LIMIT",
                self.pool_cpu_limit,
                "a CPU percentage in 1–100",
            ));
        }
        if !(100..=2000).contains(&self.pool_health_interval_ms) {
            return Err(ConfigError::invalid(
                "POOL_HEALTH_INTERVAL_MS",
                self.pool_health_interval_ms,
                "100–2000 ms (health is refreshed at least every 2 s)",
            ));
        }
        if self.pool_stale_after_ms < 2 * self.pool_health_interval_ms {
            return Err(ConfigError::invalid(
                "POOL_STALE_AFTER_MS",
                self.pool_stale_after_ms,
                "at least twice POOL_HEALTH_INTERVAL_MS",
            ));
        }
        if self.pool_ping_timeout_ms < 200 {
            return Err(ConfigError::invalid(
                "POOL_PING_TIMEOUT_MS",
                self.pool_ping_timeout_ms,
                "at least 200 ms",
            ));
        }
        if self.pool_max_fails == 0 {
            return Err(ConfigError::invalid("POOL_MAX_FAILS", 0, "at least 1"));
        }
        if let Some(uris) = &self.kms_uris {
            if uris.is_empty() {
                return Err(ConfigError::invalid(
                    "KMS_URIS",
                    "[]",
                    "at least one ws:// or wss:// URL (or unset to start local engines)",
                ));
            }
            let mut seen = BTreeSet::new();
            for u in uris {
                let ok = (u.starts_with("ws://") || u.starts_with("wss://"))
                    && u.split("://")
                        .nth(1)
                        .is_some_and(|h| !h.is_empty() && !h.starts_with('/'));
                if !ok {
                    return Err(ConfigError::invalid(
                        "KMS_URIS",
                        kms_client::uri::redact(u),
                        "each entry must be a ws:// or wss:// URL",
                    ));
                }
                if !seen.insert(u.trim_end_matches('/')) {
                    return Err(ConfigError::invalid(
                        "KMS_URIS",
                        kms_client::uri::redact(u),
                        "duplicate engine URI",
                    ));
                }
            }
            if let Some(w) = &self.kms_weights {
                if w.len() != uris.len() {
                    return Err(ConfigError::invalid(
                        "KMS_WEIGHTS",
                        format!("{} weights", w.len()),
                        &format!(
                            "one positive integer per KMS_URIS entry ({} entries)",
                            uris.len()
                        ),
                    ));
                }
                if let Some(bad) = w.iter().find(|x| **x <= 0 || **x > i64::from(u32::MAX)) {
                    return Err(ConfigError::invalid(
                        "KMS_WEIGHTS",
                        bad,
                        "weights must be positive integers",
                    ));
                }
            }
        } else if self.kms_weights.is_some() {
            return Err(ConfigError::invalid("KMS_WEIGHTS", "set", "needs KMS_URIS"));
        } else if self.engines.is_none() && self.local_engines == 0 {
            return Err(ConfigError::invalid(
                "LOCAL_ENGINES",
                0,
                "at least 1 when KMS_URIS is unset",
            ));
        }
        for s in &self.openvidu_webrtc_ice_servers {
            if !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|p| s.url.starts_with(p))
            {
                return Err(ConfigError::invalid(
                    "OPENVIDU_WEBRTC_ICE_SERVERS",
                    &s.url,
                    "each url must start with stun:, stuns:, turn: or turns:",
                ));
            }
        }
        if self.certificate_path.is_some() != self.private_key_path.is_some() {
            return Err(ConfigError::invalid(
                "CERTIFICATE_PATH",
                "only one of the pair",
                "set both CERTIFICATE_PATH and PRIVATE_KEY_PATH, or neither",
            ));
        }
        for (key, v) in [
            ("HTTP_HEADER_TIMEOUT_SECS", self.http_header_timeout_secs),
            ("HTTP_BODY_TIMEOUT_SECS", self.http_body_timeout_secs),
        ] {
            if !(1..=30).contains(&v) {
                return Err(ConfigError::invalid(key, v, "1–30 seconds"));
            }
        }
        if self.ws_max_send_queue_bytes < 64 * 1024 {
            return Err(ConfigError::invalid(
                "WS_MAX_SEND_QUEUE_BYTES",
                self.ws_max_send_queue_bytes,
                "at least 65536",
            ));
        }
        if self.openvidu_webhook {
            let e = &self.openvidu_webhook_endpoint;
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "OPENVIDU_WEBHOOK_ENDPOINT",
                    e,
                    "an http:// or https:// URL when OPENVIDU_WEBHOOK is true",
                ));
            }
        }
        for h in &self.openvidu_webhook_headers {
            let valid = h.split_once(':').is_some_and(|(n, _)| {
                !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_graphic())
            });
            if !valid {
                let name = h.split(':').next().unwrap_or_default();
                return Err(ConfigError::invalid(
                    "OPENVIDU_WEBHOOK_HEADERS",
                    name,
                    "entries of the form \"Name: value\"",
                ));
            }
        }
        for ev in &self.openvidu_webhook_events {
            if !WEBHOOK_EVENTS.contains(&ev.as_str()) {
                return Err(ConfigError::invalid(
                    "OPENVIDU_WEBHOOK_EVENTS",
                    ev,
                    &format!("one of {}", WEBHOOK_EVENTS.join(", ")),
                ));
            }
        }
        if !(100..=60_000).contains(&self.webhook_timeout_ms) {
            return Err(ConfigError::invalid(
                "WEBHOOK_TIMEOUT_MS",
                self.webhook_timeout_ms,
                "100–60000",
            ));
        }
        if !(1..=1_000_000).contains(&self.webhook_queue) {
            return Err(ConfigError::invalid(
                "WEBHOOK_QUEUE",
                self.webhook_queue,
                "1–1000000",
            ));
        }
        if let Some(u) = &self.redis_url {
            let ok = [
                "redis://",
                "rediss://",
                "redis+unix://",
                "unix://",
                "redis+sentinel://",
            ]
            .iter()
            .any(|p| u.starts_with(p));
            if !ok {
                return Err(ConfigError::invalid(
                    "REDIS_URL",
                    redact_url(u),
                    "a redis://, rediss://, redis+sentinel:// or unix:// URL",
                ));
            }
        }
        if let Some(u) = &self.cluster_node_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "CLUSTER_NODE_URL",
                    u,
                    "an http:// or https:// URL",
                ));
            }
        }
        let name_ok = (1..=64).contains(&self.cluster_name.len())
            && self
                .cluster_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ConfigError::invalid(
                "CLUSTER_NAME",
                &self.cluster_name,
                "1–64 of [A-Za-z0-9_-]",
            ));
        }
        if !(1_000..=60_000).contains(&self.cluster_node_ttl_ms) {
            return Err(ConfigError::invalid(
                "CLUSTER_NODE_TTL_MS",
                self.cluster_node_ttl_ms,
                "1000–60000",
            ));
        }
        if self.openvidu_sessions_garbage_interval == 0 {
            return Err(ConfigError::invalid(
                "OPENVIDU_SESSIONS_GARBAGE_INTERVAL",
                0,
                "at least 1 second",
            ));
        }
        Ok(())
    }
}

/// A URL with its user-info's password replaced by `***`.
pub fn redact_url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return u.to_string();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) if !a.contains('/') => (a, h),
        _ => return u.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None if !auth.is_empty() => format!("{scheme}://***@{host}"),
        None => u.to_string(),
    }
}

/// A ws:// or wss:// URL with a host.
pub fn check_uri(key: &str, u: &str) -> Result<(), ConfigError> {
    let ok = (u.starts_with("ws://") || u.starts_with("wss://"))
        && u.split("://")
            .nth(1)
            .is_some_and(|h| !h.is_empty() && !h.starts_with('/') && !h.contains(' '));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            kms_client::uri::redact(u),
            "each entry must be a ws:// or wss:// URL",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_with;
    use figment::providers::Env;

    fn load_env() -> Result<SignalingSettings, String> {
        load_with(
            None,
            Env::raw().only(SIGNALING_ENV_KEYS),
            &serde_json::json!({}),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn webhook_settings_from_openvidus_variables() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OPENVIDU_WEBHOOK", "true");
            jail.set_env("OPENVIDU_WEBHOOK_ENDPOINT", "https://hooks.example/ov");
            jail.set_env(
                "OPENVIDU_WEBHOOK_HEADERS",
                r#"["Authorization: Basic c2VjcmV0"]"#,
            );
            jail.set_env(
                "OPENVIDU_WEBHOOK_EVENTS",
                r#"["sessionCreated","signalSent"]"#,
            );
            let s = load_env()?;
            assert_eq!(s.webhook_header_names(), vec!["Authorization".to_string()]);
            assert_eq!(s.webhook_events().len(), 2);
            assert!(
                !format!("{s:?}").contains("c2VjcmV0"),
                "header values stay out of logs"
            );
            jail.set_env("OPENVIDU_WEBHOOK_EVENTS", r#"["recordingStatusChanged"]"#);
            let e = load_env().err().unwrap_or_default();
            assert!(e.contains("OPENVIDU_WEBHOOK_EVENTS"), "{e}");
            jail.set_env("OPENVIDU_WEBHOOK_EVENTS", "[]");
            jail.set_env("OPENVIDU_WEBHOOK_ENDPOINT", "");
            let e = load_env().err().unwrap_or_default();
            assert!(e.contains("OPENVIDU_WEBHOOK_ENDPOINT"), "{e}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn toml_engine_list() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "[[engines]]\nuri = \"ws://a:8888/kurento\"\nweight = 3\nlabels = { zone = \"a\" }\n[[engines]]\nuri = \"ws://b:8888/kurento\"\n")?;
            let s: SignalingSettings = load_with(
                Some(std::path::Path::new("s.toml")),
                Env::raw().only(SIGNALING_ENV_KEYS),
                &serde_json::json!({}),
            )
            .map_err(|e| e.to_string())?;
            let list = s.engine_list().unwrap_or_default();
            assert_eq!(list.len(), 2);
            assert_eq!((list[0].1, list[1].1), (3, 1));
            assert_eq!(list[0].2.get("zone").map(String::as_str), Some("a"));
            jail.create_file("bad.toml", "[[engines]]\nuri = \"ws://a\"\nweight = 0\n")?;
            let e = load_with::<SignalingSettings, _>(
                Some(std::path::Path::new("bad.toml")),
                Env::raw().only(SIGNALING_ENV_KEYS),
                &serde_json::json!({}),
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(e.contains("engines.weight"), "{e}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
    fn openvidu_variable_names_and_json_lists() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("OPENVIDU_SECRET", "s3cret");
            jail.set_env(
                "KMS_URIS",
                r#"["ws://127.0.0.1:8888/kurento","ws://127.0.0.1:8889/kurento"]"#,
            );
            jail.set_env("KMS_WEIGHTS", "[3,1]");
            jail.set_env(
                "OPENVIDU_WEBRTC_ICE_SERVERS",
                r#"[{"url":"stun:127.0.0.1:3478"}]"#,
            );
            let s = load_env()?;
            assert_eq!(s.kms_uris.as_ref().map(Vec::len), Some(2));
            assert_eq!(s.weights(), vec![3, 1]);
            assert_eq!(s.openvidu_webrtc_ice_servers.len(), 1);
            assert_eq!(s.public_ws_url(), "ws://127.0.0.1:4443");
            jail.set_env("KMS_WEIGHTS", "[3]");
            assert!(load_env().err().unwrap_or_default().contains("KMS_WEIGHTS"));
            jail.set_env("KMS_WEIGHTS", "[3,0]");
            assert!(load_env().err().unwrap_or_default().contains("positive"));
            jail.set_env("KMS_WEIGHTS", "[1,1]");
            jail.set_env("KMS_URIS", r#"["http://x/kurento","ws://y"]"#);
            assert!(load_env()
                .err()
                .unwrap_or_default()
                .contains("http://x/kurento"));
            jail.set_env("KMS_URIS", r#"["ws://y","ws://y"]"#);
            assert!(load_env().err().unwrap_or_default().contains("duplicate"));
            jail.set_env("KMS_URIS", r#"["ws://y","ws://z"]"#);
            jail.set_env("POOL_STRATEGY", "least-loaded");
            assert_eq!(load_env()?.pool_strategy, Strategy::LeastLoaded);
            jail.set_env("POOL_STRATEGY", "random");
            assert!(load_env()
                .err()
                .unwrap_or_default()
                .contains("pool_strategy"));
            jail.set_env("POOL_STRATEGY", "load-weighted");
            jail.set_env("KMS_URIS", r#"["ws://u:pw-xyz@y","ws://z"]"#);
            let shown = format!("{:?}", load_env()?);
            assert!(
                !shown.contains("pw-xyz") && !shown.contains("s3cret"),
                "{shown}"
            );
            jail.set_env("OPENVIDU_SECRET", "bad secret!");
            assert!(load_env()
                .err()
                .unwrap_or_default()
                .contains("OPENVIDU_SECRET"));
            Ok(())
        });
    }
}

//! rtcpool configuration: one figment chain — built-in defaults → TOML file (`--config FILE`) →
//! environment → command-line flags — extracted into typed settings and validated, so a bad
//! value stops start-up with one line naming the key, the value and what is allowed.
//!
//! | concept | file |
//! |---|---|
//! | the layered loader and its error | `load.rs` |
//! | media-engine settings, defaults, validation | `engine.rs` |
//! | signaling settings (OpenVidu's variable names), validation | `signaling.rs` |
//! | values given as JSON text or as native arrays | `json_or_native.rs` |
//! | accepting connections: no delay, slow clients cut (both servers) | `listen.rs` |
//! | comparing presented secrets in constant time | `secret.rs` |
//! | around `run` in both binaries: settings or a one-line exit, tracing, shutdown signals | `process.rs` |

mod engine;
mod json_or_native;
pub mod listen;
mod load;
pub mod metrics;
pub mod process;
pub mod secret;
mod signaling;

pub use engine::EngineSettings;
pub use figment::providers::Env;
pub use load::{load, load_with, ConfigError, Validate};
pub use signaling::{
    check_uri, EngineEntry, IceServer, LabelFallback, SessionSpan, SignalingSettings, Strategy,
    SIGNALING_ENV_KEYS, WEBHOOK_EVENTS,
};

//! rtcpool configuration: one figment chain — built-in defaults → TOML file (`--config FILE`) →
//! environment → command-line flags — extracted into typed settings and validated, so a bad
//! value stops start-up with one line naming the key, the value and what is allowed.
//!
//! | concept | file |
//! |---|---|
//! | the layered loader and its error | `load.rs` |
//! | media-engine settings, defaults, validation | `engine.rs` |

mod engine;
mod load;

pub use engine::{EngineSettings, PortRange};
pub use load::{load, ConfigError, Validate};

//! The layered loader shared by every rtcpool binary.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Why configuration was refused: always one line naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: `{key}` = {value}: {allowed}")]
    Invalid {
        key: String,
        value: String,
        allowed: String,
    },
    #[error("invalid configuration: {0}")]
    Source(String),
}

impl ConfigError {
    pub fn invalid(key: &str, value: impl std::fmt::Display, allowed: &str) -> Self {
        Self::Invalid {
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// Settings that know which values they accept.
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads `T`: `T::default()` → `file` (TOML, when given) → environment variables that start
/// with `env_prefix` (`PREFIX_KEY`; nested keys with `__`) → `flags` (only the flags given).
pub fn load<T, F>(file: Option<&Path>, env_prefix: &str, flags: &F) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
    F: Serialize,
{
    load_with(file, Env::prefixed(env_prefix).split("__"), flags)
}

/// Like [`load`], with the environment provider given (e.g. `Env::raw().only(&[..])` for
/// OpenVidu's unprefixed variable names).
pub fn load_with<T, F>(file: Option<&Path>, env: Env, flags: &F) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
    F: Serialize,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::invalid(
                "--config",
                path.display(),
                "file does not exist",
            ));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(env).merge(Serialized::defaults(flags));
    let settings: T = figment.extract().map_err(|e| describe(&e))?;
    settings.validate()?;
    Ok(settings)
}

fn describe(e: &figment::Error) -> ConfigError {
    let key = e.path.join(".");
    let origin = e
        .metadata
        .as_ref()
        .map(|m| m.name.to_string())
        .unwrap_or_default();
    let what = match &e.kind {
        figment::error::Kind::InvalidType(actual, expected) => {
            format!("has the wrong type ({actual}); expected {expected}")
        }
        figment::error::Kind::InvalidValue(actual, expected) => {
            format!("is not valid ({actual}); expected {expected}")
        }
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        other => other.to_string(),
    };
    if key.is_empty() {
        ConfigError::Source(format!("{what} (from {origin})"))
    } else {
        ConfigError::Source(format!("`{key}` {what} (from {origin})"))
    }
}

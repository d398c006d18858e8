//! OpenVidu passes lists in environment variables as JSON text (`KMS_URIS=["ws://…"]`); a TOML
//! file gives them natively. These deserialisers accept both.

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(untagged)]
enum Either<T> {
    Native(T),
    Text(String),
}

pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Either::<T>::deserialize(d)? {
        Either::Native(v) => Ok(v),
        Either::Text(s) => serde_json::from_str(&s)
            .map_err(|e| serde::de::Error::custom(format!("not valid JSON ({e}): {s}"))),
    }
}

pub fn deserialize_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Either<T>>::deserialize(d)? {
        None => Ok(None),
        Some(Either::Native(v)) => Ok(Some(v)),
        Some(Either::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Either::Text(s)) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("not valid JSON ({e}): {s}"))),
    }
}

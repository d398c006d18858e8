//! Operations of `invoke`, one file per class level: MediaObject, ServerManager, MediaElement,
//! WebRtcEndpoint, and the property getters/setters shared by the endpoint classes. Each returns
//! `None` for an operation it does not have, so the caller can try the next level.

pub mod element;
pub mod media_object;
pub mod properties;
pub mod server_manager;
pub mod webrtc;

use kms_client::wire::{Class, ErrorCode, RpcError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::engine::Engine;

pub struct Invocation<'a> {
    pub engine: &'a Arc<Engine>,
    pub object: &'a str,
    pub class: Class,
    pub params: Map<String, Value>,
}

impl Invocation<'_> {
    /// A required operation parameter; a missing or mistyped one is 40001 (MARSHALL_ERROR).
    pub fn arg<T: DeserializeOwned>(&self, key: &str) -> Result<T, RpcError> {
        let v = self.params.get(key).cloned().unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|_| {
            RpcError::new(
                ErrorCode::MarshallError,
                format!("Invalid or missing parameter '{key}'"),
            )
        })
    }

    /// An optional operation parameter (absent or `null` → `None`).
    pub fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RpcError> {
        match self.params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.arg(key).map(Some),
        }
    }
}

pub fn unknown_operation(op: &str, params: &Map<String, Value>) -> RpcError {
    RpcError::new(
        ErrorCode::MalformedTransaction,
        format!("Method '{op}' with {} parameters not found", params.len()),
    )
}

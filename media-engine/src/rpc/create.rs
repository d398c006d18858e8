//! `create {type, constructorParams?, properties?}` → `{"value": id}`. Types may carry the
//! `kurento.` prefix; unknown types get 40108 as in KMS.

use kms_client::wire::method::CreateParams;
use kms_client::wire::{Class, ErrorCode, RpcError, SessionId};
use serde_json::Value;
use std::sync::Arc;

use super::{value, Handled};
use crate::engine::Engine;

pub async fn handle(engine: &Arc<Engine>, session: &SessionId, p: CreateParams) -> Handled {
    let class = Class::from_name(&p.kind)
        .filter(|c| *c != Class::ServerManager)
        .ok_or_else(|| {
            RpcError::new(
                ErrorCode::MediaObjectNotAvailable,
                format!("Factory '{}' not found", p.kind),
            )
        })?;
    let params = p.constructor_params.unwrap_or_default();
    let pipeline = match params.get("mediaPipeline") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(RpcError::new(
                ErrorCode::MarshallError,
                "'mediaPipeline' should be an object id",
            ))
        }
    };
    for flag in ["recvonly", "sendonly", "useDataChannels"] {
        if params.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(RpcError::new(
                ErrorCode::MarshallError,
                format!("'{flag}' should be a boolean"),
            ));
        }
    }
    let id = engine.create(class, pipeline, session).await?;
    Ok(value(id.0))
}

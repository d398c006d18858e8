//! Method names (in one place) and the typed params of every Kurento request (reference §1.4).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::envelope::RpcError;
use super::errors::ErrorCode;

pub const PING: &str = "ping";
pub const CONNECT: &str = "connect";
pub const DESCRIBE: &str = "describe";
pub const CREATE: &str = "create";
pub const INVOKE: &str = "invoke";
pub const SUBSCRIBE: &str = "subscribe";
pub const UNSUBSCRIBE: &str = "unsubscribe";
pub const RELEASE: &str = "release";
pub const KEEP_ALIVE: &str = "keepAlive";
pub const CLOSE_SESSION: &str = "closeSession";
pub const TRANSACTION: &str = "transaction";
pub const REF: &str = "ref";
pub const UNREF: &str = "unref";
pub const ON_EVENT: &str = "onEvent";

/// A request's method with its typed params.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Ping(PingParams),
    Connect(SessionParams),
    Describe(ObjectParams),
    Create(CreateParams),
    Invoke(InvokeParams),
    Subscribe(SubscribeParams),
    Unsubscribe(UnsubscribeParams),
    Release(ObjectParams),
    KeepAlive(SessionParams),
    CloseSession(CloseSessionParams),
    Transaction(TransactionParams),
    Ref(RefParams),
    Unref(RefParams),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PingParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectParams {
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateParams {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constructor_params: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeParams {
    pub object: String,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_params: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeParams {
    pub object: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeParams {
    pub object: String,
    pub subscription: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseSessionParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionParams {
    pub operations: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefParams {
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl Method {
    /// Types a request's params. Errors follow KMS: unknown method -32601, missing `params`
    /// -32602, a missing or mistyped parameter -32000.
    pub fn parse(method: &str, params: Option<Value>) -> Result<Method, RpcError> {
        Ok(match method {
            PING => Method::Ping(optional(params)?),
            CONNECT => Method::Connect(optional(params)?),
            KEEP_ALIVE => Method::KeepAlive(optional(params)?),
            CLOSE_SESSION => Method::CloseSession(optional(params)?),
            DESCRIBE => Method::Describe(required(params)?),
            CREATE => Method::Create(required(params)?),
            INVOKE => Method::Invoke(required(params)?),
            SUBSCRIBE => Method::Subscribe(required(params)?),
            UNSUBSCRIBE => Method::Unsubscribe(required(params)?),
            RELEASE => Method::Release(required(params)?),
            TRANSACTION => Method::Transaction(required(params)?),
            REF => Method::Ref(required(params)?),
            UNREF => Method::Unref(required(params)?),
            _ => {
                return Err(RpcError::new(
                    ErrorCode::MethodNotFound,
                    "Method not found.",
                ))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Method::Ping(_) => PING,
            Method::Connect(_) => CONNECT,
            Method::Describe(_) => DESCRIBE,
            Method::Create(_) => CREATE,
            Method::Invoke(_) => INVOKE,
            Method::Subscribe(_) => SUBSCRIBE,
            Method::Unsubscribe(_) => UNSUBSCRIBE,
            Method::Release(_) => RELEASE,
            Method::KeepAlive(_) => KEEP_ALIVE,
            Method::CloseSession(_) => CLOSE_SESSION,
            Method::Transaction(_) => TRANSACTION,
            Method::Ref(_) => REF,
            Method::Unref(_) => UNREF,
        }
    }

    /// The `sessionId` the request carries, if any.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Method::Ping(p) => p.session_id.as_deref(),
            Method::Connect(p) | Method::KeepAlive(p) => p.session_id.as_deref(),
            Method::Describe(p) | Method::Release(p) => p.session_id.as_deref(),
            Method::Create(p) => p.session_id.as_deref(),
            Method::Invoke(p) => p.session_id.as_deref(),
            Method::Subscribe(p) => p.session_id.as_deref(),
            Method::Unsubscribe(p) => p.session_id.as_deref(),
            Method::CloseSession(p) => p.session_id.as_deref(),
            Method::Transaction(p) => p.session_id.as_deref(),
            Method::Ref(p) | Method::Unref(p) => p.session_id.as_deref(),
        }
    }

    /// The params as they go on the wire (`None` when there is nothing to send).
    pub fn params(&self) -> Option<Value> {
        let v = match self {
            Method::Ping(p) => serde_json::to_value(p),
            Method::Connect(p) | Method::KeepAlive(p) => serde_json::to_value(p),
            Method::Describe(p) | Method::Release(p) => serde_json::to_value(p),
            Method::Create(p) => serde_json::to_value(p),
            Method::Invoke(p) => serde_json::to_value(p),
            Method::Subscribe(p) => serde_json::to_value(p),
            Method::Unsubscribe(p) => serde_json::to_value(p),
            Method::CloseSession(p) => serde_json::to_value(p),
            Method::Transaction(p) => serde_json::to_value(p),
            Method::Ref(p) | Method::Unref(p) => serde_json::to_value(p),
        }
        .ok()?;
        match &v {
            Value::Object(m) if m.is_empty() => None,
            _ => Some(v),
        }
    }
}

fn optional<T: DeserializeOwned + Default>(params: Option<Value>) -> Result<T, RpcError> {
    match params {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => typed(v),
    }
}

fn required<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    match params {
        None | Some(Value::Null) => Err(RpcError::new(
            ErrorCode::InvalidParams,
            "'params' is required",
        )),
        Some(v) => typed(v),
    }
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<T, RpcError> {
    if !v.is_object() {
        return Err(RpcError::new(
            ErrorCode::InvalidParams,
            "'params' should be an object",
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| RpcError::new(ErrorCode::ServerError, format!("Invalid parameters: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_params_and_kms_errors() {
        let m = Method::parse("invoke", Some(json!({"object":"a","operation":"getName"})));
        assert!(matches!(m, Ok(Method::Invoke(_))));
        let e = Method::parse("create", None).err().map(|e| e.code);
        assert_eq!(e, Some(-32602));
        let e = Method::parse("release", Some(json!({"object": 5})))
            .err()
            .map(|e| e.code);
        assert_eq!(e, Some(-32000));
        let e = Method::parse("frobnicate", None).err().map(|e| e.code);
        assert_eq!(e, Some(-32601));
        assert!(matches!(Method::parse("ping", None), Ok(Method::Ping(_))));
        assert_eq!(Method::Ping(PingParams::default()).params(), None);
    }
}

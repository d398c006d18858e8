//! JSON-RPC 2.0 framing as Kurento uses it: one object per text frame, `onEvent` notifications
//! without `id`, and results that are always objects (never `null`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::errors::ErrorCode;

/// A client → server request. `params` is kept raw here and typed by [`super::method::Method`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    pub id: Value,
}

impl Request {
    pub fn new(id: u64, method: &str, params: Option<Value>) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: Value::from(id),
        }
    }
}

/// A server → client response: exactly one of `result` / `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: Value,
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn ok(id: Value, result: Map<String, Value>) -> Self {
        Self {
            id,
            jsonrpc: "2.0".into(),
            result: Some(Value::Object(result)),
            error: None,
        }
    }

    /// `closeSession` is the one method whose result is `null` in KMS.
    pub fn null_result(id: Value) -> Self {
        Self {
            id,
            jsonrpc: "2.0".into(),
            result: Some(Value::Null),
            error: None,
        }
    }

    pub fn err(id: Value, error: RpcError) -> Self {
        Self {
            id,
            jsonrpc: "2.0".into(),
            result: None,
            error: Some(error),
        }
    }
}

/// `{"code":…,"message":…,"data":{"type":…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(rename = "type")]
    pub kind: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: code.data_type().map(|t| ErrorData {
                kind: t.to_string(),
            }),
        }
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }
}

/// `{"jsonrpc":"2.0","method":"onEvent","params":{"value":{"data":…,"object":…,"type":…}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnEvent {
    pub jsonrpc: String,
    pub method: String,
    pub params: OnEventParams,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnEventParams {
    pub value: EventValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventValue {
    pub data: Value,
    pub object: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl OnEvent {
    pub fn new(object: &str, kind: &str, data: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            method: "onEvent".into(),
            params: OnEventParams {
                value: EventValue {
                    data,
                    object: object.into(),
                    kind: kind.into(),
                },
            },
        }
    }
}

/// Any frame as a receiver classifies it: a request has `method` and `id`, a notification has
/// `method` and no `id`, a response has `result` or `error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Request(Request),
    Notification {
        method: String,
        params: Option<Value>,
    },
    Response(Response),
}

/// Why a text frame could not be classified.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameError {
    /// Not JSON at all (→ -32700).
    Parse,
    /// JSON, but not a JSON-RPC 2.0 message (→ -32600); carries the id if one could be read.
    Invalid(Value),
}

impl Frame {
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|_| FrameError::Parse)?;
        let Value::Object(mut obj) = value else {
            return Err(FrameError::Invalid(Value::Null));
        };
        let id = obj.get("id").cloned().unwrap_or(Value::Null);
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(FrameError::Invalid(id));
        }
        let valid_id = matches!(id, Value::Null | Value::Number(_) | Value::String(_));
        if !valid_id {
            return Err(FrameError::Invalid(Value::Null));
        }
        match obj.remove("method") {
            Some(Value::String(method)) => {
                let params = obj.remove("params");
                if obj.contains_key("id") && !id.is_null() {
                    Ok(Frame::Request(Request {
                        jsonrpc: "2.0".into(),
                        method,
                        params,
                        id,
                    }))
                } else {
                    Ok(Frame::Notification { method, params })
                }
            }
            Some(_) => Err(FrameError::Invalid(id)),
            None => {
                let result = obj.remove("result");
                let error = match obj.remove("error") {
                    Some(e) => Some(
                        serde_json::from_value(e).map_err(|_| FrameError::Invalid(id.clone()))?,
                    ),
                    None => None,
                };
                if result.is_some() == error.is_some() {
                    return Err(FrameError::Invalid(id));
                }
                Ok(Frame::Response(Response {
                    id,
                    jsonrpc: "2.0".into(),
                    result,
                    error,
                }))
            }
        }
    }
}

//! The OpenVidu browser protocol's messages (reference §1.2–§1.6): method names in one place,
//! typed params for every request, typed notifications, error codes. Kurento-flavoured
//! JSON-RPC 2.0: results get the rpc `sessionId` injected; notifications carry none.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub mod method {
    pub const PING: &str = "ping";
    pub const CONNECT: &str = "connect";
    pub const JOIN_ROOM: &str = "joinRoom";
    pub const LEAVE_ROOM: &str = "leaveRoom";
    pub const PUBLISH_VIDEO: &str = "publishVideo";
    pub const UNPUBLISH_VIDEO: &str = "unpublishVideo";
    pub const PREPARE_RECEIVE_VIDEO_FROM: &str = "prepareReceiveVideoFrom";
    pub const RECEIVE_VIDEO_FROM: &str = "receiveVideoFrom";
    pub const UNSUBSCRIBE_FROM_VIDEO: &str = "unsubscribeFromVideo";
    pub const ON_ICE_CANDIDATE: &str = "onIceCandidate";
    pub const SEND_MESSAGE: &str = "sendMessage";
    pub const STREAM_PROPERTY_CHANGED: &str = "streamPropertyChanged";
    pub const FORCE_DISCONNECT: &str = "forceDisconnect";
    pub const FORCE_UNPUBLISH: &str = "forceUnpublish";
    pub const RECONNECT_STREAM: &str = "reconnectStream";
    pub const VIDEO_DATA: &str = "videoData";
    pub const ECHO: &str = "echo";
    pub const APPLY_FILTER: &str = "applyFilter";
    pub const EXEC_FILTER_METHOD: &str = "execFilterMethod";
    pub const REMOVE_FILTER: &str = "removeFilter";
    pub const ADD_FILTER_EVENT_LISTENER: &str = "addFilterEventListener";
    pub const REMOVE_FILTER_EVENT_LISTENER: &str = "removeFilterEventListener";
    pub const SUBSCRIBE_TO_STT: &str = "subscribeToSpeechToText";
    pub const UNSUBSCRIBE_FROM_STT: &str = "unsubscribeFromSpeechToText";
}

/// OpenVidu error codes (`OpenViduException.Code`) the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Generic = 999,
    ServiceNotEnabled = 996,
    WrongEdition = 997,
    Transport = 803,
    MediaSdp = 302,
    MediaEndpoint = 303,
    RoomCannotBeCreated = 204,
    RoomClosed = 203,
    RoomNotFound = 202,
    UserAlreadyStreaming = 106,
    UserNotStreaming = 105,
    UserNotFound = 102,
    UserUnauthorized = 401,
    ExistingFilter = 405,
    FilterNotApplied = 406,
    SignalFormatInvalid = 600,
    SignalToInvalid = 601,
    /// Kurento-layer codes used by the OpenVidu server too.
    ReconnectionError = 40007,
    MissingParam = -1,
    MethodNotFound = -32601,
    /// A parameter over its size limit (`limits.rs`).
    InvalidParams = -32602,
    ParseError = -32700,
    InvalidRequest = -32600,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code: code as i64,
            message: message.into(),
            data: None,
        }
    }
}

/// One frame from a browser, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request to answer (`params` absent or not an object → empty).
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    /// A request without id: nothing to answer.
    Notification,
    /// A response (the browser never answers anything of ours): ignored.
    Response,
    /// Not JSON-RPC: answer `error` with `id` (null when unknown).
    Invalid { id: Value, error: RpcError },
}

/// Decodes one text frame (pure: what the socket loop and the fuzz target both call).
pub fn parse(text: &str) -> Incoming {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        return Incoming::Invalid {
            id: Value::Null,
            error: RpcError::new(Code::ParseError, "Parse error"),
        };
    };
    let id = frame.remove("id").unwrap_or(Value::Null);
    let Some(Value::String(method)) = frame.remove("method") else {
        if frame.contains_key("result") || frame.contains_key("error") {
            return Incoming::Response;
        }
        return Incoming::Invalid {
            id,
            error: RpcError::new(Code::InvalidRequest, "Invalid request"),
        };
    };
    if id.is_null() {
        return Incoming::Notification;
    }
    let params = match frame.remove("params") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Incoming::Request { id, method, params }
}

/// A request's typed params, after the method name has been resolved.
pub fn param<T: for<'de> Deserialize<'de>>(
    method: &str,
    params: &Map<String, Value>,
    key: &str,
) -> Result<T, RpcError> {
    let v = params.get(key).cloned().unwrap_or(Value::Null);
    if v.is_null() {
        return Err(RpcError::new(
            Code::MissingParam,
            format!("Request element '{key}' is missing in RPC method '{method}'"),
        ));
    }
    serde_json::from_value(v).map_err(|_| {
        RpcError::new(
            Code::MissingParam,
            format!("Request element '{key}' of RPC method '{method}' has the wrong type"),
        )
    })
}

pub fn opt_param<T: for<'de> Deserialize<'de>>(
    params: &Map<String, Value>,
    key: &str,
) -> Option<T> {
    params
        .get(key)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Server → browser notifications (§1.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    ParticipantJoined {
        id: String,
        created_at: u64,
        metadata: String,
    },
    ParticipantLeft {
        connection_id: String,
        reason: String,
    },
    ParticipantEvicted {
        connection_id: String,
        reason: String,
    },
    ParticipantPublished {
        id: String,
        streams: Vec<Value>,
    },
    ParticipantUnpublished {
        connection_id: String,
        reason: String,
    },
    SendMessage {
        data: Option<String>,
        kind: Option<String>,
        from: Option<String>,
    },
    StreamPropertyChanged {
        connection_id: String,
        stream_id: String,
        property: String,
        new_value: Value,
        reason: String,
    },
    IceCandidate {
        sender_connection_id: String,
        endpoint_name: String,
        sdp_m_line_index: u32,
        sdp_mid: String,
        candidate: String,
    },
    MediaError {
        error: String,
    },
}

impl Notification {
    pub fn to_text(&self) -> String {
        let (method, params) = match self {
            Notification::ParticipantJoined {
                id,
                created_at,
                metadata,
            } => (
                "participantJoined",
                json!({"id": id, "createdAt": created_at, "metadata": metadata}),
            ),
            Notification::ParticipantLeft {
                connection_id,
                reason,
            } => (
                "participantLeft",
                json!({"connectionId": connection_id, "reason": reason}),
            ),
            Notification::ParticipantEvicted {
                connection_id,
                reason,
            } => (
                "participantEvicted",
                json!({"connectionId": connection_id, "reason": reason}),
            ),
            Notification::ParticipantPublished { id, streams } => (
                "participantPublished",
                json!({"id": id, "streams": streams}),
            ),
            Notification::ParticipantUnpublished {
                connection_id,
                reason,
            } => (
                "participantUnpublished",
                json!({"connectionId": connection_id, "reason": reason}),
            ),
            Notification::SendMessage { data, kind, from } => {
                let mut p = Map::new();
                if let Some(d) = data {
                    p.insert("data".into(), Value::from(d.clone()));
                }
                if let Some(t) = kind {
                    p.insert("type".into(), Value::from(t.clone()));
                }
                if let Some(f) = from {
                    p.insert("from".into(), Value::from(f.clone()));
                }
                ("sendMessage", Value::Object(p))
            }
            Notification::StreamPropertyChanged {
                connection_id,
                stream_id,
                property,
                new_value,
                reason,
            } => (
                "streamPropertyChanged",
                json!({"connectionId": connection_id, "streamId": stream_id, "property": property, "newValue": new_value, "reason": reason}),
            ),
            Notification::IceCandidate {
                sender_connection_id,
                endpoint_name,
                sdp_m_line_index,
                sdp_mid,
                candidate,
            } => (
                "iceCandidate",
                json!({"senderConnectionId": sender_connection_id, "endpointName": endpoint_name, "sdpMLineIndex": sdp_m_line_index, "sdpMid": sdp_mid, "candidate": candidate}),
            ),
            Notification::MediaError { error } => ("mediaError", json!({"error": error})),
        };
        json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
    }
}

/// A response frame with `sessionId` injected into the result (a non-object result is wrapped
/// as `{"value": …}`) or into `error.data`.
pub fn response(id: &Value, rpc_session: Option<&str>, result: Result<Value, RpcError>) -> String {
    match result {
        Ok(v) => {
            let mut obj = match v {
                Value::Object(m) => m,
                other => {
                    let mut m = Map::new();
                    m.insert("value".into(), other);
                    m
                }
            };
            if let Some(s) = rpc_session {
                obj.insert("sessionId".into(), Value::from(s));
            }
            json!({"jsonrpc": "2.0", "id": id, "result": obj}).to_string()
        }
        Err(mut e) => {
            if let Some(s) = rpc_session {
                let mut d = match e.data.take() {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                d.insert("sessionId".into(), Value::from(s));
                e.data = Some(Value::Object(d));
            }
            json!({"jsonrpc": "2.0", "id": id, "error": e}).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_into_what_the_socket_answers() {
        let code = |i: Incoming| match i {
            Incoming::Invalid { id, error } => Some((id, error.code)),
            _ => None,
        };
        assert_eq!(code(parse("{")), Some((Value::Null, -32700)));
        assert_eq!(code(parse("[1]")), Some((Value::Null, -32700)));
        assert_eq!(code(parse(r#"{"id":4}"#)), Some((json!(4), -32600)));
        assert_eq!(
            code(parse(r#"{"id":4,"method":7}"#)),
            Some((json!(4), -32600))
        );
        assert_eq!(parse(r#"{"id":1,"result":{}}"#), Incoming::Response);
        assert_eq!(parse(r#"{"method":"ping"}"#), Incoming::Notification);
        assert_eq!(
            parse(r#"{"id":"x","method":"ping","params":[1]}"#),
            Incoming::Request {
                id: json!("x"),
                method: "ping".into(),
                params: Map::new()
            }
        );
    }

    #[test]
    fn shapes() {
        let t = Notification::ParticipantLeft {
            connection_id: "con_A".into(),
            reason: "disconnect".into(),
        }
        .to_text();
        let v: Value = serde_json::from_str(&t).unwrap_or_default();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","method":"participantLeft","params":{"connectionId":"con_A","reason":"disconnect"}})
        );
        let r: Value = serde_json::from_str(&response(&json!(3), Some("rpc1"), Ok(json!("pong"))))
            .unwrap_or_default();
        assert_eq!(r["result"], json!({"value":"pong","sessionId":"rpc1"}));
        let r: Value = serde_json::from_str(&response(
            &json!(4),
            Some("rpc1"),
            Err(RpcError::new(Code::UserUnauthorized, "no")),
        ))
        .unwrap_or_default();
        assert_eq!(r["error"]["code"], 401);
        assert_eq!(r["error"]["data"]["sessionId"], "rpc1");
    }
}

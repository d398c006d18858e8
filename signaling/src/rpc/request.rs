//! Browser requests, decoded once into typed values (reference §1.5). Decoding keeps OpenVidu's
//! answers for bad params (code -1: "Request element 'X' is missing in RPC method 'M'", or "has
//! the wrong type"); a request that needs a joined participant is checked for one first (803),
//! as OpenVidu does. The values are serde-serializable so they can be handed on as they are.

use kms_client::wire::IceCandidate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::{method, opt_param, param, Code, RpcError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "params", rename_all = "camelCase")]
#[serde(rename_all_fields = "camelCase")]
pub enum Request {
    Connect {
        session_id: String,
    },
    JoinRoom(JoinRoom),
    LeaveRoom,
    PublishVideo(PublishVideo),
    UnpublishVideo,
    ReceiveVideoFrom {
        sender: String,
        sdp_offer: String,
    },
    UnsubscribeFromVideo {
        sender: String,
    },
    /// An empty `candidate` (end of candidates) is decoded as `None`.
    OnIceCandidate {
        endpoint_name: String,
        candidate: Option<IceCandidate>,
    },
    SendMessage {
        message: String,
    },
    StreamPropertyChanged {
        stream_id: String,
        property: String,
        new_value: Value,
        reason: String,
    },
    ForceDisconnect {
        connection_id: String,
    },
    ForceUnpublish {
        stream_id: String,
    },
    /// A publisher's new offer comes as `sdpString`, a subscriber's as `sdpOffer`.
    ReconnectStream {
        stream: String,
        sdp_offer: String,
    },
    VideoData,
    Echo,
    /// `applyFilter`, `execFilterMethod`, … (not available here).
    Filter {
        name: String,
    },
    SpeechToText,
    PrepareReceiveVideoFrom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRoom {
    pub token: String,
    pub session: String,
    pub platform: String,
    pub metadata: String,
    /// The server secret, when the client joins without a token of its own.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishVideo {
    pub sdp_offer: String,
    pub has_audio: bool,
    pub has_video: bool,
    pub do_loopback: bool,
    pub audio_active: Option<bool>,
    pub video_active: Option<bool>,
    pub type_of_video: Option<String>,
    pub frame_rate: Option<i64>,
    pub video_dimensions: Option<String>,
}

/// Whether `name` is answered only for a joined participant (803 before `joinRoom`, checked
/// before its params, as OpenVidu does).
pub fn needs_participant(name: &str) -> bool {
    matches!(
        name,
        method::LEAVE_ROOM
            | method::PUBLISH_VIDEO
            | method::UNPUBLISH_VIDEO
            | method::RECEIVE_VIDEO_FROM
            | method::UNSUBSCRIBE_FROM_VIDEO
            | method::ON_ICE_CANDIDATE
            | method::SEND_MESSAGE
            | method::STREAM_PROPERTY_CHANGED
            | method::FORCE_DISCONNECT
            | method::FORCE_UNPUBLISH
            | method::RECONNECT_STREAM
            | method::VIDEO_DATA
            | method::APPLY_FILTER
            | method::EXEC_FILTER_METHOD
            | method::REMOVE_FILTER
            | method::ADD_FILTER_EVENT_LISTENER
            | method::REMOVE_FILTER_EVENT_LISTENER
    )
}

/// Decodes a request's params (already size-checked, `limits.rs`).
pub fn decode(name: &str, p: &Map<String, Value>) -> Result<Request, RpcError> {
    let m = name;
    Ok(match name {
        method::CONNECT => Request::Connect {
            session_id: param(m, p, "sessionId")?,
        },
        method::JOIN_ROOM => Request::JoinRoom(JoinRoom {
            token: param(m, p, "token")?,
            session: param(m, p, "session")?,
            platform: param(m, p, "platform")?,
            metadata: param(m, p, "metadata")?,
            secret: opt_param(p, "secret").unwrap_or_default(),
        }),
        method::LEAVE_ROOM => Request::LeaveRoom,
        method::PUBLISH_VIDEO => Request::PublishVideo(PublishVideo {
            sdp_offer: param(m, p, "sdpOffer")?,
            has_audio: param(m, p, "hasAudio")?,
            has_video: param(m, p, "hasVideo")?,
            do_loopback: param(m, p, "doLoopback")?,
            audio_active: opt_param(p, "audioActive"),
            video_active: opt_param(p, "videoActive"),
            type_of_video: opt_param(p, "typeOfVideo"),
            frame_rate: opt_param(p, "frameRate"),
            video_dimensions: opt_param(p, "videoDimensions"),
        }),
        method::UNPUBLISH_VIDEO => Request::UnpublishVideo,
        method::RECEIVE_VIDEO_FROM => {
            let sender = param(m, p, "sender")?;
            let Some(sdp_offer) = opt_param(p, "sdpOffer") else {
                return Err(RpcError::new(Code::MissingParam, "Request element 'sdpOffer' is missing in RPC method 'receiveVideoFrom' (this server takes the client-offer path)"));
            };
            Request::ReceiveVideoFrom { sender, sdp_offer }
        }
        method::UNSUBSCRIBE_FROM_VIDEO => Request::UnsubscribeFromVideo {
            sender: param(m, p, "sender")?,
        },
        method::ON_ICE_CANDIDATE => {
            let endpoint_name = param(m, p, "endpointName")?;
            let candidate: String = opt_param(p, "candidate").unwrap_or_default();
            let candidate = (!candidate.is_empty()).then(|| IceCandidate {
                candidate,
                sdp_mid: opt_param(p, "sdpMid").unwrap_or_else(|| "0".into()),
                sdp_m_line_index: opt_param(p, "sdpMLineIndex").unwrap_or(0),
            });
            Request::OnIceCandidate {
                endpoint_name,
                candidate,
            }
        }
        method::SEND_MESSAGE => Request::SendMessage {
            message: param(m, p, "message")?,
        },
        method::STREAM_PROPERTY_CHANGED => {
            let stream_id = param(m, p, "streamId")?;
            let property = param(m, p, "property")?;
            let reason = param(m, p, "reason")?;
            let Some(new_value) = p.get("newValue").filter(|v| !v.is_null()).cloned() else {
                return Err(RpcError::new(
                    Code::MissingParam,
                    "Request element 'newValue' is missing in RPC method 'streamPropertyChanged'",
                ));
            };
            Request::StreamPropertyChanged {
                stream_id,
                property,
                new_value,
                reason,
            }
        }
        method::FORCE_DISCONNECT => Request::ForceDisconnect {
            connection_id: param(m, p, "connectionId")?,
        },
        method::FORCE_UNPUBLISH => Request::ForceUnpublish {
            stream_id: param(m, p, "streamId")?,
        },
        method::RECONNECT_STREAM => {
            let stream = param(m, p, "stream")?;
            let Some(sdp_offer) = opt_param(p, "sdpOffer").or_else(|| opt_param(p, "sdpString"))
            else {
                return Err(RpcError::new(
                    Code::MissingParam,
                    "Request element 'sdpOffer' is missing in RPC method 'reconnectStream'",
                ));
            };
            Request::ReconnectStream { stream, sdp_offer }
        }
        method::VIDEO_DATA => {
            let _: i64 = param(m, p, "height")?;
            let _: i64 = param(m, p, "width")?;
            let _: bool = param(m, p, "videoActive")?;
            let _: bool = param(m, p, "audioActive")?;
            Request::VideoData
        }
        method::ECHO => Request::Echo,
        method::APPLY_FILTER
        | method::EXEC_FILTER_METHOD
        | method::REMOVE_FILTER
        | method::ADD_FILTER_EVENT_LISTENER
        | method::REMOVE_FILTER_EVENT_LISTENER => Request::Filter { name: name.into() },
        method::SUBSCRIBE_TO_STT | method::UNSUBSCRIBE_FROM_STT => Request::SpeechToText,
        method::PREPARE_RECEIVE_VIDEO_FROM => Request::PrepareReceiveVideoFrom,
        _ => {
            return Err(RpcError::new(
                Code::MethodNotFound,
                format!("Method '{name}' not found"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn openvidu_browser_frames_decode_to_typed_requests() {
        let join = decode(
            "joinRoom",
            &params(json!({"token": "t", "session": "s", "platform": "Chrome", "metadata": "{}"})),
        );
        assert_eq!(
            join,
            Ok(Request::JoinRoom(JoinRoom {
                token: "t".into(),
                session: "s".into(),
                platform: "Chrome".into(),
                metadata: "{}".into(),
                secret: String::new(),
            }))
        );
        // A publisher's reconnection offer comes as sdpString.
        let r = decode(
            "reconnectStream",
            &params(json!({"stream": "str_x", "sdpString": "v=0"})),
        );
        assert_eq!(
            r,
            Ok(Request::ReconnectStream {
                stream: "str_x".into(),
                sdp_offer: "v=0".into()
            })
        );
        // The end-of-candidates candidate is no candidate.
        let c = decode(
            "onIceCandidate",
            &params(json!({"endpointName": "con_a", "candidate": ""})),
        );
        assert_eq!(
            c,
            Ok(Request::OnIceCandidate {
                endpoint_name: "con_a".into(),
                candidate: None
            })
        );
    }

    #[test]
    fn bad_params_get_openvidus_answers() {
        let e = decode(
            "publishVideo",
            &params(json!({"sdpOffer": "v=0", "hasAudio": "yes"})),
        );
        assert_eq!(
            e.map_err(|e| (e.code, e.message)),
            Err((
                -1,
                "Request element 'hasAudio' of RPC method 'publishVideo' has the wrong type".into()
            ))
        );
        let e = decode("sendMessage", &Map::new());
        assert_eq!(
            e.map_err(|e| e.message),
            Err("Request element 'message' is missing in RPC method 'sendMessage'".into())
        );
        assert_eq!(decode("nope", &Map::new()).map_err(|e| e.code), Err(-32601));
        assert!(needs_participant("publishVideo") && !needs_participant("joinRoom"));
        assert!(
            !needs_participant("nope"),
            "unknown methods answer -32601, not 803"
        );
    }

    #[test]
    fn requests_round_trip_as_method_and_params() {
        let r = Request::ForceUnpublish {
            stream_id: "str_CAM_x_con_a".into(),
        };
        let v = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(
            v,
            json!({"method": "forceUnpublish", "params": {"streamId": "str_CAM_x_con_a"}})
        );
        assert_eq!(serde_json::from_value::<Request>(v).ok(), Some(r));
        assert_eq!(
            serde_json::to_value(Request::LeaveRoom).unwrap_or_default(),
            json!({"method": "leaveRoom"})
        );
    }
}

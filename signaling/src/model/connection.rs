//! A connection: created pending (with its token) by REST, made active by `joinRoom`.

use serde_json::{json, Value};

use super::ConnectionProps;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    Subscriber,
    Publisher,
    Moderator,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SUBSCRIBER" => Some(Role::Subscriber),
            "PUBLISHER" => Some(Role::Publisher),
            "MODERATOR" => Some(Role::Moderator),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Subscriber => "SUBSCRIBER",
            Role::Publisher => "PUBLISHER",
            Role::Moderator => "MODERATOR",
        }
    }

    pub fn can_publish(self) -> bool {
        self != Role::Subscriber
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Active {
    pub active_at: u64,
    pub platform: String,
    pub client_data: String,
    pub ip: String,
    /// The participant's private rpc session id.
    pub rpc: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MediaOptions {
    pub has_audio: bool,
    pub has_video: bool,
    pub audio_active: bool,
    pub video_active: bool,
    pub type_of_video: Option<String>,
    pub frame_rate: Option<i64>,
    pub video_dimensions: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Publisher {
    pub stream_id: String,
    pub created_at: u64,
    pub media: MediaOptions,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    pub id: String,
    pub token: String,
    pub props: ConnectionProps,
    pub created_at: u64,
    pub active: Option<Active>,
    pub publisher: Option<Publisher>,
    /// (streamId, createdAt) of each subscription.
    pub subscriptions: Vec<(String, u64)>,
}

impl Connection {
    pub fn role(&self) -> Role {
        self.props.role
    }

    /// The `metadata` string other participants see: client data and server data joined by
    /// `%/%` (only the non-empty parts), as OpenVidu does.
    pub fn metadata(&self) -> String {
        let client = self
            .active
            .as_ref()
            .map(|a| a.client_data.as_str())
            .unwrap_or("");
        match (client.is_empty(), self.props.data.is_empty()) {
            (false, false) => format!("{client}%/%{}", self.props.data),
            (false, true) => client.to_string(),
            (true, false) => self.props.data.clone(),
            (true, true) => String::new(),
        }
    }

    /// A stream as the browser protocol describes it (participantPublished, joinRoom `value`).
    pub fn stream_json(&self) -> Option<Value> {
        let p = self.publisher.as_ref()?;
        Some(json!({
            "id": p.stream_id, "createdAt": p.created_at,
            "hasAudio": p.media.has_audio, "hasVideo": p.media.has_video,
            "audioActive": p.media.audio_active, "videoActive": p.media.video_active,
            "typeOfVideo": p.media.type_of_video, "frameRate": p.media.frame_rate.unwrap_or(-1),
            "videoDimensions": p.media.video_dimensions, "filter": {},
        }))
    }

    /// A remote participant as `joinRoom`'s `value[]` describes it: never a `role`.
    pub fn remote_json(&self) -> Value {
        let mut v = json!({"id": self.id, "createdAt": self.active.as_ref().map(|a| a.active_at).unwrap_or(self.created_at), "metadata": self.metadata()});
        if let Some(s) = self.stream_json() {
            v["streams"] = json!([s]);
        }
        v
    }

    /// The REST Connection object (§3.3).
    pub fn rest_json(&self, session_id: &str) -> Value {
        let a = self.active.as_ref();
        let publishers = a.map(|_| {
            Value::Array(
                self.publisher
                    .iter()
                    .map(|p| {
                        let mut mo = json!({"hasAudio": p.media.has_audio, "hasVideo": p.media.has_video});
                        if p.media.has_audio {
                            mo["audioActive"] = json!(p.media.audio_active);
                        }
                        if p.media.has_video {
                            mo["videoActive"] = json!(p.media.video_active);
                            mo["typeOfVideo"] = json!(p.media.type_of_video);
                            mo["frameRate"] = json!(p.media.frame_rate.unwrap_or(-1));
                            mo["videoDimensions"] = json!(p.media.video_dimensions);
                        }
                        mo["filter"] = json!({});
                        json!({"createdAt": p.created_at, "streamId": p.stream_id, "mediaOptions": mo})
                    })
                    .collect(),
            )
        });
        let subscribers = a.map(|_| {
            Value::Array(
                self.subscriptions
                    .iter()
                    .map(|(s, t)| json!({"createdAt": t, "streamId": s}))
                    .collect(),
            )
        });
        json!({
            "id": self.id, "object": "connection",
            "status": if a.is_some() { "active" } else { "pending" },
            "connectionId": self.id, "sessionId": session_id,
            "createdAt": self.created_at,
            "activeAt": a.map(|a| a.active_at),
            "location": a.map(|_| "unknown"),
            "ip": a.map(|a| a.ip.clone()),
            "platform": a.map(|a| a.platform.clone()),
            "token": self.token,
            "type": self.props.kind,
            "record": self.props.record,
            "role": self.props.role.as_str(),
            "kurentoOptions": self.props.kurento_options,
            "customIceServers": self.props.custom_ice_servers,
            "rtspUri": null, "adaptativeBitrate": null, "onlyPlayWithSubscribers": null, "networkCache": null,
            "serverData": self.props.data,
            "clientData": a.map(|a| a.client_data.clone()),
            "publishers": publishers,
            "subscribers": subscribers,
        })
    }
}

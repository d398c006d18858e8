//! Typed handles for the objects rtcpool uses. Each is an id plus the client; every method is
//! one `invoke` (or `release`/`subscribe`).

use serde_json::{json, Map, Value};

use crate::client::{ClientError, KurentoClient};
use crate::events::Subscription;
use crate::wire::complex::OfferOptions;
use crate::wire::IceCandidate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Audio,
    Video,
    Data,
}

impl MediaType {
    fn wire(self) -> &'static str {
        match self {
            MediaType::Audio => "AUDIO",
            MediaType::Video => "VIDEO",
            MediaType::Data => "DATA",
        }
    }
}

fn params(v: Value) -> Option<Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn as_string(v: Option<Value>) -> Result<String, ClientError> {
    v.and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| ClientError::Protocol("expected a string".into()))
}

macro_rules! object_common {
    ($t:ident) => {
        impl $t {
            pub fn id(&self) -> &str {
                &self.id
            }

            pub fn client(&self) -> &KurentoClient {
                &self.client
            }

            pub async fn release(&self) -> Result<(), ClientError> {
                self.client.release(&self.id).await
            }

            pub async fn get_name(&self) -> Result<String, ClientError> {
                as_string(self.client.invoke(&self.id, "getName", None).await?)
            }

            pub async fn set_name(&self, name: &str) -> Result<(), ClientError> {
                self.client.invoke(&self.id, "setName", params(json!({"name": name}))).await.map(|_| ())
            }

            pub async fn add_tag(&self, key: &str, value: &str) -> Result<(), ClientError> {
                self.client.invoke(&self.id, "addTag", params(json!({"key": key, "value": value}))).await.map(|_| ())
            }

            /// Every tag as `(key, value)`, in the order they were added.
            pub async fn get_tags(&self) -> Result<Vec<(String, String)>, ClientError> {
                let v = self.client.invoke(&self.id, "getTags", None).await?;
                Ok(v.and_then(|v| v.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| Some((t.get("key")?.as_str()?.to_string(), t.get("value")?.as_str()?.to_string())))
                    .collect())
            }

            /// Stops this client's session from holding the object (Kurento's `unref`): reading
            /// an object makes the reader's session one of its holders, which would keep it
            /// alive after its owner's session expired.
            pub async fn unref(&self) -> Result<(), ClientError> {
                self.client
                    .call(crate::wire::Method::Unref(crate::wire::method::RefParams {
                        object: self.id.clone(),
                        session_id: None,
                    }))
                    .await
                    .map(|_| ())
            }

            /// Makes this client's session one of the object's holders (Kurento's `ref`): it
            /// then outlives the session that created it (a signaling node adopting another's
            /// sessions keeps their objects this way).
            pub async fn hold(&self) -> Result<(), ClientError> {
                self.client
                    .call(crate::wire::Method::Ref(crate::wire::method::RefParams {
                        object: self.id.clone(),
                        session_id: None,
                    }))
                    .await
                    .map(|_| ())
            }

            /// Subscribes to one of the class's events (e.g. `"IceCandidateFound"`).
            pub async fn subscribe(&self, event: &str) -> Result<Subscription, ClientError> {
                Subscription::new(&self.client, &self.id, event).await
            }
        }
    };
}

#[derive(Clone)]
pub struct MediaPipeline {
    client: KurentoClient,
    id: String,
}
object_common!(MediaPipeline);

impl MediaPipeline {
    pub(crate) fn new(client: KurentoClient, id: String) -> Self {
        Self { client, id }
    }

    /// Re-attaches to an existing pipeline by id (after a resumed reconnection).
    pub fn from_id(client: KurentoClient, id: String) -> Self {
        Self { client, id }
    }

    pub async fn create_webrtc_endpoint(&self) -> Result<WebRtcEndpoint, ClientError> {
        let id = self.client.create("WebRtcEndpoint", ctor(&self.id)).await?;
        Ok(WebRtcEndpoint {
            client: self.client.clone(),
            id,
        })
    }

    pub async fn create_pass_through(&self) -> Result<PassThrough, ClientError> {
        let id = self.client.create("PassThrough", ctor(&self.id)).await?;
        Ok(PassThrough {
            client: self.client.clone(),
            id,
        })
    }

    pub async fn get_children(&self) -> Result<Vec<String>, ClientError> {
        let v = self.client.invoke(&self.id, "getChildren", None).await?;
        Ok(string_list(v))
    }
}

fn ctor(pipeline: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("mediaPipeline".into(), Value::from(pipeline));
    m
}

fn string_list(v: Option<Value>) -> Vec<String> {
    v.and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

macro_rules! element_common {
    ($t:ident) => {
        impl $t {
            /// Forwards this element's media to `sink` (all kinds, or one).
            pub async fn connect(&self, sink: &str, media: Option<MediaType>) -> Result<(), ClientError> {
                let mut p = json!({"sink": sink});
                if let Some(m) = media {
                    p["mediaType"] = Value::from(m.wire());
                }
                self.client.invoke(&self.id, "connect", params(p)).await.map(|_| ())
            }

            pub async fn disconnect(&self, sink: &str, media: Option<MediaType>) -> Result<(), ClientError> {
                let mut p = json!({"sink": sink});
                if let Some(m) = media {
                    p["mediaType"] = Value::from(m.wire());
                }
                self.client.invoke(&self.id, "disconnect", params(p)).await.map(|_| ())
            }

            /// `getStats`: the element's statistics as Kurento returns them (a map of stats id
            /// to `RTCInboundRTPStreamStats`, `RTCOutboundRTPStreamStats`, … objects).
            pub async fn get_stats(&self, media: Option<MediaType>) -> Result<Map<String, Value>, ClientError> {
                let mut p = json!({});
                if let Some(m) = media {
                    p["mediaType"] = Value::from(m.wire());
                }
                let v = self.client.invoke(&self.id, "getStats", params(p)).await?;
                Ok(v.and_then(|v| v.as_object().cloned()).unwrap_or_default())
            }

            /// `isMediaFlowingIn` / `isMediaFlowingOut` for one media type.
            pub async fn is_media_flowing(&self, inbound: bool, media: MediaType) -> Result<bool, ClientError> {
                let op = if inbound { "isMediaFlowingIn" } else { "isMediaFlowingOut" };
                let p = json!({"mediaType": media.wire()});
                let v = self.client.invoke(&self.id, op, params(p)).await?;
                Ok(v.and_then(|v| v.as_bool()).unwrap_or(false))
            }
        }
    };
}

#[derive(Clone)]
pub struct PassThrough {
    client: KurentoClient,
    id: String,
}
object_common!(PassThrough);
element_common!(PassThrough);

impl PassThrough {
    pub fn from_id(client: KurentoClient, id: String) -> Self {
        Self { client, id }
    }
}

#[derive(Clone)]
pub struct WebRtcEndpoint {
    client: KurentoClient,
    id: String,
}
object_common!(WebRtcEndpoint);
element_common!(WebRtcEndpoint);

impl WebRtcEndpoint {
    pub fn from_id(client: KurentoClient, id: String) -> Self {
        Self { client, id }
    }

    pub async fn process_offer(&self, offer: &str) -> Result<String, ClientError> {
        as_string(
            self.client
                .invoke(&self.id, "processOffer", params(json!({"offer": offer})))
                .await?,
        )
    }

    pub async fn generate_offer(
        &self,
        options: Option<OfferOptions>,
    ) -> Result<String, ClientError> {
        let p = match options {
            Some(o) => {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["__module__"] = Value::from("kurento");
                v["__type__"] = Value::from("OfferOptions");
                json!({ "options": v })
            }
            None => json!({}),
        };
        as_string(
            self.client
                .invoke(&self.id, "generateOffer", params(p))
                .await?,
        )
    }

    pub async fn process_answer(&self, answer: &str) -> Result<String, ClientError> {
        as_string(
            self.client
                .invoke(&self.id, "processAnswer", params(json!({"answer": answer})))
                .await?,
        )
    }

    pub async fn gather_candidates(&self) -> Result<(), ClientError> {
        self.client
            .invoke(&self.id, "gatherCandidates", None)
            .await
            .map(|_| ())
    }

    pub async fn add_ice_candidate(&self, c: &IceCandidate) -> Result<(), ClientError> {
        self.client
            .invoke(
                &self.id,
                "addIceCandidate",
                params(json!({"candidate": c.to_wire()})),
            )
            .await
            .map(|_| ())
    }

    pub async fn get_connection_state(&self) -> Result<String, ClientError> {
        as_string(
            self.client
                .invoke(&self.id, "getConnectionState", None)
                .await?,
        )
    }

    /// The local (`true`) or remote session description as negotiated.
    pub async fn session_descriptor(&self, local: bool) -> Result<String, ClientError> {
        let op = if local {
            "getLocalSessionDescriptor"
        } else {
            "getRemoteSessionDescriptor"
        };
        as_string(self.client.invoke(&self.id, op, None).await?)
    }

    pub async fn get_media_state(&self) -> Result<String, ClientError> {
        as_string(self.client.invoke(&self.id, "getMediaState", None).await?)
    }

    /// kbps, like every Kurento bandwidth property.
    pub async fn set_bandwidth(&self, property: &str, kbps: u32) -> Result<(), ClientError> {
        let mut chars = property.chars();
        let op = match chars.next() {
            Some(c) => format!("set{}{}", c.to_ascii_uppercase(), chars.as_str()),
            None => return Err(ClientError::Protocol("empty property".into())),
        };
        self.client
            .invoke(&self.id, &op, params(json!({ property: kbps })))
            .await
            .map(|_| ())
    }
}

#[derive(Clone)]
pub struct ServerManager {
    client: KurentoClient,
}

impl ServerManager {
    pub(crate) fn new(client: KurentoClient) -> Self {
        Self { client }
    }

    async fn call(&self, op: &str, p: Option<Map<String, Value>>) -> Result<Value, ClientError> {
        Ok(self
            .client
            .invoke(crate::wire::ids::SERVER_MANAGER_ID, op, p)
            .await?
            .unwrap_or(Value::Null))
    }

    pub async fn get_info(&self) -> Result<Value, ClientError> {
        self.call("getInfo", None).await
    }

    pub async fn get_cpu_count(&self) -> Result<u64, ClientError> {
        self.call("getCpuCount", None)
            .await?
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("cpu count".into()))
    }

    /// Percent of all cores used by the server process over `interval_ms` (blocks that long).
    pub async fn get_used_cpu(&self, interval_ms: u64) -> Result<f64, ClientError> {
        self.call("getUsedCpu", params(json!({"interval": interval_ms})))
            .await?
            .as_f64()
            .ok_or_else(|| ClientError::Protocol("used cpu".into()))
    }

    /// Resident memory of the server process, KiB.
    pub async fn get_used_memory(&self) -> Result<u64, ClientError> {
        self.call("getUsedMemory", None)
            .await?
            .as_u64()
            .ok_or_else(|| ClientError::Protocol("memory".into()))
    }

    pub async fn get_pipelines(&self) -> Result<Vec<String>, ClientError> {
        Ok(string_list(Some(self.call("getPipelines", None).await?)))
    }

    pub async fn get_sessions(&self) -> Result<Vec<String>, ClientError> {
        Ok(string_list(Some(self.call("getSessions", None).await?)))
    }

    pub async fn subscribe(&self, event: &str) -> Result<Subscription, ClientError> {
        Subscription::new(&self.client, crate::wire::ids::SERVER_MANAGER_ID, event).await
    }
}

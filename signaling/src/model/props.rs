//! Request bodies of `POST /sessions` and `POST /sessions/{id}/connection`, with OpenVidu's
//! defaults; every field may be absent or `null`. Invalid values are refused whole.

use rtcpool_config::IceServer;
use serde_json::{json, Map, Value};

use super::Role;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionProps {
    pub media_mode: String,
    pub recording_mode: String,
    pub custom_session_id: String,
    pub default_recording_properties: Value,
    pub forced_video_codec: String,
    pub allow_transcoding: bool,
    pub media_node: Option<String>,
    /// rtcpool's addition: engines carrying all these labels (e.g. `{"region": "eu"}`).
    #[serde(default)]
    pub media_node_labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionProps {
    pub kind: String,
    pub data: String,
    pub record: bool,
    pub role: Role,
    pub kurento_options: Option<Value>,
    pub custom_ice_servers: Vec<Value>,
}

fn field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn string_in(
    body: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    default: &str,
) -> Result<String, String> {
    match field(body, key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(v) => Err(format!("'{key}' must be one of {allowed:?}, not {v}")),
    }
}

fn boolean(body: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match field(body, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("'{key}' must be a boolean, not {v}")),
    }
}

impl SessionProps {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, String> {
        let custom = match field(body, "customSessionId") {
            None => String::new(),
            Some(Value::String(s)) if s.is_empty() || crate::ids::valid_custom_session_id(s) => {
                s.clone()
            }
            Some(_) => {
                return Err(format!(
                    "'customSessionId' must be 1–{} characters of [a-zA-Z0-9_-]",
                    crate::limits::CUSTOM_SESSION_ID
                ))
            }
        };
        if custom.starts_with(crate::demo::PREFIX) {
            return Err(format!(
                "'customSessionId' must not start with '{}' (reserved for the demo page)",
                crate::demo::PREFIX
            ));
        }
        let media_node = match field(body, "mediaNode") {
            None => None,
            Some(Value::Object(o)) => match o.get("id") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => return Err("'mediaNode' must be an object with a string 'id'".into()),
            },
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(format!("'mediaNode' must be an object, not {v}")),
        };
        let media_node_labels = match field(body, "mediaNodeLabels") {
            None => Default::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| "'mediaNodeLabels' must be an object of strings".to_string())?,
        };
        let codec = string_in(
            body,
            "forcedVideoCodec",
            &["MEDIA_SERVER_PREFERRED", "VP8", "H264", "VP9", "NONE"],
            "MEDIA_SERVER_PREFERRED",
        )?;
        Ok(Self {
            media_mode: string_in(body, "mediaMode", &["ROUTED", "RELAYED"], "ROUTED")?,
            recording_mode: string_in(body, "recordingMode", &["ALWAYS", "MANUAL"], "MANUAL")?,
            custom_session_id: custom,
            default_recording_properties: recording_defaults(field(
                body,
                "defaultRecordingProperties",
            ))?,
            forced_video_codec: codec,
            allow_transcoding: boolean(body, "allowTranscoding", false)?,
            media_node,
            media_node_labels,
        })
    }
}

impl SessionProps {
    /// A demo room's session (`demo.rs`): OpenVidu's defaults, with an id REST could not have
    /// chosen.
    pub fn demo(id: String) -> Self {
        Self {
            media_mode: "ROUTED".into(),
            recording_mode: "MANUAL".into(),
            custom_session_id: id,
            default_recording_properties: recording_defaults(None).unwrap_or_default(),
            forced_video_codec: "MEDIA_SERVER_PREFERRED".into(),
            allow_transcoding: false,
            media_node: None,
            media_node_labels: Default::default(),
        }
    }

    /// Where this session may be placed.
    pub fn steer(&self) -> crate::pool::select::steer::Steer {
        crate::pool::select::steer::Steer {
            node: self.media_node.clone(),
            labels: self.media_node_labels.clone(),
        }
    }
}

/// `defaultRecordingProperties` with every default filled in (as `RecordingProperties#toJson`).
fn recording_defaults(given: Option<&Value>) -> Result<Value, String> {
    let mut out = json!({
        "name": "", "hasAudio": true, "hasVideo": true, "outputMode": "COMPOSED",
        "recordingLayout": "BEST_FIT", "resolution": "1280x720", "frameRate": 25, "shmSize": 536_870_912u64,
    });
    match given {
        None => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                if !v.is_null() {
                    out[k] = v.clone();
                }
            }
        }
        Some(v) => {
            return Err(format!(
                "'defaultRecordingProperties' must be an object, not {v}"
            ))
        }
    }
    Ok(out)
}

impl ConnectionProps {
    pub fn parse(body: &Map<String, Value>, default_ice: &[IceServer]) -> Result<Self, String> {
        let role = match field(body, "role") {
            None => Role::Publisher,
            Some(Value::String(s)) => Role::parse(s).ok_or_else(|| {
                format!("'role' must be PUBLISHER, SUBSCRIBER or MODERATOR, not {s}")
            })?,
            Some(v) => return Err(format!("'role' must be a string, not {v}")),
        };
        let data = match field(body, "data") {
            None => String::new(),
            Some(Value::String(s)) => {
                crate::limits::check_field("data", s, crate::limits::SERVER_DATA)?;
                s.clone()
            }
            Some(_) => return Err("'data' must be a string".into()),
        };
        let kurento_options = match field(body, "kurentoOptions") {
            None => None,
            Some(Value::Object(o)) => Some(kurento_options(o)?),
            Some(v) => return Err(format!("'kurentoOptions' must be an object, not {v}")),
        };
        let custom_ice_servers = match field(body, "customIceServers") {
            None => default_ice
                .iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .collect(),
            Some(Value::Array(a)) => {
                for s in a {
                    let ok = s.get("url").and_then(Value::as_str).is_some_and(|u| {
                        ["stun:", "stuns:", "turn:", "turns:"]
                            .iter()
                            .any(|p| u.starts_with(p))
                    });
                    if !ok {
                        return Err(format!(
                            "each of 'customIceServers' needs a stun:/turn: 'url', not {s}"
                        ));
                    }
                }
                a.clone()
            }
            Some(v) => return Err(format!("'customIceServers' must be an array, not {v}")),
        };
        Ok(Self {
            kind: string_in(body, "type", &["WEBRTC", "IPCAM"], "WEBRTC")?,
            data,
            record: boolean(body, "record", true)?,
            role,
            kurento_options,
            custom_ice_servers,
        })
    }
}

fn kurento_options(o: &Map<String, Value>) -> Result<Value, String> {
    let mut out = Map::new();
    for key in [
        "videoMaxRecvBandwidth",
        "videoMinRecvBandwidth",
        "videoMaxSendBandwidth",
        "videoMinSendBandwidth",
    ] {
        match o.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64().is_some() => {
                out.insert(key.into(), v.clone());
            }
            Some(v) => {
                return Err(format!(
                    "'kurentoOptions.{key}' must be a non-negative integer, not {v}"
                ))
            }
        }
    }
    match o.get("allowedFilters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            out.insert("allowedFilters".into(), Value::Array(a.clone()));
        }
        Some(v) => {
            return Err(format!(
                "'kurentoOptions.allowedFilters' must be an array of strings, not {v}"
            ))
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn nulls_mean_defaults_and_bad_values_are_refused() {
        let p = SessionProps::parse(&obj(
            json!({"mediaMode": null, "customSessionId": "", "defaultRecordingProperties": {"name": null, "hasAudio": false}}),
        ));
        let Ok(p) = p else { panic!("{p:?}") };
        assert_eq!(
            (p.media_mode.as_str(), p.recording_mode.as_str()),
            ("ROUTED", "MANUAL")
        );
        assert_eq!(p.default_recording_properties["hasAudio"], false);
        assert_eq!(p.default_recording_properties["resolution"], "1280x720");
        assert!(SessionProps::parse(&obj(json!({"mediaMode": "MESH"}))).is_err());
        assert!(SessionProps::parse(&obj(json!({"customSessionId": "a b"}))).is_err());
        let long = "a".repeat(crate::limits::CUSTOM_SESSION_ID + 1);
        assert!(SessionProps::parse(&obj(json!({"customSessionId": long}))).is_err());
        assert!(SessionProps::parse(&obj(json!({"customSessionId": "demo_x"}))).is_err());
        let big = "d".repeat(crate::limits::SERVER_DATA + 1);
        assert!(ConnectionProps::parse(&obj(json!({"data": big})), &[]).is_err());
        let c = ConnectionProps::parse(
            &obj(
                json!({"type": null, "data": null, "record": null, "role": null, "kurentoOptions": null, "customIceServers": null}),
            ),
            &[],
        );
        let Ok(c) = c else { panic!("{c:?}") };
        assert_eq!(
            (c.kind.as_str(), c.role, c.record),
            ("WEBRTC", Role::Publisher, true)
        );
        assert!(ConnectionProps::parse(&obj(json!({"role": "ADMIN"})), &[]).is_err());
        assert!(ConnectionProps::parse(&obj(json!({"record": "yes"})), &[]).is_err());
    }
}

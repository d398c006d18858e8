//! `webRtcStats=true` on the REST API: per publisher and subscriber endpoint, what OpenVidu's
//! `withStatsToJson` shows (`webrtcEndpointName`, `localSdp`, `remoteSdp`, the candidates each
//! side trickled, the selected pair's `localCandidate` / `remoteCandidate`, `events`) plus the
//! engine's Kurento `getStats` as `serverStats`. Read from the engine without waiting for the session's other work,
//! every endpoint at once, each bounded in time.

use futures::future::join_all;
use kms_client::WebRtcEndpoint;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

use super::trace::SharedTrace;
use crate::app::App;

/// One endpoint whose figures are asked for.
pub struct Target {
    /// Its owner: the publisher, or the subscriber.
    pub connection: String,
    /// The stream it publishes or receives.
    pub stream_id: String,
    pub name: String,
    pub endpoint: WebRtcEndpoint,
    pub trace: SharedTrace,
}

/// How long one endpoint's figures may take before they are left out.
const ASK: Duration = Duration::from_secs(2);

/// (connection, stream id) → the fields to add to that publisher or subscriber.
pub type Figures = HashMap<(String, String), Value>;

impl App {
    /// The WebRTC figures of every endpoint of `session_id` (empty when it has no media here).
    pub async fn webrtc_figures(&self, session_id: &str) -> Figures {
        let Some(owner) = self.session(session_id) else {
            return Figures::new();
        };
        let Some(targets) = owner.peek(|m| m.webrtc_targets()).await else {
            return Figures::new();
        };
        join_all(targets.into_iter().map(|t| async move {
            let ep = &t.endpoint;
            let asked = tokio::time::timeout(ASK, async {
                futures::join!(
                    ep.session_descriptor(true),
                    ep.session_descriptor(false),
                    ep.get_stats(None)
                )
            })
            .await;
            let (local, remote, stats) = match asked {
                Ok((l, r, s)) => (l.ok(), r.ok(), s.unwrap_or_default()),
                Err(_) => (None, None, Map::new()),
            };
            let mut v = t.trace.lock().json();
            v["webrtcEndpointName"] = json!(t.name);
            v["localSdp"] = json!(local);
            v["remoteSdp"] = json!(remote);
            v["localCandidate"] = json!(candidate(&stats, "localcandidate"));
            v["remoteCandidate"] = json!(candidate(&stats, "remotecandidate"));
            v["serverStats"] = Value::Object(stats);
            ((t.connection, t.stream_id), v)
        }))
        .await
        .into_iter()
        .collect()
    }
}

/// The selected pair's candidate of that side, as an SDP candidate line.
fn candidate(stats: &Map<String, Value>, ty: &str) -> Option<String> {
    stats
        .values()
        .find(|s| s["type"] == ty)
        .and_then(|s| s["candidate"].as_str())
        .map(str::to_string)
}

/// Adds `figures` to a REST Connection object's publishers and subscribers.
pub fn add_to_connection(conn: &mut Value, figures: &Figures) {
    let id = conn["connectionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for list in ["publishers", "subscribers"] {
        let Some(items) = conn[list].as_array_mut() else {
            continue;
        };
        for item in items {
            let stream = item["streamId"].as_str().unwrap_or_default().to_string();
            if let (Some(f), Some(obj)) = (
                figures.get(&(id.clone(), stream.clone())),
                item.as_object_mut(),
            ) {
                if let Some(fields) = f.as_object() {
                    obj.extend(fields.clone());
                }
                if list == "subscribers" {
                    if let Some(p) = crate::ids::connection_of_stream(&stream) {
                        obj.insert("publisher".into(), json!(p));
                    }
                }
            }
        }
    }
}

/// Adds `figures` to every connection of a REST Session object.
pub fn add_to_session(session: &mut Value, figures: &Figures) {
    if let Some(conns) = session["connections"]["content"].as_array_mut() {
        for c in conns {
            add_to_connection(c, figures);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_land_on_their_publisher_and_subscriber() {
        let mut figures = Figures::new();
        figures.insert(
            ("con_A".into(), "str_CAM_x_con_A".into()),
            json!({"webrtcEndpointName": "str_CAM_x_con_A", "localSdp": "v=0"}),
        );
        figures.insert(
            ("con_B".into(), "str_CAM_x_con_A".into()),
            json!({"webrtcEndpointName": "con_B_str_CAM_x_con_A"}),
        );
        let mut s = json!({"connections": {"content": [
            {"connectionId": "con_A", "publishers": [{"streamId": "str_CAM_x_con_A"}], "subscribers": []},
            {"connectionId": "con_B", "publishers": [], "subscribers": [{"streamId": "str_CAM_x_con_A", "createdAt": 1}]},
        ]}});
        add_to_session(&mut s, &figures);
        let c = &s["connections"]["content"];
        assert_eq!(c[0]["publishers"][0]["localSdp"], "v=0");
        assert_eq!(
            c[1]["subscribers"][0]["webrtcEndpointName"],
            "con_B_str_CAM_x_con_A"
        );
        assert_eq!(c[1]["subscribers"][0]["publisher"], "con_A");
        assert_eq!(c[1]["subscribers"][0]["createdAt"], 1);
    }
}

//! The bodies of webhook events, in OpenVidu's shapes (reference §5): flat JSON with `event`,
//! `timestamp` and, for session events, `sessionId` and `uniqueSessionId`
//! (`<sessionId>_<createdAt>`), plus each event's fields, built here from the model.

use serde_json::{json, Map, Value};

use crate::model::{Connection, Publisher, Session};

pub fn body(
    event: &str,
    session: Option<(&str, u64)>,
    mut fields: Map<String, Value>,
    now_ms: u64,
) -> Value {
    fields.insert("event".into(), json!(event));
    fields.insert("timestamp".into(), json!(now_ms));
    if let Some((id, created)) = session {
        fields.insert("sessionId".into(), json!(id));
        fields.insert("uniqueSessionId".into(), json!(format!("{id}_{created}")));
    }
    Value::Object(fields)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `sessionDestroyed`: `startTime`, `duration` (s), `reason`.
pub fn session_destroyed(s: &Session, reason: &str, now_ms: u64) -> Map<String, Value> {
    object(json!({
        "startTime": s.created_at,
        "duration": now_ms.saturating_sub(s.created_at) / 1000,
        "reason": reason,
    }))
}

/// `participantJoined` (and, with `left`, `participantLeft`'s extra `startTime`, `duration`,
/// `reason`).
pub fn participant(c: &Connection, left: Option<(&str, u64)>) -> Map<String, Value> {
    let a = c.active.as_ref();
    let mut m = object(json!({
        "participantId": c.id,
        "connectionId": c.id,
        "location": "unknown",
        "ip": a.map(|a| a.ip.clone()),
        "platform": a.map(|a| a.platform.clone()),
        "clientData": a.map(|a| a.client_data.clone()),
        "serverData": c.props.data,
    }));
    if let Some((reason, now_ms)) = left {
        let start = a.map_or(c.created_at, |a| a.active_at);
        m.insert("startTime".into(), json!(start));
        m.insert(
            "duration".into(),
            json!(now_ms.saturating_sub(start) / 1000),
        );
        m.insert("reason".into(), json!(reason));
    }
    m
}

/// `webrtcConnectionCreated`/`Destroyed` of `owner`'s stream: `OUTBOUND` for the publisher
/// itself, `INBOUND` for `subscriber` receiving it (since `started`). With `ended`, the
/// destroyed event's `startTime`, `duration` and `reason`.
pub fn webrtc_connection(
    owner: &str,
    p: &Publisher,
    subscriber: Option<&str>,
    started: u64,
    ended: Option<(&str, u64)>,
) -> Map<String, Value> {
    let me = subscriber.unwrap_or(owner);
    let mut m = object(json!({
        "participantId": me,
        "connectionId": me,
        "streamId": p.stream_id,
        "connection": if subscriber.is_some() { "INBOUND" } else { "OUTBOUND" },
        "videoSource": p.media.type_of_video,
        "videoFramerate": p.media.frame_rate,
        "videoDimensions": p.media.video_dimensions,
        "audioEnabled": p.media.has_audio,
        "videoEnabled": p.media.has_video,
    }));
    if subscriber.is_some() {
        m.insert("receivingFrom".into(), json!(owner));
    }
    if let Some((reason, now_ms)) = ended {
        m.insert("startTime".into(), json!(started));
        m.insert(
            "duration".into(),
            json!(now_ms.saturating_sub(started) / 1000),
        );
        m.insert("reason".into(), json!(reason));
    }
    m
}

/// `nodeCrashed` (with the sessions it hosted and when it dropped) or `nodeRecovered` of a
/// media node (the URI without its secret).
pub fn node(e: &crate::pool::EngineSnapshot, crashed: bool) -> Map<String, Value> {
    let mut m = object(json!({
        "id": e.id, "environmentId": null, "ip": e.ip, "uri": e.uri,
        "nodeRole": "medianode", "clusterId": null,
    }));
    if crashed {
        m.insert("sessionIds".into(), json!(e.sessions));
        m.insert("recordingIds".into(), json!([]));
        m.insert("broadcasts".into(), json!([]));
        m.insert("timeOfDisconnection".into(), json!(e.disconnection_time));
    }
    m
}

/// `mediaNodeStatusChanged` of a media node (Pro's statuses: `launching`, `running`,
/// `waiting-idle-to-terminate`, `terminated`).
pub fn node_status(e: &crate::pool::EngineSnapshot, old: &str, new: &str) -> Map<String, Value> {
    let mut m = node(e, false);
    m.remove("nodeRole");
    m.insert("oldStatus".into(), json!(old));
    m.insert("newStatus".into(), json!(new));
    m
}

/// `signalSent`: `from` (null for REST), `to`, `type`, `data`.
pub fn signal(
    from: Option<&str>,
    to: &[String],
    kind: Option<&str>,
    data: Option<&str>,
) -> Map<String, Value> {
    object(json!({"from": from, "to": to, "type": kind, "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_flat_with_the_common_fields() {
        let b = body(
            "sessionDestroyed",
            Some(("ses_A", 1_000)),
            object(json!({"reason": "lastParticipantLeft"})),
            5_000,
        );
        assert_eq!(
            b,
            json!({"event": "sessionDestroyed", "timestamp": 5_000, "sessionId": "ses_A",
                   "uniqueSessionId": "ses_A_1000", "reason": "lastParticipantLeft"})
        );
        let n = body("nodeCrashed", None, Map::new(), 7);
        assert!(n.get("sessionId").is_none());
    }
}

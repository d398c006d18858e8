//! The REST API contract (reference §3) through the router (`tower::ServiceExt::oneshot`): every
//! endpoint, auth failures, defaults for `null`, error codes and bodies, nothing half-created.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use rtcpool_config::SignalingSettings;
use serde_json::{json, Value};
use tower::ServiceExt;

fn settings() -> SignalingSettings {
    let mut s = SignalingSettings {
        openvidu_secret: "S3CRET".into(),
        kms_uris: Some(vec!["ws://127.0.0.1:9/kurento".into()]),
        ..Default::default()
    };
    rtcpool_tests::harness::on_test_redis(&mut s);
    s
}

struct Api {
    router: axum::Router,
}

impl Api {
    fn new() -> Self {
        let (_app, router) = signaling::app_for_tests(
            settings(),
            vec![("ws://127.0.0.1:9/kurento".into(), 1, Default::default())],
        );
        Self { router }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(secret) = auth {
            let b =
                base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{secret}"));
            req = req.header("authorization", format!("Basic {b}"));
        }
        let body = body
            .map(|b| Body::from(b.to_string()))
            .unwrap_or_else(Body::empty);
        let Ok(req) = req.body(body) else {
            panic!("request")
        };
        let Ok(res) = self.router.clone().oneshot(req).await;
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(method, path, body, Some("S3CRET")).await
    }

    async fn status(&self, method: &str, path: &str, body: Option<Value>) -> StatusCode {
        self.ok(method, path, body).await.0
    }
}

#[tokio::test]
async fn auth_is_required_except_the_public_url() {
    let api = Api::new();
    assert_eq!(
        api.send("GET", "/openvidu/api/sessions", None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, body) = api
        .send("GET", "/openvidu/api/sessions", None, Some("wrong"))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
    assert_eq!(
        api.send("GET", "/openvidu/api/config/openvidu-publicurl", None, None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        api.status("GET", "/openvidu/api/sessions", None).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions() {
    let api = Api::new();
    // Empty body → all defaults, generated id.
    let (st, s) = api.ok("POST", "/openvidu/api/sessions", None).await;
    assert_eq!(st, StatusCode::OK);
    let id = s["id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("ses_") && id.len() == 14, "{id}");
    assert_eq!(
        (s["sessionId"].clone(), s["object"].clone()),
        (json!(id), json!("session"))
    );
    assert_eq!(
        (s["mediaMode"].clone(), s["recordingMode"].clone()),
        (json!("ROUTED"), json!("MANUAL"))
    );
    assert_eq!(s["defaultRecordingProperties"]["outputMode"], "COMPOSED");
    assert_eq!(s["forcedVideoCodec"], "MEDIA_SERVER_PREFERRED");
    assert_eq!(
        s["connections"],
        json!({"numberOfElements": 0, "content": []})
    );
    assert!(s["createdAt"].as_u64().is_some());
    // null means default; custom ids; 409 on a duplicate.
    let body = json!({"mediaMode": null, "recordingMode": null, "customSessionId": "my-room", "defaultRecordingProperties": null, "forcedVideoCodec": null, "allowTranscoding": null, "mediaNode": null});
    let (st, s) = api
        .ok("POST", "/openvidu/api/sessions", Some(body.clone()))
        .await;
    assert_eq!(
        (st, s["id"].clone(), s["customSessionId"].clone()),
        (StatusCode::OK, json!("my-room"), json!("my-room"))
    );
    assert_eq!(
        api.status("POST", "/openvidu/api/sessions", Some(body))
            .await,
        StatusCode::CONFLICT
    );
    // Bad values → 400 with an OpenVidu error body, and nothing created.
    for bad in [
        json!({"mediaMode": "MESH"}),
        json!({"customSessionId": "a b"}),
        json!({"allowTranscoding": "yes"}),
        json!([1]),
    ] {
        let (st, e) = api
            .ok("POST", "/openvidu/api/sessions", Some(bad.clone()))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            (e["status"].clone(), e["path"].clone()),
            (json!(400), json!("/openvidu/api/sessions"))
        );
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()) && e["timestamp"].is_u64());
    }
    let (_, list) = api.ok("GET", "/openvidu/api/sessions", None).await;
    assert_eq!(list["numberOfElements"], 2);
    assert_eq!(list["content"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        api.status("GET", "/openvidu/api/sessions/my-room", None)
            .await,
        StatusCode::OK
    );
    assert_eq!(
        api.status("GET", "/openvidu/api/sessions/nope", None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.status("DELETE", "/openvidu/api/sessions/my-room", None)
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.status("GET", "/openvidu/api/sessions/my-room", None)
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.status("DELETE", "/openvidu/api/sessions/my-room", None)
            .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn connections_tokens_streams_signals() {
    let api = Api::new();
    api.ok(
        "POST",
        "/openvidu/api/sessions",
        Some(json!({"customSessionId": "c1"})),
    )
    .await;
    // openvidu-node-client sends every key, many null.
    let all_null = json!({"type": null, "data": null, "record": null, "role": null, "kurentoOptions": null, "rtspUri": null, "adaptativeBitrate": null, "onlyPlayWithSubscribers": null, "networkCache": null, "customIceServers": null});
    let (st, c) = api
        .ok(
            "POST",
            "/openvidu/api/sessions/c1/connection",
            Some(all_null),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let cid = c["connectionId"].as_str().unwrap_or_default().to_string();
    assert!(cid.starts_with("con_") && cid.len() == 14);
    assert_eq!(
        (
            c["status"].clone(),
            c["role"].clone(),
            c["type"].clone(),
            c["record"].clone()
        ),
        (
            json!("pending"),
            json!("PUBLISHER"),
            json!("WEBRTC"),
            json!(true)
        )
    );
    let token = c["token"].as_str().unwrap_or_default();
    assert!(
        token.starts_with("ws://127.0.0.1:4443?sessionId=c1&token=tok_"),
        "{token}"
    );
    assert_eq!(
        (
            c["activeAt"].clone(),
            c["publishers"].clone(),
            c["subscribers"].clone()
        ),
        (Value::Null, Value::Null, Value::Null)
    );
    let (st, c2) = api.ok("POST", "/openvidu/api/sessions/c1/connection", Some(json!({"role": "MODERATOR", "data": "srv", "kurentoOptions": {"videoMaxRecvBandwidth": 500, "allowedFilters": ["GStreamerFilter"]}, "customIceServers": [{"url": "turn:127.0.0.1:3478", "username": "u", "credential": "p"}]}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        c2["kurentoOptions"],
        json!({"videoMaxRecvBandwidth": 500, "allowedFilters": ["GStreamerFilter"]})
    );
    assert_eq!(c2["customIceServers"][0]["url"], "turn:127.0.0.1:3478");
    assert_eq!(c2["serverData"], "srv");
    // Errors: bad role/types 400, unknown session 404, IPCAM 501; nothing created.
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/sessions/c1/connection",
            Some(json!({"role": "ADMIN"}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/sessions/c1/connection",
            Some(json!({"customIceServers": [{"url": "http://x"}]}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/sessions/c1/connection",
            Some(json!({"type": "IPCAM", "rtspUri": "rtsp://x"}))
        )
        .await,
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(
        api.status("POST", "/openvidu/api/sessions/zz/connection", None)
            .await,
        StatusCode::NOT_FOUND
    );
    let (_, list) = api
        .ok("GET", "/openvidu/api/sessions/c1/connection", None)
        .await;
    assert_eq!(
        list["numberOfElements"], 2,
        "pendingConnections defaults to true here"
    );
    let (_, list) = api
        .ok(
            "GET",
            "/openvidu/api/sessions/c1/connection?pendingConnections=false",
            None,
        )
        .await;
    assert_eq!(list["numberOfElements"], 0);
    let (_, s) = api
        .ok(
            "GET",
            "/openvidu/api/sessions/c1?pendingConnections=true",
            None,
        )
        .await;
    assert_eq!(s["connections"]["numberOfElements"], 2);
    let (_, s) = api.ok("GET", "/openvidu/api/sessions/c1", None).await;
    assert_eq!(
        s["connections"]["numberOfElements"], 0,
        "active only by default"
    );
    assert_eq!(
        api.ok(
            "GET",
            &format!("/openvidu/api/sessions/c1/connection/{cid}"),
            None
        )
        .await
        .1["connectionId"],
        json!(cid)
    );
    assert_eq!(
        api.status(
            "GET",
            &format!("/openvidu/api/sessions/zz/connection/{cid}"),
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.status("GET", "/openvidu/api/sessions/c1/connection/con_Nope", None)
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.status(
            "PATCH",
            &format!("/openvidu/api/sessions/c1/connection/{cid}"),
            Some(json!({"role": "SUBSCRIBER"}))
        )
        .await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // Deleting an unused token removes it.
    assert_eq!(
        api.status(
            "DELETE",
            &format!("/openvidu/api/sessions/c1/connection/{cid}"),
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.status(
            "GET",
            &format!("/openvidu/api/sessions/c1/connection/{cid}"),
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.status("DELETE", "/openvidu/api/sessions/zz/connection/con_X", None)
            .await,
        StatusCode::BAD_REQUEST
    );
    // Streams.
    assert_eq!(
        api.status("DELETE", "/openvidu/api/sessions/zz/stream/str_X", None)
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.status("DELETE", "/openvidu/api/sessions/c1/stream/str_X", None)
            .await,
        StatusCode::NOT_FOUND
    );
    // Signals: missing session 400, unknown 404, not active 406.
    assert_eq!(
        api.status("POST", "/openvidu/api/signal", Some(json!({"data": "x"})))
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/signal",
            Some(json!({"session": "zz"}))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/signal",
            Some(json!({"session": "c1", "type": "t", "data": "d"}))
        )
        .await,
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/signal",
            Some(json!({"session": "c1", "to": "x"}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    // Deprecated tokens.
    let (st, t) = api
        .ok(
            "POST",
            "/openvidu/api/tokens",
            Some(json!({"session": "c1", "role": "SUBSCRIBER", "data": "d"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (
            t["id"].clone(),
            t["role"].clone(),
            t["session"].clone(),
            t["data"].clone()
        ),
        (
            t["token"].clone(),
            json!("SUBSCRIBER"),
            json!("c1"),
            json!("d")
        )
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/tokens",
            Some(json!({"role": "SUBSCRIBER"}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.status(
            "POST",
            "/openvidu/api/tokens",
            Some(json!({"session": "zz"}))
        )
        .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn recordings_and_config() {
    let api = Api::new();
    for (m, p) in [
        ("GET", "/openvidu/api/recordings"),
        ("POST", "/openvidu/api/recordings/start"),
        ("POST", "/openvidu/api/recordings/stop/r1"),
        ("GET", "/openvidu/api/recordings/r1"),
        ("DELETE", "/openvidu/api/recordings/r1"),
    ] {
        assert_eq!(
            api.status(m, p, Some(json!({"session": "x"}))).await,
            StatusCode::NOT_IMPLEMENTED,
            "{m} {p}"
        );
    }
    let (st, c) = api.ok("GET", "/openvidu/api/config", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (c["VERSION"].clone(), c["OPENVIDU_RECORDING"].clone()),
        (json!("2.32.2"), json!(false))
    );
    assert_eq!(c["OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH"], 1000);
    assert_eq!(
        api.ok("GET", "/openvidu/api/config/openvidu-version", None)
            .await
            .1,
        json!("2.32.2")
    );
    assert_eq!(
        api.ok("GET", "/openvidu/api/config/openvidu-recording", None)
            .await
            .1,
        json!(false)
    );
    assert_eq!(
        api.status("GET", "/openvidu/api/config/nope", None).await,
        StatusCode::NOT_FOUND
    );
}

//! The Kurento protocol as kurento-client 7.x and OpenVidu drive it, frame by frame, against a
//! real engine: the trace-01 sequence, session rules, every subscribable event, release
//! semantics and the exact shapes of results and events.

use rtcpool_tests::harness::LocalEngine;
use rtcpool_tests::peer::TestPeer;
use rtcpool_tests::raw::RawSocket;
use serde_json::{json, Value};

fn sid(r: &Value) -> String {
    r["sessionId"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_sequence_of_trace_01() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let mut ws = RawSocket::connect(&engine.url()).await?;

    // 0: first ping, no session yet.
    let r = ws.request("ping", json!({"interval": 5000})).await?;
    assert_eq!(r["result"], json!({"value": "pong"}));
    // 1: describe without sessionId mints the session.
    let d = ws
        .ok("describe", json!({"object": "manager_ServerManager"}))
        .await?;
    assert_eq!(d["type"], "ServerManager");
    assert_eq!(d["qualifiedType"], "kurento.ServerManager");
    assert_eq!(d["hierarchy"], json!(["kurento.MediaObject"]));
    let s = sid(&d);
    assert_eq!(s.len(), 36);
    // 2: create without sessionId acts in the socket's session.
    let p = ws
        .ok("create", json!({"type": "MediaPipeline", "properties": {}}))
        .await?;
    assert_eq!(sid(&p), s);
    let pipeline = p["value"].as_str().unwrap_or_default().to_string();
    assert!(pipeline.ends_with("_kurento.MediaPipeline"), "{pipeline}");
    // 3: getInfo lists core, elements and filters with the complex-type markers.
    let info = ws
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getInfo", "sessionId": s}),
        )
        .await?;
    assert_eq!(info["value"]["__type__"], "ServerInfo");
    let names: Vec<&str> = info["value"]["modules"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["core", "elements", "filters"]);
    assert!(info["value"]["modules"][0]["__module__"] == "kurento");
    // 4, 5: two endpoints.
    let mk = json!({"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": pipeline}, "properties": {}, "sessionId": s});
    let a = ws.ok("create", mk.clone()).await?["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let b = ws.ok("create", mk).await?["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        a.starts_with(&format!("{pipeline}/")) && a.ends_with("_kurento.WebRtcEndpoint"),
        "{a}"
    );
    // 6, 7: subscriptions.
    let sub = ws
        .ok(
            "subscribe",
            json!({"object": a, "type": "IceCandidateFound", "sessionId": s}),
        )
        .await?;
    let sub_id = sub["value"].as_str().unwrap_or_default().to_string();
    assert_eq!(sub_id.len(), 36);
    ws.ok(
        "subscribe",
        json!({"object": a, "type": "IceGatheringDone", "sessionId": s}),
    )
    .await?;
    // 8: processOffer with a real offer.
    let peer = TestPeer::publisher().await?;
    let offer = peer.create_offer().await?;
    let ans = ws.ok("invoke", json!({"object": a, "operation": "processOffer", "operationParams": {"offer": offer}, "sessionId": s})).await?;
    assert!(ans["value"].as_str().unwrap_or_default().starts_with("v=0"));
    assert_eq!(sid(&ans), s);
    // 9: gatherCandidates → IceCandidateFound … IceGatheringDone with KMS field shapes.
    let g = ws
        .ok(
            "invoke",
            json!({"object": a, "operation": "gatherCandidates", "sessionId": s}),
        )
        .await?;
    assert_eq!(g, json!({"sessionId": s}));
    let ev = ws.wait_event(&a, "IceCandidateFound").await?;
    assert!(ev.get("id").is_none());
    let data = &ev["params"]["value"]["data"];
    assert_eq!(data["source"], json!(a));
    assert_eq!(data["type"], "IceCandidateFound");
    assert_eq!(data["tags"], json!([]));
    assert!(data["timestampMillis"].is_string(), "{data}");
    assert_eq!(data["candidate"]["__module__"], "kurento");
    assert_eq!(data["candidate"]["__type__"], "IceCandidate");
    assert!(
        data["candidate"]["candidate"]
            .as_str()
            .unwrap_or_default()
            .starts_with("candidate:"),
        "{data}"
    );
    assert!(
        data["candidate"]["sdpMLineIndex"].is_number() && data["candidate"]["sdpMid"].is_string()
    );
    ws.wait_event(&a, "IceGatheringDone").await?;
    // 10: addIceCandidate with the markers, and the browser's plain object with extra keys.
    let cand = json!({"candidate": "candidate:2 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    let mut marked = cand.clone();
    marked["__module__"] = json!("kurento");
    marked["__type__"] = json!("IceCandidate");
    ws.ok("invoke", json!({"object": a, "operation": "addIceCandidate", "operationParams": {"candidate": marked}, "sessionId": s})).await?;
    let mut plain = cand;
    plain["usernameFragment"] = json!("abcd");
    ws.ok("invoke", json!({"object": a, "operation": "addIceCandidate", "operationParams": {"candidate": plain}, "sessionId": s})).await?;
    // 11: connect emits one ElementConnected per media type (AUDIO, VIDEO, DATA).
    ws.ok(
        "subscribe",
        json!({"object": a, "type": "ElementConnected", "sessionId": s}),
    )
    .await?;
    let c = ws.ok("invoke", json!({"object": a, "operation": "connect", "operationParams": {"sink": b}, "sessionId": s})).await?;
    assert_eq!(c, json!({"sessionId": s}));
    for _ in 0..3 {
        let ev = ws.wait_event(&a, "ElementConnected").await?;
        let d = &ev["params"]["value"]["data"];
        assert_eq!(d["sink"], json!(b));
        assert_eq!(d["sinkMediaDescription"], "default");
        assert!(["AUDIO", "VIDEO", "DATA"].contains(&d["mediaType"].as_str().unwrap_or_default()));
    }
    // 12, 13: names and children.
    assert_eq!(
        ws.ok(
            "invoke",
            json!({"object": a, "operation": "getName", "sessionId": s})
        )
        .await?["value"],
        json!(a)
    );
    assert_eq!(
        ws.ok(
            "invoke",
            json!({"object": pipeline, "operation": "getChildren", "sessionId": s})
        )
        .await?["value"],
        json!([a, b])
    );
    // 14: unsubscribe. 15: release of the pipeline releases the children.
    assert_eq!(
        ws.ok(
            "unsubscribe",
            json!({"object": a, "subscription": sub_id, "sessionId": s})
        )
        .await?,
        json!({"sessionId": s})
    );
    assert_eq!(
        ws.ok("release", json!({"object": pipeline, "sessionId": s}))
            .await?,
        json!({"sessionId": s})
    );
    assert_eq!(
        ws.err_code(
            "invoke",
            json!({"object": a, "operation": "getName", "sessionId": s})
        )
        .await?,
        40101
    );
    // Crash traps: unsubscribe and release after release succeed.
    ws.ok(
        "unsubscribe",
        json!({"object": a, "subscription": sub_id, "sessionId": s}),
    )
    .await?;
    ws.ok("release", json!({"object": a, "sessionId": s}))
        .await?;
    ws.ok("release", json!({"object": pipeline})).await?;
    peer.close().await;
    ws.close().await;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sessions_connect_keepalive_and_close() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let mut ws = RawSocket::connect(&engine.url()).await?;
    let c = ws.ok("connect", Value::Null).await?;
    let s = sid(&c);
    assert_eq!(c["serverId"].as_str().map(str::len), Some(36));
    // Same socket, no params: the bound session comes back.
    assert_eq!(sid(&ws.ok("connect", Value::Null).await?), s);
    assert_eq!(
        ws.ok("keepAlive", json!({"sessionId": s})).await?,
        json!({"sessionId": s})
    );
    assert_eq!(
        ws.err_code("keepAlive", json!({"sessionId": "nope"}))
            .await?,
        40007
    );
    let r = ws
        .request(
            "connect",
            json!({"sessionId": "00000000-0000-0000-0000-000000000000"}),
        )
        .await?;
    assert_eq!(r["error"]["code"], 40007);
    assert_eq!(r["error"]["message"], "Invalid session");
    assert_eq!(r["error"]["data"]["type"], "INVALID_SESSION");
    // A client-chosen unknown session id on create is accepted (KMS does).
    let p = ws
        .ok(
            "create",
            json!({"type": "kurento.MediaPipeline", "sessionId": "my-own-session"}),
        )
        .await?;
    assert_eq!(sid(&p), "my-own-session");
    let pipeline = p["value"].as_str().unwrap_or_default().to_string();
    // Ping with a known session echoes it.
    assert_eq!(
        ws.ok("ping", json!({"sessionId": "my-own-session"}))
            .await?,
        json!({"value": "pong", "sessionId": "my-own-session"})
    );
    // Another socket resumes the session and sees its objects.
    let mut other = RawSocket::connect(&engine.url()).await?;
    assert_eq!(
        sid(&other
            .ok("connect", json!({"sessionId": "my-own-session"}))
            .await?),
        "my-own-session"
    );
    let pipes = other
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getPipelines"}),
        )
        .await?;
    assert_eq!(pipes["value"], json!([pipeline]));
    // closeSession with release answers null and releases the session's objects.
    let r = other
        .request(
            "closeSession",
            json!({"sessionId": "my-own-session", "release": true}),
        )
        .await?;
    assert_eq!(r["result"], Value::Null);
    let pipes = other
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getPipelines"}),
        )
        .await?;
    assert_eq!(pipes["value"], json!([]));
    other.close().await;
    ws.close().await;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn every_event_of_every_class_is_subscribable() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let mut ws = RawSocket::connect(&engine.url()).await?;
    let p = ws.ok("create", json!({"type": "MediaPipeline"})).await?["value"].clone();
    let e = ws.create_element("WebRtcEndpoint", &p).await?;
    let t = ws.create_element("PassThrough", &p).await?;
    let objects = [
        (e.clone(), kms_client::wire::Class::WebRtcEndpoint),
        (t.clone(), kms_client::wire::Class::PassThrough),
        (p.clone(), kms_client::wire::Class::MediaPipeline),
        (
            json!("manager_ServerManager"),
            kms_client::wire::Class::ServerManager,
        ),
    ];
    for (id, class) in &objects {
        for ev in class.events() {
            ws.ok("subscribe", json!({"object": id, "type": ev}))
                .await?;
        }
    }
    assert_eq!(
        ws.err_code(
            "subscribe",
            json!({"object": t, "type": "IceCandidateFound"})
        )
        .await?,
        40106
    );
    // Describe answers for each class.
    let d = ws.ok("describe", json!({"object": e})).await?;
    assert_eq!(d["hierarchy"][0], "kurento.BaseRtpEndpoint");
    let d = ws.ok("describe", json!({"object": t})).await?;
    assert_eq!(
        d["hierarchy"],
        json!(["kurento.MediaElement", "kurento.MediaObject"])
    );
    // ObjectCreated / ObjectDestroyed reach ServerManager subscribers.
    let q = ws.ok("create", json!({"type": "MediaPipeline"})).await?["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ev = ws
        .wait_event("manager_ServerManager", "ObjectCreated")
        .await?;
    assert_eq!(ev["params"]["value"]["data"]["object"], json!(q));
    assert!(ev["params"]["value"]["data"].get("type").is_none());
    ws.ok("release", json!({"object": q})).await?;
    let ev = ws
        .wait_event("manager_ServerManager", "ObjectDestroyed")
        .await?;
    assert_eq!(ev["params"]["value"]["data"]["objectId"], json!(q));
    // ServerManager load figures are real numbers.
    let cpu = ws.ok("invoke", json!({"object": "manager_ServerManager", "operation": "getUsedCpu", "operationParams": {"interval": 100}})).await?;
    assert!(cpu["value"]
        .as_f64()
        .is_some_and(|v| (0.0..=100.0).contains(&v)));
    let mem = ws
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getUsedMemory"}),
        )
        .await?;
    assert!(mem["value"].as_u64().is_some_and(|v| v > 1000));
    let n = ws
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getCpuCount"}),
        )
        .await?;
    assert!(n["value"].as_u64().is_some_and(|v| v >= 1));
    // Properties, tags, names.
    ws.ok("invoke", json!({"object": e, "operation": "setMaxVideoSendBandwidth", "operationParams": {"maxVideoSendBandwidth": 800}})).await?;
    assert_eq!(
        ws.ok(
            "invoke",
            json!({"object": e, "operation": "getMaxVideoSendBandwidth"})
        )
        .await?["value"],
        800
    );
    ws.ok("invoke", json!({"object": e, "operation": "setStunServerAddress", "operationParams": {"stunServerAddress": "127.0.0.1"}})).await?;
    ws.ok(
        "invoke",
        json!({"object": e, "operation": "addTag", "operationParams": {"key": "k", "value": "v"}}),
    )
    .await?;
    let tags = ws
        .ok("invoke", json!({"object": e, "operation": "getTags"}))
        .await?;
    assert_eq!(
        tags["value"],
        json!([{"__module__": "kurento", "__type__": "Tag", "key": "k", "value": "v"}])
    );
    assert_eq!(
        ws.err_code(
            "invoke",
            json!({"object": e, "operation": "getTag", "operationParams": {"key": "zz"}})
        )
        .await?,
        40110
    );
    ws.ok(
        "invoke",
        json!({"object": e, "operation": "setName", "operationParams": {"name": "pub-1"}}),
    )
    .await?;
    assert_eq!(
        ws.ok("invoke", json!({"object": e, "operation": "getName"}))
            .await?["value"],
        "pub-1"
    );
    assert_eq!(
        ws.ok(
            "invoke",
            json!({"object": e, "operation": "getMediaPipeline"})
        )
        .await?["value"],
        p
    );
    assert_eq!(
        ws.ok(
            "invoke",
            json!({"object": e, "operation": "getConnectionState"})
        )
        .await?["value"],
        "DISCONNECTED"
    );
    ws.ok("release", json!({"object": p})).await?;
    ws.close().await;
    engine.shutdown().await;
    Ok(())
}

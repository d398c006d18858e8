//! The OpenVidu browser protocol against real signaling and real engines, with webrtc-rs bots:
//! media flows both ways, notifications have OpenVidu's shapes, roles and tokens are enforced,
//! bad input fails alone, reconnection and eviction follow OpenVidu's timings, and every engine
//! object is released afterwards.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{media_flows, LocalSignaling};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_publish_subscribe_signal_and_leave() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let (ta, tb) = (
        sig.token("room", "PUBLISHER").await?,
        sig.token("room", "PUBLISHER").await?,
    );
    let mut a = Bot::open(&ta).await?;
    a.start_pinging();
    let ja = a.join(&ta, "alice").await?;
    assert_eq!(ja["value"], json!([]));
    assert_eq!(
        (
            ja["role"].clone(),
            ja["mediaServer"].clone(),
            ja["version"].clone()
        ),
        (json!("PUBLISHER"), json!("kurento"), json!("2.32.2"))
    );
    assert!(ja["sessionId"].as_str().is_some_and(|s| !s.is_empty()));
    let (pub_a, stream_a) = a.publish().await?;
    let send_a = pub_a.start_sending(25, 2000, 50);
    assert!(
        stream_a.starts_with("str_CAM_") && stream_a.ends_with(&a.connection_id),
        "{stream_a}"
    );

    let mut b = Bot::open(&tb).await?;
    let jb = b.join(&tb, "bob").await?;
    // Bob sees Alice and her stream; no role in remote entries.
    let remote = &jb["value"][0];
    assert_eq!(remote["id"], json!(a.connection_id));
    assert!(remote.get("role").is_none());
    assert_eq!(
        remote["metadata"],
        json!({"clientData": "alice"}).to_string()
    );
    assert_eq!(remote["streams"][0]["id"], json!(stream_a));
    assert_eq!(
        remote["streams"][0]["videoDimensions"],
        "{\"width\":640,\"height\":480}"
    );
    a.wait_for("participantJoined", |p| p["id"] == json!(b.connection_id))
        .await?;

    let sub_b = b.subscribe(&stream_a).await?;
    assert!(media_flows(&sub_b).await, "no media from alice to bob");
    let (pub_b, stream_b) = b.publish().await?;
    let send_b = pub_b.start_sending(25, 2000, 50);
    let published = a
        .wait_for("participantPublished", |p| {
            p["id"] == json!(b.connection_id)
        })
        .await?;
    assert_eq!(published["params"]["streams"][0]["id"], json!(stream_b));
    let sub_a = a.subscribe(&stream_b).await?;
    assert!(media_flows(&sub_a).await, "no media from bob to alice");

    // REST sees both active, with their publishers and subscriptions.
    let (_, s) = sig.http("GET", "/openvidu/api/sessions/room", None).await?;
    assert_eq!(s["connections"]["numberOfElements"], 2);
    let conn_b = s["connections"]["content"]
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|c| c["connectionId"] == json!(b.connection_id))
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(conn_b["publishers"][0]["streamId"], json!(stream_b));
    assert_eq!(conn_b["subscribers"][0]["streamId"], json!(stream_a));
    assert_eq!(conn_b["status"], "active");

    // Signals: to everyone (sender included) and to one.
    a.call(
        "sendMessage",
        json!({"message": json!({"to": [], "data": "hi all", "type": "signal:chat"}).to_string()}),
    )
    .await?;
    b.wait_for("sendMessage", |p| {
        p["data"] == "hi all" && p["from"] == json!(a.connection_id) && p["type"] == "signal:chat"
    })
    .await?;
    a.wait_for("sendMessage", |p| p["data"] == "hi all").await?;
    // streamPropertyChanged: newValue is the JSON text of what the client sent.
    a.call("streamPropertyChanged", json!({"streamId": stream_a, "property": "audioActive", "newValue": false, "reason": "publishAudio"})).await?;
    b.wait_for("streamPropertyChanged", |p| {
        p["newValue"] == "false"
            && p["property"] == "audioActive"
            && p["streamId"] == json!(stream_a)
    })
    .await?;
    a.call("streamPropertyChanged", json!({"streamId": stream_a, "property": "videoDimensions", "newValue": "{\"width\":320,\"height\":240}", "reason": "screenResized"})).await?;
    b.wait_for("streamPropertyChanged", |p| {
        p["newValue"] == "\"{\\\"width\\\":320,\\\"height\\\":240}\""
    })
    .await?;
    a.call(
        "videoData",
        json!({"height": 480, "width": 640, "videoActive": true, "audioActive": false}),
    )
    .await?;
    assert_eq!(
        a.call("echo", json!({})).await?,
        json!({"sessionId": a.rpc_session})
    );

    // Unsubscribe, unpublish, leave.
    b.call("unsubscribeFromVideo", json!({"sender": a.connection_id}))
        .await?;
    assert_eq!(
        b.fails("unsubscribeFromVideo", json!({"sender": a.connection_id}))
            .await?,
        102
    );
    b.call("unpublishVideo", json!({})).await?;
    a.wait_for("participantUnpublished", |p| {
        p["connectionId"] == json!(b.connection_id) && p["reason"] == "unpublish"
    })
    .await?;
    assert_eq!(b.fails("unpublishVideo", json!({})).await?, 105);
    b.call("leaveRoom", json!({})).await?;
    a.wait_for("participantLeft", |p| {
        p["connectionId"] == json!(b.connection_id) && p["reason"] == "disconnect"
    })
    .await?;
    a.call("leaveRoom", json!({})).await?;
    send_a.cancel();
    send_b.cancel();
    // The last one left: session gone, engines empty.
    let (st, _) = sig.http("GET", "/openvidu/api/sessions/room", None).await?;
    assert_eq!(st, 404);
    assert_eq!(sig.wait_engines_empty(Duration::from_secs(5)).await?, 0);
    for p in [pub_a, pub_b, sub_a, sub_b] {
        p.close().await;
    }
    sig.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_tokens_and_bad_input() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let t_pub = sig.token("r2", "PUBLISHER").await?;
    let t_sub = sig.token("r2", "SUBSCRIBER").await?;
    let t_mod = sig.token("r2", "MODERATOR").await?;
    let mut p = Bot::open(&t_pub).await?;
    // Nothing before joinRoom.
    assert_eq!(
        p.fails(
            "publishVideo",
            json!({"sdpOffer": "v=0", "hasAudio": true, "hasVideo": true, "doLoopback": false})
        )
        .await?,
        803
    );
    assert_eq!(p.fails("joinRoom", json!({"token": "ws://x?sessionId=nope&token=tok_A", "session": "nope", "platform": "x", "metadata": "", "secret": ""})).await?, 202);
    assert_eq!(p.fails("joinRoom", json!({"token": "ws://x?sessionId=r2&token=tok_Bogus", "session": "r2", "platform": "x", "metadata": "", "secret": ""})).await?, 401);
    assert_eq!(p.fails("joinRoom", json!({"session": "r2"})).await?, -1);
    p.join(&t_pub, "pub").await?;
    let (pub_peer, stream) = p.publish().await?;
    let sending = pub_peer.start_sending(25, 2000, 50);
    // Tokens are single-use.
    let mut again = Bot::open(&t_pub).await?;
    assert_eq!(again.fails("joinRoom", json!({"token": t_pub, "session": "r2", "platform": "x", "metadata": "", "secret": ""})).await?, 401);
    // A subscriber cannot publish (401) but can subscribe.
    let mut s = Bot::open(&t_sub).await?;
    s.join(&t_sub, "sub").await?;
    let offer = rtcpool_tests::peer::TestPeer::publisher().await?;
    let sdp = offer.create_offer().await?;
    assert_eq!(
        s.fails(
            "publishVideo",
            json!({"sdpOffer": sdp, "hasAudio": true, "hasVideo": true, "doLoopback": false})
        )
        .await?,
        401
    );
    let sub_peer = s.subscribe(&stream).await?;
    assert!(media_flows(&sub_peer).await);
    // Malformed SDP fails that request only; media to the subscriber keeps flowing.
    let code = p.fails("publishVideo", json!({"sdpOffer": "v=0\r\nnonsense", "hasAudio": true, "hasVideo": true, "doLoopback": false})).await?;
    assert_eq!(code, 106, "already publishing is checked first");
    let mut m = Bot::open(&t_mod).await?;
    m.join(&t_mod, "mod").await?;
    let code = m.fails("publishVideo", json!({"sdpOffer": "v=0\r\nnonsense", "hasAudio": true, "hasVideo": true, "doLoopback": false})).await?;
    assert_eq!(code, 302);
    assert_eq!(
        m.fails(
            "receiveVideoFrom",
            json!({"sender": stream, "sdpOffer": "garbage"})
        )
        .await?,
        302
    );
    assert_eq!(
        m.fails(
            "receiveVideoFrom",
            json!({"sender": "str_CAM_XXXX_con_Nobody", "sdpOffer": sdp})
        )
        .await?,
        105
    );
    let before = sub_peer.stats.video();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sub_peer.stats.video() > before, "neighbour's media stopped");
    // Unknown methods and unsupported features answer an error, never silence.
    assert_eq!(m.fails("frobnicate", json!({})).await?, -32601);
    assert_eq!(
        m.fails(
            "applyFilter",
            json!({"streamId": stream, "type": "GStreamerFilter", "options": "{}"})
        )
        .await?,
        996
    );
    assert_eq!(
        m.fails(
            "subscribeToSpeechToText",
            json!({"connectionId": p.connection_id, "lang": "en"})
        )
        .await?,
        997
    );
    // Signals with bad JSON or unknown recipients.
    assert_eq!(
        m.fails("sendMessage", json!({"message": "not json"}))
            .await?,
        600
    );
    assert_eq!(
        m.fails(
            "sendMessage",
            json!({"message": json!({"to": ["con_Nobody"], "data": "x"}).to_string()})
        )
        .await?,
        601
    );
    // Only moderators force.
    assert_eq!(
        p.fails("forceUnpublish", json!({"streamId": stream}))
            .await?,
        401
    );
    assert_eq!(
        p.fails("forceDisconnect", json!({"connectionId": s.connection_id}))
            .await?,
        401
    );
    m.call("forceUnpublish", json!({"streamId": stream}))
        .await?;
    p.wait_for("participantUnpublished", |x| {
        x["reason"] == "forceUnpublishByUser"
    })
    .await?;
    s.wait_for("participantUnpublished", |x| {
        x["reason"] == "forceUnpublishByUser"
    })
    .await?;
    let evicted = s.connection_id.clone();
    m.call("forceDisconnect", json!({"connectionId": evicted}))
        .await?;
    s.wait_for("participantEvicted", |x| {
        x["connectionId"] == json!(evicted) && x["reason"] == "forceDisconnectByUser"
    })
    .await?;
    p.wait_for("participantLeft", |x| {
        x["connectionId"] == json!(evicted) && x["reason"] == "forceDisconnectByUser"
    })
    .await?;
    sending.cancel();
    p.call("leaveRoom", json!({})).await?;
    m.call("leaveRoom", json!({})).await?;
    assert_eq!(sig.wait_engines_empty(Duration::from_secs(5)).await?, 0);
    for x in [pub_peer, sub_peer, offer] {
        x.close().await;
    }
    sig.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_window_ping_watchdog_and_shutdown() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let tokens = [
        sig.token("r3", "PUBLISHER").await?,
        sig.token("r3", "PUBLISHER").await?,
        sig.token("r3", "PUBLISHER").await?,
    ];
    let mut a = Bot::open(&tokens[0]).await?;
    a.start_pinging();
    a.join(&tokens[0], "a").await?;
    let mut b = Bot::open(&tokens[1]).await?;
    b.join(&tokens[1], "b").await?;
    let mut c = Bot::open(&tokens[2]).await?;
    // c announces a 500 ms ping interval and then goes silent: the watchdog closes it after
    // 1.5 s, and 10 s later it is evicted with networkDisconnect.
    c.request("ping", json!({"interval": 500})).await?;
    c.join(&tokens[2], "c").await?;
    // b's socket drops; a new socket resumes it with `connect {sessionId}`.
    let rpc_b = b.rpc_session.clone();
    b.drop_socket();
    let mut b2 = Bot::open(&tokens[1]).await?;
    let r = b2
        .call("connect", json!({"sessionId": rpc_b, "reconnect": true}))
        .await?;
    assert_eq!(
        r,
        json!({"value": "reconnection successful", "sessionId": rpc_b})
    );
    assert_eq!(
        b2.fails(
            "connect",
            json!({"sessionId": "unknown-rpc", "reconnect": true})
        )
        .await?,
        40007
    );
    let started = std::time::Instant::now();
    a.wait_for("participantLeft", |p| {
        p["reason"] == "networkDisconnect" && p["connectionId"] == json!(c.connection_id)
    })
    .await?;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(14),
        "evicted after {waited:?}"
    );
    // b (resumed) is still in, and still gets notifications on its new socket.
    let (_, s) = sig.http("GET", "/openvidu/api/sessions/r3", None).await?;
    assert_eq!(s["connections"]["numberOfElements"], 2);
    b2.start_pinging();
    // Graceful shutdown tells everyone and releases the engines' objects.
    let engines_before = sig.engine_objects().await?;
    assert_eq!(engines_before, 1, "one pipeline");
    let addr = sig.engines[0].addr;
    let stop_wait = tokio::spawn(async move {
        let n = a
            .wait_for("participantEvicted", |p| {
                p["reason"] == "openviduServerStopped"
            })
            .await
            .map(|_| ());
        (a, n)
    });
    sig.shutdown_signaling_only().await;
    let (_a, n) = stop_wait.await?;
    n?;
    let h = rtcpool_tests::harness::health(addr).await?;
    assert_eq!(h["pipelines"], 0, "{h}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_means_204_and_the_token_survives() -> anyhow::Result<()> {
    // One engine, stopped before anyone joins: joinRoom must fail with 204 (the pool's reasons go
    // to the log, not to the participant), and leave the token unused.
    let engine = rtcpool_tests::harness::LocalEngine::start().await?;
    let uri = engine.url();
    let sig = LocalSignaling::start_with(vec![], vec![(uri.clone(), 1)], |_| {}).await?;
    engine.shutdown().await;
    let token = sig.token("r4", "PUBLISHER").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut a = Bot::open(&token).await?;
    let r = a
        .request(
            "joinRoom",
            json!({"token": token, "session": "r4", "platform": "x", "metadata": "", "secret": ""}),
        )
        .await?;
    assert_eq!(r["error"]["code"], 204, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no available Media Node") && !m.contains("media_")),
        "{r}"
    );
    let (_, c) = sig
        .http("GET", "/openvidu/api/sessions/r4/connection", None)
        .await?;
    assert_eq!(c["content"][0]["status"], "pending");
    // The engine comes back on the same address: the same token now joins.
    let addr: std::net::SocketAddr = uri
        .trim_start_matches("ws://")
        .trim_end_matches("/kurento")
        .parse()?;
    let again = rtcpool_tests::harness::LocalEngine::start_with(
        rtcpool_tests::harness::test_settings(addr),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = sig.http("GET", "/health", None).await?;
        if h["engines"][0]["admitted"] == true {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "engine did not rejoin the pool: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.join(&token, "a").await?;
    a.call("leaveRoom", json!({})).await?;
    assert_eq!(
        rtcpool_tests::harness::health(again.addr).await?["pipelines"],
        0
    );
    sig.shutdown().await;
    again.shutdown().await;
    Ok(())
}

/// `/health`'s `wsConnections` counts the sockets open now (closed ones go), the total beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_counts_open_sockets_only() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let mut bots = Vec::new();
    for _ in 0..3 {
        let t = sig.token("count", "PUBLISHER").await?;
        let mut b = Bot::open(&t).await?;
        b.join(&t, "b").await?;
        bots.push(b);
    }
    let (_, h) = sig.http("GET", "/health", None).await?;
    assert_eq!(
        (h["wsConnections"].clone(), h["wsConnectionsTotal"].clone()),
        (json!(3), json!(3)),
        "{h}"
    );
    for mut b in bots {
        b.call("leaveRoom", json!({})).await?;
        b.drop_socket();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, h) = sig.http("GET", "/health", None).await?;
        if h["wsConnections"] == 0 {
            assert_eq!(h["wsConnectionsTotal"], 3, "{h}");
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "sockets still counted: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sig.shutdown().await;
    Ok(())
}

/// The pages link an icon that is served (browsers otherwise ask for a missing /favicon.ico).
#[tokio::test]
async fn pages_link_an_icon_that_exists() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let (st, _) =
        rtcpool_tests::harness::http_request(sig.addr, "GET", "/favicon.svg", None, None).await?;
    assert_eq!(st, 200);
    for page in ["index.html", "dashboard.html"] {
        let html = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../static")
                .join(page),
        )?;
        assert!(html.contains(r#"rel="icon" href="favicon.svg""#), "{page}");
    }
    sig.shutdown().await;
    Ok(())
}

/// Input patterns compile the way current Chromium compiles them (the `v` flag, where a bare
/// `-` at the end of a class is an error and the browser silently drops the check).
#[tokio::test]
async fn page_input_patterns_compile_with_the_v_flag() -> anyhow::Result<()> {
    let html = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../static/index.html"),
    )?;
    let patterns: Vec<&str> = html
        .split("pattern=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .collect();
    assert!(!patterns.is_empty());
    for p in patterns {
        let js = format!(
            "new RegExp('^(?:' + {} + ')$', 'v')",
            serde_json::to_string(p)?
        );
        let out = tokio::process::Command::new("node")
            .args(["-e", &js])
            .output()
            .await?;
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

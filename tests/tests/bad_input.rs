//! Bad input gets the reference's error and nothing else breaks: the socket stays usable, other
//! sessions and objects are untouched, and a refused create leaves nothing behind.

use rtcpool_tests::harness::{client, health, negotiate, LocalEngine};
use rtcpool_tests::peer::TestPeer;
use rtcpool_tests::raw::RawSocket;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_refused_cleanly() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    // A healthy neighbour with live media, to prove nothing leaks across.
    let kms = client(&engine.url()).await?;
    let pipe = kms.create_pipeline().await?;
    let ep = pipe.create_webrtc_endpoint().await?;
    let peer = TestPeer::publisher().await?;
    negotiate(&ep, &peer).await?;
    assert!(peer.wait_connected(Duration::from_secs(10)).await);

    let mut ws = RawSocket::connect(&engine.url()).await?;
    // Malformed JSON → -32700, id null, socket still usable.
    ws.send_text("{not json").await?;
    let r = ws.next_response().await?;
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32700), Value::Null)
    );
    ws.send_text("").await?;
    assert_eq!(ws.next_response().await?["error"]["code"], -32700);
    // Not JSON-RPC 2.0 → -32600.
    ws.send_text(r#"{"jsonrpc":"1.0","method":"ping","id":7}"#)
        .await?;
    let r = ws.next_response().await?;
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32600), json!(7))
    );
    ws.send_text(r#"[1,2,3]"#).await?;
    assert_eq!(ws.next_response().await?["error"]["code"], -32600);
    assert_eq!(ws.ok("ping", Value::Null).await?["value"], "pong");
    // Unknown method, missing params, wrong param types.
    assert_eq!(ws.err_code("frobnicate", json!({})).await?, -32601);
    assert_eq!(ws.err_code("create", Value::Null).await?, -32602);
    assert_eq!(ws.err_code("create", json!({"type": 42})).await?, -32000);
    assert_eq!(
        ws.err_code("invoke", json!({"object": ["x"], "operation": "getName"}))
            .await?,
        -32000
    );
    // Unknown objects, types, operations, events.
    assert_eq!(
        ws.err_code(
            "invoke",
            json!({"object": "nope_kurento.MediaPipeline", "operation": "getName"})
        )
        .await?,
        40101
    );
    assert_eq!(
        ws.err_code("describe", json!({"object": "nope"})).await?,
        40101
    );
    let r = ws
        .request("create", json!({"type": "RecorderEndpoint"}))
        .await?;
    assert_eq!(r["error"]["code"], 40108);
    assert_eq!(
        r["error"]["message"],
        "Factory 'RecorderEndpoint' not found"
    );
    let p = ws.ok("create", json!({"type": "MediaPipeline"})).await?["value"].clone();
    assert_eq!(
        ws.err_code(
            "create",
            json!({"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": "ghost"}})
        )
        .await?,
        40101
    );
    assert_eq!(
        ws.err_code(
            "create",
            json!({"type": "WebRtcEndpoint", "constructorParams": {}})
        )
        .await?,
        40001
    );
    assert_eq!(ws.err_code("create", json!({"type": "WebRtcEndpoint", "constructorParams": {"mediaPipeline": p, "recvonly": "yes"}})).await?, 40001);
    let e = ws.create_element("WebRtcEndpoint", &p).await?;
    assert_eq!(
        ws.err_code("invoke", json!({"object": e, "operation": "explode"}))
            .await?,
        40008
    );
    assert_eq!(
        ws.err_code("subscribe", json!({"object": e, "type": "Explosion"}))
            .await?,
        40106
    );
    assert_eq!(ws.err_code("invoke", json!({"object": e, "operation": "setMaxVideoSendBandwidth", "operationParams": {"maxVideoSendBandwidth": "fast"}})).await?, 40001);
    assert_eq!(ws.err_code("invoke", json!({"object": e, "operation": "connect", "operationParams": {"sink": e, "mediaType": "SMELL"}})).await?, 40001);
    assert_eq!(ws.err_code("invoke", json!({"object": e, "operation": "addIceCandidate", "operationParams": {"candidate": {"sdpMid": "0"}}})).await?, 40001);
    // Elements of different pipelines cannot be connected.
    let other_ep = ep.id().to_string();
    assert_eq!(
        ws.err_code(
            "invoke",
            json!({"object": e, "operation": "connect", "operationParams": {"sink": other_ep}})
        )
        .await?,
        40004
    );
    // An invalid SDP offer fails that request only; the endpoint still negotiates afterwards.
    assert_eq!(
        ws.err_code(
            "invoke",
            json!({"object": e, "operation": "processOffer", "operationParams": {"offer": "hello"}})
        )
        .await?,
        40201
    );
    let broken = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
    let code = ws
        .err_code(
            "invoke",
            json!({"object": e, "operation": "processOffer", "operationParams": {"offer": broken}}),
        )
        .await?;
    assert!([40201, 40205].contains(&code), "{code}");
    let good = TestPeer::subscriber().await?;
    let offer = good.create_offer().await?;
    let ans = ws
        .ok(
            "invoke",
            json!({"object": e, "operation": "processOffer", "operationParams": {"offer": offer}}),
        )
        .await?;
    assert!(ans["value"].as_str().unwrap_or_default().starts_with("v=0"));
    assert_eq!(
        ws.err_code(
            "invoke",
            json!({"object": e, "operation": "processOffer", "operationParams": {"offer": offer}})
        )
        .await?,
        40208
    );
    assert_eq!(ws.err_code("invoke", json!({"object": e, "operation": "processAnswer", "operationParams": {"answer": "v=0\r\n"}})).await?, 40208);
    assert_eq!(
        ws.err_code("transaction", json!({"operations": []}))
            .await?,
        40006
    );
    // A message over the size limit closes only that socket.
    let mut big = RawSocket::connect(&engine.url()).await?;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","method":"ping","id":1,"params":{{"x":"{}"}}}}"#,
        "a".repeat(2 << 20)
    );
    let _ = big.send_text(&huge).await;
    assert!(big.next_response().await.is_err());

    // The neighbour is untouched.
    assert_eq!(ep.get_connection_state().await?, "CONNECTED");
    assert_eq!(pipe.get_children().await?, vec![ep.id().to_string()]);
    ws.ok("release", json!({"object": p})).await?;
    pipe.release().await?;
    let h = health(engine.addr).await?;
    assert_eq!(
        (h["pipelines"].clone(), h["elements"].clone()),
        (json!(0), json!(0)),
        "{h}"
    );
    good.close().await;
    peer.close().await;
    ws.close().await;
    engine.shutdown().await;
    Ok(())
}

//! One test per hole an outside review found (issue "Hardening"): each one reproduced the attack
//! against the previous code and now shows what it costs. Intruders through the demo endpoint,
//! signal amplification, unauthenticated engines, a rogue engine client, orphaned engine
//! objects, a frozen engine coming back, a failed `reconnectStream`, size limits, slow clients,
//! and the first second after start-up.

use rtcpool_tests::bot::{ws_url, Bot};
use rtcpool_tests::harness::{
    health, http_raw, http_request, rss_kib, test_settings, token_at, wait_health, EngineProcess,
    LocalEngine, LocalSignaling, SignalingProcess, SECRET,
};
use rtcpool_tests::peer::TestPeer;
use rtcpool_tests::raw::RawSocket;
use serde_json::json;
use std::time::{Duration, Instant};

async fn flowing(p: &TestPeer, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let (v0, a0) = (p.stats.video(), p.stats.audio());
    while p.stats.video() < v0 + 10 || p.stats.audio() < a0 + 5 {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Hole 1: `POST /demo/token` handed out tokens for any session, including applications'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tokens_cannot_reach_application_sessions() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let uri = engine.url();
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri.clone(), 1)], |s| {
        s.demo_tokens = true
    })
    .await?;
    let _moderator = sig.token("board-meeting", "MODERATOR").await?;
    let (st, body) = http_request(
        sig.addr,
        "POST",
        "/demo/token",
        Some(&json!({"room": "board-meeting", "name": "intruder"})),
        None,
    )
    .await?;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["session"], "demo_board-meeting");
    let token = body["token"].as_str().unwrap_or_default().to_string();
    // The demo token names its own session; used on the application's session it is refused.
    let mut intruder = Bot::open(&token).await?;
    let r = intruder
        .request(
            "joinRoom",
            json!({"token": token, "session": "board-meeting", "platform": "x", "metadata": "", "secret": ""}),
        )
        .await?;
    assert_eq!(r["error"]["code"], 401, "{r}");
    let (_, s) = sig
        .http("GET", "/openvidu/api/sessions/board-meeting", None)
        .await?;
    assert_eq!(s["connections"]["numberOfElements"], 0, "{s}");
    // REST cannot create a session in the demo's name space.
    let (st, _) = sig
        .http(
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": "demo_board-meeting2"})),
        )
        .await?;
    assert_eq!(st, 400);
    // A flood of room names stops at the cap (one demo room exists already).
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..signaling::demo::MAX_DEMO_SESSIONS + 20 {
        let (st, _) = http_request(
            sig.addr,
            "POST",
            "/demo/token",
            Some(&json!({"room": format!("r{i}"), "name": "n"})),
            None,
        )
        .await?;
        assert!(st == 200 || st == 429, "{st}");
        refused += usize::from(st == 429);
    }
    assert_eq!(refused, 21);
    let (_, list) = sig.http("GET", "/openvidu/api/sessions", None).await?;
    assert_eq!(
        list["numberOfElements"],
        json!(signaling::demo::MAX_DEMO_SESSIONS + 1)
    );
    eprintln!(
        "demo flood: 120 requests in {:?}, 21 refused with 429",
        started.elapsed()
    );
    sig.shutdown().await;

    // Off unless turned on.
    let sig = LocalSignaling::start(1).await?;
    let (st, _) = http_request(
        sig.addr,
        "POST",
        "/demo/token",
        Some(&json!({"room": "x", "name": "n"})),
        None,
    )
    .await?;
    assert_eq!(st, 404);
    sig.shutdown().await;
    Ok(())
}

/// Hole 2: `sendMessage` to one non-reading victim grew signaling's memory without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_cannot_amplify_signaling_memory() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let uri = engine.url();
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri, 1)], |s| {
        s.ws_max_send_queue_bytes = 256 * 1024
    })
    .await?;
    let (ta, tb, tv) = (
        sig.token("amp", "PUBLISHER").await?,
        sig.token("amp", "PUBLISHER").await?,
        sig.token("amp", "PUBLISHER").await?,
    );
    let mut a = Bot::open(&ta).await?;
    a.join(&ta, "a").await?;
    let mut b = Bot::open(&tb).await?;
    b.join(&tb, "b").await?;
    // The victim joins, then never reads again.
    let mut victim = RawSocket::connect(&ws_url(&tv)?).await?;
    let joined = victim
        .ok(
            "joinRoom",
            json!({"token": tv, "session": "amp", "platform": "x", "metadata": "", "secret": ""}),
        )
        .await?;
    let v = joined["id"].as_str().unwrap_or_default().to_string();

    // Duplicates in `to` are sent once.
    let dup = vec![b.connection_id.clone(); 3000];
    a.call(
        "sendMessage",
        json!({"message": json!({"to": dup, "data": "once", "type": "signal:dup"}).to_string()}),
    )
    .await?;
    b.wait_for("sendMessage", |p| p["type"] == "signal:dup")
        .await?;
    let mut again = 0;
    while let Some(n) = b.next_notification(Duration::from_millis(300)).await {
        again += usize::from(n["params"]["type"] == "signal:dup");
    }
    assert_eq!(
        again, 0,
        "a recipient listed 3000 times got it more than once"
    );

    // 60 MB of signals to the victim: its queue overflows, it is cut, memory stays flat.
    let rss0 = rss_kib(std::process::id());
    let data = "x".repeat(60 * 1024);
    let started = Instant::now();
    for _ in 0..1000 {
        let msg = json!({"to": [v], "data": data, "type": "signal:flood"}).to_string();
        a.call("sendMessage", json!({ "message": msg })).await?;
    }
    let spent = started.elapsed();
    let grown_mb = rss_kib(std::process::id()).saturating_sub(rss0) as f64 / 1024.0;
    assert!(grown_mb < 40.0, "RSS grew {grown_mb:.1} MB");
    // The victim's socket was closed with 1008 once its queue overflowed.
    assert_eq!(victim.close_code(Duration::from_secs(10)).await, Some(1008));
    // Everyone else is unharmed.
    a.call(
        "sendMessage",
        json!({"message": json!({"to": [b.connection_id], "data": "fine", "type": "signal:after"}).to_string()}),
    )
    .await?;
    b.wait_for("sendMessage", |p| p["type"] == "signal:after")
        .await?;
    eprintln!("amplification: 1000 × 60 KB to a non-reader in {spent:?}; RSS +{grown_mb:.1} MB; victim closed with 1008");
    sig.shutdown().await;
    Ok(())
}

/// Hole 3: engines answered anyone. Now the secret gates `/kurento` and `/health`; URIs carry
/// it as user-info and it is never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_require_their_secret_and_it_is_never_shown() -> anyhow::Result<()> {
    let secret = "s3cr3t-Engine-Word";
    let engine = LocalEngine::start_with(rtcpool_config::EngineSettings {
        secret: Some(secret.into()),
        ..test_settings("127.0.0.1:0".parse()?)
    })
    .await?;
    let addr = engine.addr;
    // No credentials, or wrong ones: 401, never upgraded.
    match tokio_tungstenite::connect_async(engine.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("upgrade without the secret: {:?}", other.map(|_| ())),
    }
    let (st, _) = http_request(addr, "GET", "/health", None, None).await?;
    assert_eq!(st, 401);
    let (st, _) = http_request(addr, "GET", "/health", None, Some(("x", "wrong"))).await?;
    assert_eq!(st, 401);
    let (st, h) = http_request(addr, "GET", "/health", None, Some(("any", secret))).await?;
    assert_eq!((st, h["refusedConnections"].as_u64()), (200, Some(3)));
    // kms-client: user-info in the URI is the credential.
    let with = format!("ws://rtcpool:{secret}@{addr}/kurento");
    let c = rtcpool_tests::harness::client(&with).await?;
    let p = c.create_pipeline().await?;
    p.release().await?;
    c.close().await;
    let refused = rtcpool_tests::harness::client(&engine.url())
        .await
        .err()
        .and_then(|e| e.downcast::<kms_client::ClientError>().ok());
    assert!(
        matches!(refused, Some(kms_client::ClientError::Unauthorized(ref u)) if !u.contains(secret)),
        "{refused:?}"
    );

    // Signaling with the secret URI works and shows the secret nowhere.
    let sig = LocalSignaling::start_with(vec![engine], vec![(with.clone(), 1)], |_| {}).await?;
    let Call {
        x: mut a,
        y: mut b,
        send,
        ..
    } = call_with_media(sig.addr, "sec").await?;
    send.cancel();
    for path in [
        "/openvidu/api/media-nodes",
        "/openvidu/api/config",
        "/health",
        "/metrics",
    ] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {}\r\n\r\n",
            base64_auth()
        );
        let text = http_raw(sig.addr, req.as_bytes(), Duration::from_secs(5))
            .await?
            .unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 200"), "{path}: {text}");
        assert!(text.contains(&addr.to_string()), "{path} names the engine");
        assert!(!text.contains(secret), "{path} shows the secret: {text}");
    }
    // /metrics needs the REST credentials; /health without them says only whether it is ready.
    let (st, _) = http_request(sig.addr, "GET", "/metrics", None, None).await?;
    assert_eq!(st, 401);
    let (st, h) = http_request(sig.addr, "GET", "/health", None, None).await?;
    assert_eq!((st, h), (200, json!({"status": "ok", "ready": true})));
    a.call("leaveRoom", json!({})).await?;
    b.call("leaveRoom", json!({})).await?;
    sig.shutdown().await;
    Ok(())
}

fn base64_auth() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{SECRET}"))
}

/// An engine reachable from other hosts refuses to start without a secret, in one line; busy
/// ports name the component and the address.
#[tokio::test]
async fn start_up_refusals_are_one_clear_line() -> anyhow::Result<()> {
    let engine = rtcpool_tests::harness::bin_path("media-engine");
    let out = std::process::Command::new(&engine)
        .args(["--listen", "0.0.0.0:0", "--rtc-ip", "127.0.0.1"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("secret") && err.contains("--insecure") && err.contains("0.0.0.0:0"),
        "{err}"
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = busy.local_addr()?.port();
    let out = std::process::Command::new(&engine)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--rtc-ip",
            "127.0.0.1",
        ])
        .env("RUST_BACKTRACE", "1")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("media-engine: cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    let out = std::process::Command::new(rtcpool_tests::harness::bin_path("signaling"))
        .env("SERVER_PORT", port.to_string())
        .env("KMS_URIS", "[\"ws://127.0.0.1:9/kurento\"]")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("signaling: cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    Ok(())
}

/// Hole 3 (continued): a rogue engine client released a live session's pipeline and nobody
/// noticed. Now the session is re-homed, as after an engine loss, and its media comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_released_behind_our_back_moves_its_session() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let (uri, eaddr) = (engine.url(), engine.addr);
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri.clone(), 1)], |s| {
        s.pool_client_nudge_ms = 0
    })
    .await?;
    let call = call_with_media(sig.addr, "rogue").await?;
    let mut rogue = RawSocket::connect(&uri).await?;
    let pipelines = rogue
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getPipelines"}),
        )
        .await?["value"]
        .clone();
    let old = pipelines[0].clone();
    rogue.ok("release", json!({ "object": old })).await?;
    let released_at = Instant::now();
    call.send.cancel();
    // Signaling notices and places the session on a new pipeline.
    let h = wait_health(eaddr, Duration::from_secs(10), |h| h["pipelines"] == 1).await?;
    assert_eq!(h["pipelines"], 1, "{h}");
    let (mut x, mut y, send2, y_gets_x2) = reconnect_both(call).await?;
    assert!(
        flowing(&y_gets_x2, Duration::from_secs(10)).await,
        "media did not come back"
    );
    eprintln!(
        "rogue release: media flowing again {:?} after the pipeline was released",
        released_at.elapsed()
    );
    let (_, s) = sig
        .http("GET", "/openvidu/api/sessions/rogue", None)
        .await?;
    assert_eq!(
        s["connections"]["numberOfElements"], 2,
        "nobody was evicted"
    );
    send2.cancel();
    x.call("leaveRoom", json!({})).await?;
    y.call("leaveRoom", json!({})).await?;
    assert_eq!(sig.wait_engines_empty(Duration::from_secs(5)).await?, 0);
    sig.shutdown().await;
    Ok(())
}

/// Hole 4: the health sampler's `getChildren` made signaling a holder of every pipeline, so a
/// client that went away left its objects forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_of_a_client_that_went_away_are_freed_while_signaling_is_attached(
) -> anyhow::Result<()> {
    let engine = EngineProcess::start(&["--session-timeout", "5"]).await?;
    let sig = LocalSignaling::start_with(vec![], vec![(engine.url(), 1)], |s| {
        s.pool_health_interval_ms = 200;
        s.pool_stale_after_ms = 1000;
    })
    .await?;
    let mut c = RawSocket::connect(&engine.url()).await?;
    for _ in 0..2 {
        let p = c.ok("create", json!({"type": "MediaPipeline"})).await?["value"].clone();
        c.create_element("WebRtcEndpoint", &p).await?;
        c.create_element("PassThrough", &p).await?;
    }
    let h = health(engine.addr).await?;
    assert_eq!(
        (h["pipelines"].clone(), h["elements"].clone()),
        (json!(2), json!(4))
    );
    // Signaling counts them (admission) without holding them.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, nodes) = sig.http("GET", "/openvidu/api/media-nodes", None).await?;
    assert_eq!(nodes["content"][0]["endpoints"], 4, "{nodes}");
    c.close().await;
    let took = emptied(
        engine.addr,
        Duration::from_secs(15),
        &["pipelines", "elements"],
    )
    .await?;
    eprintln!("orphans of a vanished client released {took:?} after it left (timeout 5 s)");
    sig.shutdown().await;
    Ok(())
}

/// Hole 5 (continued): a stream that truly cannot continue — its media was lost and its
/// publisher never re-published — stops being advertised: everyone is told, REST forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_cannot_continue_is_unpublished() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let uri = engine.url();
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri.clone(), 1)], |s| {
        s.pool_client_nudge_ms = 0;
        s.pool_stale_stream_ms = 1000;
    })
    .await?;
    let Call {
        mut x, mut y, send, ..
    } = call_with_media(sig.addr, "gone").await?;
    let mut rogue = RawSocket::connect(&uri).await?;
    let pipelines = rogue
        .ok(
            "invoke",
            json!({"object": "manager_ServerManager", "operation": "getPipelines"}),
        )
        .await?["value"]
        .clone();
    rogue
        .ok("release", json!({ "object": pipelines[0] }))
        .await?;
    send.cancel();
    let xid = x.connection_id.clone();
    let n = y
        .wait_for("participantUnpublished", |p| {
            p["connectionId"] == json!(xid)
        })
        .await?;
    assert_eq!(n["params"]["reason"], "mediaServerDisconnect", "{n}");
    let (_, s) = sig.http("GET", "/openvidu/api/sessions/gone", None).await?;
    let publishers: usize = s["connections"]["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["publishers"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(publishers, 0, "{s}");
    x.call("leaveRoom", json!({})).await?;
    y.call("leaveRoom", json!({})).await?;
    assert_eq!(sig.wait_engines_empty(Duration::from_secs(5)).await?, 0);
    sig.shutdown().await;
    Ok(())
}

/// Two bots in `session` on signaling at `addr`: X publishes (sending), Y receives X's stream.
struct Call {
    x: Bot,
    y: Bot,
    stream: String,
    send: tokio_util::sync::CancellationToken,
    y_gets_x: TestPeer,
}

async fn call_with_media(addr: std::net::SocketAddr, session: &str) -> anyhow::Result<Call> {
    let (tx, ty) = (
        token_at(addr, session, "PUBLISHER").await?,
        token_at(addr, session, "PUBLISHER").await?,
    );
    let mut x = Bot::open(&tx).await?;
    x.join(&tx, "x").await?;
    let mut y = Bot::open(&ty).await?;
    y.join(&ty, "y").await?;
    let (px, stream) = x.publish().await?;
    let send = px.start_sending(25, 2000, 10);
    let y_gets_x = y.subscribe(&stream).await?;
    anyhow::ensure!(
        flowing(&y_gets_x, Duration::from_secs(10)).await,
        "no media"
    );
    Ok(Call {
        x,
        y,
        stream,
        send,
        y_gets_x,
    })
}

/// After a re-homing: Y asks for X's stream again (held until X is back), X republishes.
async fn reconnect_both(
    c: Call,
) -> anyhow::Result<(Bot, Bot, tokio_util::sync::CancellationToken, TestPeer)> {
    let Call {
        mut x,
        mut y,
        stream,
        ..
    } = c;
    let s2 = stream.clone();
    let y_task = tokio::spawn(async move {
        let p = y.resubscribe(&s2).await;
        (y, p)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let px2 = x.republish(&stream).await?;
    let send = px2.start_sending(25, 2000, 10);
    let (y, y_gets_x) = y_task.await?;
    Ok((x, y, send, y_gets_x?))
}

async fn admitted(sig: &SignalingProcess) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = sig.http("GET", "/health", None).await?;
        if h["engines"][0]["admitted"] == true {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "engine not admitted: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Hole 4 (second cause): after `kill -9` of signaling, its Kurento session sometimes never
/// expired (a slow `getUsedCpu` re-bound it to the dead socket). Now everything goes with the
/// engine's session timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_signaling_leaves_nothing_after_the_session_timeout() -> anyhow::Result<()> {
    let engine = EngineProcess::start(&["--session-timeout", "5"]).await?;
    let mut sig = SignalingProcess::start(
        &[engine.url()],
        &[
            ("POOL_HEALTH_INTERVAL_MS", "200"),
            ("POOL_STALE_AFTER_MS", "1000"),
        ],
    )
    .await?;
    admitted(&sig).await?;
    let call = call_with_media(sig.addr, "k9").await?;
    // Kill while a `getUsedCpu` is most likely in flight (it spans 3/4 of each interval).
    tokio::time::sleep(Duration::from_millis(350)).await;
    sig.kill();
    let keys = ["pipelines", "elements", "sessions", "peerConnections"];
    let took = emptied(engine.addr, Duration::from_secs(12), &keys).await?;
    eprintln!("kill -9 of signaling: engine empty {took:?} later (timeout 5 s)");
    call.send.cancel();
    Ok(())
}

/// Hole 4 (restart): a new signaling process releases what a dead one left, once nobody
/// reclaimed it within the grace period (the engine's own timeout here is a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_signaling_releases_what_the_dead_one_left() -> anyhow::Result<()> {
    let engine = EngineProcess::start(&["--session-timeout", "60"]).await?;
    let mut sig = SignalingProcess::start(&[engine.url()], &[]).await?;
    admitted(&sig).await?;
    let call = call_with_media(sig.addr, "rs").await?;
    sig.kill();
    call.send.cancel();
    assert_eq!(health(engine.addr).await?["pipelines"], 1);
    let sig2 =
        SignalingProcess::start(&[engine.url()], &[("POOL_ORPHAN_GRACE_MS", "1000")]).await?;
    let took = emptied(
        engine.addr,
        Duration::from_secs(8),
        &["pipelines", "elements"],
    )
    .await?;
    eprintln!("restart: orphans released {took:?} after the new signaling started (grace 1 s)");
    assert!(!sig2.stderr().contains("panicked"));
    Ok(())
}

/// Hole 4 (frozen engine): after its sessions were re-homed, a SIGSTOPped engine that resumed
/// kept forwarding its old pipeline. Now its stale pipelines are released as soon as it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_engine_that_comes_back_is_cleaned_at_once() -> anyhow::Result<()> {
    let engines = [
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
    ];
    let uris: Vec<(String, u32)> = engines.iter().map(|e| (e.url(), 1)).collect();
    let sig = LocalSignaling::start_with(vec![], uris, |s| {
        s.pool_ping_timeout_ms = 600;
        s.pool_reconnect_window_ms = 600;
        s.pool_health_interval_ms = 200;
        s.pool_stale_after_ms = 1000;
        s.pool_client_nudge_ms = 0;
    })
    .await?;
    let call = call_with_media(sig.addr, "frozen").await?;
    let home = sig.session_engine("frozen").await?;
    let (_, nodes) = sig.http("GET", "/openvidu/api/media-nodes", None).await?;
    let idx = nodes["content"]
        .as_array()
        .and_then(|a| a.iter().position(|n| n["id"] == json!(home)))
        .unwrap_or(0);
    let frozen = &engines[idx];
    signal(frozen.pid(), "STOP")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while sig.session_engine("frozen").await? == home {
        anyhow::ensure!(Instant::now() < deadline, "session was not re-homed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.send.cancel();
    let (mut x, mut y, send2, y_gets_x2) = reconnect_both(call).await?;
    assert!(flowing(&y_gets_x2, Duration::from_secs(10)).await);
    signal(frozen.pid(), "CONT")?;
    let keys = ["pipelines", "peerConnections"];
    let took = emptied(frozen.addr, Duration::from_secs(10), &keys).await?;
    eprintln!("frozen engine resumed: stale pipeline released {took:?} later");
    send2.cancel();
    x.call("leaveRoom", json!({})).await?;
    y.call("leaveRoom", json!({})).await?;
    sig.shutdown().await;
    Ok(())
}

/// Waits until every `keys` count of the engine's `/health` is 0 (fails after `within`);
/// returns how long it took.
async fn emptied(
    addr: std::net::SocketAddr,
    within: Duration,
    keys: &[&str],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let h = wait_health(addr, within, |h| keys.iter().all(|k| h[*k] == 0)).await?;
    anyhow::ensure!(keys.iter().all(|k| h[*k] == 0), "engine not emptied: {h}");
    Ok(started.elapsed())
}

fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()?;
    anyhow::ensure!(st.success(), "kill -{sig} {pid}");
    Ok(())
}

/// Hole 5: a `reconnectStream` with a bad SDP broke the stream but kept advertising it. Now the
/// old stream keeps working and a valid reconnection later succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reconnect_stream_leaves_the_stream_working() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let Call {
        mut x,
        mut y,
        stream: sx,
        send,
        y_gets_x,
    } = call_with_media(sig.addr, "mbb").await?;
    let tz = sig.token("mbb", "PUBLISHER").await?;
    for bad in ["v=0\r\nnot an sdp", "garbage", ""] {
        let r = x
            .request("reconnectStream", json!({"stream": sx, "sdpString": bad}))
            .await?;
        assert!(r["error"]["code"].as_i64().is_some(), "{r}");
        assert!(
            !r["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("40"),
            "engine error text leaked: {r}"
        );
    }
    // The old stream still flows to its subscriber and to a new one.
    assert!(
        flowing(&y_gets_x, Duration::from_secs(5)).await,
        "stream broke"
    );
    let mut z = Bot::open(&tz).await?;
    let jz = z.join(&tz, "z").await?;
    assert_eq!(jz["value"][0]["streams"][0]["id"], json!(sx));
    let z_gets_x = z.subscribe(&sx).await?;
    assert!(flowing(&z_gets_x, Duration::from_secs(10)).await);
    // A valid reconnection still works, and the subscribers follow the new publisher.
    send.cancel();
    let px2 = x.republish(&sx).await?;
    let send2 = px2.start_sending(25, 2000, 10);
    assert!(flowing(&y_gets_x, Duration::from_secs(10)).await);
    assert!(flowing(&z_gets_x, Duration::from_secs(10)).await);
    send2.cancel();
    for b in [&mut x, &mut y, &mut z] {
        b.call("leaveRoom", json!({})).await?;
    }
    assert_eq!(sig.wait_engines_empty(Duration::from_secs(5)).await?, 0);
    sig.shutdown().await;
    Ok(())
}

/// Hole 6: sizes. Every free-form value has a limit with a clear error, and nothing else
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_answer_clearly_and_change_nothing() -> anyhow::Result<()> {
    // A small limit, so the oversized frame below is written whole before the engine closes
    // (a client still writing when the server closes gets a reset instead of the close frame).
    let engine = LocalEngine::start_with(rtcpool_config::EngineSettings {
        max_message_size: 256 * 1024,
        ..test_settings("127.0.0.1:0".parse()?)
    })
    .await?;
    let (uri, eaddr) = (engine.url(), engine.addr);
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri.clone(), 1)], |_| {}).await?;
    for id in ["a".repeat(257), "b".repeat(100_000)] {
        let (st, b) = sig
            .http(
                "POST",
                "/openvidu/api/sessions",
                Some(&json!({"customSessionId": id})),
            )
            .await?;
        assert_eq!(st, 400, "{b}");
    }
    let (st, _) = sig
        .http(
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": "a".repeat(256)})),
        )
        .await?;
    assert_eq!(st, 200);
    let ta = sig.token("lim", "PUBLISHER").await?;
    let (st, b) = sig
        .http(
            "POST",
            "/openvidu/api/sessions/lim/connection",
            Some(&json!({"data": "d".repeat(20_000)})),
        )
        .await?;
    assert_eq!(st, 400, "{b}");
    let mut a = Bot::open(&ta).await?;
    a.join(&ta, "a").await?;
    // 20 KB of join metadata: refused, and nobody hears of the attempt.
    let tb = sig.token("lim", "PUBLISHER").await?;
    let mut b = Bot::open(&tb).await?;
    let r = b
        .request(
            "joinRoom",
            json!({"token": tb, "session": "lim", "platform": "x", "metadata": "m".repeat(20_000), "secret": ""}),
        )
        .await?;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("16384"));
    assert!(a
        .next_notification(Duration::from_millis(300))
        .await
        .is_none());
    b.join(&tb, "b").await?; // the token was not used up
    let r = a
        .request(
            "sendMessage",
            json!({"message": json!({"to": [], "data": "x".repeat(70_000)}).to_string()}),
        )
        .await?;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let (st, _) = sig
        .http(
            "POST",
            "/openvidu/api/signal",
            Some(&json!({"session": "lim", "data": "x".repeat(70_000)})),
        )
        .await?;
    assert_eq!(st, 400);
    // A static path segment over 255 bytes: 404, not 500.
    let (st, _) = http_request(
        sig.addr,
        "GET",
        &format!("/{}", "x".repeat(300)),
        None,
        None,
    )
    .await?;
    assert_eq!(st, 404);
    // Oversized frames close only that socket, with 1009 (browser side and engine side).
    let mut big = RawSocket::connect(&format!("ws://{}/openvidu", sig.addr)).await?;
    big.send_big(300 * 1024).await?;
    assert_eq!(big.close_code(Duration::from_secs(5)).await, Some(1009));
    let mut big = RawSocket::connect(&uri).await?;
    big.send_big(300 * 1024).await?;
    assert_eq!(big.close_code(Duration::from_secs(5)).await, Some(1009));
    assert_eq!(health(eaddr).await?["status"], "ok");
    a.call(
        "sendMessage",
        json!({"message": json!({"data": "still fine"}).to_string()}),
    )
    .await?;
    b.wait_for("sendMessage", |p| p["data"] == "still fine")
        .await?;
    a.call("leaveRoom", json!({})).await?;
    b.call("leaveRoom", json!({})).await?;
    sig.shutdown().await;
    Ok(())
}

/// Hole 6 (slowloris): partial headers and bodies shorter than announced held connections open
/// indefinitely. Now both servers cut them after their timeouts; idle engine sockets too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut() -> anyhow::Result<()> {
    let engine = LocalEngine::start_with(rtcpool_config::EngineSettings {
        http_header_timeout_secs: 1,
        idle_timeout_secs: 1,
        ..test_settings("127.0.0.1:0".parse()?)
    })
    .await?;
    let (uri, eaddr) = (engine.url(), engine.addr);
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri.clone(), 1)], |s| {
        s.http_header_timeout_secs = 1;
        s.http_body_timeout_secs = 1;
    })
    .await?;
    let started = Instant::now();
    let mut slow = Vec::new();
    for addr in [sig.addr, eaddr] {
        for i in 0..40 {
            let raw: &[u8] = match i % 3 {
                0 => b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                1 => b"",
                _ => b"GET /",
            };
            slow.push(tokio::spawn(http_raw(addr, raw, Duration::from_secs(5))));
        }
    }
    for s in slow {
        assert!(
            s.await??.is_some(),
            "a slow connection was still open after 5 s"
        );
    }
    let cut = started.elapsed();
    // A body shorter than its Content-Length gets an answer after the body timeout.
    let req = format!(
        "POST /openvidu/api/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        base64_auth()
    );
    let answer = http_raw(sig.addr, req.as_bytes(), Duration::from_secs(5)).await?;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 4")),
        "{answer:?}"
    );
    // An engine socket that says nothing is closed; one that pings stays.
    let mut quiet = RawSocket::connect(&uri).await?;
    let mut chatty = RawSocket::connect(&uri).await?;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        chatty.ok("ping", json!({"interval": 300})).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(quiet.close_code(Duration::from_secs(3)).await, Some(1000));
    chatty.ok("ping", json!({})).await?;
    let (_, h) = http_request(eaddr, "GET", "/health", None, None).await?;
    assert!(h["socketsClosedIdle"].as_u64().unwrap_or(0) >= 1, "{h}");
    eprintln!("slowloris: 80 slow connections cut within {cut:?}");
    sig.shutdown().await;
    Ok(())
}

/// Hole 6 (ready means ready): every session was refused for ~1.5 s after start-up, until the
/// first CPU sample. Now a join made as soon as the REST API answers is placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_right_after_start_up_is_placed() -> anyhow::Result<()> {
    let engine = EngineProcess::start(&[]).await?;
    let sig = SignalingProcess::start(&[engine.url()], &[]).await?;
    let up = Instant::now();
    let token = sig.token("early", "PUBLISHER").await?;
    let mut a = Bot::open(&token).await?;
    let r = a
        .request(
            "joinRoom",
            json!({"token": token, "session": "early", "platform": "x", "metadata": "", "secret": ""}),
        )
        .await?;
    assert!(r.get("error").is_none(), "{r}");
    eprintln!(
        "joined {:?} after the REST API first answered",
        up.elapsed()
    );
    Ok(())
}

/// The unchanged kurento-client 7.3.0 (Node) works with the secret as the URI's user-info and
/// is refused without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_kurento_client_reaches_a_secret_engine() -> anyhow::Result<()> {
    let secret = "node-client-secret";
    let engine = EngineProcess::start_logged(secret).await?;
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/kurento-secret.mjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(format!("ws://rtcpool:{secret}@{}/kurento", engine.addr))
        .arg(engine.url())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| anyhow::anyhow!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)))?;
    assert!(
        v["endpoint"]
            .as_str()
            .is_some_and(|e| e.contains("WebRtcEndpoint")),
        "{v}"
    );
    assert_eq!(v["pipelinesAfter"], 0, "{v}");
    assert_eq!(v["withoutSecret"], "refused", "{v}");
    Ok(())
}

/// `wss://` engine URIs work (an engine behind a TLS terminator, a private CA given with
/// `SSL_CERT_FILE`), secret included; an untrusted certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_engine_uris_work_with_their_secret() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("rtcpool-wss-{}", std::process::id()));
    let (trusted, other) = (dir.join("trusted"), dir.join("other"));
    std::fs::create_dir_all(&trusted)?;
    std::fs::create_dir_all(&other)?;
    let (ca, cert, key) = rtcpool_tests::harness::make_certificates(&trusted)?;
    let (_, other_cert, other_key) = rtcpool_tests::harness::make_certificates(&other)?;
    // Before the first wss:// connection (the roots are loaded once per process); this test
    // runs in its own process (nextest), so the variable reaches no other test.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let secret = "wss-engine-secret";
    let engine = LocalEngine::start_with(rtcpool_config::EngineSettings {
        secret: Some(secret.into()),
        ..test_settings("127.0.0.1:0".parse()?)
    })
    .await?;
    // A certificate from a CA we do not trust: refused, the error shows no secret.
    let impostor = tls_front(&other_cert, &other_key, engine.addr).await?;
    let bad = format!(
        "wss://rtcpool:{secret}@127.0.0.1:{}/kurento",
        impostor.port()
    );
    let refused = rtcpool_tests::harness::client(&bad)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("wss://127.0.0.1") && !e.contains(secret)),
        "{refused:?}"
    );
    let front = tls_front(&cert, &key, engine.addr).await?;
    let uri = format!("wss://rtcpool:{secret}@127.0.0.1:{}/kurento", front.port());
    let sig = LocalSignaling::start_with(vec![engine], vec![(uri.clone(), 1)], |_| {}).await?;
    let call = call_with_media(sig.addr, "wss").await?;
    call.send.cancel();
    let (_, nodes) = sig.http("GET", "/openvidu/api/media-nodes", None).await?;
    let shown = nodes["content"][0]["uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(shown, format!("wss://127.0.0.1:{}/kurento", front.port()));
    let Call { mut x, mut y, .. } = call;
    x.call("leaveRoom", json!({})).await?;
    y.call("leaveRoom", json!({})).await?;
    assert_eq!(sig.wait_engines_empty(Duration::from_secs(5)).await?, 0);
    sig.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Terminates TLS on a loopback port and forwards each connection to `backend` (what a load
/// balancer in front of an engine does).
async fn tls_front(
    cert: &std::path::Path,
    key: &std::path::Path,
    backend: std::net::SocketAddr,
) -> anyhow::Result<std::net::SocketAddr> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(tcp).await,
                    tokio::net::TcpStream::connect(backend).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Ok(addr)
}

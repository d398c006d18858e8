//! OpenVidu's webhook against a real HTTP receiver: the lifecycle of a call arrives in order, in
//! OpenVidu's shapes, with the configured headers (whose values are shown nowhere); a receiver
//! that hangs or refuses slows no session and every outcome is counted in `/metrics`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{
    free_port, http_raw, EngineProcess, LocalEngine, LocalSignaling, SECRET,
};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A webhook receiver on loopback: records each event with its `Authorization` header.
async fn receiver() -> anyhow::Result<(SocketAddr, Seen)> {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(seen): State<Seen>, h: HeaderMap, Json(v): Json<Value>| async move {
                    let auth = h
                        .get("authorization")
                        .and_then(|a| a.to_str().ok())
                        .map(str::to_string);
                    seen.lock().push((auth, v));
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, seen))
}

async fn signaling_with_webhook(
    endpoint: String,
    timeout_ms: u64,
    queue: usize,
    cdr: Option<std::path::PathBuf>,
) -> anyhow::Result<LocalSignaling> {
    let engine = LocalEngine::start().await?;
    let uris = vec![(engine.url(), 1)];
    LocalSignaling::start_with(vec![engine], uris, |s| {
        s.openvidu_webhook = true;
        s.openvidu_webhook_endpoint = endpoint;
        s.openvidu_webhook_headers = vec!["Authorization: Bearer hook-s3cret".into()];
        s.webhook_timeout_ms = timeout_ms;
        s.webhook_queue = queue;
        if let Some(dir) = cdr {
            s.openvidu_cdr = true;
            s.openvidu_cdr_path = dir;
        }
    })
    .await
}

async fn metrics(addr: SocketAddr) -> anyhow::Result<String> {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{SECRET}"));
    let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n\r\n");
    Ok(http_raw(addr, req.as_bytes(), Duration::from_secs(5))
        .await?
        .unwrap_or_default())
}

/// The value of `rtcpool_webhook_events_total{result="…"}`.
fn counted(metrics: &str, result: &str) -> u64 {
    let key = format!("rtcpool_webhook_events_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaches_a_real_receiver_in_openvidus_shapes() -> anyhow::Result<()> {
    let (hook, seen) = receiver().await?;
    let cdr = std::env::temp_dir().join(format!("rtcpool-cdr-{}", uuid::Uuid::new_v4().simple()));
    let sig = signaling_with_webhook(
        format!("http://{hook}/hook"),
        2_000,
        1_000,
        Some(cdr.clone()),
    )
    .await?;
    let (ta, tb) = (
        sig.token("hooked", "PUBLISHER").await?,
        sig.token("hooked", "PUBLISHER").await?,
    );
    let mut a = Bot::open(&ta).await?;
    a.join(&ta, "alice").await?;
    let (pub_a, stream_a) = a.publish().await?;
    let send = pub_a.start_sending(25, 1200, 50);
    let mut b = Bot::open(&tb).await?;
    b.join(&tb, "bob").await?;
    let _sub = b.subscribe(&stream_a).await?;
    a.call(
        "sendMessage",
        json!({"message": json!({"to": [], "data": "hi", "type": "signal:chat"}).to_string()}),
    )
    .await?;
    b.call("leaveRoom", json!({})).await?;
    a.call("leaveRoom", json!({})).await?;
    send.cancel();
    let done = wait_until(Duration::from_secs(10), || {
        seen.lock()
            .iter()
            .any(|(_, v)| v["event"] == "sessionDestroyed")
    })
    .await;
    let events = seen.lock().clone();
    assert!(done, "no sessionDestroyed: {events:?}");

    let (ca, cb) = (a.connection_id.clone(), b.connection_id.clone());
    let names: Vec<(String, Value)> = events
        .iter()
        .map(|(_, v)| {
            (
                v["event"].as_str().unwrap_or("").to_string(),
                v["connectionId"].clone(),
            )
        })
        .collect();
    let expected = [
        ("sessionCreated", Value::Null),
        ("participantJoined", json!(ca)),
        ("webrtcConnectionCreated", json!(ca)),
        ("participantJoined", json!(cb)),
        ("webrtcConnectionCreated", json!(cb)),
        ("signalSent", Value::Null),
        ("webrtcConnectionDestroyed", json!(cb)),
        ("participantLeft", json!(cb)),
        ("webrtcConnectionDestroyed", json!(ca)),
        ("participantLeft", json!(ca)),
        ("sessionDestroyed", Value::Null),
    ];
    let expected: Vec<(String, Value)> = expected
        .iter()
        .map(|(e, c)| (e.to_string(), c.clone()))
        .collect();
    assert_eq!(names, expected, "{events:#?}");

    for (auth, v) in &events {
        assert_eq!(
            auth.as_deref(),
            Some("Bearer hook-s3cret"),
            "the configured header"
        );
        assert_eq!(v["sessionId"], "hooked");
        assert!(v["uniqueSessionId"]
            .as_str()
            .is_some_and(|u| u.starts_with("hooked_")));
        assert!(v["timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000));
    }
    let ev = |i: usize| &events[i].1;
    assert_eq!(ev(1)["platform"], json!("rtcpool-bot"), "{}", ev(1));
    assert_eq!(
        (ev(2)["connection"].clone(), ev(2)["streamId"].clone()),
        (json!("OUTBOUND"), json!(stream_a))
    );
    assert_eq!(
        (ev(4)["connection"].clone(), ev(4)["receivingFrom"].clone()),
        (json!("INBOUND"), json!(ca))
    );
    assert_eq!(
        (
            ev(5)["from"].clone(),
            ev(5)["type"].clone(),
            ev(5)["data"].clone()
        ),
        (json!(ca), json!("signal:chat"), json!("hi"))
    );
    assert_eq!(
        ev(5)["to"].as_array().map(Vec::len),
        Some(2),
        "a signal to everyone lists everyone"
    );
    assert_eq!(
        (ev(7)["reason"].clone(), ev(6)["reason"].clone()),
        (json!("disconnect"), json!("disconnect"))
    );
    assert!(ev(7)["duration"].as_u64().is_some() && ev(7)["startTime"].as_u64().is_some());
    assert_eq!(ev(10)["reason"], "lastParticipantLeft");

    // The settings are reported without the header's value; the deliveries are counted.
    let (_, config) = sig.http("GET", "/openvidu/api/config", None).await?;
    assert_eq!(config["OPENVIDU_WEBHOOK"], true);
    assert_eq!(config["OPENVIDU_WEBHOOK_HEADERS"], json!(["Authorization"]));
    assert!(!config.to_string().contains("hook-s3cret"));
    let m = metrics(sig.addr).await?;
    assert_eq!(counted(&m, "sent"), events.len() as u64, "{m}");
    assert!(!m.contains("hook-s3cret"));

    // The CDR file has the same events, one `{"event": {…}}` line each, in the same order.
    let read_cdr = || -> Vec<Value> {
        let Ok(mut dir) = std::fs::read_dir(&cdr) else {
            return Vec::new();
        };
        let Some(Ok(file)) = dir.next() else {
            return Vec::new();
        };
        std::fs::read_to_string(file.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let mut lines = Vec::new();
    let complete = wait_until(Duration::from_secs(5), || {
        lines = read_cdr();
        lines.len() >= events.len()
    })
    .await;
    assert!(complete, "{lines:#?}");
    let cdr_names: Vec<String> = lines
        .iter()
        .filter_map(|l| l.as_object().and_then(|o| o.keys().next().cloned()))
        .collect();
    let hook_names: Vec<String> = events
        .iter()
        .map(|(_, v)| v["event"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(cdr_names, hook_names);
    assert_eq!(lines[0]["sessionCreated"]["sessionId"], "hooked");
    let files: Vec<String> = std::fs::read_dir(&cdr)?
        .filter_map(|f| f.ok().map(|f| f.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(
        files.len() == 1 && files[0].starts_with("CDR.") && files[0].ends_with(".log"),
        "{files:?}"
    );
    let _ = std::fs::remove_dir_all(&cdr);
    sig.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_refusing_receiver_slows_no_session_and_is_counted() -> anyhow::Result<()> {
    // Accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hang_addr = hang.local_addr()?;
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = hang.accept().await {
            keep.lock().push(s);
        }
    });
    let sig = signaling_with_webhook(format!("http://{hang_addr}/hook"), 300, 4, None).await?;
    // Twenty sessions at once: each REST call answers at once although nothing is delivered.
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        let (st, _) = sig
            .http(
                "POST",
                "/openvidu/api/sessions",
                Some(&json!({"customSessionId": format!("h{i}")})),
            )
            .await?;
        slowest = slowest.max(t.elapsed());
        assert_eq!(st, 200);
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a REST call took {slowest:?}"
    );
    // And a participant joins as fast as ever.
    let token = sig.token("h0", "PUBLISHER").await?;
    let mut bot = Bot::open(&token).await?;
    let t = Instant::now();
    bot.join(&token, "x").await?;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "join took {:?}",
        t.elapsed()
    );
    // The queue held 4: the rest were dropped; what was queued fails after three attempts each.
    let addr = sig.addr;
    let mut last = String::new();
    let mut settled = false;
    for _ in 0..100 {
        last = metrics(addr).await?;
        if counted(&last, "dropped") >= 10 && counted(&last, "failed") >= 1 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "{last}");
    assert_eq!(counted(&last, "sent"), 0);
    bot.call("leaveRoom", json!({})).await?;
    sig.shutdown().await;

    // A receiver that refuses connections: three attempts, then counted as failed.
    let closed = free_port()?;
    let sig =
        signaling_with_webhook(format!("http://127.0.0.1:{closed}/hook"), 300, 100, None).await?;
    let (st, _) = sig
        .http(
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": "refused"})),
        )
        .await?;
    assert_eq!(st, 200);
    let mut failed = false;
    for _ in 0..60 {
        last = metrics(sig.addr).await?;
        if counted(&last, "failed") == 1 {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failed, "{last}");
    assert!(last.contains("rtcpool_webhook_retries_total 2"), "{last}");
    sig.shutdown().await;
    drop(held);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_crash_and_return_are_reported_with_its_sessions() -> anyhow::Result<()> {
    let (hook, seen) = receiver().await?;
    let port = free_port()?;
    let mut engine = EngineProcess::start_on(port, &[]).await?;
    let sig = LocalSignaling::start_with(vec![], vec![(engine.url(), 1)], |s| {
        s.pool_health_interval_ms = 500;
        s.openvidu_webhook = true;
        s.openvidu_webhook_endpoint = format!("http://{hook}/hook");
    })
    .await?;
    let token = sig.token("crashy", "PUBLISHER").await?;
    let mut a = Bot::open(&token).await?;
    a.join(&token, "a").await?;
    engine.kill();
    let crashed = wait_until(Duration::from_secs(10), || {
        seen.lock()
            .iter()
            .any(|(_, v)| v["event"] == "sessionDestroyed")
    })
    .await;
    let events: Vec<Value> = seen.lock().iter().map(|(_, v)| v.clone()).collect();
    assert!(crashed, "{events:#?}");
    let node = events.iter().find(|v| v["event"] == "nodeCrashed");
    let Some(node) = node else {
        panic!("no nodeCrashed: {events:#?}")
    };
    assert_eq!(node["sessionIds"], json!(["crashy"]));
    assert_eq!(node["nodeRole"], "medianode");
    assert!(node["timeOfDisconnection"].as_u64().is_some(), "{node}");
    assert!(node.get("sessionId").is_none());
    let reasons: Vec<(Value, Value)> = events
        .iter()
        .filter(|v| v["event"] == "participantLeft" || v["event"] == "sessionDestroyed")
        .map(|v| (v["event"].clone(), v["reason"].clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (json!("participantLeft"), json!("nodeCrashed")),
            (json!("sessionDestroyed"), json!("nodeCrashed"))
        ]
    );
    // The same engine comes back: nodeRecovered.
    let _back = EngineProcess::start_on(port, &[]).await?;
    let recovered = wait_until(Duration::from_secs(10), || {
        seen.lock()
            .iter()
            .any(|(_, v)| v["event"] == "nodeRecovered")
    })
    .await;
    assert!(recovered, "{:#?}", seen.lock());
    sig.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_node_status_changes_are_reported() -> anyhow::Result<()> {
    let (hook, seen) = receiver().await?;
    let sig = signaling_with_webhook(format!("http://{hook}/hook"), 2_000, 100, None).await?;
    let extra = EngineProcess::start(&[]).await?;
    let (st, node) = sig
        .http(
            "POST",
            "/openvidu/api/media-nodes",
            Some(&json!({"uri": extra.url()})),
        )
        .await?;
    assert_eq!(st, 200, "{node}");
    let id = node["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/openvidu/api/media-nodes/{id}");
    let (st, _) = sig
        .http(
            "PATCH",
            &path,
            Some(&json!({"status": "waiting-idle-to-terminate"})),
        )
        .await?;
    assert_eq!(st, 200);
    let (st, _) = sig.http("DELETE", &path, None).await?;
    assert_eq!(st, 204);
    let done = wait_until(Duration::from_secs(5), || {
        seen.lock()
            .iter()
            .filter(|(_, v)| v["event"] == "mediaNodeStatusChanged")
            .count()
            >= 3
    })
    .await;
    let changes: Vec<(Value, Value, Value)> = seen
        .lock()
        .iter()
        .filter(|(_, v)| v["event"] == "mediaNodeStatusChanged")
        .map(|(_, v)| {
            (
                v["id"].clone(),
                v["oldStatus"].clone(),
                v["newStatus"].clone(),
            )
        })
        .collect();
    assert!(done, "{changes:?}");
    let id = json!(id);
    assert_eq!(
        changes,
        vec![
            (id.clone(), json!("launching"), json!("running")),
            (
                id.clone(),
                json!("running"),
                json!("waiting-idle-to-terminate")
            ),
            (id, json!("waiting-idle-to-terminate"), json!("terminated")),
        ]
    );
    sig.shutdown().await;
    Ok(())
}

/// OpenVidu's garbage collection: a session created by REST that nobody joins within the
/// threshold is dropped silently (no `sessionDestroyed`, as OpenVidu's `closeNonActiveSessions`),
/// its id free again; a session someone joined stays, and so do its tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_nobody_joined_are_dropped_silently() -> anyhow::Result<()> {
    let (hook, seen) = receiver().await?;
    let engine = LocalEngine::start().await?;
    let uris = vec![(engine.url(), 1)];
    // When the suite runs on Redis: where this node claims its session ids.
    let mut store = None;
    let sig = LocalSignaling::start_with(vec![engine], uris, |s| {
        s.openvidu_webhook = true;
        s.openvidu_webhook_endpoint = format!("http://{hook}/hook");
        s.openvidu_sessions_garbage_interval = 1;
        s.openvidu_sessions_garbage_threshold = 1;
        store = s.redis_url.clone().map(|u| (u, s.cluster_name.clone()));
    })
    .await?;
    let _unused = sig.token("gc_unused", "PUBLISHER").await?;
    let used = sig.token("gc_used", "PUBLISHER").await?;
    let mut a = Bot::open(&used).await?;
    a.join(&used, "alice").await?;
    let sig = &sig;
    let gone = |id: &'static str| async move {
        let path = format!("/openvidu/api/sessions/{id}");
        sig.http("GET", &path, None).await.map(|(st, _)| st == 404)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !gone("gc_unused").await? {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the unused session was not collected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another collection round passes: the joined session stays.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!gone("gc_used").await?, "a joined session was collected");
    // Its id is free again, in the cluster too.
    if let Some((url, cluster)) = &store {
        let key = format!("{cluster}:session:gc_unused");
        let out = std::process::Command::new("redis-cli")
            .args(["-u", url, "EXISTS", &key])
            .output()?;
        let exists = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            exists, "0",
            "the collected session's id is still claimed in Redis"
        );
    }
    let (st, _) = sig
        .http(
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": "gc_unused"})),
        )
        .await?;
    assert_eq!(st, 200);
    a.call("leaveRoom", json!({})).await?;
    let closed = wait_until(Duration::from_secs(10), || {
        seen.lock()
            .iter()
            .any(|(_, v)| v["event"] == "sessionDestroyed" && v["sessionId"] == "gc_used")
    })
    .await;
    assert!(closed, "the joined session's close was not reported");
    let destroyed: Vec<Value> = seen
        .lock()
        .iter()
        .filter(|(_, v)| v["event"] == "sessionDestroyed")
        .map(|(_, v)| v["sessionId"].clone())
        .collect();
    assert_eq!(
        destroyed,
        vec![json!("gc_used")],
        "only the joined session is reported"
    );
    Ok(())
}

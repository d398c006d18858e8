//! The engine pool with real engine processes: smooth weighted round robin places sessions
//! 3:2:1; a killed engine shows disconnected at once and new sessions split over the survivors;
//! a restarted engine rejoins by itself; a drained engine takes no new sessions while its sessions
//! continue; a frozen engine (SIGSTOP) is detected by ping timeout.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{EngineProcess, LocalSignaling};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn nodes(sig: &LocalSignaling) -> anyhow::Result<Vec<Value>> {
    let (_, v) = sig.http("GET", "/openvidu/api/media-nodes", None).await?;
    Ok(v["content"].as_array().cloned().unwrap_or_default())
}

async fn node_by_uri(sig: &LocalSignaling, uri: &str) -> anyhow::Result<Value> {
    nodes(sig)
        .await?
        .into_iter()
        .find(|n| n["uri"] == uri)
        .ok_or_else(|| anyhow::anyhow!("no node {uri}"))
}

/// Creates `n` sessions (prefix) with one joined bot each; returns the bots and where each landed.
async fn place(
    sig: &LocalSignaling,
    prefix: &str,
    n: usize,
) -> anyhow::Result<(Vec<Bot>, HashMap<String, usize>)> {
    let mut bots = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let token = sig.token(&id, "PUBLISHER").await?;
        let mut b = Bot::open(&token).await?;
        b.join(&token, "x").await?;
        bots.push(b);
    }
    let mut by_engine = HashMap::new();
    for i in 0..n {
        let (_, s) = sig
            .http("GET", &format!("/openvidu/api/sessions/{prefix}{i}"), None)
            .await?;
        let engine = s["mediaNode"]["id"].as_str().unwrap_or("none").to_string();
        *by_engine.entry(engine).or_insert(0) += 1;
    }
    Ok((bots, by_engine))
}

async fn wait_node(
    sig: &LocalSignaling,
    uri: &str,
    within: Duration,
    f: impl Fn(&Value) -> bool,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let n = node_by_uri(sig, uri).await?;
        if f(&n) {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(
            t0.elapsed() < within,
            "node {uri} never reached the state: {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_placement_kill_restart_and_drain() -> anyhow::Result<()> {
    let mut engines = vec![
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
    ];
    let uris: Vec<String> = engines.iter().map(|e| e.url()).collect();
    let sig = LocalSignaling::start_with(
        vec![],
        vec![
            (uris[0].clone(), 3),
            (uris[1].clone(), 2),
            (uris[2].clone(), 1),
        ],
        |s| {
            s.pool_health_interval_ms = 500;
            s.pool_stale_after_ms = 3000;
        },
    )
    .await?;
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for u in &uris {
            v.push(
                node_by_uri(&sig, u).await?["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        v
    };

    // 60 sessions land 30/20/10.
    let (mut bots, placed) = place(&sig, "w", 60).await?;
    assert_eq!(
        (
            placed.get(&ids[0]),
            placed.get(&ids[1]),
            placed.get(&ids[2])
        ),
        (Some(&30), Some(&20), Some(&10)),
        "{placed:?}"
    );

    // kill -9 the weight-3 engine: disconnected at once, its sessions move to the survivors.
    engines[0].kill();
    let seen = wait_node(&sig, &uris[0], Duration::from_secs(2), |n| {
        n["connected"] == false
    })
    .await?;
    eprintln!("pool: killed engine shown disconnected after {seen:?}");
    assert!(seen < Duration::from_secs(1), "took {seen:?}");
    wait_node(&sig, &uris[0], Duration::from_secs(10), |n| {
        n["sessionCount"] == 0
    })
    .await?;
    let (_, s) = sig.http("GET", "/openvidu/api/sessions/w0", None).await?;
    assert!(
        s["mediaNode"]["id"] == json!(ids[1]) || s["mediaNode"]["id"] == json!(ids[2]),
        "re-homed: {s}"
    );
    assert_eq!(
        s["connections"]["numberOfElements"], 1,
        "the participant kept its place"
    );
    // New sessions split 2:1 over the survivors.
    let (more, placed) = place(&sig, "k", 30).await?;
    bots.extend(more);
    assert_eq!(
        (
            placed.get(&ids[1]),
            placed.get(&ids[2]),
            placed.get(&ids[0])
        ),
        (Some(&20), Some(&10), None),
        "{placed:?}"
    );

    // Restarted on the same address, it rejoins the pool by itself.
    let port = engines[0].addr.port();
    engines[0] = EngineProcess::start_on(port, &[]).await?;
    let back = wait_node(&sig, &uris[0], Duration::from_secs(10), |n| {
        n["connected"] == true && n["admitted"] == true
    })
    .await?;
    eprintln!("pool: restarted engine admitted after {back:?}");

    // Drained: no new sessions there; its sessions continue.
    let b_sessions = node_by_uri(&sig, &uris[1]).await?["sessionCount"].clone();
    let (st, n) = sig
        .http(
            "PATCH",
            &format!("/openvidu/api/media-nodes/{}", ids[1]),
            Some(&json!({"status": "waiting-idle-to-terminate"})),
        )
        .await?;
    assert_eq!(
        (st, n["status"].clone(), n["admitted"].clone()),
        (200, json!("waiting-idle-to-terminate"), json!(false))
    );
    let (more, placed) = place(&sig, "d", 12).await?;
    bots.extend(more);
    assert_eq!(placed.get(&ids[1]), None, "{placed:?}");
    assert_eq!(
        node_by_uri(&sig, &uris[1]).await?["sessionCount"],
        b_sessions
    );
    // A bot whose session lives on the drained engine still works there.
    let on_b = {
        let (_, s) = sig.http("GET", "/openvidu/api/sessions/k0", None).await?;
        s["mediaNode"]["id"] == json!(ids[1])
    };
    let probe = if on_b { "k0" } else { "k1" };
    let idx = bots.iter().position(|b| b.session == probe).unwrap_or(0);
    let (publisher, _) = bots[idx].publish().await?;
    publisher.close().await;
    // Deletion strategies: busy → 409 (if-no-sessions) / 202 (when-no-sessions).
    let (st, _) = sig
        .http(
            "DELETE",
            &format!("/openvidu/api/media-nodes/{}", ids[1]),
            None,
        )
        .await?;
    assert_eq!(st, 409);
    let (st, _) = sig
        .http(
            "PATCH",
            &format!("/openvidu/api/media-nodes/{}", ids[1]),
            Some(&json!({"status": "running", "weight": 5})),
        )
        .await?;
    assert_eq!(st, 200);
    let (st, _) = sig
        .http(
            "PATCH",
            &format!("/openvidu/api/media-nodes/{}", ids[1]),
            Some(&json!({"status": "running"})),
        )
        .await?;
    assert_eq!(st, 204);
    let (st, _) = sig
        .http(
            "PATCH",
            &format!("/openvidu/api/media-nodes/{}", ids[1]),
            Some(&json!({"status": "launching"})),
        )
        .await?;
    assert_eq!(st, 400);
    let (st, _) = sig
        .http(
            "DELETE",
            &format!(
                "/openvidu/api/media-nodes/{}?deletion-strategy=when-no-sessions",
                ids[2]
            ),
            None,
        )
        .await?;
    assert_eq!(st, 202);
    // Metrics carry per-engine picks.
    let (st, _) = sig.http("GET", "/metrics", None).await?;
    assert_eq!(st, 200);
    for b in &mut bots {
        let _ = b.call("leaveRoom", json!({})).await;
    }
    // Every session left: the when-no-sessions engine is gone from the pool, engines are empty.
    let left = nodes(&sig).await?;
    assert!(
        left.iter().all(|n| n["id"] != json!(ids[2])),
        "when-no-sessions engine should have left: {left:?}"
    );
    for e in &engines {
        let h = rtcpool_tests::harness::health(e.addr).await?;
        assert_eq!(h["pipelines"], 0, "{h}");
    }
    sig.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_engine_is_detected_by_ping_timeout() -> anyhow::Result<()> {
    let engine = EngineProcess::start(&[]).await?;
    let uri = engine.url();
    let sig = LocalSignaling::start_with(vec![], vec![(uri.clone(), 1)], |s| {
        s.pool_ping_timeout_ms = 1000;
        s.pool_health_interval_ms = 500;
        s.pool_stale_after_ms = 2000;
    })
    .await?;
    let pid = engine.pid().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()?;
    let detected = wait_node(&sig, &uri, Duration::from_secs(5), |n| {
        n["admitted"] == false && n["connected"] == false
    })
    .await;
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()?;
    let detected = detected?;
    eprintln!("pool: frozen engine detected after {detected:?} (ping timeout 1 s)");
    assert!(detected <= Duration::from_millis(2000), "took {detected:?}");
    // Thawed, the same process answers again and is admitted.
    wait_node(&sig, &uri, Duration::from_secs(15), |n| {
        n["connected"] == true && n["admitted"] == true
    })
    .await?;
    sig.shutdown().await;
    Ok(())
}

/// Operators steer placement: a session naming its engine (Pro's `mediaNode`) goes there, one
/// asking for labels (`mediaNodeLabels`) goes to the engines carrying them, falling back to any
/// engine when none does; an unknown engine is 404, one that cannot take sessions 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_steer_placement() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(2).await?;
    let eu = rtcpool_tests::harness::LocalEngine::start().await?;
    let (st, added) = sig
        .http(
            "POST",
            "/openvidu/api/media-nodes",
            Some(&json!({"uri": eu.url(), "labels": {"region": "eu"}})),
        )
        .await?;
    assert_eq!(st, 200, "{added}");
    let eu_id = added["id"].as_str().unwrap_or_default().to_string();
    wait_node(&sig, &eu.url(), Duration::from_secs(5), |n| {
        n["admitted"] == true
    })
    .await?;
    let ids: Vec<String> = nodes(&sig)
        .await?
        .iter()
        .filter_map(|n| n["id"].as_str().map(str::to_string))
        .collect();
    let first = ids
        .iter()
        .find(|i| **i != eu_id)
        .cloned()
        .unwrap_or_default();
    let mut bots = Vec::new();
    let join = |session: String| {
        let sig = &sig;
        async move {
            let token = sig.token(&session, "PUBLISHER").await?;
            let mut b = Bot::open(&token).await?;
            b.join(&token, "x").await?;
            let (_, s) = sig
                .http("GET", &format!("/openvidu/api/sessions/{session}"), None)
                .await?;
            anyhow::Ok((b, s))
        }
    };
    // Named: every one on the same engine (round robin would have spread them).
    for i in 0..3 {
        let body = json!({"customSessionId": format!("named{i}"), "mediaNode": {"id": first}});
        let (st, s) = sig
            .http("POST", "/openvidu/api/sessions", Some(&body))
            .await?;
        assert_eq!(
            (st, s["mediaNode"]["id"].clone()),
            (200, json!(first)),
            "{s}"
        );
        let (b, s) = join(format!("named{i}")).await?;
        assert_eq!(s["mediaNode"]["id"], json!(first));
        bots.push(b);
    }
    // Labels: the engine carrying them, every time.
    for i in 0..3 {
        let body =
            json!({"customSessionId": format!("eu{i}"), "mediaNodeLabels": {"region": "eu"}});
        let (st, s) = sig
            .http("POST", "/openvidu/api/sessions", Some(&body))
            .await?;
        assert_eq!(
            (st, s["mediaNodeLabels"].clone()),
            (200, json!({"region": "eu"})),
            "{s}"
        );
        let (b, s) = join(format!("eu{i}")).await?;
        assert_eq!(s["mediaNode"]["id"], json!(eu_id), "{s}");
        bots.push(b);
    }
    // Labels nobody has: any engine (POOL_LABEL_FALLBACK=any, the default).
    let body = json!({"customSessionId": "mars", "mediaNodeLabels": {"region": "mars"}});
    assert_eq!(
        sig.http("POST", "/openvidu/api/sessions", Some(&body))
            .await?
            .0,
        200
    );
    let (b, s) = join("mars".into()).await?;
    assert!(
        s["mediaNode"]["id"]
            .as_str()
            .is_some_and(|e| ids.iter().any(|i| i == e)),
        "{s}"
    );
    bots.push(b);
    // Refusals change nothing.
    let body = json!({"customSessionId": "ghost", "mediaNode": {"id": "media_Nowhere1"}});
    assert_eq!(
        sig.http("POST", "/openvidu/api/sessions", Some(&body))
            .await?
            .0,
        404
    );
    let path = format!("/openvidu/api/media-nodes/{first}");
    let drain = json!({"status": "waiting-idle-to-terminate"});
    assert_eq!(sig.http("PATCH", &path, Some(&drain)).await?.0, 200);
    let body = json!({"customSessionId": "late", "mediaNode": {"id": first}});
    let (st, e) = sig
        .http("POST", "/openvidu/api/sessions", Some(&body))
        .await?;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("draining")),
        "{e}"
    );
    for s in ["ghost", "late"] {
        let (st, _) = sig
            .http("GET", &format!("/openvidu/api/sessions/{s}"), None)
            .await?;
        assert_eq!(st, 404, "{s} was not created");
    }
    for mut b in bots {
        let _ = b.call("leaveRoom", json!({})).await;
    }
    sig.shutdown().await;
    eu.shutdown().await;
    Ok(())
}

//! A session larger than one engine: with a low endpoint limit, a broadcast's viewers spill from
//! the session's engine to others, fed through relays (one per publication and engine, shared,
//! released with its last subscriber); media is counted at every viewer. Then a relay engine is
//! killed (its viewers come back), then the origin (everyone comes back), then everyone leaves
//! (nothing is left on any engine); and rounds of churn across three engines leave nothing.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{health, media_flows, EngineProcess, LocalSignaling};
use rtcpool_tests::peer::TestPeer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Endpoints (elements) an engine takes: the publisher's endpoint and PassThrough plus four
/// viewers on the origin; a relay's endpoint and PassThrough plus four viewers elsewhere.
const LIMIT: u64 = 6;

async fn session(sig: &LocalSignaling) -> anyhow::Result<Value> {
    let (st, s) = sig.http("GET", "/openvidu/api/sessions/bc", None).await?;
    anyhow::ensure!(st == 200, "session: {st} {s}");
    Ok(s)
}

fn relays(s: &Value) -> Vec<Value> {
    s["relays"].as_array().cloned().unwrap_or_default()
}

/// Waits until the session's relays satisfy `ok`.
async fn wait_relays(
    sig: &LocalSignaling,
    what: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = session(sig).await?;
        if ok(&relays(&s)) {
            return Ok(s);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: {}", s["relays"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Viewer {
    bot: Bot,
    peer: TestPeer,
}

async fn viewer(sig: &LocalSignaling, name: &str, stream: &str) -> anyhow::Result<Viewer> {
    let t = sig.token("bc", "SUBSCRIBER").await?;
    let mut bot = Bot::open(&t).await?;
    bot.join(&t, name).await?;
    let peer = bot.subscribe(stream).await?;
    Ok(Viewer { bot, peer })
}

async fn all_flow(viewers: &[Viewer]) -> bool {
    for v in viewers {
        if !media_flows(&v.peer).await {
            return false;
        }
    }
    true
}

async fn engine_objects(e: &EngineProcess) -> anyhow::Result<(Value, Value)> {
    let h = health(e.addr).await?;
    Ok((h["pipelines"].clone(), h["elements"].clone()))
}

/// Three engine processes and signaling in front of them with the low endpoint limit.
async fn three_engines() -> anyhow::Result<([EngineProcess; 3], LocalSignaling)> {
    let engines = [
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
    ];
    let uris: Vec<(String, u32)> = engines.iter().map(|e| (e.url(), 1)).collect();
    let sig = LocalSignaling::start_with(vec![], uris, |s| {
        s.pool_max_endpoints = LIMIT;
        s.pool_health_interval_ms = 300;
        s.pool_reconnect_window_ms = 1000;
    })
    .await?;
    Ok((engines, sig))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_spans_engines_and_survives_their_loss() -> anyhow::Result<()> {
    let (mut engines, sig) = three_engines().await?;
    let (st, nodes) = sig.http("GET", "/openvidu/api/media-nodes", None).await?;
    anyhow::ensure!(st == 200);
    let ids: Vec<String> = nodes["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let index = |id: &str| ids.iter().position(|i| i == id).unwrap_or(0);

    let tp = sig.token("bc", "PUBLISHER").await?;
    let mut publisher = Bot::open(&tp).await?;
    publisher.join(&tp, "host").await?;
    let (pp, stream) = publisher.publish().await?;
    let mut sending = pp.start_sending(25, 2000, 10);

    // Twelve viewers, one after another: four on the origin, then four on each of two others.
    let t0 = Instant::now();
    let mut viewers = Vec::new();
    for i in 0..12 {
        viewers.push(viewer(&sig, &format!("v{i}"), &stream).await?);
    }
    anyhow::ensure!(all_flow(&viewers).await, "media did not reach every viewer");
    eprintln!(
        "relays: 12 viewers over 3 engines receiving in {:?}",
        t0.elapsed()
    );
    let s = session(&sig).await?;
    let origin = s["mediaNodeId"].as_str().unwrap_or_default().to_string();
    assert_eq!(s["mediaNodeIds"].as_array().map(Vec::len), Some(3), "{s}");
    let r = relays(&s);
    assert_eq!(r.len(), 2, "{s}");
    assert!(r.iter().all(|r| r["streamId"] == json!(stream)
        && r["fromMediaNodeId"] == json!(origin)
        && r["subscribers"] == json!(4)
        && r["ready"] == json!(true)));
    // Each relay's traffic, sampled from the origin engine, in the REST view and in /metrics.
    wait_relays(&sig, "relay traffic sampled", |r| {
        r.iter()
            .all(|r| r["packetsSent"].as_u64() > Some(50) && r["bytesSent"].as_u64() > Some(50_000))
    })
    .await?;
    let metrics = rtcpool_tests::harness::http_text(sig.addr, "/metrics").await?;
    assert!(metrics.contains("rtcpool_relays{engine=\""), "{metrics}");
    assert!(
        metrics.contains("rtcpool_relay_packets_total{"),
        "{metrics}"
    );

    // Release with the last subscriber: the last four leave, their engine is left empty and
    // the origin's outgoing relay endpoint goes; four new viewers rebuild it.
    let far_of_last = {
        let before: Vec<String> = r
            .iter()
            .map(|r| r["toMediaNodeId"].as_str().unwrap_or_default().to_string())
            .collect();
        for mut v in viewers.drain(8..) {
            v.bot.call("leaveRoom", json!({})).await?;
            v.peer.close().await;
        }
        let s = wait_relays(&sig, "one relay left", |r| r.len() == 1).await?;
        let left = relays(&s)[0]["toMediaNodeId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        before
            .into_iter()
            .find(|id| *id != left)
            .unwrap_or_default()
    };
    let emptied = &engines[index(&far_of_last)];
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine_objects(emptied).await? != (json!(0), json!(0)) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "engine left with objects after its last relayed viewer: {:?}",
            engine_objects(emptied).await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 8..12 {
        viewers.push(viewer(&sig, &format!("w{i}"), &stream).await?);
    }
    anyhow::ensure!(
        all_flow(&viewers[8..]).await,
        "rebuilt relay carries no media"
    );
    let s = wait_relays(&sig, "two relays again", |r| r.len() == 2).await?;

    // kill -9 of a relay's engine: its viewers come back (the others never stop).
    let relay_engine = relays(&s)
        .iter()
        .map(|r| r["toMediaNodeId"].as_str().unwrap_or_default().to_string())
        .find(|id| *id == far_of_last)
        .unwrap_or_default();
    let killed_at = Instant::now();
    engines[index(&relay_engine)].kill();
    wait_relays(&sig, "relay of the killed engine dropped", |r| {
        r.len() == 1 && r[0]["toMediaNodeId"] != json!(relay_engine)
    })
    .await?;
    for v in viewers[8..].iter_mut() {
        v.peer.close().await;
        v.peer = v.bot.resubscribe(&stream).await?;
    }
    anyhow::ensure!(
        all_flow(&viewers).await,
        "viewers of the killed relay engine did not recover"
    );
    eprintln!(
        "relays: relay engine killed, its viewers receiving again after {:?}",
        killed_at.elapsed()
    );

    // kill -9 of the origin: the session moves (to the engine it still spans), the publisher
    // republishes, every viewer resubscribes.
    let killed_at = Instant::now();
    engines[index(&origin)].kill();
    sending.cancel();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sig.session_engine("bc").await? == origin {
        anyhow::ensure!(Instant::now() < deadline, "session was not re-homed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pp2 = publisher.republish(&stream).await?;
    sending = pp2.start_sending(25, 2000, 10);
    for v in viewers.iter_mut() {
        v.peer.close().await;
        v.peer = v.bot.resubscribe(&stream).await?;
    }
    anyhow::ensure!(
        all_flow(&viewers).await,
        "viewers did not recover after the origin's loss"
    );
    eprintln!(
        "relays: origin killed, every viewer receiving again after {:?}",
        killed_at.elapsed()
    );

    // Everyone leaves: nothing is left on the surviving engine.
    sending.cancel();
    for mut v in viewers {
        v.bot.call("leaveRoom", json!({})).await?;
        v.peer.close().await;
    }
    publisher.call("leaveRoom", json!({})).await?;
    pp.close().await;
    pp2.close().await;
    let survivor = engines
        .iter()
        .enumerate()
        .find(|(i, _)| ids[*i] != origin && ids[*i] != relay_engine)
        .map(|(_, e)| e)
        .ok_or_else(|| anyhow::anyhow!("no surviving engine"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine_objects(survivor).await? != (json!(0), json!(0)) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "objects left on the surviving engine: {:?}",
            engine_objects(survivor).await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sig.shutdown().await;
    Ok(())
}

/// Churn across engines: rounds of a publisher and ten viewers (spanning all three engines
/// through relays) joining and leaving; after each round every engine is empty again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_across_engines_leaves_nothing() -> anyhow::Result<()> {
    let (engines, sig) = three_engines().await?;
    for round in 0..4 {
        let session = format!("churn{round}");
        let tp = sig.token(&session, "PUBLISHER").await?;
        let mut host = Bot::open(&tp).await?;
        host.join(&tp, "host").await?;
        let (pp, stream) = host.publish().await?;
        let sending = pp.start_sending(25, 1000, 10);
        let mut viewers = Vec::new();
        for i in 0..10 {
            let t = sig.token(&session, "SUBSCRIBER").await?;
            let mut bot = Bot::open(&t).await?;
            bot.join(&t, &format!("v{i}")).await?;
            let peer = bot.subscribe(&stream).await?;
            viewers.push(Viewer { bot, peer });
        }
        anyhow::ensure!(
            all_flow(&viewers).await,
            "round {round}: media did not reach every viewer"
        );
        let (_, s) = sig
            .http("GET", &format!("/openvidu/api/sessions/{session}"), None)
            .await?;
        assert_eq!(
            s["mediaNodeIds"].as_array().map(Vec::len),
            Some(3),
            "round {round}: {s}"
        );
        // Everyone leaves, viewers in a different order each round, the host first in odd ones.
        if round % 2 == 1 {
            host.call("leaveRoom", json!({})).await?;
        }
        let n = viewers.len();
        for k in 0..n {
            let v = &mut viewers[(k * 3 + round) % n];
            v.bot.call("leaveRoom", json!({})).await?;
        }
        if round % 2 == 0 {
            host.call("leaveRoom", json!({})).await?;
        }
        sending.cancel();
        pp.close().await;
        for v in viewers {
            v.peer.close().await;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for e in &engines {
            while engine_objects(e).await? != (json!(0), json!(0)) {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "round {round}: objects left on an engine: {:?}",
                    engine_objects(e).await?
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    sig.shutdown().await;
    Ok(())
}

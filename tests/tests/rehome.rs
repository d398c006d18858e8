//! When the engine hosting a session dies, the session moves: a new pipeline on an admitted
//! engine, participants keep their sockets, publishers reconnect first and a subscriber's
//! reconnection is held until its publisher is back; media flows again. With no engine able to
//! take it, the session is closed with `nodeCrashed`.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{EngineProcess, LocalSignaling};
use rtcpool_tests::peer::TestPeer;
use serde_json::json;
use std::time::{Duration, Instant};

async fn flowing(p: &TestPeer, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while p.stats.video() < 10 || p.stats.audio() < 5 {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_its_engine() -> anyhow::Result<()> {
    let mut engines = [
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
    ];
    let uris: Vec<(String, u32)> = engines.iter().map(|e| (e.url(), 1)).collect();
    let sig = LocalSignaling::start_with(vec![], uris, |s| s.pool_health_interval_ms = 500).await?;
    let (tx, ty) = (
        sig.token("rh", "PUBLISHER").await?,
        sig.token("rh", "PUBLISHER").await?,
    );
    let mut x = Bot::open(&tx).await?;
    x.join(&tx, "x").await?;
    let mut y = Bot::open(&ty).await?;
    y.join(&ty, "y").await?;
    let (px, sx) = x.publish().await?;
    let send_x = px.start_sending(25, 2000, 10);
    let (py, sy) = y.publish().await?;
    let send_y = py.start_sending(25, 2000, 10);
    let y_gets_x = y.subscribe(&sx).await?;
    let x_gets_y = x.subscribe(&sy).await?;
    assert!(
        flowing(&y_gets_x, Duration::from_secs(10)).await
            && flowing(&x_gets_y, Duration::from_secs(10)).await
    );

    let home = sig.session_engine("rh").await?;
    let (_, nodes) = sig.http("GET", "/openvidu/api/media-nodes", None).await?;
    let idx = nodes["content"]
        .as_array()
        .and_then(|a| a.iter().position(|n| n["id"] == json!(home)))
        .unwrap_or(0);
    let killed_at = Instant::now();
    engines[idx].kill();
    send_x.cancel();
    send_y.cancel();
    // The session moves to the other engine after the reconnection window.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sig.session_engine("rh").await? == home {
        anyhow::ensure!(Instant::now() < deadline, "session was not re-homed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = killed_at.elapsed();
    // Y asks to reconnect X's stream before X is back: held until X republishes.
    let (sx2, sy2) = (sx.clone(), sy.clone());
    let y_task = tokio::spawn(async move {
        let p = y.resubscribe(&sx2).await;
        (y, p)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let px2 = x.republish(&sx).await?;
    let send_x2 = px2.start_sending(25, 2000, 10);
    let (mut y, y_gets_x2) = y_task.await?;
    let y_gets_x2 = y_gets_x2?;
    let py2 = y.republish(&sy2).await?;
    let send_y2 = py2.start_sending(25, 2000, 10);
    let x_gets_y2 = x.resubscribe(&sy).await?;
    assert!(
        flowing(&y_gets_x2, Duration::from_secs(10)).await,
        "x → y did not recover"
    );
    assert!(
        flowing(&x_gets_y2, Duration::from_secs(10)).await,
        "y → x did not recover"
    );
    eprintln!("rehome: session moved {moved:?} after kill -9; media flowing again both ways {:?} after kill", killed_at.elapsed());
    // Both kept their place: no one was evicted.
    assert!(!x
        .seen
        .iter()
        .chain(y.seen.iter())
        .any(|n| n["method"] == "participantEvicted"));
    let (_, s) = sig.http("GET", "/openvidu/api/sessions/rh", None).await?;
    assert_eq!(s["connections"]["numberOfElements"], 2);
    send_x2.cancel();
    send_y2.cancel();
    x.call("leaveRoom", json!({})).await?;
    y.call("leaveRoom", json!({})).await?;
    let survivor = &engines[1 - idx];
    let h = rtcpool_tests::harness::health(survivor.addr).await?;
    assert_eq!(
        (h["pipelines"].clone(), h["elements"].clone()),
        (json!(0), json!(0)),
        "{h}"
    );
    for p in [px, py, px2, py2, y_gets_x, x_gets_y, y_gets_x2, x_gets_y2] {
        p.close().await;
    }
    sig.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_left_means_node_crashed() -> anyhow::Result<()> {
    let mut engine = EngineProcess::start(&[]).await?;
    let sig = LocalSignaling::start_with(vec![], vec![(engine.url(), 1)], |s| {
        s.pool_health_interval_ms = 500
    })
    .await?;
    let token = sig.token("nc", "PUBLISHER").await?;
    let mut a = Bot::open(&token).await?;
    a.join(&token, "a").await?;
    let t0 = Instant::now();
    engine.kill();
    let ev = a
        .wait_for("participantEvicted", |p| p["reason"] == "nodeCrashed")
        .await?;
    assert_eq!(ev["params"]["connectionId"], json!(a.connection_id));
    let after = t0.elapsed();
    eprintln!("rehome: nodeCrashed eviction {after:?} after kill -9");
    assert!(
        after >= Duration::from_millis(2500) && after < Duration::from_secs(8),
        "{after:?}"
    );
    let (st, _) = sig.http("GET", "/openvidu/api/sessions/nc", None).await?;
    assert_eq!(st, 404);
    sig.shutdown().await;
    Ok(())
}

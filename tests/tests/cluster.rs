//! Signaling as a cluster: three signaling processes on a real `redis-server`, in front of the
//! same engines. Every REST call answers the same on every node; participants connected to
//! different nodes share a session (notifications, signals, media); a token is used once in the
//! whole cluster; the engine round robin is one for all nodes; engine pool changes reach every
//! node; a Redis outage fails what needs the cluster with a clear error, and the nodes register
//! again when it is back; behind Sentinel the nodes follow a failover; `rediss://` is TLS with the
//! server's certificate checked.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::cluster::{Cluster, Nginx, RedisServer, Sentinel};
use rtcpool_tests::harness::media_flows;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_the_same_on_every_node() -> anyhow::Result<()> {
    let c = Cluster::start(3, &[1]).await?;
    let create = |id: &str| json!({"customSessionId": id});
    assert_eq!(
        c.http(0, "POST", "/openvidu/api/sessions", Some(&create("one")))
            .await?
            .0,
        200
    );
    // The id is taken cluster-wide.
    for node in [0, 1, 2] {
        let (st, _) = c
            .http(node, "POST", "/openvidu/api/sessions", Some(&create("one")))
            .await?;
        assert_eq!(st, 409, "node {node}");
    }
    assert_eq!(
        c.http(2, "POST", "/openvidu/api/sessions", Some(&create("two")))
            .await?
            .0,
        200
    );
    // A connection made through a node that does not own the session.
    let (st, conn) = c
        .http(
            1,
            "POST",
            "/openvidu/api/sessions/one/connection",
            Some(&json!({"role": "PUBLISHER", "data": "d"})),
        )
        .await?;
    assert_eq!(st, 200, "{conn}");
    let cid = conn["connectionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut answers = Vec::new();
    for node in [0, 1, 2] {
        let (st, s) = c
            .http(
                node,
                "GET",
                "/openvidu/api/sessions/one?pendingConnections=true",
                None,
            )
            .await?;
        assert_eq!(st, 200);
        answers.push(s);
        let (st, one) = c
            .http(
                node,
                "GET",
                &format!("/openvidu/api/sessions/one/connection/{cid}"),
                None,
            )
            .await?;
        assert_eq!((st, one["serverData"].clone()), (200, json!("d")));
        let (st, list) = c.http(node, "GET", "/openvidu/api/sessions", None).await?;
        assert_eq!(st, 200);
        assert_eq!(
            ids(&list),
            vec!["one".to_string(), "two".to_string()],
            "node {node}"
        );
        assert_eq!(list["numberOfElements"], 2);
        let (st, _) = c
            .http(node, "GET", "/openvidu/api/sessions/nothing", None)
            .await?;
        assert_eq!(st, 404);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0]["connections"]["numberOfElements"], 1);
    // Closed through a third node: gone everywhere, and the id is free again.
    assert_eq!(
        c.http(2, "DELETE", "/openvidu/api/sessions/one", None)
            .await?
            .0,
        204
    );
    for node in [0, 1, 2] {
        assert_eq!(
            c.http(node, "GET", "/openvidu/api/sessions/one", None)
                .await?
                .0,
            404
        );
    }
    let one = create("one");
    c.wait_status(
        1,
        "POST",
        "/openvidu/api/sessions",
        Some(&one),
        200,
        Duration::from_secs(2),
    )
    .await?;
    // Credentials are checked by the node called, before anything is forwarded.
    let (st, _) = rtcpool_tests::harness::http_request(
        c.addr(1),
        "GET",
        "/openvidu/api/sessions/two",
        None,
        Some(("OPENVIDUAPP", "wrong")),
    )
    .await?;
    assert_eq!(st, 401);
    // Nothing here takes Redis away, so no node ever found it unreachable (a node's first beat
    // once sent Redis an empty pipeline and was refused: the node then refused cluster work
    // until its next beat).
    for n in &c.nodes {
        let log = std::fs::read_to_string(&n.log)?;
        assert!(!log.contains("cluster store unreachable"), "{log}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_on_different_nodes_share_a_session() -> anyhow::Result<()> {
    let c = Cluster::start(3, &[1]).await?;
    let (ta, tb) = (
        c.token(0, "room", "MODERATOR").await?,
        c.token(0, "room", "PUBLISHER").await?,
    );
    // Alice on node 1, Bob on node 2; the session lives on node 0.
    let mut a = Bot::open_url(&c.ws(1)).await?;
    a.start_pinging();
    a.join(&ta, "alice").await?;
    let (pub_a, stream_a) = a.publish().await?;
    let send_a = pub_a.start_sending(25, 2000, 50);
    let mut b = Bot::open_url(&c.ws(2)).await?;
    b.start_pinging();
    let jb = b.join(&tb, "bob").await?;
    assert_eq!(jb["value"][0]["id"], json!(a.connection_id));
    assert_eq!(jb["value"][0]["streams"][0]["id"], json!(stream_a));
    a.wait_for("participantJoined", |p| p["id"] == json!(b.connection_id))
        .await?;
    let sub_b = b.subscribe(&stream_a).await?;
    assert!(
        media_flows(&sub_b).await,
        "no media from alice (node 1) to bob (node 2)"
    );

    // Signals between nodes, and from REST on a third.
    b.call("sendMessage", json!({"message": json!({"to": [a.connection_id], "data": "hi", "type": "signal:chat"}).to_string()})).await?;
    a.wait_for("sendMessage", |p| {
        p["data"] == "hi" && p["from"] == json!(b.connection_id)
    })
    .await?;
    let (st, _) = c
        .http(
            1,
            "POST",
            "/openvidu/api/signal",
            Some(&json!({"session": "room", "type": "news", "data": "all"})),
        )
        .await?;
    assert_eq!(st, 200);
    a.wait_for("sendMessage", |p| p["data"] == "all").await?;
    b.wait_for("sendMessage", |p| p["data"] == "all").await?;
    // REST on any node sees both, and the subscription.
    let (_, s) = c
        .http(2, "GET", "/openvidu/api/sessions/room", None)
        .await?;
    assert_eq!(s["connections"]["numberOfElements"], 2);
    // The moderator on node 1 evicts Bob on node 2.
    a.call("forceDisconnect", json!({"connectionId": b.connection_id}))
        .await?;
    let bob = b.connection_id.clone();
    b.wait_for("participantEvicted", |p| p["connectionId"] == json!(bob))
        .await?;
    a.wait_for("participantLeft", |p| p["connectionId"] == json!(bob))
        .await?;
    send_a.cancel();
    a.call("leaveRoom", json!({})).await?;
    // The last one left: the session is gone on every node.
    c.wait_status(
        1,
        "GET",
        "/openvidu/api/sessions/room",
        None,
        404,
        Duration::from_secs(5),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_used_once_in_the_whole_cluster() -> anyhow::Result<()> {
    let c = Cluster::start(3, &[1]).await?;
    let token = c.token(0, "once", "PUBLISHER").await?;
    let (mut x, mut y) = (
        Bot::open_url(&c.ws(1)).await?,
        Bot::open_url(&c.ws(2)).await?,
    );
    let (rx, ry) = tokio::join!(x.join(&token, "x"), y.join(&token, "y"));
    assert_eq!(
        u8::from(rx.is_ok()) + u8::from(ry.is_ok()),
        1,
        "{rx:?} {ry:?}"
    );
    let (_, s) = c
        .http(1, "GET", "/openvidu/api/sessions/once", None)
        .await?;
    assert_eq!(s["connections"]["numberOfElements"], 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_share_one_weighted_round_robin() -> anyhow::Result<()> {
    let c = Cluster::start(3, &[3, 2, 1]).await?;
    let mut bots = Vec::new();
    for i in 0..60 {
        let node = i % 3;
        let session = format!("rr{i}");
        let token = c.token(node, &session, "PUBLISHER").await?;
        let mut bot = Bot::open_url(&c.ws(node)).await?;
        bot.join(&token, "p").await?;
        bots.push(bot);
    }
    let mut per_engine: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..60 {
        let (_, s) = c
            .http(0, "GET", &format!("/openvidu/api/sessions/rr{i}"), None)
            .await?;
        let engine = s["mediaNode"]["id"].as_str().unwrap_or_default();
        *per_engine.entry(engine.to_string()).or_default() += 1;
        if i == 5 {
            // One rotation already spans the three engines 3:2:1. Three independent rotations
            // (each node placing two sessions) would have given 3:3:0.
            let mut first: Vec<u32> = per_engine.values().copied().collect();
            first.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(first, vec![3, 2, 1], "{per_engine:?}");
        }
    }
    let mut counts: Vec<u32> = per_engine.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(counts.len(), 3, "{per_engine:?}");
    // Every node reports the whole cluster's sessions on each engine, with their owners.
    for node in [0, 1, 2] {
        let (_, list) = c
            .http(node, "GET", "/openvidu/api/media-nodes?sessions=true", None)
            .await?;
        let mut owners = std::collections::BTreeSet::new();
        for e in list["content"].as_array().into_iter().flatten() {
            let id = e["id"].as_str().unwrap_or_default();
            let n = per_engine.get(id).copied().unwrap_or(0);
            assert_eq!(e["sessionCount"], json!(n), "node {node}: {e}");
            let sessions = e["sessions"].as_array().cloned().unwrap_or_default();
            assert_eq!(sessions.len(), n as usize, "node {node}");
            owners.extend(
                sessions
                    .iter()
                    .filter_map(|s| s["ownerNode"].as_str().map(str::to_string)),
            );
        }
        assert_eq!(owners.len(), 3, "node {node}: sessions of all three nodes");
    }
    for (got, want) in counts.iter().zip([30u32, 20, 10]) {
        assert!(got.abs_diff(want) <= 1, "{per_engine:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_pool_changes_reach_every_node() -> anyhow::Result<()> {
    let mut c = Cluster::start(3, &[1]).await?;
    let extra = rtcpool_tests::harness::LocalEngine::start().await?;
    let (st, added) = c
        .http(
            0,
            "POST",
            "/openvidu/api/media-nodes?wait=true",
            Some(&json!({"uri": extra.url()})),
        )
        .await?;
    assert!(st == 200, "{st} {added}");
    let id = added["id"].as_str().unwrap_or_default().to_string();
    let has = |list: &Value, id: &str| {
        list["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|n| n["id"] == json!(id)))
    };
    let within_a_second = tokio::time::Instant::now() + Duration::from_secs(1);
    for node in [1, 2] {
        let (_, list) = c
            .http(node, "GET", "/openvidu/api/media-nodes", None)
            .await?;
        assert!(has(&list, &id), "node {node}: {list}");
    }
    assert!(tokio::time::Instant::now() <= within_a_second);
    // Drained through another node, by the same id.
    let (st, _) = c
        .http(
            1,
            "PATCH",
            &format!("/openvidu/api/media-nodes/{id}"),
            Some(&json!({"status": "waiting-idle-to-terminate"})),
        )
        .await?;
    assert_eq!(st, 200);
    for node in [0, 2] {
        let (_, n) = c
            .http(
                node,
                "GET",
                &format!("/openvidu/api/media-nodes/{id}"),
                None,
            )
            .await?;
        assert_eq!(n["status"], "waiting-idle-to-terminate", "node {node}");
    }
    // A node that starts now applies what operators changed before it: the added engine,
    // drained, and the configured one re-weighted.
    let configured = c.http(0, "GET", "/openvidu/api/media-nodes", None).await?.1["content"]
        .as_array()
        .and_then(|l| l.iter().find(|n| n["id"] != json!(id)).cloned())
        .unwrap_or_default();
    let configured = configured["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/openvidu/api/media-nodes/{configured}");
    let (st, _) = c
        .http(2, "PATCH", &path, Some(&json!({"weight": 7})))
        .await?;
    assert_eq!(st, 200);
    let late = c.add_node().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let (_, a) = c
            .http(
                late,
                "GET",
                &format!("/openvidu/api/media-nodes/{id}"),
                None,
            )
            .await?;
        let (_, b) = c.http(late, "GET", &path, None).await?;
        if a["status"] == "waiting-idle-to-terminate" && b["weight"] == 7 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "late node: {a} {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, _) = c
        .http(
            2,
            "DELETE",
            &format!("/openvidu/api/media-nodes/{id}"),
            None,
        )
        .await?;
    assert!(st == 200 || st == 204, "{st}");
    // …and one that starts after the removal does not have it either.
    let later = c.add_node().await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // its first beat applied the pool
    for node in [0, 1, late, later] {
        let (st, _) = c
            .http(
                node,
                "GET",
                &format!("/openvidu/api/media-nodes/{id}"),
                None,
            )
            .await?;
        assert_eq!(st, 404, "node {node}");
    }
    extra.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_clearly_and_the_cluster_comes_back() -> anyhow::Result<()> {
    let mut c = Cluster::start(2, &[1]).await?;
    let (ta, tb) = (
        c.token(0, "through", "PUBLISHER").await?,
        c.token(0, "through", "PUBLISHER").await?,
    );
    let mut a = Bot::open_url(&c.ws(0)).await?;
    a.start_pinging();
    a.join(&ta, "a").await?;
    let (pub_a, stream_a) = a.publish().await?;
    let send_a = pub_a.start_sending(25, 2000, 50);
    // A participant relayed through node 1 before the outage.
    let tr = c.token(0, "through", "PUBLISHER").await?;
    let mut r = Bot::open_url(&c.ws(1)).await?;
    r.start_pinging();
    r.join(&tr, "relayed").await?;
    let sub_r = r.subscribe(&stream_a).await?;
    assert!(media_flows(&sub_r).await);
    let port = c.redis.port;
    let outage = tokio::time::Instant::now();
    c.redis.kill();
    // What needs the cluster answers at once with a clear error…
    let started = tokio::time::Instant::now();
    let (st, body) = c
        .http(1, "POST", "/openvidu/api/sessions", Some(&json!({})))
        .await?;
    assert_eq!(st, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Redis")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // …while the session on its own node keeps working: a join, a subscription, media.
    let mut b = Bot::open_url(&c.ws(0)).await?;
    b.start_pinging();
    b.join(&tb, "b").await?;
    let sub_b = b.subscribe(&stream_a).await?;
    assert!(media_flows(&sub_b).await, "no media during the outage");
    // The relayed participant hears of the join and keeps its media, and signals still cross.
    let bob = b.connection_id.clone();
    r.wait_for("participantJoined", |p| p["id"] == json!(bob))
        .await?;
    let hello = json!({"to": [], "data": "in the dark", "type": "signal:x"});
    r.call("sendMessage", json!({"message": hello.to_string()}))
        .await?;
    b.wait_for("sendMessage", |p| p["data"] == "in the dark")
        .await?;
    // Ten seconds without Redis.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    let before = sub_r.stats.video();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sub_r.stats.video() > before,
        "the relayed participant's media stopped"
    );
    // Redis is back (empty): the nodes register again, with the session that lived through.
    c.redis = RedisServer::start_on(port).await?;
    c.wait_formed(2).await?;
    c.wait_status(
        1,
        "GET",
        "/openvidu/api/sessions/through",
        None,
        200,
        Duration::from_secs(5),
    )
    .await?;
    let tc = c.token(1, "through", "PUBLISHER").await?;
    let mut d = Bot::open_url(&c.ws(1)).await?;
    d.join(&tc, "d").await?;
    let sub_d = d.subscribe(&stream_a).await?;
    assert!(
        media_flows(&sub_d).await,
        "no media to a participant on the other node"
    );
    assert_eq!(
        c.http(1, "POST", "/openvidu/api/sessions", Some(&json!({})))
            .await?
            .0,
        200
    );
    send_a.cancel();
    Ok(())
}

/// Redis behind Sentinel (`redis+sentinel://`): the nodes find the primary through the
/// sentinel; when it dies (`kill -9`) and the sentinel promotes its replica, they follow within a
/// heartbeat — sessions made before and after the failover are served by every node, and the
/// new primary holds the cluster's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_follow_a_sentinel_failover() -> anyhow::Result<()> {
    let primary = RedisServer::start().await?;
    let replica = RedisServer::start_replica_of(primary.port).await?;
    let sentinel = Sentinel::start("rtcpool-primary", primary.port).await?;
    let mut c = Cluster::start_on_store(primary, &sentinel.url(), 2, &[1], &[], 30).await?;
    let (st, body) = c
        .http(
            0,
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": "before"})),
        )
        .await?;
    assert_eq!(st, 200, "{body}");
    assert!(c.redis.exists("rtcpool:session:before").await?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !replica.exists("rtcpool:session:before").await? {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "not replicated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = tokio::time::Instant::now();
    c.redis.kill();
    let deadline = killed + Duration::from_secs(20);
    while sentinel.primary().await? != replica.port {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted = killed.elapsed();
    // A new session through the other node lands on the new primary.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (st, body) = c
            .http(
                1,
                "POST",
                "/openvidu/api/sessions",
                Some(&json!({"customSessionId": "after"})),
            )
            .await?;
        if st == 200 {
            break;
        }
        assert_eq!(st, 503, "{body}");
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "not followed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let followed = killed.elapsed();
    assert!(replica.exists("rtcpool:session:after").await?);
    // Both sessions, each owned by one node, answer on both; a token is still used once.
    for node in 0..2 {
        for session in ["before", "after"] {
            c.wait_status(
                node,
                "GET",
                &format!("/openvidu/api/sessions/{session}"),
                None,
                200,
                Duration::from_secs(5),
            )
            .await?;
        }
    }
    let token = c.token(0, "after", "PUBLISHER").await?;
    let mut a = Bot::open_url(&c.ws(0)).await?;
    a.join(&token, "a").await?;
    let mut b = Bot::open_url(&c.ws(1)).await?;
    assert!(b.join(&token, "b").await.is_err(), "a token used twice");
    eprintln!("primary promoted after {promoted:?}; nodes on it after {followed:?}");
    Ok(())
}

/// `rediss://`: the nodes reach Redis over TLS and check its certificate against the system's
/// trust store (here a test CA, through `SSL_CERT_FILE`); a node that does not trust the
/// certificate gets no store at all (503), it does not fall back to plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_reach_redis_over_tls() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("rtcpool-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (ca, cert, key) = rtcpool_tests::harness::make_certificates(&dir)?;
    let (redis, tls_port) = RedisServer::start_with_tls(&cert, &key, &ca).await?;
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let ca_file = ca.display().to_string();
    let c =
        Cluster::start_on_store(redis, &url, 2, &[1], &[("SSL_CERT_FILE", &ca_file)], 30).await?;
    let (st, body) = c
        .http(
            1,
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": "sealed"})),
        )
        .await?;
    assert_eq!(st, 200, "{body}");
    assert!(c.redis.exists("rtcpool:session:sealed").await?);
    c.wait_status(
        0,
        "GET",
        "/openvidu/api/sessions/sealed",
        None,
        200,
        Duration::from_secs(5),
    )
    .await?;
    // The same URL without the CA: the certificate is refused.
    let untrusting = rtcpool_tests::harness::SignalingProcess::start(
        &c.engines.iter().map(|e| e.url()).collect::<Vec<_>>(),
        &[
            ("REDIS_URL", url.as_str()),
            ("SSL_CERT_FILE", "/nonexistent"),
        ],
    )
    .await?;
    let (st, body) = rtcpool_tests::harness::http_request(
        untrusting.addr,
        "POST",
        "/openvidu/api/sessions",
        Some(&json!({})),
        Some(("OPENVIDUAPP", rtcpool_tests::harness::SECRET)),
    )
    .await?;
    assert_eq!(st, 503, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_nginx_spreads_over_the_nodes() -> anyhow::Result<()> {
    // Tokens point at the load balancer, as DOMAIN_OR_PUBLIC_IP/HTTPS_PORT make them in production.
    let lb_port = rtcpool_tests::harness::free_port()?;
    let port = lb_port.to_string();
    let c = Cluster::start_with(3, &[1], &[("HTTPS_PORT", port.as_str())]).await?;
    let addrs: Vec<_> = c.nodes.iter().map(|n| n.addr).collect();
    let lb = Nginx::start(lb_port, &addrs).await?;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(rtcpool_tests::harness::token_at(lb.addr(), "lb", "PUBLISHER").await?);
    }
    assert!(
        tokens
            .iter()
            .all(|t| t.starts_with(&format!("ws://127.0.0.1:{lb_port}"))),
        "{tokens:?}"
    );
    // Three sockets through nginx's round robin: one lands on each node.
    let mut bots = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let mut b = Bot::open(t).await?;
        b.start_pinging();
        b.join(t, &format!("p{i}")).await?;
        bots.push(b);
    }
    let mut on_nodes = Vec::new();
    for n in 0..3 {
        let (_, h) = c.http(n, "GET", "/health", None).await?;
        on_nodes.push(h["wsConnections"].as_u64().unwrap_or(0));
    }
    assert!(
        on_nodes.iter().filter(|&&n| n > 0).count() >= 2,
        "sockets per node: {on_nodes:?}"
    );
    let (pub0, stream0) = bots[0].publish().await?;
    let send = pub0.start_sending(25, 2000, 50);
    for b in bots.iter_mut().skip(1) {
        b.wait_for("participantPublished", |p| {
            p["streams"][0]["id"] == json!(stream0)
        })
        .await?;
        let sub = b.subscribe(&stream0).await?;
        assert!(media_flows(&sub).await, "no media through the cluster");
    }
    let (st, s) = rtcpool_tests::harness::http_request(
        lb.addr(),
        "GET",
        "/openvidu/api/sessions/lb",
        None,
        Some(("OPENVIDUAPP", rtcpool_tests::harness::SECRET)),
    )
    .await?;
    assert_eq!(
        (st, s["connections"]["numberOfElements"].clone()),
        (200, json!(3))
    );
    send.cancel();
    Ok(())
}

/// The largest gap between new packets counted by `count`, sampled every 50 ms until `stop`.
fn watch_gaps(
    count: impl Fn() -> u64 + Send + 'static,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let (mut last, mut since, mut worst) =
            (count(), tokio::time::Instant::now(), Duration::ZERO);
        while !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = count();
            if now != last {
                (last, since) = (now, tokio::time::Instant::now());
            }
            worst = worst.max(since.elapsed());
        }
        worst
    })
}

/// What openvidu-browser does when its socket drops: a new socket (here: through another node)
/// and `connect {sessionId: <rpc id>, reconnect: true}`.
async fn reconnect(ws: &str, old: &Bot) -> anyhow::Result<Bot> {
    let mut fresh = Bot::open_url(ws).await?;
    fresh.start_pinging();
    let r = fresh
        .call(
            "connect",
            json!({"sessionId": old.rpc_session, "reconnect": true}),
        )
        .await?;
    anyhow::ensure!(r["value"] == "reconnection successful", "{r}");
    fresh.connection_id = old.connection_id.clone();
    fresh.rpc_session = old.rpc_session.clone();
    fresh.session = old.session.clone();
    Ok(fresh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_session_is_adopted_and_its_media_never_stops() -> anyhow::Result<()> {
    // Engines keep a vanished client's objects 3 s: the adopter must hold them by then.
    let mut c = Cluster::start_full(3, &[1], &[], 3).await?;
    let tokens = [
        c.token(0, "fo", "MODERATOR").await?,
        c.token(0, "fo", "PUBLISHER").await?,
        c.token(0, "fo", "PUBLISHER").await?,
        c.token(0, "fo", "PUBLISHER").await?,
    ];
    // The session lives on node 0; Alice is relayed through node 1, Bob through node 2, Carol
    // is on node 0 itself.
    let mut a = Bot::open_url(&c.ws(1)).await?;
    a.join(&tokens[0], "alice").await?;
    let (pub_a, stream_a) = a.publish().await?;
    let send_a = pub_a.start_sending(25, 2000, 50);
    let mut b = Bot::open_url(&c.ws(2)).await?;
    b.join(&tokens[1], "bob").await?;
    let sub_b = b.subscribe(&stream_a).await?;
    let mut carol = Bot::open_url(&c.ws(0)).await?;
    carol.join(&tokens[2], "carol").await?;
    let sub_c = carol.subscribe(&stream_a).await?;
    assert!(
        media_flows(&sub_b).await && media_flows(&sub_c).await,
        "no media before"
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the snapshot is written

    let stop = tokio_util::sync::CancellationToken::new();
    let stats_b = sub_b.stats.clone();
    let stats_c = sub_c.stats.clone();
    let gap_b = watch_gaps(move || stats_b.video(), stop.clone());
    let gap_c = watch_gaps(move || stats_c.video(), stop.clone());
    let killed = tokio::time::Instant::now();
    c.nodes[0].kill();
    // Every socket comes back through a live node, the session adopted on the way.
    let (ws1, ws2) = (c.ws(1), c.ws(2));
    let (a2, b2, c2) = tokio::join!(
        reconnect(&ws1, &a),
        reconnect(&ws2, &b),
        reconnect(&ws1, &carol)
    );
    let (mut a2, mut b2, _c2) = (a2?, b2?, c2?);
    let back = killed.elapsed();
    assert!(back < Duration::from_secs(5), "sockets back after {back:?}");
    // Past the engine's timeout for the dead node's Kurento session: the media is held.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.cancel();
    let (gap_b, gap_c) = (gap_b.await?, gap_c.await?);
    assert!(
        gap_b < Duration::from_secs(1) && gap_c < Duration::from_secs(1),
        "media froze: {gap_b:?} {gap_c:?}"
    );
    let before = sub_b.stats.video();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sub_b.stats.video() > before,
        "media stopped after the adoption"
    );

    // The session is fully usable: REST on the survivors, a join, a subscription, a signal, a leave.
    for node in [1, 2] {
        let (st, s) = c
            .http(node, "GET", "/openvidu/api/sessions/fo", None)
            .await?;
        assert_eq!(
            (st, s["connections"]["numberOfElements"].clone()),
            (200, json!(3)),
            "node {node}"
        );
    }
    let mut d = Bot::open_url(&c.ws(2)).await?;
    let jd = d.join(&tokens[3], "dave").await?;
    assert_eq!(jd["value"].as_array().map(Vec::len), Some(3));
    let sub_d = d.subscribe(&stream_a).await?;
    assert!(
        media_flows(&sub_d).await,
        "no media to a participant who joined after the adoption"
    );
    b2.call(
        "sendMessage",
        json!({"message": json!({"to": [], "data": "still here", "type": "signal:x"}).to_string()}),
    )
    .await?;
    a2.wait_for("sendMessage", |p| p["data"] == "still here")
        .await?;
    d.wait_for("sendMessage", |p| p["data"] == "still here")
        .await?;
    a2.call("leaveRoom", json!({})).await?;
    b2.wait_for("participantLeft", |p| {
        p["connectionId"] == json!(a.connection_id)
    })
    .await?;
    send_a.cancel();
    eprintln!("failover: sockets back {back:?}, largest media gaps {gap_b:?} / {gap_c:?}");
    Ok(())
}

/// A session spanning both engines (a viewer fed through a relay) owned by a node that dies: the
/// adopter takes the relay and the far viewer's endpoint over too, so neither viewer's media
/// stops, even after the engines expired the dead node's Kurento session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_relays_are_adopted_and_relayed_media_never_stops() -> anyhow::Result<()> {
    let mut c = Cluster::start_full(
        2,
        &[1, 1],
        &[
            ("POOL_MAX_ENDPOINTS", "3"),
            ("POOL_HEALTH_INTERVAL_MS", "300"),
        ],
        3,
    )
    .await?;
    let tokens = [
        c.token(0, "rf", "PUBLISHER").await?,
        c.token(0, "rf", "PUBLISHER").await?,
        c.token(0, "rf", "PUBLISHER").await?,
    ];
    let mut host = Bot::open_url(&c.ws(0)).await?;
    host.join(&tokens[0], "host").await?;
    let (pub_h, stream) = host.publish().await?;
    let send = pub_h.start_sending(25, 2000, 50);
    // The session's engine takes the host's endpoint and PassThrough and one viewer.
    let mut near = Bot::open_url(&c.ws(0)).await?;
    near.join(&tokens[1], "near").await?;
    let sub_near = near.subscribe(&stream).await?;
    let mut far = Bot::open_url(&c.ws(0)).await?;
    far.join(&tokens[2], "far").await?;
    let sub_far = far.subscribe(&stream).await?;
    assert!(
        media_flows(&sub_near).await && media_flows(&sub_far).await,
        "no media before"
    );
    let (_, s) = c.http(0, "GET", "/openvidu/api/sessions/rf", None).await?;
    assert_eq!(s["relays"].as_array().map(Vec::len), Some(1), "{s}");
    tokio::time::sleep(Duration::from_millis(300)).await; // the snapshot is written

    let stop = tokio_util::sync::CancellationToken::new();
    let (stats_n, stats_f) = (sub_near.stats.clone(), sub_far.stats.clone());
    let gap_n = watch_gaps(move || stats_n.video(), stop.clone());
    let gap_f = watch_gaps(move || stats_f.video(), stop.clone());
    c.nodes[0].kill();
    let ws1 = c.ws(1);
    let (h2, n2, f2) = tokio::join!(
        reconnect(&ws1, &host),
        reconnect(&ws1, &near),
        reconnect(&ws1, &far)
    );
    let (_h2, _n2, mut f2) = (h2?, n2?, f2?);
    // Past the engines' timeout for the dead node's Kurento session (3 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.cancel();
    let (gap_n, gap_f) = (gap_n.await?, gap_f.await?);
    assert!(
        gap_n < Duration::from_secs(1) && gap_f < Duration::from_secs(1),
        "media froze: origin viewer {gap_n:?}, relayed viewer {gap_f:?}"
    );
    let (_, s) = c.http(1, "GET", "/openvidu/api/sessions/rf", None).await?;
    let relays = s["relays"].as_array().cloned().unwrap_or_default();
    assert!(
        relays.len() == 1 && relays[0]["subscribers"] == 1,
        "the adopter lists the relay: {s}"
    );
    // Its viewer leaves: the adopted relay and far pipeline go with it.
    f2.call("leaveRoom", json!({})).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, s) = c.http(1, "GET", "/openvidu/api/sessions/rf", None).await?;
        if s["relays"].as_array().is_some_and(Vec::is_empty)
            && s["mediaNodeIds"].as_array().map(Vec::len) == Some(1)
        {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "relay not released: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send.cancel();
    eprintln!("failover with a relay: largest media gaps {gap_n:?} (origin viewer) / {gap_f:?} (relayed viewer)");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_sessions_are_adopted_even_if_nobody_comes_back() -> anyhow::Result<()> {
    let mut c = Cluster::start_full(3, &[1], &[], 3).await?;
    let t = c.token(0, "alone", "PUBLISHER").await?;
    let mut a = Bot::open_url(&c.ws(0)).await?;
    a.join(&t, "a").await?;
    let (_pub_a, _stream) = a.publish().await?;
    let pending = c.token(0, "later", "PUBLISHER").await?; // a session nobody joined yet
    c.token(0, "asked", "PUBLISHER").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.nodes[0].kill();
    // A REST call about one of them right away: node 1 cannot reach node 0, declares it dead
    // once it missed its heartbeats, adopts the session and answers.
    let asked = tokio::time::Instant::now();
    let (st, s) = c
        .http(
            1,
            "GET",
            "/openvidu/api/sessions/asked?pendingConnections=true",
            None,
        )
        .await?;
    assert_eq!(
        (st, s["connections"]["numberOfElements"].clone()),
        (200, json!(1)),
        "{s}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    // Nobody asks for the others: the survivors adopt them once node 0's TTL (2 s) ran out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    loop {
        let mut held = 0;
        for node in [1, 2] {
            let (_, h) = c.http(node, "GET", "/health", None).await?;
            held += h["sessions"].as_u64().unwrap_or(0);
        }
        if held == 3 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "adopted {held} of 3 sessions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The pipeline outlived the dead node's Kurento session on the engine (3 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let h = rtcpool_tests::harness::health_with(c.engines[0].addr, c.engines[0].secret.as_deref())
        .await?;
    assert_eq!(h["pipelines"], 1, "{h}");
    // The pending token still works, through any node.
    let mut b = Bot::open_url(&c.ws(2)).await?;
    b.join(&pending, "b").await?;
    // The participant who never came back is evicted after the reconnection window (10 s) and
    // its session then closes, releasing the pipeline.
    c.wait_status(
        1,
        "GET",
        "/openvidu/api/sessions/alone",
        None,
        404,
        Duration::from_secs(15),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_hands_its_sessions_over() -> anyhow::Result<()> {
    let mut c = Cluster::start(2, &[1]).await?;
    let (ta, tb) = (
        c.token(0, "ho", "PUBLISHER").await?,
        c.token(0, "ho", "PUBLISHER").await?,
    );
    let mut a = Bot::open_url(&c.ws(0)).await?;
    a.join(&ta, "a").await?;
    let (pub_a, stream_a) = a.publish().await?;
    let send_a = pub_a.start_sending(25, 2000, 50);
    let mut b = Bot::open_url(&c.ws(1)).await?;
    b.join(&tb, "b").await?;
    let sub_b = b.subscribe(&stream_a).await?;
    assert!(media_flows(&sub_b).await);
    let stop = tokio_util::sync::CancellationToken::new();
    let stats = sub_b.stats.clone();
    let gaps = watch_gaps(move || stats.video(), stop.clone());
    c.nodes[0].terminate().await?;
    // Nobody was evicted: the sockets just reconnect, through the node that is left.
    let ws1 = c.ws(1);
    let (a2, b2) = tokio::join!(reconnect(&ws1, &a), reconnect(&ws1, &b));
    let (_a2, mut b2) = (a2?, b2?);
    assert!(!b.seen_method("participantEvicted") && !a.seen_method("participantEvicted"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let worst = gaps.await?;
    assert!(worst < Duration::from_secs(1), "media froze {worst:?}");
    let (st, s) = c.http(1, "GET", "/openvidu/api/sessions/ho", None).await?;
    assert_eq!(
        (st, s["connections"]["numberOfElements"].clone()),
        (200, json!(2))
    );
    b2.call("unsubscribeFromVideo", json!({"sender": stream_a}))
        .await?;
    send_a.cancel();
    Ok(())
}

/// `rtcpool_engine_health_readings_total{source}` of a node.
async fn readings(c: &Cluster, node: usize) -> anyhow::Result<(f64, f64)> {
    let body = rtcpool_tests::harness::http_text(c.addr(node), "/metrics").await?;
    let value = |source: &str| {
        body.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "rtcpool_engine_health_readings_total{{source=\"{source}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((value("own"), value("shared")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_is_read_by_one_node_for_all() -> anyhow::Result<()> {
    let c = Cluster::start(3, &[1]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut before = Vec::new();
    for n in 0..3 {
        before.push(readings(&c, n).await?);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (mut own, mut shared) = (0.0, 0.0);
    for (n, (o0, s0)) in before.into_iter().enumerate() {
        let (o1, s1) = readings(&c, n).await?;
        own += o1 - o0;
        shared += s1 - s0;
    }
    // One reading a second (the health interval) for the whole cluster, not one per node.
    assert!(own <= 6.0 && shared >= 6.0, "own {own}, shared {shared}");
    // Every node admits the engine on those shared readings.
    for n in 0..3 {
        let (_, h) = c.http(n, "GET", "/health", None).await?;
        assert_eq!(h["engines"][0]["admitted"], true, "node {n}: {h}");
    }
    Ok(())
}

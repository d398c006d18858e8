//! The engine's media workers, seen from outside (a real media-engine process, webrtc-rs peers):
//! every peer connection of a worker shares its one UDP port, bad datagrams cost a counter and
//! harm no session, and releasing returns every connection, routing entry and timer.

use rtcpool_tests::harness::{client, health, negotiate, rss_kib, wait_health, EngineProcess};
use rtcpool_tests::peer::TestPeer;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

fn workers(h: &Value) -> Vec<Value> {
    h["workers"].as_array().cloned().unwrap_or_default()
}

fn sum(h: &Value, field: &str) -> u64 {
    workers(h).iter().filter_map(|w| w[field].as_u64()).sum()
}

fn ports(h: &Value) -> Vec<u16> {
    h["udpPorts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_u64())
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_share_their_worker_port_and_release_returns_everything() -> anyhow::Result<()>
{
    let engine = EngineProcess::start(&["--workers", "2"]).await?;
    let idle = health(engine.addr).await?;
    assert_eq!(ports(&idle).len(), 2, "one port per worker: {idle}");
    let fds_idle = idle["openFds"].as_u64().unwrap_or(0);

    let kms = client(&engine.url()).await?;
    let pipeline = kms.create_pipeline().await?;
    let hub = pipeline.create_pass_through().await?;
    let pub_ep = pipeline.create_webrtc_endpoint().await?;
    let publisher = TestPeer::publisher().await?;
    negotiate(&pub_ep, &publisher).await?;
    pub_ep.connect(hub.id(), None).await?;
    anyhow::ensure!(publisher.wait_connected(Duration::from_secs(10)).await);
    let sending = publisher.start_sending(25, 3000, 50);
    let fds_one = health(engine.addr).await?["openFds"].as_u64().unwrap_or(0);

    let mut subs = Vec::new();
    for _ in 0..24 {
        let ep = pipeline.create_webrtc_endpoint().await?;
        let peer = TestPeer::subscriber().await?;
        negotiate(&ep, &peer).await?;
        hub.connect(ep.id(), None).await?;
        subs.push(peer);
    }
    for s in &subs {
        anyhow::ensure!(s.wait_connected(Duration::from_secs(10)).await);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while subs.iter().any(|s| s.stats.video() < 30) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "media did not reach every subscriber"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A pipeline lives on one worker: its 25 connections share that worker's one port, and the
    // engine opened no socket per connection.
    let h = health(engine.addr).await?;
    let per_worker: Vec<u64> = workers(&h)
        .iter()
        .filter_map(|w| w["connections"].as_u64())
        .collect();
    assert!(per_worker.contains(&25), "{per_worker:?}: {h}");
    assert_eq!(sum(&h, "connections"), 25, "{h}");
    assert_eq!(h["peerConnections"], 25, "{h}");
    assert_eq!(ports(&h), ports(&idle), "the ports never change: {h}");
    // webrtc-rs peers list AEAD_AES_128_GCM first: every leg uses it.
    assert_eq!(h["srtpProfiles"]["aeadAesGcm"], 25, "{h}");
    assert_eq!(h["srtpProfiles"]["other"], 0, "{h}");
    let fds_busy = h["openFds"].as_u64().unwrap_or(0);
    assert!(
        fds_busy <= fds_one + 2,
        "24 more connections opened {} fds: {h}",
        fds_busy.saturating_sub(fds_one)
    );
    sending.cancel();
    pipeline.release().await?;
    let h = wait_health(engine.addr, Duration::from_secs(5), |h| {
        h["peerConnections"] == 0
            && h["mediaTasks"] == 0
            && sum(h, "routeEntries") == 0
            && sum(h, "timerEntries") == 0
            && sum(h, "connections") == 0
            && sum(h, "pipelines") == 0
            // The engine runs in this process: a `/health` request's two sockets may still be
            // closing when the next one counts.
            && h["openFds"].as_u64().unwrap_or(0) <= fds_idle + 1
    })
    .await?;
    assert_eq!(h["peerConnections"], 0, "{h}");
    assert_eq!(h["mediaTasks"], 0, "{h}");
    assert_eq!(h["taps"], 0, "{h}");
    assert_eq!(sum(&h, "connections"), 0, "{h}");
    assert_eq!(sum(&h, "routeEntries"), 0, "{h}");
    assert_eq!(sum(&h, "timerEntries"), 0, "{h}");
    assert_eq!(sum(&h, "pipelines"), 0, "{h}");
    assert!(
        h["openFds"].as_u64().unwrap_or(0) <= fds_idle + 1,
        "fds {fds_idle} → {}",
        h["openFds"]
    );
    publisher.close().await;
    for s in subs {
        s.close().await;
    }
    kms.close().await;
    Ok(())
}

/// Deterministic junk (xorshift), so a failure can be replayed.
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A well-formed STUN binding request for a ufrag no connection has.
    fn stun(&mut self) -> Vec<u8> {
        let user = format!("{:016x}:{:08x}", self.next(), self.next() as u32);
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(user.len() as u16).to_be_bytes());
        attr.extend_from_slice(user.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut d = vec![0x00, 0x01];
        d.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        d.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        d.extend_from_slice(&self.bytes(12));
        d.extend_from_slice(&attr);
        d
    }

    /// One of: random bytes, RTP-looking, RTCP-looking, DTLS-looking, STUN for nobody.
    fn datagram(&mut self) -> Vec<u8> {
        let len = 20 + (self.next() % 1200) as usize;
        let mut d = self.bytes(len);
        match self.next() % 5 {
            0 => {}
            1 => d[0] = 0x80,
            2 => {
                d[0] = 0x80;
                d[1] = 200;
            }
            3 => d[0] = 0x16,
            _ => return self.stun(),
        }
        d
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_flood_costs_counters_and_media_keeps_flowing() -> anyhow::Result<()> {
    let seed: u64 = std::env::var("FLOOD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f100d);
    eprintln!("flood seed {seed} (FLOOD_SEED replays it)");
    let engine = EngineProcess::start(&["--workers", "2"]).await?;
    let kms = client(&engine.url()).await?;
    let pipeline = kms.create_pipeline().await?;
    let pub_ep = pipeline.create_webrtc_endpoint().await?;
    let sub_ep = pipeline.create_webrtc_endpoint().await?;
    let publisher = TestPeer::publisher().await?;
    negotiate(&pub_ep, &publisher).await?;
    let subscriber = TestPeer::subscriber().await?;
    negotiate(&sub_ep, &subscriber).await?;
    pub_ep.connect(sub_ep.id(), None).await?;
    anyhow::ensure!(publisher.wait_connected(Duration::from_secs(10)).await);
    anyhow::ensure!(subscriber.wait_connected(Duration::from_secs(10)).await);
    let sending = publisher.start_sending(25, 3000, 50);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let before = health(engine.addr).await?;
    let rss_before = rss_kib(engine.child.id());
    let v0 = subscriber.stats.video();
    let targets: Vec<SocketAddr> = ports(&before)
        .into_iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .collect();
    let mut senders = Vec::new();
    for _ in 0..4 {
        senders.push(UdpSocket::bind("127.0.0.1:0").await?);
    }
    let mut junk = Junk(seed | 1);
    let started = tokio::time::Instant::now();
    let mut sent = 0u64;
    for round in 0..40 {
        for i in 0..500 {
            let d = junk.datagram();
            let s = &senders[(round + i) % senders.len()];
            let to = targets[i % targets.len()];
            if s.send_to(&d, to).await.is_ok() {
                sent += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let flood = started.elapsed();
    let v1 = subscriber.stats.video();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = health(engine.addr).await?;

    let bad =
        after["badDatagrams"].as_u64().unwrap_or(0) - before["badDatagrams"].as_u64().unwrap_or(0);
    eprintln!(
        "sent {sent} junk datagrams in {flood:?}; counted bad {bad}; video {v0} → {v1}; \
         unknown source {}, unknown ufrag {}, refused {}",
        sum(&after, "unknownSource"),
        sum(&after, "unknownUfrag"),
        sum(&after, "refused")
    );
    // The kernel may drop some when a socket buffer is full; what arrives is counted.
    assert!(
        bad * 10 >= sent * 9,
        "only {bad} of {sent} counted: {after}"
    );
    assert!(sum(&after, "unknownUfrag") > 0 && sum(&after, "unknownSource") > 0);
    // 25 frames/s of 3 KB (3 packets each): the subscriber kept receiving throughout.
    let expected = (flood.as_secs_f64() * 75.0) as u64;
    assert!(
        v1 - v0 >= expected / 2,
        "video during the flood: {} packets, expected about {expected}",
        v1 - v0
    );
    // Nothing was created for the junk: same connections and routing entries, little memory.
    assert_eq!(after["peerConnections"], before["peerConnections"]);
    assert_eq!(sum(&after, "connections"), sum(&before, "connections"));
    let routes = |h: &Value| sum(h, "routeEntries");
    let h = wait_health(engine.addr, Duration::from_secs(3), |h| {
        routes(h) == routes(&before)
    })
    .await?;
    assert_eq!(routes(&h), routes(&before), "{h}");
    let rss_after = rss_kib(engine.child.id());
    assert!(
        rss_after < rss_before + 8 * 1024,
        "engine RSS {rss_before} → {rss_after} KiB"
    );
    assert_eq!(sub_ep.get_connection_state().await?, "CONNECTED");

    sending.cancel();
    pipeline.release().await?;
    publisher.close().await;
    subscriber.close().await;
    kms.close().await;
    Ok(())
}

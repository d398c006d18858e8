//! Resource hygiene of a real engine process: 200 create/negotiate/connect/release cycles (20 of
//! them with ICE + DTLS connected and media flowing) end with zero objects, zero peer
//! connections and media tasks, the same open-file count, and RSS within a small bound.

use rtcpool_tests::harness::{client, health, negotiate, wait_health, EngineProcess};
use rtcpool_tests::peer::TestPeer;
use std::time::Duration;

const CYCLES: usize = 200;
const CONNECTED_EVERY: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_cycles_leave_nothing_behind() -> anyhow::Result<()> {
    let engine = EngineProcess::start(&[]).await?;
    let kms = client(&engine.url()).await?;

    // Warm-up cycle: first-use allocations (TLS contexts, thread pools) are not leaks.
    cycle(&kms, true).await?;
    let base = settle(&engine).await?;
    let (fds0, rss0) = (
        base["openFds"].as_u64().unwrap_or(0),
        base["rssKib"].as_u64().unwrap_or(0),
    );

    for i in 0..CYCLES {
        cycle(&kms, i % CONNECTED_EVERY == 0).await?;
    }
    let end = settle(&engine).await?;
    let (fds1, rss1) = (
        end["openFds"].as_u64().unwrap_or(0),
        end["rssKib"].as_u64().unwrap_or(0),
    );
    eprintln!("hygiene: fds {fds0} -> {fds1}, rss {rss0} KiB -> {rss1} KiB over {CYCLES} cycles");
    assert_eq!(end["elements"], 0, "{end}");
    assert_eq!(end["pipelines"], 0, "{end}");
    assert_eq!(end["peerConnections"], 0, "{end}");
    assert_eq!(end["mediaTasks"], 0, "{end}");
    assert_eq!(end["taps"], 0, "{end}");
    assert_eq!(fds1, fds0, "open files grew: {base} -> {end}");
    assert!(
        rss1 <= rss0 + 16 * 1024,
        "RSS grew by more than 16 MiB: {rss0} -> {rss1} KiB"
    );
    kms.close().await;
    Ok(())
}

async fn cycle(kms: &kms_client::KurentoClient, connect: bool) -> anyhow::Result<()> {
    let pipeline = kms.create_pipeline().await?;
    let publisher = pipeline.create_webrtc_endpoint().await?;
    let hub = pipeline.create_pass_through().await?;
    let subscriber = pipeline.create_webrtc_endpoint().await?;
    publisher.connect(hub.id(), None).await?;
    hub.connect(subscriber.id(), None).await?;
    let peer = TestPeer::publisher().await?;
    negotiate(&publisher, &peer).await?;
    if connect {
        anyhow::ensure!(
            peer.wait_connected(Duration::from_secs(10)).await,
            "peer did not connect"
        );
        let sending = peer.start_sending(30, 2000, 30);
        tokio::time::sleep(Duration::from_millis(100)).await;
        sending.cancel();
    }
    pipeline.release().await?;
    peer.close().await;
    Ok(())
}

async fn settle(engine: &EngineProcess) -> anyhow::Result<serde_json::Value> {
    let h = wait_health(engine.addr, Duration::from_secs(10), |h| {
        h["peerConnections"] == 0 && h["mediaTasks"] == 0
    })
    .await?;
    // Give closed sockets a moment to be reaped before counting descriptors.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = h;
    health(engine.addr).await
}

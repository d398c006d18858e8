//! kms-client ⇄ media-engine with real webrtc-rs peers: one publisher (synthetic VP8 + Opus)
//! through a PassThrough to three subscribers (two offer, one answers the engine's offer). Media must
//! arrive at all of them, releasing one must leave the others receiving, a subscriber's PLI must
//! reach the publisher, and releasing the pipeline must free every peer connection and task.

use rtcpool_tests::harness::{client, negotiate, negotiate_server_offer, wait_health, LocalEngine};
use rtcpool_tests::peer::TestPeer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_fans_out_through_passthrough_and_pli_flows_back() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let kms = client(&engine.url()).await?;
    let pipeline = kms.create_pipeline().await?;
    let publisher_ep = pipeline.create_webrtc_endpoint().await?;
    let hub = pipeline.create_pass_through().await?;
    let sub_eps = [
        pipeline.create_webrtc_endpoint().await?,
        pipeline.create_webrtc_endpoint().await?,
        pipeline.create_webrtc_endpoint().await?,
    ];

    let publisher = TestPeer::publisher().await?;
    negotiate(&publisher_ep, &publisher).await?;
    publisher_ep.connect(hub.id(), None).await?;
    assert!(
        publisher.wait_connected(Duration::from_secs(10)).await,
        "publisher never connected"
    );
    let sending = publisher.start_sending(25, 3000, 50);

    let mut subs = Vec::new();
    for (i, ep) in sub_eps.iter().enumerate() {
        // Two subscribers offer (the OpenVidu path); the third answers the engine's offer.
        let peer = if i < 2 {
            TestPeer::subscriber().await?
        } else {
            TestPeer::answerer().await?
        };
        if i < 2 {
            negotiate(ep, &peer).await?;
        } else {
            negotiate_server_offer(ep, &peer).await?;
        }
        hub.connect(ep.id(), None).await?;
        assert!(
            peer.wait_connected(Duration::from_secs(10)).await,
            "subscriber never connected"
        );
        subs.push(peer);
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while subs
        .iter()
        .any(|s| s.stats.video() < 50 || s.stats.audio() < 25)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "media did not reach every subscriber: {:?}",
            subs.iter()
                .map(|s| (s.stats.audio(), s.stats.video()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The two subscribers that offered receive-only are on the engine's direct send path (the
    // third, which answered the engine's offer, on rtc's); a NACK is answered from the leg's
    // history.
    let h = wait_health(engine.addr, Duration::from_secs(5), |h| {
        h["directLegs"].as_u64() == Some(2)
    })
    .await?;
    assert_eq!(h["directLegs"], 2, "{h}");
    // Both without a peer connection: the engine answered them itself.
    assert_eq!(h["legTransports"], 2, "{h}");
    let before = h["retransmissions"].as_u64().unwrap_or(0);
    assert_eq!(subs[0].send_nack(5).await, 1);
    let h = wait_health(engine.addr, Duration::from_secs(5), |h| {
        h["retransmissions"].as_u64().unwrap_or(0) >= before + 5
    })
    .await?;
    assert!(
        h["retransmissions"].as_u64().unwrap_or(0) >= before + 5,
        "{h}"
    );

    // A subscriber's keyframe request reaches the publisher as a PLI.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = publisher.stats.plis();
    assert_eq!(subs[0].send_pli().await, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while publisher.stats.plis() <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "PLI never reached the publisher"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(publisher_ep.get_connection_state().await?, "CONNECTED");

    // Kurento's statistics: the publisher's endpoint counts what it received, a subscriber's
    // what it sent (in Kurento's shapes), and both say media is flowing.
    use kms_client::MediaType;
    let count = |stats: &serde_json::Map<String, serde_json::Value>, ty: &str, field: &str| {
        stats
            .values()
            .filter(|v| v["type"] == ty)
            .map(|v| v[field].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let inbound = publisher_ep.get_stats(Some(MediaType::Video)).await?;
    let received = count(&inbound, "inboundrtp", "packetsReceived");
    assert!(received >= 50, "publisher endpoint stats: {inbound:?}");
    assert!(inbound.values().all(|v| v["__module__"] == "kurento"
        && v["timestampMillis"].as_u64().is_some()
        && (v["type"] != "inboundrtp" || v["__type__"] == "RTCInboundRTPStreamStats")));
    assert!(count(&inbound, "inboundrtp", "bytesReceived") > received * 100);
    assert_eq!(
        count(&inbound, "outboundrtp", "packetsSent"),
        0,
        "{inbound:?}"
    );
    let outbound = sub_eps[0].get_stats(None).await?;
    assert!(
        count(&outbound, "outboundrtp", "packetsSent") >= 75,
        "subscriber endpoint stats: {outbound:?}"
    );
    assert!(
        count(&outbound, "outboundrtp", "nackCount") >= 1,
        "{outbound:?}"
    );
    assert!(outbound
        .values()
        .any(|v| v["type"] == "candidatepair" && v["bytesSent"].as_u64() > Some(0)));
    assert!(outbound
        .values()
        .any(|v| v["type"] == "endpoint" && v["__type__"] == "EndpointStats"));
    assert!(
        publisher_ep
            .is_media_flowing(true, MediaType::Video)
            .await?
    );
    assert!(sub_eps[0].is_media_flowing(false, MediaType::Audio).await?);
    assert!(!sub_eps[0].is_media_flowing(true, MediaType::Video).await?);
    assert!(hub.get_stats(None).await?.is_empty());

    // Packets reach subscribers by direct call through taps on the hubs: the PassThrough's relay
    // (audio, video) and each subscriber's two tracks. Releasing one subscriber while the
    // publisher keeps sending removes exactly its taps; the others keep receiving.
    let taps = |h: &serde_json::Value| h["taps"].as_u64();
    let h = wait_health(engine.addr, Duration::from_secs(5), |h| taps(h) == Some(8)).await?;
    assert_eq!(taps(&h), Some(8), "{h}");
    sub_eps[1].release().await?;
    let h = wait_health(engine.addr, Duration::from_secs(5), |h| taps(h) == Some(6)).await?;
    assert_eq!(taps(&h), Some(6), "{h}");
    let (a, b) = (subs[0].stats.video(), subs[2].stats.video());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while subs[0].stats.video() < a + 25 || subs[2].stats.video() < b + 25 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the remaining subscribers stopped receiving"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    sending.cancel();
    pipeline.release().await?;
    let h = wait_health(engine.addr, Duration::from_secs(5), |h| {
        h["peerConnections"] == 0 && h["mediaTasks"] == 0
    })
    .await?;
    assert_eq!(h["elements"], 0, "{h}");
    assert_eq!(h["pipelines"], 0, "{h}");
    assert_eq!(h["peerConnections"], 0, "{h}");
    assert_eq!(h["mediaTasks"], 0, "{h}");
    assert_eq!(h["taps"], 0, "{h}");
    publisher.close().await;
    for s in subs {
        s.close().await;
    }
    kms.close().await;
    engine.shutdown().await;
    Ok(())
}

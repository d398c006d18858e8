//! Statistics as OpenVidu users read them: `GET /sessions/{id}?webRtcStats=true` (and the
//! connection endpoints) add, per publisher and subscriber, the endpoint's name, both SDPs, the
//! candidates each side trickled, the selected pair and the engine's Kurento `getStats` figures;
//! without the flag none of it is there.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{media_flows, LocalSignaling};
use serde_json::Value;
use std::time::{Duration, Instant};

fn sum(stats: &Value, ty: &str, field: &str) -> u64 {
    stats
        .as_object()
        .map(|m| {
            m.values()
                .filter(|v| v["type"] == ty)
                .map(|v| v[field].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_stats_show_each_endpoint() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let (ta, tb) = (
        sig.token("st", "PUBLISHER").await?,
        sig.token("st", "PUBLISHER").await?,
    );
    let mut a = Bot::open(&ta).await?;
    a.join(&ta, "a").await?;
    let mut b = Bot::open(&tb).await?;
    b.join(&tb, "b").await?;
    let (pa, stream) = a.publish().await?;
    let sending = pa.start_sending(25, 2000, 10);
    let got = b.subscribe(&stream).await?;
    anyhow::ensure!(media_flows(&got).await, "no media");

    let (_, plain) = sig.http("GET", "/openvidu/api/sessions/st", None).await?;
    let conns = plain["connections"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(conns.iter().all(|c| c["publishers"]
        .as_array()
        .is_none_or(|p| p.iter().all(|p| p.get("localSdp").is_none()))));

    // The engine's counters move: wait until both directions show packets.
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        let (st, s) = sig
            .http("GET", "/openvidu/api/sessions/st?webRtcStats=true", None)
            .await?;
        assert_eq!(st, 200);
        let by = |id: &str| {
            s["connections"]["content"]
                .as_array()
                .and_then(|a| a.iter().find(|c| c["connectionId"] == id).cloned())
                .unwrap_or_default()
        };
        let (ca, cb) = (by(&a.connection_id), by(&b.connection_id));
        let p = ca["publishers"][0].clone();
        let sub = cb["subscribers"][0].clone();
        if sum(&p["serverStats"], "inboundrtp", "packetsReceived") > 20
            && sum(&sub["serverStats"], "outboundrtp", "packetsSent") > 20
        {
            break (p, sub);
        }
        anyhow::ensure!(Instant::now() < deadline, "no engine figures: {p} {sub}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (p, sub) = s;
    assert_eq!(p["webrtcEndpointName"], stream.as_str());
    assert!(
        p["localSdp"].as_str().is_some_and(|x| x.starts_with("v=0")),
        "{p}"
    );
    assert!(
        p["remoteSdp"]
            .as_str()
            .is_some_and(|x| x.starts_with("v=0")),
        "{p}"
    );
    for side in ["localCandidate", "remoteCandidate"] {
        assert!(
            p[side]
                .as_str()
                .is_some_and(|c| c.starts_with("candidate:")),
            "{side}: {p}"
        );
    }
    assert!(
        p["serverIceCandidates"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{p}"
    );
    assert!(
        p["clientIceCandidates"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{p}"
    );
    assert!(p["events"].as_array().is_some_and(|e| !e.is_empty()), "{p}");
    assert_eq!(sub["streamId"], stream.as_str());
    assert_eq!(sub["publisher"], a.connection_id.as_str());
    assert_eq!(
        sub["webrtcEndpointName"],
        format!("{}_{stream}", b.connection_id).as_str()
    );
    assert!(sum(&sub["serverStats"], "outboundrtp", "bytesSent") > 0);

    // The connection endpoints take the flag too.
    let (_, c) = sig
        .http(
            "GET",
            &format!(
                "/openvidu/api/sessions/st/connection/{}?webRtcStats=true",
                b.connection_id
            ),
            None,
        )
        .await?;
    assert!(c["subscribers"][0]["remoteSdp"].as_str().is_some(), "{c}");
    let (_, list) = sig
        .http(
            "GET",
            "/openvidu/api/sessions/st/connection?webRtcStats=true",
            None,
        )
        .await?;
    assert_eq!(list["numberOfElements"], 2);
    let (_, all) = sig
        .http("GET", "/openvidu/api/sessions?webRtcStats=true", None)
        .await?;
    assert!(all["content"][0]["connections"]["content"]
        .as_array()
        .is_some_and(|c| c
            .iter()
            .any(|c| c["publishers"][0]["serverStats"].is_object())));

    sending.cancel();
    pa.close().await;
    got.close().await;
    sig.shutdown().await;
    Ok(())
}

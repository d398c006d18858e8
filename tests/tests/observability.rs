//! Metrics as the ecosystem reads them: signaling's and an engine's `/metrics` are OpenMetrics
//! text from `prometheus-client` (types, help, escaping), with latency histograms for browser
//! requests by method and engine round trips; the Grafana dashboard shipped in
//! `signaling/deploy/` parses and names only metrics that exist.

use rtcpool_tests::bot::Bot;
use rtcpool_tests::harness::{http_text, LocalSignaling};
use std::collections::BTreeSet;
use std::time::Duration;

/// The series names a `/metrics` text exposes (`name` and `name{…}` sample lines).
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// An engine's `/metrics` with its secret.
async fn engine_metrics(
    addr: std::net::SocketAddr,
    secret: Option<&str>,
) -> anyhow::Result<String> {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let auth = secret
        .map(|p| {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("rtcpool:{p}"));
            format!("Authorization: Basic {b}\r\n")
        })
        .unwrap_or_default();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    anyhow::ensure!(text.starts_with("HTTP/1.1 200"), "{text}");
    Ok(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_openmetrics_and_the_dashboard_names_only_what_exists() -> anyhow::Result<()> {
    let sig = LocalSignaling::start(1).await?;
    let (ta, tb) = (
        sig.token("obs", "PUBLISHER").await?,
        sig.token("obs", "PUBLISHER").await?,
    );
    let mut a = Bot::open(&ta).await?;
    a.join(&ta, "a").await?;
    let (pub_a, stream) = a.publish().await?;
    let sending = pub_a.start_sending(25, 1500, 50);
    let mut b = Bot::open(&tb).await?;
    b.join(&tb, "b").await?;
    let _sub = b.subscribe(&stream).await?;
    let _ = b
        .fails("joinRoom", serde_json::json!({"made-up": true}))
        .await;
    let _ = b
        .request("noSuchMethodAtAll", serde_json::json!({}))
        .await?;
    tokio::time::sleep(Duration::from_millis(2500)).await; // health readings (engine round trips)

    let text = http_text(sig.addr, "/metrics").await?;
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    assert!(
        text.contains("# TYPE rtcpool_rpc_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("method=\"joinRoom\""), "{text}");
    assert!(text.contains("method=\"receiveVideoFrom\""), "{text}");
    assert!(
        text.contains("method=\"other\"") && !text.contains("noSuchMethodAtAll"),
        "made-up methods share one label"
    );
    assert!(
        text.contains("rtcpool_engine_rpc_duration_seconds_count{engine="),
        "{text}"
    );
    assert!(text.contains("rtcpool_joins_total 2"), "{text}");
    let engine = &sig.engines[0];
    let etext = engine_metrics(engine.addr, engine.secret.as_deref()).await?;
    assert!(etext.contains("media_engine_rtp_out_total"), "{etext}");
    // Per-engine packet and byte counters, non-zero with media flowing.
    let value = |name: &str| -> u64 {
        etext
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .map(|v| v as u64)
            .sum()
    };
    assert!(
        value("media_engine_worker_bytes_in_total") > 10_000,
        "{etext}"
    );
    assert!(
        value("media_engine_worker_bytes_out_total") > 10_000,
        "{etext}"
    );
    assert!(
        value("media_engine_worker_datagrams_out_total") > 10,
        "{etext}"
    );
    let mut names = series(&text);
    names.extend(series(&etext));

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../signaling/deploy/grafana-dashboard.json"
    );
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut used = BTreeSet::new();
    for e in &exprs {
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("rtcpool_") || word.starts_with("media_engine_") {
                used.insert(word.to_string());
            }
        }
    }
    // Cluster series exist only with Redis: their names are checked against the code instead.
    let cluster_only = [
        "rtcpool_cluster_node_participants",
        "rtcpool_cluster_store_up",
    ];
    for m in &used {
        let known = names.contains(m) || cluster_only.contains(&m.as_str());
        assert!(
            known,
            "the dashboard names {m}, which /metrics does not expose"
        );
    }
    for m in cluster_only {
        let src = include_str!("../../signaling/src/metrics.rs");
        assert!(
            src.contains(&format!("\"{m}\"")),
            "{m} is not a metric of signaling"
        );
    }
    sending.cancel();
    sig.shutdown().await;
    Ok(())
}

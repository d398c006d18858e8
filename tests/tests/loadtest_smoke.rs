//! CI smoke run of the load generator: a signaling process with its two local engines, the
//! `loadtest` binary for a 20-second rooms scenario; the JSON report must exist and show media
//! flowing to every subscription.

use rtcpool_tests::harness::{bin_path, free_port, http_request};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_twenty_second_smoke() -> anyhow::Result<()> {
    let port = free_port()?;
    let mut signaling = Command::new(bin_path("signaling"))
        .env("SERVER_PORT", port.to_string())
        .env("RTCPOOL_LOG", "warn")
        .env("RTCPOOL_ENGINE_LOG", "error")
        .env(
            "STATIC_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../static"),
        )
        .stdout(Stdio::null())
        .spawn()?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let t0 = Instant::now();
    loop {
        let ready = http_request(
            addr,
            "GET",
            "/health",
            None,
            Some(("OPENVIDUAPP", "MY_SECRET")),
        )
        .await
        .ok()
        .is_some_and(|(_, h)| {
            h["engines"]
                .as_array()
                .is_some_and(|e| !e.is_empty() && e.iter().all(|x| x["admitted"] == true))
        });
        if ready {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(20),
            "signaling did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = std::env::temp_dir().join(format!("rtcpool-smoke-{port}.json"));
    let out = tokio::process::Command::new(bin_path("loadtest"))
        .args([
            "--url",
            &addr.to_string(),
            "--scenario",
            "rooms",
            "--rooms",
            "2",
            "--participants",
            "3",
        ])
        .args([
            "--video-kbps",
            "300",
            "--fps",
            "15",
            "--ramp",
            "6",
            "--duration",
            "18",
            "--signaling-pid",
            &signaling.id().to_string(),
        ])
        .arg("--json")
        .arg(&report)
        .output()
        .await?;
    // SIGTERM: signaling shuts down gracefully and stops its local engines with it.
    let _ = Command::new("kill")
        .args(["-TERM", &signaling.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while signaling.try_wait()?.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = signaling.kill();
    let _ = signaling.wait();
    let r = report_of(&out, &report)?;
    assert_eq!(r["joined"], 6, "{r}");
    assert_eq!(
        (
            r["publishers"].clone(),
            r["subscriptions"].clone(),
            r["streams"].clone()
        ),
        (6.into(), 12.into(), 18.into()),
        "{r}"
    );
    assert_eq!(r["subscriptions_without_media"], 0, "{r}");
    assert!(
        r["packets_received"].as_u64().is_some_and(|n| n > 5000),
        "{r}"
    );
    assert!(
        r["packet_loss_pct"].as_f64().is_some_and(|l| l < 1.0),
        "{r}"
    );
    assert!(
        r["engine_cpu_cores"].as_f64().is_some_and(|c| c > 0.0),
        "{r}"
    );
    assert!(
        r["subscribe_first_packet_ms"]["p50"].as_f64().is_some(),
        "{r}"
    );
    assert_eq!(r["errors"], 0, "{r}");
    Ok(())
}

#[tokio::test]
async fn the_tools_explain_their_flags_and_fail_in_one_line() -> anyhow::Result<()> {
    for tool in ["loadtest", "bench-forward"] {
        let out = tokio::process::Command::new(bin_path(tool))
            .arg("--help")
            .output()
            .await?;
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{tool} --help: {out:?}");
        assert!(help.contains("Usage:"), "{help}");
    }
    let out = tokio::process::Command::new(bin_path("loadtest"))
        .arg("--help")
        .output()
        .await?;
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--url",
        "--scenario",
        "--rooms",
        "--participants",
        "--viewers",
        "--no-media",
        "--video-kbps",
        "--fps",
        "--ramp",
        "--duration",
        "--engine-pids",
        "--signaling-pid",
        "--prefix",
        "--soak-minutes",
        "--json",
        "--secret",
    ] {
        assert!(help.contains(flag), "loadtest --help lacks {flag}: {help}");
    }
    // A bad flag value: clap's usage error (status 2), nothing started.
    let out = tokio::process::Command::new(bin_path("loadtest"))
        .args(["--scenario", "nope"])
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A run that cannot start: one line, status 1, no backtrace whatever RUST_BACKTRACE says.
    let out = tokio::process::Command::new(bin_path("loadtest"))
        .args(["--url", "not-an-address"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .await?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        err.starts_with("loadtest: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        !err.contains("backtrace") && !err.contains("Stack"),
        "{err}"
    );
    Ok(())
}

/// The load generator tells the truth about broken media: the engine carrying its room is
/// killed mid-run; its bots do what openvidu-browser does (reconnect the socket signaling closes,
/// `reconnectStream` the streams whose connection went down) and the report counts every stream
/// that stopped, how long it took to come back, and none that never did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadtest_reports_streams_that_stop_and_recover() -> anyhow::Result<()> {
    use rtcpool_tests::harness::{EngineProcess, SignalingProcess};
    let mut engines = [
        EngineProcess::start(&[]).await?,
        EngineProcess::start(&[]).await?,
    ];
    let uris: Vec<String> = engines.iter().map(EngineProcess::url).collect();
    let sig = SignalingProcess::start(&uris, &[]).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, h) = sig.http("GET", "/health", None).await?;
        let ready = h["engines"]
            .as_array()
            .is_some_and(|e| e.len() == 2 && e.iter().all(|x| x["admitted"] == true));
        if ready {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "engines not admitted: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = std::env::temp_dir().join(format!("rtcpool-recovery-{}.json", sig.addr.port()));
    let run = tokio::process::Command::new(bin_path("loadtest"))
        .args([
            "--url",
            &sig.addr.to_string(),
            "--rooms",
            "1",
            "--participants",
            "2",
        ])
        .args([
            "--video-kbps",
            "200",
            "--fps",
            "15",
            "--ramp",
            "10",
            "--duration",
            "24",
        ])
        .args([
            "--prefix",
            "recovery",
            "--signaling-pid",
            &sig.pid().to_string(),
        ])
        .arg("--engine-pids")
        .arg(format!("{},{}", engines[0].pid(), engines[1].pid()))
        .arg("--json")
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Media flows, then the room's engine dies.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, s) = sig
        .http("GET", "/openvidu/api/sessions/recovery-room-0", None)
        .await?;
    let engine = s["mediaNode"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, n) = sig
        .http("GET", &format!("/openvidu/api/media-nodes/{engine}"), None)
        .await?;
    let uri = n["uri"].as_str().unwrap_or_default().to_string();
    let victim = engines
        .iter()
        .position(|e| e.url() == uri)
        .ok_or_else(|| anyhow::anyhow!("no engine at {uri}: {s}"))?;
    engines[victim].kill();
    let out = run.wait_with_output().await?;
    let r = report_of(&out, &report)?;
    // Both participants' streams stopped with the engine and came back on the other one.
    let stopped = r["streams_stopped"].as_u64().unwrap_or(0);
    assert!(stopped >= 2, "{r}");
    assert_eq!(r["streams_recovered"], stopped, "{r}");
    assert_eq!(r["streams_never_recovered"], 0, "{r}");
    assert!(
        r["stream_reconnects"].as_u64().is_some_and(|n| n >= 2),
        "{r}"
    );
    assert!(
        r["recovery_ms"]["max"]
            .as_f64()
            .is_some_and(|ms| ms < 20_000.0),
        "{r}"
    );
    Ok(())
}

/// The JSON report of a finished `loadtest` run (its table printed; the file removed).
fn report_of(
    out: &std::process::Output,
    path: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    anyhow::ensure!(
        out.status.success(),
        "loadtest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let _ = std::fs::remove_file(path);
    Ok(r)
}

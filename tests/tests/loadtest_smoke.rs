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
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    anyhow::ensure!(
        out.status.success(),
        "loadtest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let _ = std::fs::remove_file(&report);
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

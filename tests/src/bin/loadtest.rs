//! `loadtest`: drives a running rtcpool (or OpenVidu) signaling server with headless participants
//! and reports capacity, latency and resource use. See BENCHMARKS.md.
//!
//!   loadtest --url 127.0.0.1:4443 --scenario rooms --rooms 10 --participants 6 \
//!            --video-kbps 500 --fps 30 --ramp 10 --duration 30 --json report.json
//!   loadtest --scenario broadcast --viewers 50 …
//!   loadtest --scenario rooms --rooms 500 --participants 10 --no-media --ramp 200 …   (signaling scale)
//!   loadtest --scenario rooms --rooms 3 --participants 4 --duration 5 --soak-minutes 10     (hygiene soak)

use rtcpool_tests::loadgen::{self, Config, Progress, Scenario};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    arg(args, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").unwrap_or_else(|| "127.0.0.1:4443".into());
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()?;
    let scenario = match arg(&args, "--scenario").as_deref().unwrap_or("rooms") {
        "broadcast" => Scenario::Broadcast {
            viewers: num(&args, "--viewers", 20),
        },
        "rooms" => Scenario::Rooms {
            rooms: num(&args, "--rooms", 2),
            participants: num(&args, "--participants", 3),
        },
        other => anyhow::bail!("unknown scenario {other} (rooms | broadcast)"),
    };
    let config = Config {
        addr,
        secret: arg(&args, "--secret").unwrap_or_else(|| "MY_SECRET".into()),
        scenario,
        media: !args.iter().any(|a| a == "--no-media"),
        video_kbps: num(&args, "--video-kbps", 500),
        fps: num(&args, "--fps", 30),
        ramp_per_s: num(&args, "--ramp", 10.0),
        hold: Duration::from_secs(num(&args, "--duration", 20)),
        engine_pids: arg(&args, "--engine-pids")
            .map(|s| s.split(',').filter_map(|p| p.parse().ok()).collect()),
        signaling_pid: arg(&args, "--signaling-pid").and_then(|p| p.parse().ok()),
        prefix: arg(&args, "--prefix").unwrap_or_else(|| format!("load{}", std::process::id())),
    };
    if let Some(minutes) = arg(&args, "--soak-minutes").and_then(|m| m.parse::<f64>().ok()) {
        let report = loadgen::soak::soak(config, minutes).await?;
        print_table(&serde_json::to_string_pretty(&report)?);
        if let Some(path) = arg(&args, "--json") {
            std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        }
        anyhow::ensure!(
            report["clean"] == true,
            "engines did not return to baseline"
        );
        return Ok(());
    }
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    let ticker = tokio::spawn(async move {
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            eprintln!(
                "[{:>5.1}s] joined {}  subscriptions {}  errors {}",
                started.elapsed().as_secs_f64(),
                p.joined.load(Ordering::Relaxed),
                p.subscribed.load(Ordering::Relaxed),
                p.errors.load(Ordering::Relaxed)
            );
        }
    });
    let report = loadgen::run(config, progress).await?;
    ticker.abort();
    print_table(&loadgen::report::table(&report));
    if let Some(path) = arg(&args, "--json") {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("report written to {path}");
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // the table is this tool's output
fn print_table(t: &str) {
    println!("{t}");
}

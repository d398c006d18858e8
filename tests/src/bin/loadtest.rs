//! `loadtest`: drives a running rtcpool (or OpenVidu) signaling server with headless participants
//! and reports capacity, latency and resource use. See BENCHMARKS.md.
//!
//!   loadtest --url 127.0.0.1:4443 --scenario rooms --rooms 10 --participants 6 \
//!            --video-kbps 500 --fps 30 --ramp 10 --duration 30 --json report.json
//!   loadtest --scenario broadcast --viewers 50 …
//!   loadtest --scenario rooms --rooms 500 --participants 10 --no-media --ramp 200 …   (signaling scale)
//!   loadtest --scenario rooms --rooms 3 --participants 4 --duration 5 --soak-minutes 10     (hygiene soak)

use clap::{Parser, ValueEnum};
use rtcpool_tests::loadgen::{self, Config, Progress, Scenario};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Drives a running signaling server with headless participants; prints a table and writes a
/// JSON report (fields in BENCHMARKS.md).
#[derive(Parser)]
#[command(name = "loadtest", version)]
struct Args {
    /// Signaling's address (`host:port`, optionally with `http://`); several, comma-separated,
    /// spread the participants' sockets over the nodes of a cluster (REST goes to the first).
    #[arg(long, default_value = "127.0.0.1:4443", value_delimiter = ',')]
    url: Vec<String>,
    /// The REST API secret.
    #[arg(long, default_value = "MY_SECRET")]
    secret: String,
    #[arg(long, value_enum, default_value = "rooms")]
    scenario: ScenarioArg,
    /// Rooms of the `rooms` scenario.
    #[arg(long, default_value_t = 2)]
    rooms: usize,
    /// Participants per room (each publishes and subscribes to all others).
    #[arg(long, default_value_t = 3)]
    participants: usize,
    /// Viewers of the `broadcast` scenario's one publisher.
    #[arg(long, default_value_t = 20)]
    viewers: usize,
    /// Join and signal only, no WebRTC.
    #[arg(long)]
    no_media: bool,
    #[arg(long, default_value_t = 500)]
    video_kbps: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Participants joined per second.
    #[arg(long, default_value_t = 10.0)]
    ramp: f64,
    /// Seconds to hold the full load.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Engine process ids to measure (comma-separated; default: found by name).
    #[arg(long, value_delimiter = ',')]
    engine_pids: Option<Vec<u32>>,
    /// Signaling process ids to measure (comma-separated; default: found by name).
    #[arg(long, value_delimiter = ',')]
    signaling_pid: Option<Vec<u32>>,
    /// Each participant sends a signal to its room this often (ms; 0 = never); the report gives
    /// the time from sending to receipt (per node too).
    #[arg(long, default_value_t = 0)]
    signal_every_ms: u64,
    /// Session id prefix.
    #[arg(long)]
    prefix: Option<String>,
    /// Repeat short rounds for this long and check the engines return to baseline.
    #[arg(long)]
    soak_minutes: Option<f64>,
    /// Where to write the JSON report.
    #[arg(long)]
    json: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScenarioArg {
    Rooms,
    Broadcast,
}

/// Errors end the tool with one line and status 1 (never a backtrace, whatever
/// `RUST_BACKTRACE` says).
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e.into()),
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("loadtest: {e:#}");
    std::process::ExitCode::FAILURE
}

async fn run(args: Args) -> anyhow::Result<()> {
    let nodes = args
        .url
        .iter()
        .map(|u| {
            u.trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()
        })
        .collect::<Result<Vec<std::net::SocketAddr>, _>>()?;
    let addr = *nodes
        .first()
        .ok_or_else(|| anyhow::anyhow!("--url names no address"))?;
    let scenario = match args.scenario {
        ScenarioArg::Broadcast => Scenario::Broadcast {
            viewers: args.viewers,
        },
        ScenarioArg::Rooms => Scenario::Rooms {
            rooms: args.rooms,
            participants: args.participants,
        },
    };
    let config = Config {
        addr,
        nodes,
        signal_every: Duration::from_millis(args.signal_every_ms),
        secret: args.secret,
        scenario,
        media: !args.no_media,
        video_kbps: args.video_kbps,
        fps: args.fps,
        ramp_per_s: args.ramp,
        hold: Duration::from_secs(args.duration),
        engine_pids: args.engine_pids,
        signaling_pids: args.signaling_pid,
        prefix: args
            .prefix
            .unwrap_or_else(|| format!("load{}", std::process::id())),
    };
    if let Some(minutes) = args.soak_minutes {
        let report = loadgen::soak::soak(config, minutes).await?;
        print_table(&serde_json::to_string_pretty(&report)?);
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
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
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("report written to {path}");
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // the table is this tool's output
fn print_table(t: &str) {
    println!("{t}");
}

//! Forwarding benchmark: one publisher → N subscribers through one media-engine process, with
//! webrtc-rs peers. Prints engine CPU µs per forwarded packet and forwarded packets/s per core.
//!
//!   cargo build --release --bins && target/release/bench-forward --subscribers 20 --seconds 10
//!
//! The engine runs as its own process so its CPU (from /proc) excludes the peers'.

use clap::Parser;
use rtcpool_tests::harness::{client, health, negotiate, process_cpu_seconds, EngineProcess};
use rtcpool_tests::peer::TestPeer;
use std::time::{Duration, Instant};

/// One publisher → N subscribers through one media-engine process: engine CPU per forwarded
/// packet.
#[derive(Parser)]
#[command(name = "bench-forward", version)]
struct Args {
    #[arg(long, default_value_t = 10)]
    subscribers: usize,
    /// Measurement window (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Bytes per video frame (split into packets of ≤ 1,100 bytes).
    #[arg(long, default_value_t = 2200)]
    frame_bytes: usize,
}

/// Errors end the tool with one line and status 1 (never a backtrace).
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-forward: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let Args {
        subscribers,
        seconds,
        fps,
        frame_bytes,
    } = args;

    let engine = EngineProcess::start(&[]).await?;
    let kms = client(&engine.url()).await?;
    let pipeline = kms.create_pipeline().await?;
    let pub_ep = pipeline.create_webrtc_endpoint().await?;
    let hub = pipeline.create_pass_through().await?;
    let publisher = TestPeer::publisher().await?;
    negotiate(&pub_ep, &publisher).await?;
    pub_ep.connect(hub.id(), None).await?;
    anyhow::ensure!(
        publisher.wait_connected(Duration::from_secs(10)).await,
        "publisher did not connect"
    );
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let ep = pipeline.create_webrtc_endpoint().await?;
        let peer = TestPeer::subscriber().await?;
        negotiate(&ep, &peer).await?;
        hub.connect(ep.id(), None).await?;
        anyhow::ensure!(
            peer.wait_connected(Duration::from_secs(10)).await,
            "subscriber did not connect"
        );
        subs.push(peer);
    }
    let sending = publisher.start_sending(fps, frame_bytes, fps * 2);
    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up

    let h0 = health(engine.addr).await?;
    let (c0, t0) = (process_cpu_seconds(engine.pid()), Instant::now());
    let rx0: u64 = subs.iter().map(|s| s.stats.audio() + s.stats.video()).sum();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let h1 = health(engine.addr).await?;
    let (c1, wall) = (
        process_cpu_seconds(engine.pid()),
        t0.elapsed().as_secs_f64(),
    );
    let rx1: u64 = subs.iter().map(|s| s.stats.audio() + s.stats.video()).sum();
    sending.cancel();

    let forwarded = h1["rtpOut"].as_u64().unwrap_or(0) - h0["rtpOut"].as_u64().unwrap_or(0);
    let ingested = h1["rtpIn"].as_u64().unwrap_or(0) - h0["rtpIn"].as_u64().unwrap_or(0);
    let cpu = c1 - c0;
    let received = rx1 - rx0;
    let us_per_packet = cpu * 1e6 / forwarded.max(1) as f64;
    let per_core = forwarded as f64 / cpu.max(1e-9);
    eprintln!();
    eprintln!("bench-forward: 1 publisher -> {subscribers} subscribers, {fps} fps x {frame_bytes} B video + 50 pkt/s Opus, {seconds} s");
    eprintln!(
        "  packets in (engine)        {:>10.0}/s",
        ingested as f64 / wall
    );
    eprintln!(
        "  packets forwarded          {:>10.0}/s",
        forwarded as f64 / wall
    );
    eprintln!(
        "  packets received by peers  {:>10.0}/s  ({:.2}% of forwarded)",
        received as f64 / wall,
        received as f64 * 100.0 / forwarded.max(1) as f64
    );
    eprintln!(
        "  engine CPU                 {:>10.1}% of one core",
        cpu * 100.0 / wall
    );
    eprintln!(
        "  engine CPU per forwarded   {:>10.2} µs/packet",
        us_per_packet
    );
    eprintln!("  forwarded per engine core  {:>10.0} packets/s", per_core);
    eprintln!(
        "  engine RSS                 {:>10.1} MiB",
        h1["rssKib"].as_f64().unwrap_or(0.0) / 1024.0
    );
    pipeline.release().await?;
    for s in subs {
        s.close().await;
    }
    publisher.close().await;
    Ok(())
}

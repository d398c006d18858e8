//! Real Chromium against rtcpool signaling (which starts its own local engines), inside a
//! network namespace that has only `lo`:
//! * the unchanged openvidu-browser 2.32.2 bundle: two participants publish fake cameras and
//!   each decodes the other, a signal arrives, one leaves and the other gets
//!   streamDestroyed/connectionDestroyed, and the engines end with no pipelines;
//! * the same scenario with rtcpool's own `static/rtcpool.js`;
//! * the unchanged openvidu-node-client 2.32.2 driving the REST API against a live participant;
//! * a session spanning both engines: one publisher, a viewer on each engine (one fed through a
//!   relay), both decoding.

use rtcpool_tests::harness::bin_path;
use std::path::PathBuf;
use std::process::Command;

/// The browser tests' folder and the two binaries, or what to run to get them.
fn prerequisites() -> anyhow::Result<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("browser");
    anyhow::ensure!(
        dir.join("node_modules/openvidu-browser").is_dir(),
        "run scripts/test (installs tests/browser/node_modules)"
    );
    anyhow::ensure!(
        PathBuf::from("/usr/bin/chromium").exists(),
        "run scripts/test (installs Debian's chromium)"
    );
    let (signaling, engine) = (bin_path("signaling"), bin_path("media-engine"));
    anyhow::ensure!(
        signaling.exists() && engine.exists(),
        "binaries not built: cargo build --bins"
    );
    Ok((root, dir, signaling, engine))
}

/// Runs a driver script; it passes when it exits 0 and prints PASS.
fn passes(mut cmd: Command, driver: &str, page: Option<&str>) -> anyhow::Result<()> {
    if let Some(p) = page {
        cmd.env("PAGE", p);
    }
    let out = cmd.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    anyhow::ensure!(
        out.status.success() && stdout.contains("PASS"),
        "{driver} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn run(driver: &str, page: Option<&str>) -> anyhow::Result<()> {
    run_with(driver, page, &[])
}

fn run_with(driver: &str, page: Option<&str>, env: &[(&str, &str)]) -> anyhow::Result<()> {
    let (root, dir, signaling, _) = prerequisites()?;
    let mut cmd = Command::new(dir.join("netns-signaling.sh"));
    cmd.arg(&signaling)
        .arg(dir.join(driver))
        .arg(root.join("../static"));
    cmd.env("RTCPOOL_LOG", "warn")
        .env("RTCPOOL_ENGINE_LOG", "warn,rtc=error");
    cmd.envs(env.iter().copied());
    passes(cmd, driver, page)
}

#[test]
fn browser_openvidu_browser_two_participants() -> anyhow::Result<()> {
    run("openvidu-two-browsers.mjs", Some("ov-page.html"))
}

#[test]
fn browser_own_client_two_participants() -> anyhow::Result<()> {
    run("openvidu-two-browsers.mjs", Some("ours-page.html"))
}

#[test]
fn browser_openvidu_node_client_drives_rest() -> anyhow::Result<()> {
    run("openvidu-node-client.mjs", None)
}

/// Two openvidu-browser participants on an engine that is killed (SIGKILL): both decode each
/// other again on the other engine, without application code; prints the recovery times.
#[test]
fn browser_rehome_after_engine_kill() -> anyhow::Result<()> {
    run("rehome-browsers.mjs", None)
}

/// The same with rtcpool's own `static/rtcpool.js`: it reconnects its socket and its streams by
/// itself, as openvidu-browser does.
#[test]
fn browser_own_client_recovers_after_engine_kill() -> anyhow::Result<()> {
    run("rehome-browsers.mjs", Some("ours-page.html"))
}

/// Three openvidu-browser participants through nginx in front of three signaling nodes on Redis;
/// the node owning their session is killed (SIGKILL): every socket is back within 5 s, no decoded
/// video froze for more than 1 s, nothing was renegotiated, and the session is still usable.
/// Prints the times.
#[test]
fn browser_signaling_node_killed_under_a_call() -> anyhow::Result<()> {
    run_cluster(None)
}

/// The same with rtcpool's own `static/rtcpool.js`.
#[test]
fn browser_own_client_survives_a_signaling_node_kill() -> anyhow::Result<()> {
    run_cluster(Some("ours-page.html"))
}

fn run_cluster(page: Option<&str>) -> anyhow::Result<()> {
    let (root, dir, signaling, engine) = prerequisites()?;
    let mut cmd = Command::new(dir.join("netns-cluster.sh"));
    cmd.arg(&signaling)
        .arg(&engine)
        .arg(dir.join("cluster-browsers.mjs"))
        .arg(root.join(".."));
    passes(cmd, "cluster-browsers.mjs", page)
}

/// One openvidu-browser publisher and two viewers; the session's engine takes only one viewer
/// (`POOL_MAX_ENDPOINTS=3`), the other is fed through a relay from the other engine: both decode.
#[test]
fn browser_viewers_on_two_engines_through_a_relay() -> anyhow::Result<()> {
    run_with(
        "relay-browsers.mjs",
        Some("ov-page.html"),
        &[
            ("POOL_MAX_ENDPOINTS", "3"),
            ("POOL_HEALTH_INTERVAL_MS", "300"),
        ],
    )
}

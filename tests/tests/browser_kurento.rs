//! A real Chromium (fake camera) publishes into a media-engine process through the unchanged
//! kurento-client 7.3.0 (npm), and a second Chromium page receives it through a PassThrough:
//! `framesDecoded > 0`. Runs inside a network namespace that has only `lo`.
//! Needs what `scripts/test` installs: Debian's chromium and `tests/browser/node_modules`.

use rtcpool_tests::harness::bin_path;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn chromium_publishes_and_chromium_decodes_through_passthrough() -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    anyhow::ensure!(
        dir.join("node_modules/kurento-client").is_dir(),
        "run scripts/test (installs tests/browser/node_modules)"
    );
    anyhow::ensure!(
        PathBuf::from("/usr/bin/chromium").exists(),
        "run scripts/test (installs Debian's chromium)"
    );
    let engine = bin_path("media-engine");
    anyhow::ensure!(engine.exists(), "{} not built", engine.display());
    let out = Command::new(dir.join("netns-run.sh"))
        .arg(&engine)
        .arg(dir.join("kurento-two-browsers.mjs"))
        .env(
            "RTCPOOL_ENGINE_LOG",
            "warn,rtc=error,rtc_ice=error,rtc_dtls=error",
        )
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    Ok(())
}

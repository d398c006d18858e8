//! With no `KMS_URIS`, signaling starts its own media-engine processes on loopback (so the run
//! command gives a working system with nothing else to install). They die with signaling. Each
//! gets a random secret (through its environment, not its command line, which anyone on the host
//! can read), so other local users cannot drive them.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct LocalEngines {
    /// `ws://rtcpool:SECRET@127.0.0.1:PORT/kurento`: carry the secret; never log them whole.
    pub uris: Vec<String>,
    children: Vec<Child>,
}

/// `media-engine` next to this executable (or in its parent, for test binaries).
pub fn default_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let here = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    [
        here.join("media-engine"),
        here.parent()
            .map(|p| p.join("media-engine"))
            .unwrap_or_default(),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| here.join("media-engine"))
}

impl LocalEngines {
    /// Starts `n` engines on free loopback ports from 8888 up; waits until each accepts.
    /// `secret`: the one every engine requires (random per engine when `None`).
    pub async fn start(
        n: usize,
        binary: &Path,
        rtc_ip: &str,
        secret: Option<&str>,
    ) -> std::io::Result<Self> {
        let mut uris = Vec::new();
        let mut children = Vec::new();
        let mut port = 8888u16;
        for _ in 0..n {
            while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                port += 1;
            }
            let listen = format!("127.0.0.1:{port}");
            let secret = secret.map_or_else(crate::ids::secret, str::to_string);
            let child = Command::new(binary)
                .args(["--listen", &listen, "--rtc-ip", rtc_ip])
                .env("RTCPOOL_ENGINE_SECRET", &secret)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot start {}: {e}", binary.display()))
                })?;
            children.push(child);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while tokio::net::TcpStream::connect(&listen).await.is_err() {
                if tokio::time::Instant::now() > deadline {
                    return Err(std::io::Error::other(format!(
                        "engine on {listen} did not start"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            uris.push(format!("ws://rtcpool:{secret}@{listen}/kurento"));
            port += 1;
        }
        Ok(Self { uris, children })
    }

    pub async fn stop(mut self) {
        for c in &mut self.children {
            let _ = c.kill().await;
        }
    }
}

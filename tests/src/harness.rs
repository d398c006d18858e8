//! Engines for tests (in this process, or as a child process), clients, and the negotiation
//! dance between a test peer and an engine endpoint.

use kms_client::{ClientOptions, KurentoClient, WebRtcEndpoint};
use rtcpool_config::EngineSettings;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::peer::TestPeer;

/// An engine running inside the test process.
pub struct LocalEngine {
    pub addr: SocketAddr,
    /// The secret it requires, if any.
    pub secret: Option<String>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), media_engine::Error>>,
}

impl LocalEngine {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(test_settings("127.0.0.1:0".parse()?)).await
    }

    pub async fn start_with(settings: EngineSettings) -> anyhow::Result<Self> {
        let secret = settings.secret.clone();
        let (addr, stop, task) = media_engine::spawn_local(settings).await?;
        Ok(Self {
            addr,
            secret,
            stop,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("ws://{}/kurento", self.addr)
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

pub fn test_settings(listen: SocketAddr) -> EngineSettings {
    EngineSettings {
        listen,
        session_timeout_secs: 30,
        ..EngineSettings::default()
    }
}

pub async fn client(url: &str) -> anyhow::Result<KurentoClient> {
    let opts = ClientOptions {
        ping_interval: Duration::from_millis(500),
        ping_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        backoff: (Duration::from_millis(50), Duration::from_millis(400)),
        ..ClientOptions::default()
    };
    Ok(KurentoClient::connect(url, opts).await?)
}

/// Offer from the peer, answer from the endpoint, candidates trickled both ways (the order
/// OpenVidu uses: subscribe to IceCandidateFound, processOffer, gatherCandidates).
pub async fn negotiate(ep: &WebRtcEndpoint, peer: &TestPeer) -> anyhow::Result<()> {
    let found = ep.subscribe("IceCandidateFound").await?;
    let offer = peer.create_offer().await?;
    let answer = ep.process_offer(&offer).await?;
    peer.set_answer(&answer).await?;
    ep.gather_candidates().await?;
    trickle(ep, peer, found);
    Ok(())
}

/// Server offers (generateOffer), the peer answers (processAnswer); candidates both ways.
pub async fn negotiate_server_offer(ep: &WebRtcEndpoint, peer: &TestPeer) -> anyhow::Result<()> {
    let found = ep.subscribe("IceCandidateFound").await?;
    let offer = ep.generate_offer(None).await?;
    let answer = peer.accept_offer(&offer).await?;
    ep.process_answer(&answer).await?;
    ep.gather_candidates().await?;
    trickle(ep, peer, found);
    Ok(())
}

fn trickle(ep: &WebRtcEndpoint, peer: &TestPeer, mut found: kms_client::Subscription) {
    let pc_peer = peer.pc.clone();
    tokio::spawn(async move {
        while let Some(ev) = found.next().await {
            if let Some(c) = ev.ice_candidate() {
                let _ = pc_peer
                    .add_ice_candidate(webrtc::peer_connection::RTCIceCandidateInit {
                        candidate: c.candidate.clone(),
                        sdp_mid: Some(c.sdp_mid.clone()),
                        sdp_mline_index: Some(c.sdp_m_line_index as u16),
                        ..Default::default()
                    })
                    .await;
            }
        }
    });
    let Some(mut local) = peer.candidates.lock().take() else {
        return;
    };
    let ep = ep.clone();
    tokio::spawn(async move {
        while let Some(c) = local.recv().await {
            let cand = kms_client::wire::IceCandidate {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid.unwrap_or_else(|| "0".into()),
                sdp_m_line_index: u32::from(c.sdp_mline_index.unwrap_or(0)),
            };
            if ep.add_ice_candidate(&cand).await.is_err() {
                break;
            }
        }
    });
}

/// `GET /health` of an engine without a secret.
pub async fn health(addr: SocketAddr) -> anyhow::Result<Value> {
    health_with(addr, None).await
}

/// `GET /health` of an engine, with its secret when it has one.
pub async fn health_with(addr: SocketAddr, secret: Option<&str>) -> anyhow::Result<Value> {
    let auth = secret.map(|s| ("rtcpool", s));
    let (status, v) = http_request(addr, "GET", "/health", None, auth).await?;
    anyhow::ensure!(status == 200, "engine /health answered {status}");
    Ok(v)
}

/// Polls `/health` until `f` holds (or `within` passes); returns the last reading.
pub async fn wait_health(
    addr: SocketAddr,
    within: Duration,
    f: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let h = health(addr).await?;
        if f(&h) || tokio::time::Instant::now() >= deadline {
            return Ok(h);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where cargo put this workspace's binaries (next to the test executable's `deps/`).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let here = exe.parent().map(PathBuf::from).unwrap_or_default();
    let up = here.parent().map(PathBuf::from).unwrap_or_default();
    if here.join(name).exists() {
        here.join(name)
    } else {
        up.join(name)
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    rtcpool_config::process::cpu_and_rss(Some(pid as i32)).map_or(0.0, |(cpu, _)| cpu)
}

/// The media-engine binary as a child process on a free port. Killed on drop.
pub struct EngineProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its stderr, when kept in a file ([`EngineProcess::start_logged`]).
    pub log: Option<PathBuf>,
}

impl EngineProcess {
    pub async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let port = free_port()?;
        Self::start_on(port, extra).await
    }

    pub async fn start_on(port: u16, extra: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(port, extra, None, false).await
    }

    /// With a secret (`RTCPOOL_ENGINE_SECRET`) and stderr in a file (to look for panics).
    pub async fn start_logged(secret: &str) -> anyhow::Result<Self> {
        Self::spawn(free_port()?, &[], Some(secret), true).await
    }

    async fn spawn(
        port: u16,
        extra: &[&str],
        secret: Option<&str>,
        logged: bool,
    ) -> anyhow::Result<Self> {
        let bin = bin_path("media-engine");
        anyhow::ensure!(
            bin.exists(),
            "{} not built: run `cargo build --bins` first",
            bin.display()
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = logged.then(|| std::env::temp_dir().join(format!("rtcpool-engine-{port}.log")));
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", &addr.to_string(), "--rtc-ip", "127.0.0.1"])
            .args(extra)
            .env(
                "RTCPOOL_ENGINE_LOG",
                "warn,rtc=error,rtc_ice=error,rtc_dtls=error,webrtc=error",
            )
            .stdout(Stdio::null());
        if let Some(s) = secret {
            cmd.env("RTCPOOL_ENGINE_SECRET", s);
        }
        match &log {
            Some(path) => cmd.stderr(std::fs::File::create(path)?),
            None => cmd.stderr(Stdio::inherit()),
        };
        let me = Self {
            child: cmd.spawn()?,
            addr,
            log,
        };
        let auth = secret.map(|s| ("rtcpool", s));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !matches!(
            http_request(addr, "GET", "/health", None, auth).await,
            Ok((200, _))
        ) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "engine did not start"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(me)
    }

    /// What it wrote to stderr so far (only when started with [`Self::start_logged`]).
    pub fn stderr(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("ws://{}/kurento", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.kill();
        if let Some(p) = &self.log {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Set by `scripts/test`'s second pass: every signaling the tests start is then one node on this
/// Redis (each under its own cluster name, so tests running side by side share nothing).
pub const TEST_REDIS_ENV: &str = "RTCPOOL_TEST_REDIS_URL";

/// `(REDIS_URL, CLUSTER_NAME)` for a signaling a test starts, when the suite runs on Redis.
pub fn test_redis() -> Option<(String, String)> {
    let url = std::env::var(TEST_REDIS_ENV).ok()?;
    Some((url, format!("test-{}", uuid::Uuid::new_v4().simple())))
}

/// Makes `settings` one node on the suite's Redis, when it runs on one.
pub fn on_test_redis(settings: &mut rtcpool_config::SignalingSettings) {
    if let Some((url, name)) = test_redis() {
        settings.redis_url = Some(url);
        settings.cluster_name = name;
    }
}

/// Signaling in this process, in front of `n` in-process engines.
pub struct LocalSignaling {
    pub addr: SocketAddr,
    pub engines: Vec<LocalEngine>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub const SECRET: &str = "MY_SECRET";

impl LocalSignaling {
    pub async fn start(n_engines: usize) -> anyhow::Result<Self> {
        let mut engines = Vec::new();
        for _ in 0..n_engines {
            engines.push(LocalEngine::start().await?);
        }
        let uris: Vec<(String, u32)> = engines.iter().map(|e| (e.url(), 1)).collect();
        Self::start_with(engines, uris, |_| {}).await
    }

    pub async fn start_with(
        engines: Vec<LocalEngine>,
        uris: Vec<(String, u32)>,
        tweak: impl FnOnce(&mut rtcpool_config::SignalingSettings),
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut settings = rtcpool_config::SignalingSettings {
            server_port: addr.port(),
            openvidu_secret: SECRET.into(),
            kms_uris: Some(uris.iter().map(|(u, _)| u.clone()).collect()),
            static_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../static"),
            ..Default::default()
        };
        on_test_redis(&mut settings);
        tweak(&mut settings);
        let stop = CancellationToken::new();
        let task = tokio::spawn(signaling::run(
            listener,
            settings,
            uris.into_iter()
                .map(|(u, w)| (u, w, Default::default()))
                .collect(),
            stop.clone(),
        ));
        let me = Self {
            addr,
            engines,
            stop,
            task,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, h) = me.http("GET", "/health", None).await?;
            if h["engines"]
                .as_array()
                .is_some_and(|e| !e.is_empty() && e.iter().all(|x| x["admitted"] == true))
            {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "engines did not connect: {h}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(me)
    }

    /// One HTTP request with Basic auth; (status, JSON body or Null).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        http_request(self.addr, method, path, body, Some(("OPENVIDUAPP", SECRET))).await
    }

    /// A session (custom id) and a connection token with `role`.
    pub async fn token(&self, session: &str, role: &str) -> anyhow::Result<String> {
        token_at(self.addr, session, role).await
    }

    /// The id of the engine `session` is placed on (REST `mediaNode`).
    pub async fn session_engine(&self, session: &str) -> anyhow::Result<String> {
        let (_, s) = self
            .http("GET", &format!("/openvidu/api/sessions/{session}"), None)
            .await?;
        Ok(s["mediaNode"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Pipelines + elements over every engine.
    pub async fn engine_objects(&self) -> anyhow::Result<u64> {
        let mut n = 0;
        for e in &self.engines {
            let h = health_with(e.addr, e.secret.as_deref()).await?;
            n += h["pipelines"].as_u64().unwrap_or(0) + h["elements"].as_u64().unwrap_or(0);
        }
        Ok(n)
    }

    /// Polls until every engine holds no objects (or `within` passes); returns what is left.
    pub async fn wait_engines_empty(&self, within: Duration) -> anyhow::Result<u64> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n = self.engine_objects().await?;
            if n == 0 || tokio::time::Instant::now() >= deadline {
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
        for e in self.engines {
            e.shutdown().await;
        }
    }

    /// Stops signaling gracefully, leaving the engines running (to inspect them afterwards).
    pub async fn shutdown_signaling_only(&self) {
        self.stop.cancel();
        while !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The signaling binary as a child process (stderr kept in a file, to look for panics), in front
/// of the engines `uris`. Killed on drop.
pub struct SignalingProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl SignalingProcess {
    /// Starts it and returns as soon as the REST API answers (engines may not be connected yet).
    pub async fn start(uris: &[String], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin = bin_path("signaling");
        anyhow::ensure!(bin.exists(), "{} not built", bin.display());
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let log = std::env::temp_dir().join(format!("rtcpool-signaling-{port}.log"));
        let mut cmd = Command::new(bin);
        if let Some((url, name)) = test_redis() {
            cmd.env("REDIS_URL", url).env("CLUSTER_NAME", name);
        }
        let child = cmd
            .env("SERVER_PORT", port.to_string())
            .env("OPENVIDU_SECRET", SECRET)
            .env("KMS_URIS", serde_json::to_string(uris)?)
            .env("RTCPOOL_LOG", "warn")
            .env(
                "STATIC_DIR",
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../static"),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let me = Self { child, addr, log };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while me.http("GET", "/health", None).await.is_err() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "signaling did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(me)
    }

    pub async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        http_request(self.addr, method, path, body, Some(("OPENVIDUAPP", SECRET))).await
    }

    pub async fn token(&self, session: &str, role: &str) -> anyhow::Result<String> {
        token_at(self.addr, session, role).await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -TERM` (a clean stop), then waits for the process to end.
    pub async fn terminate(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SignalingProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A session (custom id, created when missing) and a connection token with `role`.
pub async fn token_at(addr: SocketAddr, session: &str, role: &str) -> anyhow::Result<String> {
    let auth = Some(("OPENVIDUAPP", SECRET));
    let body = serde_json::json!({"customSessionId": session});
    let (st, _) = http_request(addr, "POST", "/openvidu/api/sessions", Some(&body), auth).await?;
    anyhow::ensure!(st == 200 || st == 409, "create session: {st}");
    let path = format!("/openvidu/api/sessions/{session}/connection");
    let body = serde_json::json!({"role": role});
    let (st, c) = http_request(addr, "POST", &path, Some(&body), auth).await?;
    anyhow::ensure!(st == 200, "create connection: {st} {c}");
    Ok(c["token"].as_str().unwrap_or_default().to_string())
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sends `raw` bytes on a fresh connection and returns everything the server sent before it
/// closed (or before `within` passed: then `None`).
pub async fn http_raw(
    addr: SocketAddr,
    raw: &[u8],
    within: Duration,
) -> anyhow::Result<Option<String>> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(raw).await?;
    let mut buf = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut buf)).await {
        Ok(_) => Ok(Some(String::from_utf8_lossy(&buf).into_owned())),
        Err(_) => Ok(None),
    }
}

/// A throw-away CA and a certificate for 127.0.0.1 signed by it (openssl), as PEM files.
pub fn make_certificates(
    dir: &std::path::Path,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    let p = |f: &str| dir.join(f);
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )?;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=rtcpool test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ])?;
    Ok((p("ca.pem"), p("cert.pem"), p("key.pem")))
}

/// A minimal HTTP/1.1 client (tests only): one request per connection.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    auth: Option<(&str, &str)>,
) -> anyhow::Result<(u16, Value)> {
    use base64::Engine as _;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    if let Some((u, p)) = auth {
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let raw = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(raw)
    } else {
        raw.to_string()
    };
    Ok((status, serde_json::from_str(&raw).unwrap_or(Value::Null)))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A GET with the REST credentials whose body is text (`/metrics`); the body as is.
pub async fn http_text(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{SECRET}"));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Basic {auth}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok(
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(raw)
        } else {
            raw.to_string()
        },
    )
}

/// Whether `peer` receives media (20 video and 10 audio packets) within 10 s.
pub async fn media_flows(peer: &TestPeer) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while peer.stats.video() < 20 || peer.stats.audio() < 10 {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

//! A signaling cluster for tests: a real `redis-server` (Debian's package, installed by
//! `scripts/test`) on a loopback port, N signaling processes sharing it, and engines.

use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{free_port, http_request, LocalEngine, SignalingProcess, SECRET};

/// `redis-server` on 127.0.0.1, without persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(free_port()?).await
    }

    /// On a given port (to bring one back after an outage).
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        Self::spawn(port, &[]).await
    }

    /// A replica of the server on `primary`'s port (for Sentinel to promote), returned once it is
    /// in sync with the primary.
    pub async fn start_replica_of(primary: u16) -> anyhow::Result<Self> {
        // The primary sends its data at once: by default Redis waits 5 s for more replicas before
        // a diskless transfer, which a test's own deadlines then raced.
        command(primary, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]).await?;
        let port = primary.to_string();
        // The primary's data loaded straight into memory: no dump.rdb in the working directory.
        let me = Self::spawn(
            free_port()?,
            &[
                "--replicaof",
                "127.0.0.1",
                &port,
                "--repl-diskless-load",
                "on-empty-db",
            ],
        )
        .await?;
        started("the replica's sync", || async {
            command(me.port, &["INFO", "replication"])
                .await
                .is_ok_and(|i| i.contains("master_link_status:up"))
        })
        .await?;
        Ok(me)
    }

    /// Also serving TLS on a second port (returned) with `cert`/`key`; clients are not asked
    /// for certificates.
    pub async fn start_with_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> anyhow::Result<(Self, u16)> {
        let tls_port = free_port()?.to_string();
        let files = [cert, key, ca].map(|p| p.display().to_string());
        let me = Self::spawn(
            free_port()?,
            &[
                "--tls-port",
                &tls_port,
                "--tls-cert-file",
                &files[0],
                "--tls-key-file",
                &files[1],
                "--tls-ca-cert-file",
                &files[2],
                "--tls-auth-clients",
                "no",
            ],
        )
        .await?;
        Ok((me, tls_port.parse()?))
    }

    async fn spawn(port: u16, extra: &[&str]) -> anyhow::Result<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("redis-server: {e} (scripts/test installs it)"))?;
        let me = Self { child, port };
        started("redis-server", || async { me.ping().await.is_ok() }).await?;
        Ok(me)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn ping(&self) -> anyhow::Result<()> {
        ping(self.port).await
    }

    /// Whether it holds `key` (its own answer to `EXISTS`).
    pub async fn exists(&self, key: &str) -> anyhow::Result<bool> {
        Ok(command(self.port, &["EXISTS", key]).await?.trim_end() == ":1")
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Until `up` says the process answers (five seconds at most).
async fn started<F, Fut>(what: &str, mut up: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !up().await {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One RESP command to the server on `port`, its raw answer.
async fn command(port: u16, args: &[&str]) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).await?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

async fn ping(port: u16) -> anyhow::Result<()> {
    anyhow::ensure!(
        command(port, &["PING"]).await?.starts_with("+PONG"),
        "no PONG"
    );
    Ok(())
}

/// One Redis Sentinel (`redis-server --sentinel`) watching `service` on 127.0.0.1: a primary
/// unreachable for a second is failed over. Killed on drop.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    pub service: String,
    dir: std::path::PathBuf,
}

impl Sentinel {
    pub async fn start(service: &str, primary: u16) -> anyhow::Result<Self> {
        let port = free_port()?;
        // Sentinel rewrites its configuration file: it gets a directory of its own.
        let dir = std::env::temp_dir().join(format!("rtcpool-sentinel-{port}"));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {service} 127.0.0.1 {primary} 1\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 3000\n",
                dir.display()
            ),
        )?;
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("redis-server --sentinel: {e}"))?;
        let me = Self {
            child,
            port,
            service: service.to_owned(),
            dir,
        };
        started("the sentinel", || async { me.primary().await.is_ok() }).await?;
        Ok(me)
    }

    /// `REDIS_URL` for the service's primary through this sentinel.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{}", self.port, self.service)
    }

    /// The primary's port as this sentinel names it now.
    pub async fn primary(&self) -> anyhow::Result<u16> {
        let answer = command(
            self.port,
            &["SENTINEL", "get-master-addr-by-name", &self.service],
        )
        .await?;
        // *2 $9 127.0.0.1 $<n> <port>
        answer
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .last()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no primary in {answer:?}"))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx (Debian's package, installed by `scripts/test`) running the repository's sample
/// configuration (`signaling/deploy/nginx.conf`) in front of `nodes`, on a loopback port;
/// stopped on drop.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Nginx {
    pub async fn start(port: u16, nodes: &[SocketAddr]) -> anyhow::Result<Self> {
        let sample =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../signaling/deploy/nginx.conf");
        let text = std::fs::read_to_string(&sample)?;
        let mut conf = String::new();
        let mut servers_written = false;
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with("server 127.0.0.1:") {
                if !servers_written {
                    for n in nodes {
                        conf.push_str(&format!(
                            "        server {n} max_fails=1 fail_timeout=2s;\n"
                        ));
                    }
                    servers_written = true;
                }
            } else if t.starts_with("listen ") {
                conf.push_str(&format!("        listen 127.0.0.1:{port};\n"));
            } else {
                conf.push_str(line);
                conf.push('\n');
            }
        }
        anyhow::ensure!(servers_written, "the sample has no upstream servers");
        let dir = std::env::temp_dir().join(format!("rtcpool-nginx-{port}"));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf)?;
        let globals = format!(
            "daemon off; pid {}/nginx.pid; error_log {}/error.log;",
            dir.display(),
            dir.display()
        );
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nginx");
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", &globals])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("nginx: {e} (scripts/test installs it)"))?;
        let me = Self { child, port, dir };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !matches!(
            http_request(addr, "GET", "/health", None, None).await,
            Ok((200, _))
        ) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(me.dir.join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(me)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// N signaling nodes on one Redis, in front of the same engines (weights given).
pub struct Cluster {
    pub redis: RedisServer,
    pub nodes: Vec<SignalingProcess>,
    pub engines: Vec<LocalEngine>,
    /// What every node is started with (engine URIs, environment).
    uris: Vec<String>,
    env: Vec<(String, String)>,
}

impl Cluster {
    pub async fn start(nodes: usize, weights: &[u32]) -> anyhow::Result<Self> {
        Self::start_with(nodes, weights, &[]).await
    }

    /// With more environment for every node (e.g. the public address of a load balancer).
    pub async fn start_with(
        nodes: usize,
        weights: &[u32],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_full(nodes, weights, extra, 30).await
    }

    /// With the engines' Kurento session timeout (how long an engine keeps the objects of a
    /// signaling node that vanished) in seconds.
    pub async fn start_full(
        nodes: usize,
        weights: &[u32],
        extra: &[(&str, &str)],
        engine_session_timeout_secs: u64,
    ) -> anyhow::Result<Self> {
        let redis = RedisServer::start().await?;
        let url = redis.url();
        Self::start_on_store(
            redis,
            &url,
            nodes,
            weights,
            extra,
            engine_session_timeout_secs,
        )
        .await
    }

    /// On `url` (a Sentinel's, say), `redis` being the server it leads to first.
    pub async fn start_on_store(
        redis: RedisServer,
        url: &str,
        nodes: usize,
        weights: &[u32],
        extra: &[(&str, &str)],
        engine_session_timeout_secs: u64,
    ) -> anyhow::Result<Self> {
        let mut engines = Vec::new();
        for _ in weights {
            let mut s = crate::harness::test_settings("127.0.0.1:0".parse()?);
            s.session_timeout_secs = engine_session_timeout_secs;
            engines.push(LocalEngine::start_with(s).await?);
        }
        let uris: Vec<String> = engines.iter().map(LocalEngine::url).collect();
        let weights = serde_json::to_string(weights)?;
        let mut env = vec![
            ("REDIS_URL", url),
            ("KMS_WEIGHTS", weights.as_str()),
            ("CLUSTER_NODE_TTL_MS", "2000"),
            ("CLUSTER_NAME", "rtcpool"),
        ];
        env.extend_from_slice(extra);
        let mut started = Vec::new();
        for _ in 0..nodes {
            started.push(SignalingProcess::start(&uris, &env).await?);
        }
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let me = Self {
            redis,
            nodes: started,
            engines,
            uris,
            env,
        };
        me.wait_formed(nodes).await?;
        Ok(me)
    }

    /// Until every node sees `n` live nodes and admits every engine.
    pub async fn wait_formed(&self, n: usize) -> anyhow::Result<()> {
        self.wait_nodes(n, true).await
    }

    /// Until every node sees `n` live nodes and is connected to (`admitted`: admits) every
    /// engine.
    pub async fn wait_nodes(&self, n: usize, admitted: bool) -> anyhow::Result<()> {
        let ok = if admitted { "admitted" } else { "connected" };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for node in &self.nodes {
            loop {
                let (_, h) = node.http("GET", "/health", None).await?;
                let nodes = h["cluster"]["nodes"].as_array().map_or(0, Vec::len);
                let engines_ok = h["engines"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty() && e.iter().all(|x| x[ok] == true));
                if nodes == n && engines_ok {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "cluster did not form: {h}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// One more node, started like the others (it joins the running cluster).
    pub async fn add_node(&mut self) -> anyhow::Result<usize> {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.nodes
            .push(SignalingProcess::start(&self.uris, &env).await?);
        self.wait_nodes(self.nodes.len(), false).await?;
        Ok(self.nodes.len() - 1)
    }

    pub fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].addr
    }

    /// `ws://…/openvidu` of a node.
    pub fn ws(&self, node: usize) -> String {
        format!("ws://{}/openvidu", self.nodes[node].addr)
    }

    /// A REST call on one node with the credentials.
    pub async fn http(
        &self,
        node: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        http_request(
            self.addr(node),
            method,
            path,
            body,
            Some(("OPENVIDUAPP", SECRET)),
        )
        .await
    }

    /// Repeats a REST call on `node` until it answers `want` (or fails after `within`).
    pub async fn wait_status(
        &self,
        node: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
        want: u16,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (st, v) = self.http(node, method, path, body).await?;
            if st == want {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{method} {path} on node {node}: {st} {v}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A connection token for `session` (created on `node` when missing), made on `node`.
    pub async fn token(&self, node: usize, session: &str, role: &str) -> anyhow::Result<String> {
        crate::harness::token_at(self.addr(node), session, role).await
    }
}

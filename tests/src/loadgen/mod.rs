//! The load generator behind `loadtest`: participants are [`crate::bot::Bot`]s (OpenVidu browser
//! protocol + webrtc-rs media) created against a running signaling server at a ramp rate; while
//! the run lasts it samples engine and signaling CPU/RSS from `/proc`; at the end every
//! participant leaves and the report is built.

pub mod procstat;
pub mod report;
pub mod soak;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bot::Bot;
use crate::harness::http_request;
use crate::peer::TestPeer;
use report::{Participant, Process, Subscription};

#[derive(Debug, Clone)]
pub enum Scenario {
    /// R rooms × P participants; everyone publishes and subscribes to everyone.
    Rooms { rooms: usize, participants: usize },
    /// One publisher, N viewers (SUBSCRIBER tokens).
    Broadcast { viewers: usize },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The REST API's address (the first of `nodes`).
    pub addr: SocketAddr,
    /// Signaling nodes (or one load balancer): participant `i` opens its socket on
    /// `nodes[i % len]`.
    pub nodes: Vec<SocketAddr>,
    /// Each participant sends a signal to everyone this often (0: never); the report gives the
    /// time from send to receipt.
    pub signal_every: Duration,
    pub secret: String,
    pub scenario: Scenario,
    /// Without media: join only (signaling scale).
    pub media: bool,
    pub video_kbps: u32,
    pub fps: u32,
    pub ramp_per_s: f64,
    /// How long everyone stays after the ramp.
    pub hold: Duration,
    pub engine_pids: Option<Vec<u32>>,
    pub signaling_pids: Option<Vec<u32>>,
    pub prefix: String,
}

/// Signals carry the time they were sent, in µs since this process's epoch.
fn since_epoch_us() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let e = *EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[derive(Default)]
pub struct Progress {
    pub joined: AtomicU64,
    pub subscribed: AtomicU64,
    pub errors: AtomicU64,
}

struct Plan {
    session: String,
    role: &'static str,
    publish: bool,
    subscribe: bool,
}

fn plan(c: &Config) -> Vec<Plan> {
    match c.scenario {
        Scenario::Rooms {
            rooms,
            participants,
        } => (0..rooms)
            .flat_map(|r| (0..participants).map(move |_| r))
            .map(|r| Plan {
                session: format!("{}-room-{r}", c.prefix),
                role: "PUBLISHER",
                publish: c.media,
                subscribe: c.media,
            })
            .collect(),
        Scenario::Broadcast { viewers } => std::iter::once(Plan {
            session: format!("{}-bcast", c.prefix),
            role: "PUBLISHER",
            publish: c.media,
            subscribe: false,
        })
        .chain((0..viewers).map(|_| Plan {
            session: format!("{}-bcast", c.prefix),
            role: "SUBSCRIBER",
            publish: false,
            subscribe: c.media,
        }))
        .collect(),
    }
}

async fn rest(
    c: &Config,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    http_request(c.addr, method, path, body, Some(("OPENVIDUAPP", &c.secret))).await
}

/// Runs the scenario; returns the JSON report.
pub async fn run(c: Config, progress: Arc<Progress>) -> anyhow::Result<Value> {
    let plans = plan(&c);
    let total = plans.len();
    let mut sessions: Vec<String> = plans.iter().map(|p| p.session.clone()).collect();
    sessions.dedup();
    for s in &sessions {
        let (st, _) = rest(
            &c,
            "POST",
            "/openvidu/api/sessions",
            Some(&json!({"customSessionId": s})),
        )
        .await?;
        anyhow::ensure!(st == 200 || st == 409, "create session {s}: HTTP {st}");
    }
    let interval = Duration::from_secs_f64(1.0 / c.ramp_per_s.max(0.01));
    let stop = Instant::now() + interval * total as u32 + c.hold;
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(interval);
    for (i, p) in plans.into_iter().enumerate() {
        tick.tick().await;
        let (st, conn) = rest(
            &c,
            "POST",
            &format!("/openvidu/api/sessions/{}/connection", p.session),
            Some(&json!({"role": p.role})),
        )
        .await?;
        anyhow::ensure!(st == 200, "create connection: HTTP {st} {conn}");
        let token = conn["token"].as_str().unwrap_or_default().to_string();
        let node = i % c.nodes.len().max(1);
        tasks.push(tokio::spawn(participant(
            c.clone(),
            p,
            (node, token),
            stop,
            progress.clone(),
        )));
    }
    // The measurement window: from the end of the ramp to the end of the hold.
    let procs = processes(&c).await?;
    let before: Vec<Option<(f64, u64)>> = procs
        .iter()
        .map(|(_, pid)| procstat::sample(*pid))
        .collect();
    // The bots' own CPU (this process), reported beside the engines' so a run can tell which
    // side saturated the machine.
    let me = std::process::id();
    let bots_before = procstat::sample(me);
    let t0 = Instant::now();
    let engine_sessions = engine_sessions(&c).await.unwrap_or(Value::Null);
    // Read halfway through the window: the last subscriptions of the ramp are in by then.
    tokio::time::sleep_until((t0 + stop.saturating_duration_since(t0) / 2).into()).await;
    let spans = spans(&c, &sessions).await.unwrap_or_default();
    tokio::time::sleep_until(stop.into()).await;
    let window = t0.elapsed().as_secs_f64().max(0.001);
    let loadgen_cpu = bots_before
        .zip(procstat::sample(me))
        .map(|((c0, _), (c1, _))| (c1 - c0) / window);
    let after: Vec<Option<(f64, u64)>> = procs
        .iter()
        .map(|(_, pid)| procstat::sample(*pid))
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap_or_default());
    }
    let measured: Vec<Process> = procs
        .iter()
        .zip(before.iter().zip(after.iter()))
        .filter_map(|((name, pid), (b, a))| {
            let ((c0, _), (c1, rss)) = ((*b)?, (*a)?);
            Some(Process {
                name: name.clone(),
                pid: *pid,
                cpu_cores: (c1 - c0) / window,
                rss_mb: rss as f64 / 1_048_576.0,
            })
        })
        .collect();
    let (sig, engines): (Vec<Process>, Vec<Process>) = measured
        .into_iter()
        .partition(|p| p.name.starts_with("signaling"));
    let scenario = match c.scenario {
        Scenario::Rooms {
            rooms,
            participants,
        } => {
            json!({"kind": "rooms", "rooms": rooms, "participants": participants, "media": c.media, "video_kbps": c.video_kbps, "fps": c.fps})
        }
        Scenario::Broadcast { viewers } => {
            json!({"kind": "broadcast", "viewers": viewers, "media": c.media, "video_kbps": c.video_kbps, "fps": c.fps})
        }
    };
    let nodes: Vec<String> = c.nodes.iter().map(ToString::to_string).collect();
    Ok(report::summarize(
        scenario,
        &results,
        &engines,
        engine_sessions,
        &spans,
        &sig,
        &nodes,
        loadgen_cpu,
        window,
    )
    .json)
}

/// Engine pids (given, or found from the media-nodes API) and signaling's.
async fn processes(c: &Config) -> anyhow::Result<Vec<(String, u32)>> {
    let mut out = Vec::new();
    match &c.engine_pids {
        Some(p) => out.extend(p.iter().map(|pid| (format!("engine-{pid}"), *pid))),
        None => {
            let (_, nodes) = rest(c, "GET", "/openvidu/api/media-nodes", None).await?;
            for n in nodes["content"].as_array().cloned().unwrap_or_default() {
                let uri = n["uri"].as_str().unwrap_or_default();
                let port = uri
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok());
                if let Some(pid) = port.and_then(procstat::engine_pid) {
                    out.push((n["id"].as_str().unwrap_or("engine").to_string(), pid));
                }
            }
        }
    }
    let pids = c
        .signaling_pids
        .clone()
        .unwrap_or_else(procstat::signaling_pids);
    for (i, pid) in pids.into_iter().enumerate() {
        out.push((format!("signaling-{i}"), pid));
    }
    Ok(out)
}

/// The engines each session spans and its relays (with the connections they feed), read halfway
/// through the measurement window.
async fn spans(c: &Config, sessions: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for s in sessions {
        let (st, v) = rest(c, "GET", &format!("/openvidu/api/sessions/{s}"), None).await?;
        if st == 200 {
            out.push(
                json!({"session": s, "mediaNodeIds": v["mediaNodeIds"], "relays": v["relays"]}),
            );
        }
    }
    Ok(out)
}

async fn engine_sessions(c: &Config) -> anyhow::Result<Value> {
    let (_, nodes) = rest(c, "GET", "/openvidu/api/media-nodes", None).await?;
    Ok(nodes["content"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| json!({"id": n["id"], "uri": n["uri"], "sessions": n["sessionCount"]}))
                .collect()
        })
        .unwrap_or_default())
}

/// A received stream and how its media is doing.
struct Received {
    stream: String,
    /// When its (first) subscription was asked for.
    asked: Instant,
    peer: TestPeer,
    /// Peers it had before a `reconnectStream` (their figures still count).
    old: Vec<TestPeer>,
    /// Packets seen at the last change, and when.
    last: (u64, Instant),
    /// Since when no packet arrived (a stall of more than [`STALL`]).
    stalled_since: Option<Instant>,
    last_attempt: Option<Instant>,
    /// A `reconnectStream` in flight (signaling holds it until the publisher is back).
    reconnecting: Option<tokio::task::JoinHandle<anyhow::Result<TestPeer>>>,
}

/// No packet for this long is a stopped stream.
const STALL: Duration = Duration::from_secs(2);
/// A stopped stream whose connection is down is reconnected (`reconnectStream`) at most this often.
const RETRY: Duration = Duration::from_secs(3);

impl Received {
    fn new(stream: String, asked: Instant, peer: TestPeer) -> Self {
        Self {
            stream,
            asked,
            peer,
            old: Vec::new(),
            last: (0, Instant::now()),
            stalled_since: None,
            last_attempt: None,
            reconnecting: None,
        }
    }

    /// Follows the packet count; returns how long a stall lasted when it just ended.
    fn observe(&mut self, now: Instant) -> Option<Duration> {
        let n = self.peer.stats.audio() + self.peer.stats.video();
        if n != self.last.0 {
            self.last = (n, now);
            return self.stalled_since.take().map(|t| now.duration_since(t));
        }
        let had_media = n > 0 || !self.old.is_empty();
        if had_media && self.stalled_since.is_none() && now.duration_since(self.last.1) > STALL {
            self.stalled_since = Some(self.last.1);
        }
        None
    }

    /// Stalled, its connection down, and not retried lately: time for `reconnectStream`.
    fn needs_reconnection(&self, now: Instant) -> bool {
        self.stalled_since.is_some()
            && self.reconnecting.is_none()
            && !*self.peer.connected.borrow()
            && self
                .last_attempt
                .is_none_or(|t| now.duration_since(t) > RETRY)
    }
}

/// What openvidu-browser does when its socket drops: a new socket to the same place and
/// `connect {sessionId: <rpc id>, reconnect: true}`.
async fn reopen(c: &Config, node: usize, token: &str, old: &Bot) -> anyhow::Result<Bot> {
    let mut bot = match c.nodes.get(node) {
        Some(addr) => Bot::open_url(&format!("ws://{addr}/openvidu")).await?,
        None => Bot::open(token).await?,
    };
    bot.start_pinging();
    let r = bot
        .call(
            "connect",
            json!({"sessionId": old.rpc_session, "reconnect": true}),
        )
        .await?;
    anyhow::ensure!(
        r["value"] == "reconnection successful",
        "reconnection refused: {r}"
    );
    bot.connection_id = old.connection_id.clone();
    bot.rpc_session = old.rpc_session.clone();
    bot.session = old.session.clone();
    Ok(bot)
}

/// One participant from join to leave. Like openvidu-browser it reconnects its socket when it
/// drops and a stream whose connection went down (`reconnectStream`); the report counts the
/// streams that stopped, how long each took to come back, and those that never did.
async fn participant(
    c: Config,
    p: Plan,
    (node, token): (usize, String),
    stop: Instant,
    progress: Arc<Progress>,
) -> Participant {
    let mut out = Participant {
        node,
        ..Participant::default()
    };
    let mut published: Vec<TestPeer> = Vec::new();
    let mut received: Vec<Received> = Vec::new();
    let frame_bytes = (c.video_kbps as usize * 1000 / 8) / c.fps.max(1) as usize;
    let result = async {
        let mut bot = match c.nodes.get(node) {
            Some(addr) => Bot::open_url(&format!("ws://{addr}/openvidu")).await?,
            None => Bot::open(&token).await?,
        };
        bot.start_pinging();
        let t = Instant::now();
        let joined = bot.join(&token, "load").await?;
        out.connection = bot.connection_id.clone();
        out.join_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
        progress.joined.fetch_add(1, Ordering::Relaxed);
        let mut sending = None;
        let mut my_stream = None;
        if p.publish {
            let (peer, stream) = bot.publish().await?;
            sending = Some(peer.start_sending(c.fps, frame_bytes, c.fps * 2));
            out.published = true;
            published.push(peer);
            my_stream = Some(stream);
        }
        let mut pending: Vec<String> = joined["value"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|v| v["streams"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        let mut next_signal = Instant::now() + c.signal_every;
        let mut publisher_down_since: Option<Instant> = None;
        while Instant::now() < stop {
            if bot.is_closed() {
                bot = reopen(&c, node, &token, &bot).await?;
                out.socket_reconnects += 1;
            }
            let now = Instant::now();
            for r in &mut received {
                if let Some(took) = r.observe(now) {
                    out.recoveries_ms.push(took.as_secs_f64() * 1000.0);
                }
            }
            // Our own stream: its connection went down (the engine was lost) → republish.
            if let (Some(peer), Some(stream)) = (published.last(), &my_stream) {
                let up = *peer.connected.borrow();
                let was_up = peer.stats.connected_at.get().is_some();
                let retry = publisher_down_since.is_none_or(|t| now.duration_since(t) > RETRY);
                match (up, was_up && retry) {
                    (true, _) => publisher_down_since = None,
                    (false, true) => {
                        publisher_down_since = Some(now);
                        match bot.republish(stream).await {
                            Ok(fresh) => {
                                if let Some(s) = sending.take() {
                                    s.cancel();
                                }
                                sending = Some(fresh.start_sending(c.fps, frame_bytes, c.fps * 2));
                                published.push(fresh);
                                out.stream_reconnects += 1;
                            }
                            Err(e) => out.errors.push(format!("republish: {e}")),
                        }
                    }
                    _ => {}
                }
            }
            for r in &mut received {
                let finished = r.reconnecting.as_ref().is_some_and(|h| h.is_finished());
                if let Some(h) = r.reconnecting.take_if(|_| finished) {
                    match h.await.map_err(anyhow::Error::from).and_then(|r| r) {
                        Ok(fresh) => {
                            let old = std::mem::replace(&mut r.peer, fresh);
                            r.old.push(old);
                            r.last = (0, Instant::now());
                            out.stream_reconnects += 1;
                        }
                        Err(e) => out.errors.push(format!("reconnectStream: {e}")),
                    }
                }
                if r.needs_reconnection(Instant::now()) {
                    r.last_attempt = Some(Instant::now());
                    r.reconnecting = Some(bot.spawn_resubscribe(&r.stream));
                }
            }
            if !c.signal_every.is_zero() && Instant::now() >= next_signal {
                next_signal += c.signal_every;
                let msg =
                    json!({"to": [], "data": since_epoch_us().to_string(), "type": "signal:load"});
                if let Err(e) = bot
                    .call("sendMessage", json!({"message": msg.to_string()}))
                    .await
                {
                    out.errors.push(format!("signal: {e}"));
                }
            }
            if p.subscribe {
                for stream in pending.drain(..) {
                    let t = Instant::now();
                    match bot.subscribe(&stream).await {
                        Ok(peer) => {
                            progress.subscribed.fetch_add(1, Ordering::Relaxed);
                            received.push(Received::new(stream, t, peer));
                        }
                        Err(e) => out.errors.push(format!("subscribe: {e}")),
                    }
                }
            } else {
                pending.clear();
            }
            let mut left = stop
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250));
            if !c.signal_every.is_zero() {
                left = left.min(next_signal.saturating_duration_since(Instant::now()));
            }
            if let Some(n) = bot.next_notification(left).await {
                let from_other = n["params"]["from"] != json!(bot.connection_id);
                if n["method"] == "sendMessage"
                    && n["params"]["type"] == "signal:load"
                    && from_other
                {
                    let sent = n["params"]["data"]
                        .as_str()
                        .and_then(|d| d.parse::<u64>().ok());
                    if let Some(sent) = sent {
                        out.signal_ms
                            .push(since_epoch_us().saturating_sub(sent) as f64 / 1000.0);
                    }
                }
                if n["method"] == "participantPublished" {
                    pending.extend(
                        n["params"]["streams"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|s| s["id"].as_str().map(str::to_string)),
                    );
                }
            }
        }
        if let Some(s) = sending {
            s.cancel();
        }
        let _ = bot.call("leaveRoom", json!({})).await;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        progress.errors.fetch_add(1, Ordering::Relaxed);
        out.errors.push(e.to_string());
    }
    out.never_recovered = received
        .iter()
        .filter(|r| r.stalled_since.is_some())
        .count();
    out.stopped = out.recoveries_ms.len() + out.never_recovered;
    for r in &received {
        let t = r.asked;
        let first = r.old.first().unwrap_or(&r.peer);
        let ms_since_start = |at: &std::sync::OnceLock<Instant>| {
            at.get().map(|f| f.duration_since(t).as_secs_f64() * 1000.0)
        };
        let all = r.old.iter().chain(std::iter::once(&r.peer));
        out.subscriptions.push(Subscription {
            first_packet_ms: ms_since_start(&first.stats.first_packet),
            offer_ms: ms_since_start(&first.stats.requested),
            answer_ms: ms_since_start(&first.stats.answered),
            connected_ms: ms_since_start(&first.stats.connected_at),
            received: all.clone().map(|p| p.stats.audio() + p.stats.video()).sum(),
            lost: all.clone().map(|p| p.stats.lost()).sum(),
            delays_ms: all
                .flat_map(|p| {
                    p.stats
                        .delays_us
                        .lock()
                        .iter()
                        .map(|d| f64::from(*d) / 1000.0)
                        .collect::<Vec<_>>()
                })
                .collect(),
            jitter_ms: r.peer.stats.jitter_ms(),
        });
    }
    for r in received {
        for peer in r.old {
            peer.close().await;
        }
        r.peer.close().await;
    }
    for peer in published {
        peer.close().await;
    }
    out
}

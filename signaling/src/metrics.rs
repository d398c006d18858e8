//! `/metrics` with the `prometheus-client` crate (OpenMetrics text; names, types, help and label
//! escaping done by the library): per engine (connected, admitted, load, memory, sessions,
//! endpoints, ping RTT, weight, picks, failures), for signaling (sessions, participants, joins,
//! errors, WebSocket connections, webhook outcomes, health readings), latency histograms (browser
//! requests by method — `joinRoom` is the join latency, `receiveVideoFrom` the subscribe latency
//! —, engine round trips by engine), and in a cluster per node (sessions, participants, last
//! heartbeat) and whether Redis answers.
//!
//! Gauges and counters are read from the live state at each scrape; the histograms live for the
//! process ([`latencies`]).

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

use rtcpool_config::metrics::{counters, gauges, label, text, Labels};
use std::sync::OnceLock;

use crate::app::App;
use crate::rpc::wire::method;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The content type of the exposition.
pub use rtcpool_config::metrics::CONTENT_TYPE;

/// Latency histograms observed where the work is done.
pub struct Latencies {
    /// Browser requests by method.
    rpc: Histograms,
    /// Engine round trips (the health ping) by engine.
    engine: Histograms,
}

fn seconds() -> Histogram {
    // 0.25 ms … ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The process's latency histograms.
pub fn latencies() -> &'static Latencies {
    static L: OnceLock<Latencies> = OnceLock::new();
    L.get_or_init(|| Latencies {
        rpc: Family::new_with_constructor(seconds),
        engine: Family::new_with_constructor(seconds),
    })
}

/// Methods of the browser protocol by name (anything else is counted as `other`, so a client
/// cannot grow the label set).
const METHODS: &[&str] = &[
    method::PING,
    method::CONNECT,
    method::JOIN_ROOM,
    method::LEAVE_ROOM,
    method::PUBLISH_VIDEO,
    method::UNPUBLISH_VIDEO,
    method::RECEIVE_VIDEO_FROM,
    method::UNSUBSCRIBE_FROM_VIDEO,
    method::ON_ICE_CANDIDATE,
    method::SEND_MESSAGE,
    method::STREAM_PROPERTY_CHANGED,
    method::FORCE_DISCONNECT,
    method::FORCE_UNPUBLISH,
    method::RECONNECT_STREAM,
    method::VIDEO_DATA,
    method::ECHO,
];

impl Latencies {
    /// A browser request `name` took `secs`.
    pub fn rpc(&self, name: &str, secs: f64) {
        let m = METHODS
            .iter()
            .find(|m| **m == name)
            .copied()
            .unwrap_or("other");
        self.rpc
            .get_or_create(&vec![("method".to_string(), m.to_string())])
            .observe(secs);
    }

    /// A round trip to `engine` took `secs`.
    pub fn engine(&self, engine: &str, secs: f64) {
        self.engine
            .get_or_create(&vec![("engine".to_string(), engine.to_string())])
            .observe(secs);
    }
}

fn none() -> Labels {
    Vec::new()
}

pub fn render(app: &App) -> String {
    let mut reg = Registry::default();
    let engines: Vec<_> = app
        .pool
        .all()
        .into_iter()
        .map(|e| {
            let s = e.snapshot();
            (e, s)
        })
        .collect();
    let per = |f: &dyn Fn(&crate::pool::Engine, &crate::pool::EngineSnapshot) -> f64| {
        engines
            .iter()
            .map(|(e, s)| {
                let l = vec![
                    ("engine".to_string(), s.id.clone()),
                    ("uri".to_string(), s.uri.clone()),
                ];
                (l, f(e, s))
            })
            .collect::<Vec<_>>()
    };
    let stat = |s: &crate::pool::EngineSnapshot,
                f: &dyn Fn(&crate::pool::select::admission::Stats) -> f64| {
        s.stats.as_ref().map(f).unwrap_or(0.0)
    };
    let flag = |b: bool| f64::from(u8::from(b));
    gauges(
        &mut reg,
        "rtcpool_engine_connected",
        "1 when signaling holds a live connection to the engine",
        per(&|_, s| flag(s.connected)),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_admitted",
        "1 when the engine may take new sessions",
        per(&|_, s| flag(app.pool.admitted(s).is_ok())),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_load_percent",
        "engine process CPU, percent of all its cores",
        per(&|_, s| stat(s, &|x| x.cpu_pct)),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_memory_bytes",
        "engine resident memory",
        per(&|_, s| stat(s, &|x| x.memory_kib as f64 * 1024.0)),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_sessions",
        "sessions placed on the engine (by this node)",
        per(&|_, s| s.sessions.len() as f64),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_endpoints",
        "media elements on the engine",
        per(&|_, s| stat(s, &|x| x.endpoints as f64)),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_ping_rtt_seconds",
        "round trip of the last health ping",
        per(&|_, s| stat(s, &|x| x.rtt_ms / 1000.0)),
    );
    gauges(
        &mut reg,
        "rtcpool_engine_weight",
        "configured selection weight",
        per(&|_, s| f64::from(s.weight)),
    );
    let count = |rows: Vec<(Labels, f64)>| rows.into_iter().map(|(l, v)| (l, v as u64)).collect();
    counters(
        &mut reg,
        "rtcpool_engine_picks",
        "times the engine was selected for a new session",
        count(per(&|e, _| e.picks.load(Ordering::Relaxed) as f64)),
    );
    counters(
        &mut reg,
        "rtcpool_engine_failures",
        "placements that failed on the engine",
        count(per(&|e, _| e.failures.load(Ordering::Relaxed) as f64)),
    );
    let (sessions, participants) = {
        let r = app.reg.lock();
        (r.sessions.len(), r.roster.len())
    };
    gauges(
        &mut reg,
        "rtcpool_sessions",
        "sessions (created or active) this node owns",
        vec![(none(), sessions as f64)],
    );
    gauges(
        &mut reg,
        "rtcpool_participants",
        "joined participants of this node's sessions",
        vec![(none(), participants as f64)],
    );
    // Relays by the engine they feed (a session spanning engines: `media/relay.rs`), and what
    // each one carried.
    let mut relays: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    let mut carried: Vec<(Labels, u64, u64)> = Vec::new();
    for view in app.relay_views.lock().values() {
        for r in view.lock().iter() {
            let e = relays.entry(r.to_media_node_id.clone()).or_default();
            e.0 += 1.0;
            e.1 += r.subscribers as f64;
            carried.push((
                vec![
                    ("stream".to_string(), r.stream_id.clone()),
                    ("engine".to_string(), r.to_media_node_id.clone()),
                ],
                r.cell.packets_sent.load(Ordering::Relaxed),
                r.cell.bytes_sent.load(Ordering::Relaxed),
            ));
        }
    }
    counters(
        &mut reg,
        "rtcpool_relay_packets",
        "RTP packets a relay's origin end sent (sampled from the engine every 2 s)",
        carried.iter().map(|(l, p, _)| (l.clone(), *p)).collect(),
    );
    counters(
        &mut reg,
        "rtcpool_relay_bytes",
        "RTP bytes a relay's origin end sent (sampled from the engine every 2 s)",
        carried.iter().map(|(l, _, b)| (l.clone(), *b)).collect(),
    );
    gauges(
        &mut reg,
        "rtcpool_relays",
        "relays of this node's sessions feeding the engine (one per publication carried there)",
        relays
            .iter()
            .map(|(e, (n, _))| (label("engine", e), *n))
            .collect(),
    );
    gauges(
        &mut reg,
        "rtcpool_relay_subscribers",
        "subscriptions fed through relays, by the engine they are on",
        relays
            .iter()
            .map(|(e, (_, n))| (label("engine", e), *n))
            .collect(),
    );
    let m = &app.metrics;
    counters(
        &mut reg,
        "rtcpool_joins",
        "successful joinRoom calls",
        vec![(none(), m.joins.load(Ordering::Relaxed))],
    );
    counters(
        &mut reg,
        "rtcpool_rpc_errors",
        "browser requests answered with an error",
        vec![(none(), m.rpc_errors.load(Ordering::Relaxed))],
    );
    counters(
        &mut reg,
        "rtcpool_ws_connections",
        "browser WebSocket connections accepted",
        vec![(none(), m.ws_connections.load(Ordering::Relaxed))],
    );
    gauges(
        &mut reg,
        "rtcpool_ws_connections_open",
        "browser WebSocket connections open now",
        vec![(none(), m.ws_open.load(Ordering::Relaxed) as f64)],
    );
    let w = &app.webhook.stats;
    let outcomes = [
        ("sent", &w.sent),
        ("failed", &w.failed),
        ("dropped", &w.dropped),
    ]
    .iter()
    .map(|(r, n)| (label("result", r), n.load(Ordering::Relaxed)))
    .collect();
    counters(
        &mut reg,
        "rtcpool_webhook_events",
        "webhook events by outcome (sent, failed after 3 attempts, dropped with a full queue)",
        outcomes,
    );
    counters(
        &mut reg,
        "rtcpool_webhook_retries",
        "webhook delivery attempts beyond the first",
        vec![(none(), w.retries.load(Ordering::Relaxed))],
    );
    counters(
        &mut reg,
        "rtcpool_cdr_lines_lost",
        "CDR lines not written (queue full or a write error)",
        vec![(none(), w.cdr_failed.load(Ordering::Relaxed))],
    );
    let h = crate::pool::health::readings();
    let readings = vec![
        (label("source", "own"), h.own.load(Ordering::Relaxed)),
        (label("source", "shared"), h.shared.load(Ordering::Relaxed)),
    ];
    counters(&mut reg, "rtcpool_engine_health_readings", "engine health readings this node took itself (own) or took from the node whose turn it was (shared)", readings);
    let l = latencies();
    reg.register("rtcpool_rpc_duration_seconds", "browser requests by method, from arrival to answer (joinRoom: join latency; receiveVideoFrom: subscribe latency)", l.rpc.clone());
    reg.register(
        "rtcpool_engine_rpc_duration_seconds",
        "round trips to each engine (its health ping)",
        l.engine.clone(),
    );
    if app.cluster.enabled() {
        let nodes = app.cluster.nodes();
        let per_node = |f: &dyn Fn(&crate::cluster::NodeInfo) -> f64| {
            nodes
                .iter()
                .map(|n| {
                    let l = vec![
                        ("node".to_string(), n.id.clone()),
                        ("url".to_string(), n.url.clone()),
                    ];
                    (l, f(n))
                })
                .collect::<Vec<_>>()
        };
        gauges(
            &mut reg,
            "rtcpool_cluster_store_up",
            "1 when this node's last call to the cluster store (Redis) succeeded",
            vec![(none(), flag(app.cluster.reachable()))],
        );
        gauges(
            &mut reg,
            "rtcpool_cluster_node_sessions",
            "sessions each live signaling node owns (as of its last heartbeat)",
            per_node(&|n| n.sessions as f64),
        );
        gauges(
            &mut reg,
            "rtcpool_cluster_node_participants",
            "participants joined on each live signaling node (as of its last heartbeat)",
            per_node(&|n| n.participants as f64),
        );
        gauges(
            &mut reg,
            "rtcpool_cluster_node_heartbeat_ms",
            "each live node's last heartbeat, Unix milliseconds",
            per_node(&|n| n.heartbeat as f64),
        );
    }
    text(&reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let l = latencies();
        l.rpc("joinRoom", 0.001);
        l.rpc("x".repeat(300).as_str(), 0.001);
        l.rpc("another-made-up-method", 0.001);
        let mut reg = Registry::default();
        reg.register("t", "t", l.rpc.clone());
        let out = text(&reg);
        assert!(out.contains("method=\"joinRoom\""), "{out}");
        assert!(out.contains("method=\"other\""), "{out}");
        assert!(!out.contains("another-made-up-method"), "{out}");
    }
}

//! Prometheus text exposition at `/metrics`: per engine (connected, admitted, load, sessions,
//! endpoints, picks, failures, ping RTT) and for signaling (sessions, participants, joins,
//! errors, WebSocket connections), and in a cluster per node (sessions, participants, last
//! heartbeat) and whether Redis answers.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::app::App;

pub fn render(app: &App) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let engines: Vec<_> = app.pool.all();
    let per = |f: &dyn Fn(&crate::pool::Engine, &crate::pool::EngineSnapshot) -> f64| -> Vec<(String, f64)> {
        engines
            .iter()
            .map(|e| {
                let s = e.snapshot();
                (format!("{{engine=\"{}\",uri=\"{}\"}}", s.id, s.uri), f(e, &s))
            })
            .collect()
    };
    family(
        "rtcpool_engine_connected",
        "gauge",
        "1 when signaling holds a live connection to the engine",
        per(&|_, s| f64::from(u8::from(s.connected))),
    );
    family(
        "rtcpool_engine_admitted",
        "gauge",
        "1 when the engine may take new sessions",
        per(&|_, s| f64::from(u8::from(app.pool.admitted(s).is_ok()))),
    );
    family(
        "rtcpool_engine_load_percent",
        "gauge",
        "engine process CPU, percent of all its cores",
        per(&|_, s| s.stats.as_ref().map(|x| x.cpu_pct).unwrap_or(0.0)),
    );
    family(
        "rtcpool_engine_memory_bytes",
        "gauge",
        "engine resident memory",
        per(&|_, s| {
            s.stats
                .as_ref()
                .map(|x| x.memory_kib as f64 * 1024.0)
                .unwrap_or(0.0)
        }),
    );
    family(
        "rtcpool_engine_sessions",
        "gauge",
        "sessions placed on the engine",
        per(&|_, s| s.sessions.len() as f64),
    );
    family(
        "rtcpool_engine_endpoints",
        "gauge",
        "media elements on the engine",
        per(&|_, s| s.stats.as_ref().map(|x| x.endpoints as f64).unwrap_or(0.0)),
    );
    family(
        "rtcpool_engine_ping_rtt_seconds",
        "gauge",
        "round trip of the last health ping",
        per(&|_, s| s.stats.as_ref().map(|x| x.rtt_ms / 1000.0).unwrap_or(0.0)),
    );
    family(
        "rtcpool_engine_weight",
        "gauge",
        "configured selection weight",
        per(&|_, s| f64::from(s.weight)),
    );
    family(
        "rtcpool_engine_picks_total",
        "counter",
        "times the engine was selected for a new session",
        per(&|e, _| e.picks.load(Ordering::Relaxed) as f64),
    );
    family(
        "rtcpool_engine_failures_total",
        "counter",
        "placements that failed on the engine",
        per(&|e, _| e.failures.load(Ordering::Relaxed) as f64),
    );
    let (sessions, participants) = {
        let reg = app.reg.lock();
        (reg.sessions.len(), reg.roster.len())
    };
    family(
        "rtcpool_sessions",
        "gauge",
        "sessions (created or active)",
        vec![(String::new(), sessions as f64)],
    );
    family(
        "rtcpool_participants",
        "gauge",
        "joined participants",
        vec![(String::new(), participants as f64)],
    );
    family(
        "rtcpool_joins_total",
        "counter",
        "successful joinRoom calls",
        vec![(
            String::new(),
            app.metrics.joins.load(Ordering::Relaxed) as f64,
        )],
    );
    family(
        "rtcpool_rpc_errors_total",
        "counter",
        "browser requests answered with an error",
        vec![(
            String::new(),
            app.metrics.rpc_errors.load(Ordering::Relaxed) as f64,
        )],
    );
    family(
        "rtcpool_ws_connections_total",
        "counter",
        "browser WebSocket connections accepted",
        vec![(
            String::new(),
            app.metrics.ws_connections.load(Ordering::Relaxed) as f64,
        )],
    );
    let w = &app.webhook.stats;
    family(
        "rtcpool_webhook_events_total",
        "counter",
        "webhook events by outcome (sent, failed after 3 attempts, dropped with a full queue)",
        [
            ("sent", &w.sent),
            ("failed", &w.failed),
            ("dropped", &w.dropped),
        ]
        .iter()
        .map(|(r, n)| {
            (
                format!("{{result=\"{r}\"}}"),
                n.load(Ordering::Relaxed) as f64,
            )
        })
        .collect(),
    );
    family(
        "rtcpool_cdr_lines_lost_total",
        "counter",
        "CDR lines not written (queue full or a write error)",
        vec![(String::new(), w.cdr_failed.load(Ordering::Relaxed) as f64)],
    );
    family(
        "rtcpool_webhook_retries_total",
        "counter",
        "webhook delivery attempts beyond the first",
        vec![(String::new(), w.retries.load(Ordering::Relaxed) as f64)],
    );
    family(
        "rtcpool_ws_connections_open",
        "gauge",
        "browser WebSocket connections open now",
        vec![(
            String::new(),
            app.metrics.ws_open.load(Ordering::Relaxed) as f64,
        )],
    );
    let readings = crate::pool::health::readings();
    family(
        "rtcpool_engine_health_readings_total",
        "counter",
        "engine health readings this node took itself (own) or took from the node whose turn it was (shared)",
        vec![
            (
                "{source=\"own\"}".to_string(),
                readings.own.load(Ordering::Relaxed) as f64,
            ),
            (
                "{source=\"shared\"}".to_string(),
                readings.shared.load(Ordering::Relaxed) as f64,
            ),
        ],
    );
    if app.cluster.enabled() {
        let nodes = app.cluster.nodes();
        let per_node = |f: &dyn Fn(&crate::cluster::NodeInfo) -> f64| -> Vec<(String, f64)> {
            nodes
                .iter()
                .map(|n| (format!("{{node=\"{}\",url=\"{}\"}}", n.id, n.url), f(n)))
                .collect()
        };
        family(
            "rtcpool_cluster_store_up",
            "gauge",
            "1 when this node's last call to the cluster store (Redis) succeeded",
            vec![(String::new(), f64::from(u8::from(app.cluster.reachable())))],
        );
        family(
            "rtcpool_cluster_node_sessions",
            "gauge",
            "sessions each live signaling node owns (as of its last heartbeat)",
            per_node(&|n| n.sessions as f64),
        );
        family(
            "rtcpool_cluster_node_participants",
            "gauge",
            "participants joined on each live signaling node (as of its last heartbeat)",
            per_node(&|n| n.participants as f64),
        );
        family(
            "rtcpool_cluster_node_heartbeat_ms",
            "gauge",
            "each live node's last heartbeat, Unix milliseconds",
            per_node(&|n| n.heartbeat as f64),
        );
    }
    out
}

//! What a load run measured: percentiles, the JSON report and the human table.

use serde_json::{json, Value};

#[derive(Debug, Default, Clone)]
pub struct Subscription {
    pub first_packet_ms: Option<f64>,
    /// From the start (before the receiving peer exists) to the offer being sent.
    pub offer_ms: Option<f64>,
    /// From `receiveVideoFrom` sent to its answer, and to the peer connection being connected.
    pub answer_ms: Option<f64>,
    pub connected_ms: Option<f64>,
    pub received: u64,
    pub lost: u64,
    pub jitter_ms: f64,
    /// Send → receive of stamped video packets (the latest ones).
    pub delays_ms: Vec<f64>,
}

#[derive(Debug, Default, Clone)]
pub struct Participant {
    /// The index of the signaling node its socket went to.
    pub node: usize,
    pub connection: String,
    pub join_ms: Option<f64>,
    /// Signals from others: sent → received.
    pub signal_ms: Vec<f64>,
    /// Received streams whose media stopped (no packet for 2 s) during the run.
    pub stopped: usize,
    /// How long each stopped stream took to get media again.
    pub recoveries_ms: Vec<f64>,
    /// Stopped streams still without media at the end.
    pub never_recovered: usize,
    /// Socket reconnections (`connect`) and stream reconnections (`reconnectStream`).
    pub socket_reconnects: usize,
    pub stream_reconnects: usize,
    pub published: bool,
    pub subscriptions: Vec<Subscription>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Process {
    pub name: String,
    pub pid: u32,
    pub cpu_cores: f64,
    pub rss_mb: f64,
}

pub fn percentiles(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!({"p50": null, "p95": null, "p99": null, "max": null, "n": 0});
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        (v[i] * 10.0).round() / 10.0
    };
    json!({"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0), "n": v.len()})
}

pub struct Summary {
    pub json: Value,
}

#[allow(clippy::too_many_arguments)]
pub fn summarize(
    scenario: Value,
    participants: &[Participant],
    engines: &[Process],
    engine_sessions: Value,
    spans: &[Value],
    signaling: &[Process],
    nodes: &[String],
    loadgen_cpu: Option<f64>,
    window_s: f64,
) -> Summary {
    let per_node: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let mine: Vec<&Participant> = participants.iter().filter(|p| p.node == i).collect();
            json!({
                "url": url,
                "participants": mine.len(),
                "join_ms": percentiles(mine.iter().filter_map(|p| p.join_ms).collect()),
                "signal_received_ms": percentiles(mine.iter().flat_map(|p| p.signal_ms.iter().copied()).collect()),
            })
        })
        .collect();
    let signaling_rss: f64 = signaling.iter().map(|s| s.rss_mb).sum();
    let signaling_cpu: f64 = signaling.iter().map(|s| s.cpu_cores).sum();
    let publishers = participants.iter().filter(|p| p.published).count();
    let subs: Vec<&Subscription> = participants
        .iter()
        .flat_map(|p| p.subscriptions.iter())
        .collect();
    let received: u64 = subs.iter().map(|s| s.received).sum();
    let lost: u64 = subs.iter().map(|s| s.lost).sum();
    let streams = publishers + subs.len();
    let engine_cpu: f64 = engines.iter().map(|e| e.cpu_cores).sum();
    let errors: Vec<&String> = participants.iter().flat_map(|p| p.errors.iter()).collect();
    // Subscribers fed through a relay (another engine than their session's) against the rest.
    let relayed: std::collections::HashSet<&str> = spans
        .iter()
        .flat_map(|s| s["relays"].as_array().into_iter().flatten())
        .flat_map(|r| r["connections"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    let spanning: Vec<Value> = spans
        .iter()
        .filter(|s| s["mediaNodeIds"].as_array().is_some_and(|a| a.len() > 1))
        .map(|s| {
            let relays: Vec<Value> = s["relays"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| json!({"to": r["toMediaNodeId"], "subscribers": r["subscribers"]}))
                .collect();
            json!({"session": s["session"], "mediaNodeIds": s["mediaNodeIds"], "relays": relays})
        })
        .collect();
    let delays = |far: Option<bool>| -> Vec<f64> {
        participants
            .iter()
            .filter(|p| far.is_none_or(|f| relayed.contains(p.connection.as_str()) == f))
            .flat_map(|p| p.subscriptions.iter())
            .flat_map(|s| s.delays_ms.iter().copied())
            .collect()
    };
    let json = json!({
        "scenario": scenario,
        "participants": participants.len(),
        "joined": participants.iter().filter(|p| p.join_ms.is_some()).count(),
        "publishers": publishers,
        "subscriptions": subs.len(),
        "streams": streams,
        "window_s": (window_s * 10.0).round() / 10.0,
        "engine_cpu_cores": (engine_cpu * 1000.0).round() / 1000.0,
        "streams_per_engine_core": if engine_cpu > 0.0 { (streams as f64 / engine_cpu).round() } else { 0.0 },
        "packets_received": received,
        "packets_lost": lost,
        "packet_loss_pct": if received + lost > 0 { (lost as f64 * 100.0 / (received + lost) as f64 * 1000.0).round() / 1000.0 } else { 0.0 },
        "subscribe_first_packet_ms": percentiles(subs.iter().filter_map(|s| s.first_packet_ms).collect()),
        "subscribe_offer_ms": percentiles(subs.iter().filter_map(|s| s.offer_ms).collect()),
        "subscribe_answer_ms": percentiles(subs.iter().filter_map(|s| s.answer_ms).collect()),
        "subscribe_connected_ms": percentiles(subs.iter().filter_map(|s| s.connected_ms).collect()),
        "subscriptions_without_media": subs.iter().filter(|s| s.first_packet_ms.is_none()).count(),
        "join_ms": percentiles(participants.iter().filter_map(|p| p.join_ms).collect()),
        "jitter_ms": percentiles(subs.iter().filter(|s| s.received > 0).map(|s| s.jitter_ms).collect()),
        "engine_rss_mb": engines.iter().map(|e| e.rss_mb).sum::<f64>().round(),
        "streams_stopped": participants.iter().map(|p| p.stopped).sum::<usize>(),
        "streams_recovered": participants.iter().map(|p| p.recoveries_ms.len()).sum::<usize>(),
        "streams_never_recovered": participants.iter().map(|p| p.never_recovered).sum::<usize>(),
        "recovery_ms": percentiles(participants.iter().flat_map(|p| p.recoveries_ms.iter().copied()).collect()),
        "socket_reconnects": participants.iter().map(|p| p.socket_reconnects).sum::<usize>(),
        "stream_reconnects": participants.iter().map(|p| p.stream_reconnects).sum::<usize>(),
        "signal_ms": percentiles(participants.iter().flat_map(|p| p.signal_ms.iter().copied()).collect()),
        "signaling_rss_mb": (!signaling.is_empty()).then(|| signaling_rss.round()),
        "signaling_cpu_cores": (!signaling.is_empty()).then(|| (signaling_cpu * 1000.0).round() / 1000.0),
        "signaling_processes": signaling.iter().map(|s| json!({"name": s.name, "pid": s.pid, "cpu_cores": (s.cpu_cores * 1000.0).round() / 1000.0, "rss_mb": s.rss_mb.round()})).collect::<Vec<_>>(),
        "nodes": per_node,
        "loadgen_cpu_cores": loadgen_cpu.map(|c| (c * 1000.0).round() / 1000.0),
        "engines": engines.iter().map(|e| json!({"name": e.name, "pid": e.pid, "cpu_cores": (e.cpu_cores * 1000.0).round() / 1000.0, "rss_mb": e.rss_mb.round()})).collect::<Vec<_>>(),
        "engine_sessions": engine_sessions,
        "media_delay_ms": percentiles(delays(None)),
        "media_delay_origin_ms": percentiles(delays(Some(false))),
        "media_delay_relayed_ms": percentiles(delays(Some(true))),
        "relayed_subscribers": relayed.len(),
        "sessions_spanning": spanning,
        "errors": errors.len(),
        "first_errors": errors.iter().take(5).collect::<Vec<_>>(),
    });
    Summary { json }
}

/// The human-readable table.
pub fn table(r: &Value) -> String {
    let p = |v: &Value| format!("p50 {} / p95 {} / p99 {} ms", v["p50"], v["p95"], v["p99"]);
    let rows = [
        ("scenario                 ", r["scenario"].to_string()),
        (
            "participants joined      ",
            format!("{} / {}", r["joined"], r["participants"]),
        ),
        (
            "streams                  ",
            format!(
                "{} ({} publishers + {} subscriptions)",
                r["streams"], r["publishers"], r["subscriptions"]
            ),
        ),
        (
            "engine CPU               ",
            format!("{} cores over {} s", r["engine_cpu_cores"], r["window_s"]),
        ),
        (
            "load generator CPU       ",
            format!("{} cores (the bots, same window)", r["loadgen_cpu_cores"]),
        ),
        (
            "streams per engine core  ",
            r["streams_per_engine_core"].to_string(),
        ),
        (
            "packets received / lost  ",
            format!(
                "{} / {} ({} %)",
                r["packets_received"], r["packets_lost"], r["packet_loss_pct"]
            ),
        ),
        (
            "subscribe → first packet ",
            p(&r["subscribe_first_packet_ms"]),
        ),
        ("  of which: offer sent    ", p(&r["subscribe_offer_ms"])),
        ("  of which: answer        ", p(&r["subscribe_answer_ms"])),
        (
            "  of which: connected     ",
            p(&r["subscribe_connected_ms"]),
        ),
        ("joinRoom                 ", p(&r["join_ms"])),
        (
            "streams stopped          ",
            format!(
                "{} (recovered {}, never {}), recovery {}; reconnections: {} sockets, {} streams",
                r["streams_stopped"],
                r["streams_recovered"],
                r["streams_never_recovered"],
                p(&r["recovery_ms"]),
                r["socket_reconnects"],
                r["stream_reconnects"]
            ),
        ),
        ("signal sent → received   ", p(&r["signal_ms"])),
        (
            "per signaling node       ",
            r["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    format!(
                        "{}: {} joined, join p99 {} ms, signal p99 {} ms; ",
                        n["url"],
                        n["participants"],
                        n["join_ms"]["p99"],
                        n["signal_received_ms"]["p99"]
                    )
                })
                .collect::<String>(),
        ),
        (
            "signaling processes      ",
            r["signaling_processes"].to_string(),
        ),
        ("video jitter             ", p(&r["jitter_ms"])),
        ("send → receive (video)   ", p(&r["media_delay_ms"])),
        (
            "  origin / relayed       ",
            format!(
                "{} / {} ({} relayed subscribers)",
                p(&r["media_delay_origin_ms"]),
                p(&r["media_delay_relayed_ms"]),
                r["relayed_subscribers"]
            ),
        ),
        (
            "sessions spanning engines",
            r["sessions_spanning"].to_string(),
        ),
        (
            "engine RSS               ",
            format!("{} MB", r["engine_rss_mb"]),
        ),
        (
            "signaling RSS / CPU      ",
            format!(
                "{} MB / {} cores",
                r["signaling_rss_mb"], r["signaling_cpu_cores"]
            ),
        ),
        (
            "sessions per engine      ",
            r["engine_sessions"].to_string(),
        ),
        (
            "errors                   ",
            format!("{} {}", r["errors"], r["first_errors"]),
        ),
    ];
    rows.iter()
        .map(|(label, value)| format!("{label}{value}\n"))
        .collect()
}

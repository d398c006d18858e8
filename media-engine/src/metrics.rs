//! `/metrics` of the engine (OpenMetrics text, `prometheus-client`; the same credentials as
//! `/health`): objects, Kurento sessions and sockets, media counters (RTP in/out, keyframe
//! requests, SRTP profiles) and per media worker its connections, datagrams, sends, CPU and
//! refusals. Read from the live counters at each scrape.

use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

use rtcpool_config::metrics::{counters, gauges, text, Labels};

use crate::engine::Engine;
use crate::media::COUNTERS;

pub use rtcpool_config::metrics::CONTENT_TYPE;

pub fn render(engine: &Engine) -> String {
    let mut reg = Registry::default();
    let one = |v: f64| vec![(Vec::new(), v)];
    let (pipelines, elements, sessions, sockets) = {
        let st = engine.state.lock();
        (
            st.objects.pipeline_count(),
            st.objects.element_count(),
            st.sessions.ids().len(),
            st.sockets.len(),
        )
    };
    gauges(
        &mut reg,
        "media_engine_pipelines",
        "MediaPipelines",
        one(pipelines as f64),
    );
    gauges(
        &mut reg,
        "media_engine_elements",
        "media elements (endpoints, PassThroughs)",
        one(elements as f64),
    );
    gauges(
        &mut reg,
        "media_engine_kurento_sessions",
        "Kurento sessions (clients, attached or within their timeout)",
        one(sessions as f64),
    );
    gauges(
        &mut reg,
        "media_engine_sockets",
        "open Kurento WebSockets",
        one(sockets as f64),
    );
    gauges(
        &mut reg,
        "media_engine_peer_connections",
        "WebRTC peer connections",
        one(COUNTERS.peer_connections.load(Ordering::Relaxed) as f64),
    );
    gauges(
        &mut reg,
        "media_engine_resident_memory_bytes",
        "resident memory",
        one(crate::sysinfo::rss_kib() as f64 * 1024.0),
    );
    gauges(
        &mut reg,
        "media_engine_open_fds",
        "open file descriptors",
        one(crate::sysinfo::open_fds() as f64),
    );
    let c = |a: &AtomicU64| vec![(Vec::new(), a.load(Ordering::Relaxed))];
    counters(
        &mut reg,
        "media_engine_rtp_in",
        "RTP packets received from publishers",
        c(&COUNTERS.rtp_in),
    );
    counters(
        &mut reg,
        "media_engine_rtp_out",
        "RTP packets forwarded to subscribers",
        c(&COUNTERS.rtp_out),
    );
    counters(
        &mut reg,
        "media_engine_plis_sent",
        "keyframe requests sent to publishers",
        c(&COUNTERS.plis_sent),
    );
    counters(
        &mut reg,
        "media_engine_keyframe_requests_in",
        "keyframe requests from subscribers",
        c(&COUNTERS.keyframe_requests_in),
    );
    counters(
        &mut reg,
        "media_engine_direct_legs",
        "subscriber legs that went on the direct send path",
        c(&COUNTERS.direct_legs),
    );
    counters(
        &mut reg,
        "media_engine_leg_transports",
        "subscriber legs without a peer connection (the engine's answer, rtc-ice and rtc-dtls)",
        c(&COUNTERS.leg_transports),
    );
    counters(
        &mut reg,
        "media_engine_retransmissions",
        "packets sent again for NACKs on direct legs",
        c(&COUNTERS.retransmissions),
    );
    let srtp = vec![
        (
            vec![("profile".to_string(), "aead_aes_gcm".to_string())],
            COUNTERS.srtp_gcm.load(Ordering::Relaxed),
        ),
        (
            vec![("profile".to_string(), "other".to_string())],
            COUNTERS.srtp_other.load(Ordering::Relaxed),
        ),
    ];
    counters(
        &mut reg,
        "media_engine_srtp_connections",
        "connections by the SRTP profile they got",
        srtp,
    );
    counters(
        &mut reg,
        "media_engine_refused_connections",
        "WebSocket upgrades refused (credentials)",
        c(&engine.sockets_stats.refused),
    );
    let workers = crate::media::worker::health(engine.workers.all());
    let per = |field: &str| -> Vec<(Labels, u64)> {
        workers
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                let l = vec![("worker".to_string(), w["index"].to_string())];
                (l, w[field].as_u64().unwrap_or(0))
            })
            .collect()
    };
    let per_f = |field: &str| -> Vec<(Labels, f64)> {
        per(field).into_iter().map(|(l, v)| (l, v as f64)).collect()
    };
    gauges(
        &mut reg,
        "media_engine_worker_connections",
        "peer connections per media worker",
        per_f("connections"),
    );
    gauges(
        &mut reg,
        "media_engine_worker_pipelines",
        "pipelines per media worker",
        per_f("pipelines"),
    );
    counters(
        &mut reg,
        "media_engine_worker_datagrams_in",
        "UDP datagrams received",
        per("datagramsIn"),
    );
    counters(
        &mut reg,
        "media_engine_worker_datagrams_out",
        "UDP datagrams sent",
        per("datagramsOut"),
    );
    counters(
        &mut reg,
        "media_engine_worker_bytes_in",
        "UDP payload bytes received",
        per("bytesIn"),
    );
    counters(
        &mut reg,
        "media_engine_worker_bytes_out",
        "UDP payload bytes sent",
        per("bytesOut"),
    );
    counters(
        &mut reg,
        "media_engine_worker_send_calls",
        "send system calls (GSO batches count once)",
        per("sendCalls"),
    );
    counters(
        &mut reg,
        "media_engine_worker_send_errors",
        "failed sends",
        per("sendErrors"),
    );
    counters(
        &mut reg,
        "media_engine_worker_cpu_microseconds",
        "CPU time of the worker thread",
        per("cpuMicros"),
    );
    counters(
        &mut reg,
        "media_engine_worker_unknown_datagrams",
        "datagrams from unknown sources or ufrags (dropped)",
        {
            let mut v = per("unknownSource");
            for (i, (_, n)) in per("unknownUfrag").into_iter().enumerate() {
                if let Some(row) = v.get_mut(i) {
                    row.1 += n;
                }
            }
            v
        },
    );
    text(&reg)
}

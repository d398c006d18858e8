//! What both binaries' `/metrics` share (`prometheus-client`): the content type, gauge and
//! counter families filled from live values at each scrape, and the text encoding.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Label pairs of one series.
pub type Labels = Vec<(String, String)>;

/// OpenMetrics text, as `prometheus-client` writes it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A gauge family with one series per row.
pub fn gauges(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, f64)>) {
    let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (l, v) in rows {
        f.get_or_create(&l).set(v);
    }
    reg.register(name, help, f);
}

/// A counter family with one series per row; `name` without `_total` (the library adds it).
pub fn counters(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, u64)>) {
    let f = Family::<Labels, Counter>::default();
    for (l, v) in rows {
        f.get_or_create(&l).inc_by(v);
    }
    reg.register(name, help, f);
}

/// One label.
pub fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

/// The registry as text (empty if encoding failed, which only a broken writer causes).
pub fn text(reg: &Registry) -> String {
    let mut out = String::new();
    if encode(&mut out, reg).is_err() {
        out.clear();
    }
    out
}

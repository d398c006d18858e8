//! Cost of one placement decision over 64 engines: staleness + admission of every engine, then
//! the strategy's pick (target ≤ 200 ns).
//!
//!   cargo bench -p signaling --bench selection

use criterion::{criterion_group, criterion_main, Criterion};
use signaling::pool::select::admission::{admit, Limits, Stats, View};
use signaling::pool::select::{
    least_loaded::LeastLoaded, load_weighted::LoadWeighted, swrr::SmoothWeightedRoundRobin,
    Candidate, Strategy,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn decide<'a>(
    views: &[View<'a>],
    now: Instant,
    limits: &Limits,
    strategy: &mut dyn Strategy,
    buf: &mut Vec<Candidate<'a>>,
) -> Option<usize> {
    // The candidate buffer is reused across decisions.
    buf.clear();
    for v in views {
        if let Ok(c) = admit(v, now, limits) {
            buf.push(c);
        }
    }
    strategy.pick(buf)
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let ids: Vec<String> = (0..64).map(|i| format!("media_{i:07}")).collect();
    let stats: Vec<Stats> = (0..64)
        .map(|i| Stats {
            at: now,
            cpu_pct: f64::from(i % 80),
            memory_kib: 1 << 20,
            endpoints: i as u64 * 7,
            pipelines: i as u64,
            rtt_ms: 0.4,
        })
        .collect();
    let views: Vec<View<'_>> = (0..64)
        .map(|i| View {
            id: &ids[i],
            slot: i,
            weight: 1 + (i % 5) as u32,
            connected: i % 13 != 0,
            running: i % 17 != 0,
            stats: Some(&stats[i]),
        })
        .collect();
    let limits = Limits {
        stale_after: Duration::from_secs(5),
        fresh_since: None,
        cpu_pct: 90.0,
        max_endpoints: 2000,
    }
    .at(now);
    let mut buf = Vec::with_capacity(64);
    let mut g = c.benchmark_group("placement over 64 engines");
    let mut swrr = SmoothWeightedRoundRobin::new(1);
    g.bench_function("weighted-round-robin", |b| {
        b.iter(|| black_box(decide(black_box(&views), now, &limits, &mut swrr, &mut buf)))
    });
    let mut ll = LeastLoaded;
    g.bench_function("least-loaded", |b| {
        b.iter(|| black_box(decide(black_box(&views), now, &limits, &mut ll, &mut buf)))
    });
    let mut lw = LoadWeighted::new(1);
    g.bench_function("load-weighted", |b| {
        b.iter(|| black_box(decide(black_box(&views), now, &limits, &mut lw, &mut buf)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

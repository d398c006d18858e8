//! Cost of one placement decision over 64 engines, as `EnginePool::pick` makes it: the board's
//! clock, every engine's admission, then the strategy's pick (target ≤ 200 ns).
//!
//!   cargo bench -p signaling --bench selection

use criterion::{criterion_group, criterion_main, Criterion};
use signaling::pool::select::admission::{Limits, Stats, View};
use signaling::pool::select::{
    least_loaded::LeastLoaded, load_weighted::LoadWeighted, swrr::SmoothWeightedRoundRobin, Board,
    Strategy,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// 64 engines: some disconnected, some draining, some over the CPU limit, weights 1–5.
fn board(strategy: Box<dyn Strategy>) -> Board {
    let limits = Limits {
        stale_after: Duration::from_secs(3600),
        fresh_since: None,
        cpu_pct: 90.0,
        max_endpoints: 2000,
    };
    let mut b = Board::new(limits, strategy);
    let now = Instant::now();
    for i in 0..64usize {
        let stats = Stats {
            at: now,
            cpu_pct: (i * 7 % 100) as f64,
            memory_kib: 1 << 20,
            endpoints: i as u64 * 7,
            pipelines: i as u64,
            rtt_ms: 0.4,
        };
        b.set(&View {
            id: "engine",
            slot: i,
            weight: 1 + (i % 5) as u32,
            connected: i % 13 != 0,
            running: i % 17 != 0,
            stats: Some(&stats),
        });
    }
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("placement over 64 engines");
    let strategies: [(&str, Box<dyn Strategy>); 3] = [
        (
            "weighted-round-robin",
            Box::new(SmoothWeightedRoundRobin::new(1)),
        ),
        ("least-loaded", Box::new(LeastLoaded)),
        ("load-weighted", Box::new(LoadWeighted::new(1))),
    ];
    for (name, strategy) in strategies {
        let mut b = board(strategy);
        g.bench_function(name, |bench| {
            bench.iter(|| black_box(black_box(&mut b).pick()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

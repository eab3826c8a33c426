//! PromQL engine over ~100k in-memory series (the benchmark queries). The in-memory
//! store scans every series per select, so these figures bound the engine plus a naive index.
//!
//!     CARGO_PROFILE_BENCH_LTO=false cargo bench --bench promql

use criterion::{Criterion, criterion_group, criterion_main};
use obsd::model::Labels;
use obsd::promql::{Engine, EngineOptions, MemoryQueryable};
use std::time::Duration;

const END: i64 = 1_700_000_000_000;
const SAMPLES: i64 = 41; // 10 minutes at 15 s

fn dataset() -> MemoryQueryable {
    let mut m = MemoryQueryable::new();
    // 100k counters: 10 jobs × 10k instances.
    for s in 0..100_000u32 {
        let job = format!("j{}", s % 10);
        let inst = format!("i{s}");
        let labels = Labels::metric("c", &[("instance", &inst), ("job", &job)]);
        for i in 0..SAMPLES {
            let t = END - (SAMPLES - 1 - i) * 15_000;
            m.add_sample_labels(labels.clone(), t, (i * (s as i64 % 7 + 1)) as f64);
        }
    }
    // 1k classic histograms of 10 buckets.
    let bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    for h in 0..1_000u32 {
        for (b, le) in bounds.iter().enumerate() {
            let labels = Labels::metric("h_bucket", &[("instance", &format!("i{h}")), ("le", le)]);
            for i in 0..SAMPLES {
                let t = END - (SAMPLES - 1 - i) * 15_000;
                m.add_sample_labels(labels.clone(), t, (i * (b as i64 + 1)) as f64);
            }
        }
    }
    m
}

fn bench(c: &mut Criterion) {
    let store = dataset();
    let engine = Engine::new(EngineOptions::default());
    let mut g = c.benchmark_group("promql_100k_series");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    for q in [
        "sum(rate(c[5m]))",
        "sum by (job) (rate(c[5m]))",
        "histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))",
        "topk(10, c)",
        "count({__name__=~\".+\"})",
    ] {
        g.bench_function(q, |b| b.iter(|| engine.instant_query(&store, q, END).expect("query")));
    }
    // A range query at 15 s step over the 10k series of one job.
    g.bench_function("range 10m@15s sum(rate(c{job=\"j0\"}[1m]))", |b| {
        b.iter(|| {
            engine
                .range_query(&store, "sum(rate(c{job=\"j0\"}[1m]))", END - 600_000, END, 15_000)
                .expect("query")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

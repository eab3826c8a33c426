//! Criterion benches: the chunk codec, appends through the WAL and head, and select+decode.
//! The side-by-side with Prometheus is `benches/store_vs_prometheus.sh`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use obsd::model::Matcher;
use obsd::model::labels::Labels;
use obsd::store::{Store, StoreOptions, chunk};
use std::hint::black_box;
use std::time::Duration;

fn samples(n: usize) -> Vec<(i64, f64)> {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut v = 1e6;
    (0..n as i64)
        .map(|i| {
            v += rng.f64() * 15.0;
            (1_700_000_000_000 + i * 15_000 + rng.i64(-5..5), (v * 100.0).round() / 100.0)
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let s = samples(120);
    let enc = chunk::encode(&s);
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(120));
    g.bench_function("encode_120", |b| b.iter(|| chunk::encode(black_box(&s))));
    g.bench_function("decode_120", |b| b.iter(|| chunk::decode(black_box(&enc))));
    g.finish();
}

fn opts() -> StoreOptions {
    StoreOptions { background: false, retention: Duration::from_secs(1 << 40), ..StoreOptions::default() }
}

fn append_and_select(c: &mut Criterion) {
    let series = 1000usize;
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::metric("bench_total", &[("instance", &format!("host-{}", i / 10)), ("i", &i.to_string())])
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    let mut app = store.appender();
    let refs: Vec<_> = labels.iter().map(|l| app.series_ref(l).unwrap()).collect();
    app.rollback();
    let mut t = 0i64;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(series as u64));
    g.bench_function("commit_1000_series_by_ref", |b| {
        b.iter(|| {
            t += 15_000;
            let mut app = store.appender();
            for (i, r) in refs.iter().enumerate() {
                app.append_ref(r, t, (t / 1000) as f64 + i as f64).unwrap();
            }
            app.commit().unwrap()
        })
    });
    g.bench_function("commit_1000_series_by_labels", |b| {
        b.iter(|| {
            t += 15_000;
            let mut app = store.appender();
            for (i, l) in labels.iter().enumerate() {
                app.append(l, t, (t / 1000) as f64 + i as f64).unwrap();
            }
            app.commit().unwrap()
        })
    });
    store.checkpoint().unwrap();
    g.bench_function("select_decode_1000_series_all", |b| {
        b.iter(|| {
            let q = store.querier(i64::MIN, i64::MAX);
            let mut n = 0usize;
            for s in q.select(&[Matcher::equal("__name__", "bench_total")]) {
                n += s.unwrap().samples().count();
            }
            n
        })
    });
    g.bench_function("select_decode_one_instance", |b| {
        b.iter(|| {
            let q = store.querier(i64::MIN, i64::MAX);
            q.select_all(&[Matcher::equal("__name__", "bench_total"), Matcher::equal("instance", "host-7")])
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = codec, append_and_select
}
criterion_main!(benches);

//! The store against a model: random appends (in order, out of order, duplicates, stale
//! markers, special floats) across chunk boundaries, checkpoints and restarts read back
//! exactly; matchers, label names/values, exemplars, retention and damage handling.

use obsd::model::labels::Labels;
use obsd::model::{Matcher, stale_nan};
use obsd::store::{Exemplar, Store, StoreOptions};
use std::collections::BTreeMap;
use std::time::Duration;

fn opts(ooo_ms: u64) -> StoreOptions {
    StoreOptions {
        background: false,
        out_of_order_window: Duration::from_millis(ooo_ms),
        retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..StoreOptions::default()
    }
}

fn series_labels(i: usize) -> Labels {
    Labels::metric(
        if i.is_multiple_of(3) { "requests_total" } else { "temperature" },
        &[("instance", &format!("host-{i}")), ("job", if i.is_multiple_of(2) { "api" } else { "db" })],
    )
}

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn random_value(rng: &mut fastrand::Rng, prev: Option<u64>) -> f64 {
    match rng.u8(0..10) {
        0 => stale_nan(),
        1 => f64::from_bits(rng.u64(..)),
        2 => [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -0.0][rng.usize(0..4)],
        3 | 4 => prev.map_or(1.0, f64::from_bits),
        5 => rng.u32(0..1000) as f64,
        _ => rng.f64() * 1e3,
    }
}

/// Applies Prometheus's rules to the model: returns whether the sample is stored.
fn model_append(m: &mut Model, last: &mut BTreeMap<Labels, i64>, l: &Labels, t: i64, v: f64, window: i64) {
    let series = m.entry(l.clone()).or_default();
    let bits = v.to_bits();
    match last.get(l).copied() {
        Some(lt) if t < lt => {
            if window > 0 && t >= lt - window {
                series.entry(t).or_insert(bits);
            }
        }
        Some(lt) if t == lt => {}
        _ => {
            series.insert(t, bits);
            last.insert(l.clone(), t);
        }
    }
}

fn check(store: &Store, model: &Model, mint: i64, maxt: i64) {
    let q = store.querier(mint, maxt);
    let got = q.select_all(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap();
    let mut want: Vec<(Labels, Vec<(i64, u64)>)> = model
        .iter()
        .map(|(l, s)| (l.clone(), s.range(mint..=maxt).map(|(&t, &b)| (t, b)).collect::<Vec<_>>()))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    want.sort();
    let got: Vec<(Labels, Vec<(i64, u64)>)> = got
        .into_iter()
        .map(|(l, s)| (l, s.into_iter().map(|(t, v)| (t, v.to_bits())).collect::<Vec<_>>()))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if got.len() != want.len() {
        for w in &want {
            eprintln!("want {} {:?}", w.0, &w.1[..w.1.len().min(3)]);
        }
    }
    assert_eq!(got.len(), want.len(), "series count in [{mint}, {maxt}]");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert_eq!(g.1.len(), w.1.len(), "{} samples in [{mint}, {maxt}]", g.0);
        assert_eq!(g.1, w.1, "{} in [{mint}, {maxt}]", g.0);
    }
}

fn run_random(seed: u64, window: i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut store = Store::open(dir.path(), opts(window as u64)).unwrap();
    let mut model = Model::new();
    let mut last = BTreeMap::new();
    let nseries = 12;
    let mut clock: Vec<i64> = (0..nseries).map(|_| rng.i64(-50_000..50_000)).collect();
    for round in 0..60 {
        let mut app = store.appender();
        let mut pending = Vec::new();
        for _ in 0..rng.usize(1..120) {
            let i = rng.usize(0..nseries);
            let l = series_labels(i);
            let t = match rng.u8(0..10) {
                0 => clock[i] - rng.i64(0..(window.max(1) * 2)), // late or duplicate
                1 => clock[i],
                2 => clock[i] + rng.i64(1..3 * 3_600_000), // crosses chunk ranges
                _ => clock[i] + 15_000,
            };
            clock[i] = clock[i].max(t);
            let prev = model.get(&l).and_then(|s| s.get(&t).copied());
            let v = random_value(&mut rng, prev);
            if app.append(&l, t, v).is_ok() {
                pending.push((l, t, v));
            }
        }
        if rng.u8(0..8) == 0 {
            app.rollback();
        } else {
            app.commit().unwrap();
            for (l, t, v) in pending {
                model_append(&mut model, &mut last, &l, t, v, window);
            }
        }
        match rng.u8(0..10) {
            0 => store.checkpoint().unwrap(),
            1 => {
                store.close().unwrap();
                store = Store::open(dir.path(), opts(window as u64)).unwrap();
            }
            2 => {
                // A sync, then a clean reopen. Restart *without* close is covered by
                // tests/store_crash.rs with a killed process: reopening in the same process after
                // a drop races sled's own background threads, which can outlive the handle and
                // flush stale pages under load, a situation no real restart has.
                store.sync().unwrap();
                store.close().unwrap();
                store = Store::open(dir.path(), opts(window as u64)).unwrap();
            }
            _ => {}
        }
        if round % 10 == 9 {
            check(&store, &model, i64::MIN, i64::MAX);
            let a = rng.i64(-100_000..10_000_000);
            check(&store, &model, a, a + rng.i64(0..20_000_000));
            // A recent window, as an instant query's lookback: mostly inside open chunks,
            // where the read stops at the head.
            let newest = clock[rng.usize(0..nseries)];
            check(&store, &model, newest - rng.i64(0..1_800_000), newest);
        }
    }
    store.close().unwrap();
    let store = Store::open(dir.path(), opts(window as u64)).unwrap();
    check(&store, &model, i64::MIN, i64::MAX);
    assert!(!store.damage().any(), "{:?}", store.damage());
}

#[test]
fn random_appends_read_back_exactly_across_restarts() {
    for seed in 1..=4 {
        run_random(seed, 0);
    }
}

#[test]
fn random_appends_with_out_of_order_window() {
    for seed in 11..=14 {
        run_random(seed, 600_000);
    }
}

#[test]
fn long_series_cross_many_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    let l = Labels::metric("up", &[("job", "x")]);
    let mut want = Vec::new();
    for batch in 0..10 {
        let mut app = store.appender();
        for i in 0..100 {
            let t = (batch * 100 + i) * 15_000;
            let v = if t % 7 == 0 { stale_nan() } else { t as f64 };
            app.append(&l, t, v).unwrap();
            want.push((t, v.to_bits()));
        }
        app.commit().unwrap();
    }
    let check = |s: &Store| {
        let got = s.querier(0, i64::MAX).select_all(&[Matcher::equal("job", "x")]).unwrap();
        assert_eq!(got.len(), 1);
        let bits: Vec<_> = got[0].1.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(bits, want);
        // A range inside: exactly the samples in it.
        let got = s.querier(30_000, 60_000).select_all(&[Matcher::equal("job", "x")]).unwrap();
        assert_eq!(got[0].1.iter().map(|s| s.0).collect::<Vec<_>>(), [30_000, 45_000, 60_000]);
    };
    check(&store);
    store.close().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    check(&store);
}

#[test]
fn out_of_order_and_duplicates_are_rejected_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    let l = Labels::metric("up", &[]);
    let mut app = store.appender();
    app.append(&l, 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = store.appender();
    assert!(app.append(&l, 1000, 1.0).is_ok(), "same timestamp and value is a no-op");
    let e = app.append(&l, 1000, 2.0).unwrap_err();
    assert!(e.to_string().contains("duplicate sample"), "{e}");
    assert!(e.is_user_error());
    let e = app.append(&l, 999, 2.0).unwrap_err();
    assert!(e.to_string().contains("out of order"), "{e}");
    let summary = app.commit().unwrap();
    assert_eq!(summary.noop, 1);
    let text = metrics_text(&store);
    assert!(text.contains("obsd_store_out_of_order_samples_total 1"), "{text}");
    assert!(text.contains("obsd_store_duplicate_samples_total 1"), "{text}");
    assert!(text.contains("obsd_store_samples_appended_total 1"), "{text}");
    assert!(text.contains("obsd_store_series 1"), "{text}");
    assert!(text.contains("obsd_store_wal_replay_duration_seconds"), "{text}");
    assert!(text.contains("obsd_store_checkpoint_duration_seconds"), "{text}");
    // Two appenders racing on one series: the loser's samples are counted at commit.
    let mut a = store.appender();
    let mut b = store.appender();
    a.append(&l, 2000, 1.0).unwrap();
    b.append(&l, 1500, 1.0).unwrap();
    a.commit().unwrap();
    assert_eq!(b.commit().unwrap().out_of_order, 1);
}

fn metrics_text(store: &Store) -> String {
    let mut s = String::new();
    obsd::exposition::write_families(&mut s, &store.metric_families());
    s
}

#[test]
fn matchers_label_names_and_values_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    let mut app = store.appender();
    app.append(&Labels::metric("up", &[("job", "node"), ("instance", "a")]), 1000, 1.0).unwrap();
    app.append(&Labels::metric("up", &[("job", "prom"), ("instance", "b")]), 5000, 1.0).unwrap();
    app.append(&Labels::metric("http_total", &[("job", "node"), ("code", "200")]), 9000, 3.0).unwrap();
    app.commit().unwrap();
    let q = store.querier(0, 10_000);
    let names =
        |ms: &[Matcher]| q.select_all(ms).unwrap().into_iter().map(|s| s.0.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(&[Matcher::equal("__name__", "up")]),
        ["up{instance=\"a\", job=\"node\"}", "up{instance=\"b\", job=\"prom\"}"]
    );
    assert_eq!(names(&[Matcher::regex("job", "no").unwrap()]), Vec::<String>::new());
    assert_eq!(names(&[Matcher::not_regex("job", "node").unwrap()]), ["up{instance=\"b\", job=\"prom\"}"]);
    assert_eq!(
        names(&[Matcher::equal("job", "node"), Matcher::equal("code", "")]),
        ["up{instance=\"a\", job=\"node\"}"]
    );
    assert_eq!(q.label_names(&[]), ["__name__", "code", "instance", "job"]);
    assert_eq!(q.label_names(&[Matcher::equal("__name__", "up")]), ["__name__", "instance", "job"]);
    assert_eq!(q.label_values("job", &[]), ["node", "prom"]);
    assert_eq!(q.label_values("nope", &[]), Vec::<String>::new());
    // Time range restricts label answers to series with data in it.
    let early = store.querier(0, 2000);
    assert_eq!(early.label_values("job", &[]), ["node"]);
    assert_eq!(early.label_names(&[]), ["__name__", "instance", "job"]);
    assert!(store.querier(20_000, 30_000).select_all(&[Matcher::equal("job", "node")]).unwrap().is_empty());
}

#[test]
fn exemplars_are_a_bounded_ring_that_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions { max_exemplars_per_series: 3, ..opts(0) };
    let store = Store::open(dir.path(), o.clone()).unwrap();
    let l = Labels::metric("latency_bucket", &[("le", "0.5")]);
    for i in 0..5 {
        let mut app = store.appender();
        let r = app.append(&l, i * 1000, i as f64).unwrap();
        app.append_exemplar(
            &r,
            Exemplar { labels: Labels::from_pairs([("trace_id", format!("t{i}"))]), value: 0.3, t: i * 1000 },
        );
        app.commit().unwrap();
    }
    let ex = |s: &Store| {
        let got = s.querier(0, 10_000).select_exemplars(&[Matcher::equal("le", "0.5")]);
        got[0].1.iter().map(|e| e.labels.get("trace_id").unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ex(&store), ["t2", "t3", "t4"]);
    drop(store); // WAL replay path
    let store = Store::open(dir.path(), o.clone()).unwrap();
    assert_eq!(ex(&store), ["t2", "t3", "t4"]);
    store.close().unwrap(); // checkpoint path
    let store = Store::open(dir.path(), o).unwrap();
    assert_eq!(ex(&store), ["t2", "t3", "t4"]);
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions { checkpoint_interval: Duration::from_millis(50), background: true, ..opts(0) },
    )
    .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for t in 0..600i64 {
                    let mut app = store.appender();
                    for i in 0..20 {
                        app.append(
                            &Labels::metric("w", &[("writer", &w.to_string()), ("i", &i.to_string())]),
                            // 30 s apart: 5 h, so 2 h ranges close and merge while this runs.
                            t * 30_000,
                            t as f64,
                        )
                        .unwrap();
                    }
                    app.commit().unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..50 {
                for (_, samples) in
                    store.querier(0, i64::MAX).select_all(&[Matcher::equal("__name__", "w")]).unwrap()
                {
                    // Whatever is visible is a gap-free prefix with the right values.
                    for (k, (t, v)) in samples.iter().enumerate() {
                        assert_eq!((*t, *v), (k as i64 * 30_000, k as f64));
                    }
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    let all = store.querier(0, i64::MAX).select_all(&[Matcher::equal("__name__", "w")]).unwrap();
    assert_eq!(all.len(), 80);
    assert!(all.iter().all(|(_, s)| s.len() == 600));
    store.merge_closed_ranges().unwrap();
    let merged = metrics_text(&store);
    assert!(
        merged.lines().any(|l| l.starts_with("obsd_store_chunks_merged_total ") && !l.ends_with(" 0")),
        "{merged}"
    );
    store.close().unwrap();
}

/// Every series of the store, all time, bit for bit as `want` holds it.
fn assert_reads_back_exactly(s: &Store, want: &BTreeMap<Labels, Vec<(i64, u64)>>) {
    let got = s.querier(i64::MIN, i64::MAX).select_all(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap();
    assert_eq!(got.len(), want.len());
    for (labels, samples) in got {
        let bits: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(&bits, &want[&labels], "{labels}");
    }
}

/// Counters and decimals are written to disk in the decimal layout: they must read back bit for
/// bit (specials included), across chunk cuts, a backfill's early cuts and a restart, and take
/// less room than XOR would.
#[test]
fn decimal_chunks_read_back_exactly_and_are_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut want: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    for i in 0..6 {
        let l = series_labels(i);
        let mut v = rng.u32(0..1_000_000) as f64;
        let mut app = store.appender();
        let mut r = None;
        for k in 0..700i64 {
            let t = k * 15_000 + rng.i64(0..3);
            v = match (i, rng.u16(0..400)) {
                (_, 0) => 0.0, // counter reset
                (_, 1) => stale_nan(),
                (_, 2) => -0.0,
                (_, 3) => 0.1 + 0.2,
                (_, 4) => f64::NEG_INFINITY,
                (1, _) => ((v.max(0.0) + rng.f64() * 15.0) * 100.0).round() / 100.0, // cents
                _ => v.max(0.0) + rng.u32(0..600) as f64,
            };
            r = Some(app.append(&l, t, v).unwrap());
            want.entry(l.clone()).or_default().push((t, v.to_bits()));
        }
        // The last series is left in the head; the others are closed early, as a backfill does.
        if i < 5 {
            app.cut_after(r.as_ref().unwrap());
        }
        app.commit().unwrap();
    }
    let check = |s: &Store| assert_reads_back_exactly(s, &want);
    check(&store);
    store.cut_heads().unwrap();
    check(&store);
    let report = obsd::store::cli::scan(&store).unwrap();
    assert_eq!(report.chunk_samples, 6 * 700);
    // The same samples as 120-sample XOR chunks (what was stored before), crc and all.
    let xor: usize = want
        .values()
        .flat_map(|s| s.chunks(120))
        .map(|c| {
            let samples: Vec<(i64, f64)> = c.iter().map(|&(t, b)| (t, f64::from_bits(b))).collect();
            obsd::store::chunk::encode(&samples).len() + 4
        })
        .sum();
    let (dec, xor) = (report.chunk_bytes as f64, xor as f64);
    assert!(dec < 0.75 * xor, "decimal chunks {dec} bytes vs XOR {xor}");
    store.close().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    check(&store);
    // Appends after the early cuts go on in new chunks.
    let l = series_labels(0);
    let last = want[&l].last().unwrap().0;
    let mut app = store.appender();
    app.append(&l, last + 15_000, 1.0).unwrap();
    assert!(app.append(&l, last, 1.0).is_err(), "ordering survives the cut and the restart");
    app.commit().unwrap();
}

/// Closed 2 h ranges are folded into one chunk per series: fewer chunks, the same samples,
/// across a restart; ranges still open (or within reach of the newest sample) are left alone.
#[test]
fn closed_ranges_merge_into_one_chunk_per_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    let hour = 3_600_000i64;
    let mut want: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    let append_until = |store: &Store, want: &mut BTreeMap<Labels, Vec<(i64, u64)>>, from: i64, to: i64| {
        let mut t = from;
        while t < to {
            let mut app = store.appender();
            for i in 0..3 {
                let l = series_labels(i);
                let v = if t % (97 * 15_000) == 0 { stale_nan() } else { (t / 1000 + i as i64) as f64 };
                app.append(&l, t, v).unwrap();
                want.entry(l).or_default().push((t, v.to_bits()));
            }
            app.commit().unwrap();
            t += 15_000;
        }
    };
    let check = |s: &Store, want: &BTreeMap<Labels, Vec<(i64, u64)>>| {
        assert_reads_back_exactly(s, want);
        // A window inside a merged range reads exactly its samples.
        let got = s.querier(hour, hour + 60_000).select_all(&[Matcher::equal("instance", "host-0")]).unwrap();
        assert_eq!(
            got[0].1.iter().map(|s| s.0).collect::<Vec<_>>(),
            [hour, hour + 15_000, hour + 30_000, hour + 45_000, hour + 60_000]
        );
    };
    append_until(&store, &mut want, 0, 7 * hour);
    store.checkpoint().unwrap();
    let before = obsd::store::cli::scan(&store).unwrap();
    // 2 h at 15 s = 480 samples = four 120-sample chunks per series and range.
    assert_eq!(store.merge_closed_ranges().unwrap(), 3 * 2 * 4, "ranges [0, 2h) and [2h, 4h)");
    let after = obsd::store::cli::scan(&store).unwrap();
    assert_eq!(after.chunks, before.chunks - 3 * 2 * 3);
    assert_eq!(after.chunk_samples, before.chunk_samples);
    assert!(after.chunk_bytes < before.chunk_bytes);
    assert!(after.damaged.is_empty(), "{:?}", after.damaged);
    check(&store, &want);
    assert_eq!(store.merge_closed_ranges().unwrap(), 0, "nothing new is closed");
    store.close().unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    check(&store, &want);
    append_until(&store, &mut want, 7 * hour, 9 * hour);
    assert_eq!(store.merge_closed_ranges().unwrap(), 3 * 4, "then [4h, 6h)");
    check(&store, &want);
}

/// Heads go to one file per checkpoint beside sled (not into sled, where 100k rewritten heads
/// cost hundreds of MB): after a checkpoint the WAL before it is gone, so a restart reads the
/// open chunks back from that file; a damaged record loses that series' open chunk only; a
/// store whose heads are still sled keys (written by an older obsd) opens with them and the next
/// checkpoint moves them into a file.
#[test]
fn checkpoint_heads_live_in_a_file_and_old_sled_heads_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut want: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    for t in (0..50i64).map(|k| k * 15_000) {
        let mut app = store.appender();
        for i in 0..4 {
            let v = (t / 1000 + i as i64) as f64 + 0.25;
            app.append(&series_labels(i), t, v).unwrap();
            want.entry(series_labels(i)).or_default().push((t, v.to_bits()));
        }
        app.commit().unwrap();
    }
    store.close().unwrap(); // checkpoint: 50 samples per series, all in open chunks
    let heads_dir = dir.path().join("heads");
    let files: Vec<_> = std::fs::read_dir(&heads_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let segment = u64::from_str_radix(files[0].file_name().unwrap().to_str().unwrap(), 16).unwrap();
    let sled_path =
        dir.path().join(std::fs::read_to_string(dir.path().join("CURRENT")).unwrap_or("db".into()).trim());
    let head_keys = |path: &std::path::Path| sled::open(path).unwrap().scan_prefix(b"h").count();
    assert_eq!(head_keys(&sled_path), 0, "no heads in sled");

    let store = Store::open(dir.path(), opts(0)).unwrap();
    assert_reads_back_exactly(&store, &want);
    let report = obsd::store::cli::scan(&store).unwrap();
    assert_eq!((report.heads, report.head_samples, report.chunk_samples), (4, 200, 0));
    drop(store);

    // An older obsd's layout: the same heads as sled keys, no heads file.
    let mut heads = Vec::new();
    obsd::store::head_file::read(&heads_dir, segment, |sid, h| heads.push((sid, h))).unwrap().unwrap();
    {
        let db = sled::open(&sled_path).unwrap();
        for (sid, h) in &heads {
            db.insert(obsd::store::keys::head(*sid), obsd::store::keys::with_crc(&h.encode_checkpoint()))
                .unwrap();
        }
        db.flush().unwrap();
    }
    std::fs::remove_dir_all(&heads_dir).unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    assert_reads_back_exactly(&store, &want);
    store.checkpoint().unwrap();
    store.close().unwrap();
    assert_eq!(head_keys(&sled_path), 0, "moved out of sled by the checkpoint");
    let store = Store::open(dir.path(), opts(0)).unwrap();
    assert_reads_back_exactly(&store, &want);
    store.close().unwrap();

    // One flipped byte in the first record's payload (after the 8-byte magic: uvarint length,
    // crc32, payload): that series loses its open chunk, the rest read back.
    let file = std::fs::read_dir(&heads_dir).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    let (mut len, mut at) = (0usize, 8);
    for shift in (0..).step_by(7) {
        len |= usize::from(bytes[at] & 0x7f) << shift;
        at += 1;
        if bytes[at - 1] < 0x80 {
            break;
        }
    }
    bytes[at + 4 + len - 1] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    let store = Store::open(dir.path(), opts(0)).unwrap();
    assert_eq!(store.damage().chunk_corruptions, 1);
    let got =
        store.querier(i64::MIN, i64::MAX).select_all(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap();
    let intact: Vec<_> = got.iter().filter(|(l, s)| s.len() == 50 && want.contains_key(l)).collect();
    assert_eq!(intact.len(), 3, "three of four series keep their open chunk");
}

//! Damage and retention: flipped and truncated bytes in the WAL, in chunk values and in sled's
//! own file; the store opens, reports the damage, and serves what is intact (never a wrong
//! value). Retention deletes old data and the disk usage falls.

mod common;

use obsd::model::Matcher;
use obsd::store::cli::{stress_labels, stress_value};
use obsd::store::{Store, StoreOptions, wal};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SERIES: u64 = 10;

fn opts() -> StoreOptions {
    StoreOptions {
        background: false,
        retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..StoreOptions::default()
    }
}

fn fill(store: &Store, from: i64, to: i64) {
    for t in from..to {
        let mut app = store.appender();
        for i in 0..SERIES {
            app.append(&stress_labels(i), t, stress_value(i, t)).unwrap();
        }
        app.commit().unwrap();
    }
}

/// Every served sample must be right; returns per-series timestamps.
fn served(store: &Store) -> Vec<Vec<i64>> {
    let got = store.querier(i64::MIN, i64::MAX).select_all(&[Matcher::equal("job", "stress")]).unwrap();
    let mut out = vec![Vec::new(); SERIES as usize];
    for (l, samples) in got {
        let i: u64 = l.get("series").unwrap().parse().unwrap();
        for (t, v) in samples {
            assert_eq!(v.to_bits(), stress_value(i, t).to_bits(), "series {i} t={t}: wrong value served");
            out[i as usize].push(t);
        }
    }
    out
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let wal_dir = dir.join("wal");
    let segs = wal::list_segments(&wal_dir).unwrap();
    let big = segs
        .iter()
        .rev()
        .find(|&&s| std::fs::metadata(wal::segment_path(&wal_dir, s)).unwrap().len() > 0)
        .unwrap();
    wal::segment_path(&wal_dir, *big)
}

#[test]
fn wal_torn_and_flipped_tails_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    fill(&store, 0, 600);
    store.sync().unwrap();
    drop(store); // no checkpoint: everything is in the WAL
    let seg = last_segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 37).unwrap();
    drop(f);

    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(store.damage().wal_corruptions, 1);
    let got = served(&store);
    for ts in &got {
        assert_eq!(*ts, (0..599).collect::<Vec<_>>(), "exactly the last (torn) commit is gone");
    }
    let mut metrics = String::new();
    obsd::exposition::write_families(&mut metrics, &store.metric_families());
    assert!(metrics.contains("obsd_store_wal_corruptions_total 1"), "{metrics}");
    // New writes go on after the damage and survive the next restart.
    fill(&store, 599, 1200);
    store.sync().unwrap();
    drop(store);

    let seg = last_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&seg, &bytes).unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(store.damage().wal_corruptions, 1);
    // The damaged record costs only itself: reading resumes at the next whole record, so
    // what was written after it is served too.
    let got = served(&store);
    let lost: Vec<i64> = (0..1200).filter(|t| !got[0].contains(t)).collect();
    // (A damaged series record costs nothing served: the series is in the index already.)
    assert!(lost.len() <= 2, "at most one record's commits are lost: {lost:?}");
    assert!(lost.windows(2).all(|w| w[1] == w[0] + 1), "a single run: {lost:?}");
    assert!(lost.iter().all(|t| *t > 599), "the records before the flipped byte are served: {lost:?}");
    for ts in &got {
        assert_eq!(*ts, got[0], "every series loses the same commits");
    }
    store.close().unwrap();
}

#[test]
fn damaged_chunks_are_skipped_reported_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("replica").join("tsdb");
    let store = Store::open(&dir, opts()).unwrap();
    fill(&store, 0, 1200);
    store.close().unwrap();
    // Rot three chunk values behind sled's back (sled checks its own framing, not our bytes).
    {
        let db = sled::open(dir.join("db")).unwrap();
        let keys: Vec<_> = db.scan_prefix(b"c").keys().take(3).map(|k| k.unwrap()).collect();
        assert_eq!(keys.len(), 3);
        for k in keys {
            let mut v = db.get(&k).unwrap().unwrap().to_vec();
            let i = v.len() / 2;
            v[i] ^= 0x01;
            db.insert(k, v).unwrap();
        }
        db.flush().unwrap();
    }
    let store = Store::open(&dir, opts()).unwrap();
    let got = served(&store);
    let total: usize = got.iter().map(Vec::len).sum();
    assert_eq!(total, 10 * 1200 - 3 * 120, "all but the three damaged chunks are served");
    assert_eq!(store.damage().chunk_corruptions, 3);
    store.close().unwrap();
    let out = Command::new(common::obsd_binary())
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(["store", "check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "check must fail on damage: {text}");
    assert!(text.contains("damaged: chunk of series") && text.contains("checksum mismatch"), "{text}");
}

#[test]
fn damaged_sled_file_never_stops_the_store() {
    let base = tempfile::tempdir().unwrap();
    let orig = base.path().join("orig");
    let store = Store::open(&orig, opts()).unwrap();
    fill(&store, 0, 1200);
    store.checkpoint().unwrap();
    fill(&store, 1200, 1500);
    store.sync().unwrap();
    drop(store); // t >= 1200 lives in the WAL too
    let mut rng = fastrand::Rng::with_seed(99);
    let mut lossy = 0;
    for case in 0..6 {
        let dir = base.path().join(format!("case{case}"));
        copy_dir(&orig, &dir);
        let db_file = dir.join("db").join("db");
        let mut bytes = std::fs::read(&db_file).unwrap();
        match case % 3 {
            0 => {
                for _ in 0..20 {
                    let i = rng.usize(0..bytes.len());
                    bytes[i] ^= 0xff;
                }
            }
            1 => bytes.truncate(rng.usize(0..bytes.len())),
            _ => {
                for _ in 0..4 {
                    let i = rng.usize(0..bytes.len() - 4096);
                    bytes[i..i + 4096].fill(0);
                }
            }
        }
        std::fs::write(&db_file, &bytes).unwrap();
        let store = Store::open(&dir, opts()).expect("the store opens whatever happened to sled's file");
        let got = served(&store);
        // Whatever sled lost (it may also drop a damaged tail silently), what the WAL held is
        // served again, and nothing served is wrong (`served` checks every value).
        for ts in &got {
            assert!((1200..1500).all(|t| ts.binary_search(&t).is_ok()), "case {case}: WAL data not served");
        }
        let complete = got.iter().all(|ts| *ts == (0..1500).collect::<Vec<_>>());
        // sled either panics at open (the store moves the file aside: db_recoveries) or
        // silently drops its log after the first damaged entry; both lose data.
        if !complete || store.damage().db_recoveries > 0 {
            lossy += 1;
        }
        eprintln!(
            "case {case}: damage {:?}, complete {complete}, n {} first {:?} last {:?}",
            store.damage(),
            got[0].len(),
            got[0].first(),
            got[0].last()
        );
        store.close().unwrap();
        // And it opens cleanly again afterwards.
        let store = Store::open(&dir, opts()).unwrap();
        assert_eq!(store.damage().db_recoveries, 0);
        drop(store);
    }
    assert!(lossy > 0, "no case damaged live data; the test proved nothing");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn retention_deletes_old_data_and_disk_usage_falls() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000i64;
    let now = obsd::model::now_ms();
    let o = StoreOptions { retention: Duration::from_secs(3600), ..opts() };
    let store = Store::open(dir.path(), o.clone()).unwrap();
    let series = 300u64;
    let start = now - 24 * hour;
    let mut t = start;
    while t <= now {
        let mut app = store.appender();
        for i in 0..series {
            app.append(&stress_labels(i), t, (t / 1000) as f64 + i as f64 * 0.37).unwrap();
        }
        app.commit().unwrap();
        t += 60_000;
    }
    store.close().unwrap();
    let store = Store::open(dir.path(), o).unwrap();
    let before = store.disk_bytes();
    let report = store.apply_retention(now).unwrap();
    let after = store.disk_bytes();
    eprintln!("retention: {report:?}; disk {before} -> {after}");
    assert!(report.chunks_deleted > 0);
    let got = store.querier(i64::MIN, i64::MAX).select_all(&[Matcher::equal("job", "stress")]).unwrap();
    assert_eq!(got.len(), series as usize);
    for (_, samples) in &got {
        // Whole chunks go: nothing older than the cutoff less one chunk range survives, and
        // everything inside the retention is still there.
        let cutoff = now - hour;
        assert!(samples.first().unwrap().0 >= cutoff - 2 * hour, "old data still served");
        let kept = samples.iter().filter(|s| s.0 >= cutoff).count();
        assert_eq!(kept, 61, "every sample of the last hour (one a minute, both ends) is kept");
    }
    assert!(after < before * 7 / 10, "disk usage must fall: {before} -> {after}");
    store.close().unwrap();
}

/// A database another handle holds is not damage: a second open waits for it (a restart
/// within one process), and refuses if it stays held; the live data is never moved aside.
#[test]
fn a_store_in_use_is_waited_for_or_refused_never_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), opts()).unwrap();
    fill(&first, 0, 50);
    match Store::open(dir.path(), opts()) {
        Err(obsd::store::StoreError::InUse { .. }) => {}
        Err(e) => panic!("expected InUse, got {e}"),
        Ok(_) => panic!("a second handle opened a database in use"),
    }
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("damaged"))
        .collect();
    assert!(aside.is_empty(), "moved aside: {aside:?}");
    assert_eq!(served(&first).iter().map(Vec::len).sum::<usize>(), 50 * SERIES as usize);
    // Released while the second open waits: it opens and sees everything.
    let waiter = {
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || Store::open(&path, opts()))
    };
    std::thread::sleep(Duration::from_millis(300));
    first.close().unwrap();
    let second = waiter.join().unwrap().unwrap();
    assert_eq!(served(&second).iter().map(Vec::len).sum::<usize>(), 50 * SERIES as usize);
    assert!(!second.damage().any(), "{:?}", second.damage());
}

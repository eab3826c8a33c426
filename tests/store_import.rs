//! `obsd store` commands never make or change a store by mistake: `stats` and `check` refuse a
//! path that holds no store (creating nothing), `import` writes all of a file or nothing of it
//! and requires OpenMetrics' `# EOF`, and retention counts back from the newest sample, so a
//! backfill of older data survives the next pass.

mod common;

use common::obsd_binary;
use obsd::model::Matcher;
use obsd::store::{Store, StoreOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(obsd_binary()).arg("--data-dir").arg(data).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tsdb(data: &Path) -> PathBuf {
    data.join("replica").join("tsdb")
}

/// `lines` samples of one series, one every 15 s from `start` (seconds), then `tail`.
fn om_file(dir: &Path, name: &str, start: i64, lines: usize, tail: &str) -> PathBuf {
    let mut text = String::with_capacity(lines * 40);
    text.push_str("# TYPE import_test gauge\n");
    for i in 0..lines {
        text.push_str(&format!("import_test{{k=\"{}\"}} {i} {}\n", i % 3, start + (i / 3) as i64 * 15));
    }
    text.push_str(tail);
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn samples_in_store(data: &Path) -> String {
    let (ok, out, err) = run(data, &["store", "stats"]);
    assert!(ok, "stats: {out}{err}");
    out.lines().find(|l| l.starts_with("samples:")).unwrap_or_default().to_string()
}

#[test]
fn stats_and_check_refuse_a_path_without_a_store_and_create_nothing() {
    let base = tempfile::tempdir().unwrap();
    let typo = base.path().join("typo");
    for cmd in ["stats", "check"] {
        let (ok, out, err) = run(&typo, &["store", cmd]);
        assert!(!ok, "{cmd} on a missing path must fail: {out}");
        assert!(
            err.contains(&format!("{} does not exist; nothing was created", tsdb(&typo).display())),
            "{err}"
        );
        assert!(!typo.exists(), "{cmd} created {}", typo.display());
    }
    // A directory that is there but holds no store (an empty role dir, a wrong --role).
    let empty = base.path().join("empty");
    std::fs::create_dir_all(tsdb(&empty)).unwrap();
    for cmd in ["stats", "check"] {
        let (ok, _, err) = run(&empty, &["store", cmd]);
        assert!(!ok && err.contains("holds no obsd store"), "{cmd}: {err}");
        assert_eq!(std::fs::read_dir(tsdb(&empty)).unwrap().count(), 0, "{cmd} wrote into the directory");
    }
}

/// The case: a file that fails at a line past the first commit (20,000 samples)
/// wrote everything before that line. Now: nothing, into a new store or an existing one.
#[test]
fn an_import_that_fails_at_line_n_writes_nothing() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let bad =
        om_file(base.path(), "bad.om", 1_700_000_000, 45_000, "import_test{k=\"0\"} x 1700900000\n# EOF\n");
    let (ok, _, err) = run(&data, &["store", "import", bad.to_str().unwrap()]);
    assert!(!ok, "a bad line must fail the import");
    assert!(err.contains(&format!("{}:45002: bad value", bad.display())), "names file and line: {err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(!data.exists(), "a refused import created {}", data.display());

    let good = om_file(base.path(), "good.om", 1_600_000_000, 300, "# EOF\n");
    let (ok, out, err) = run(&data, &["store", "import", good.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let before = samples_in_store(&data);
    assert!(before.contains("300"), "{before}");
    let (ok, _, err) = run(&data, &["store", "import", bad.to_str().unwrap()]);
    assert!(!ok, "{err}");
    assert_eq!(samples_in_store(&data), before, "a refused import changed the store");
}

#[test]
fn an_import_requires_eof_and_nothing_after_it() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let cut = om_file(base.path(), "cut.om", 1_700_000_000, 100, "");
    let (ok, _, err) = run(&data, &["store", "import", cut.to_str().unwrap()]);
    assert!(!ok, "a file without # EOF must be refused");
    assert!(err.contains(&format!("{}: does not end with `# EOF`", cut.display())), "{err}");
    assert!(!data.exists(), "a refused import created {}", data.display());

    let after =
        om_file(base.path(), "after.om", 1_700_000_000, 100, "# EOF\nimport_test{k=\"9\"} 1 1700000000\n");
    let (ok, _, err) = run(&data, &["store", "import", after.to_str().unwrap()]);
    assert!(!ok && err.contains("unexpected data after `# EOF`"), "{err}");
    assert!(!data.exists());

    let good = om_file(base.path(), "good.om", 1_700_000_000, 100, "# EOF\n\n");
    let (ok, out, err) = run(&data, &["store", "import", good.to_str().unwrap()]);
    assert!(ok && out.contains("imported 100 samples"), "{out}{err}");
}

fn count(store: &Store) -> usize {
    let got =
        store.querier(i64::MIN, i64::MAX).select_all(&[Matcher::equal("__name__", "backfill")]).unwrap();
    got.iter().map(|(_, s)| s.len()).sum()
}

/// Prometheus deletes blocks whose end is a whole retention older than the newest block's
/// end, not the clock's now: a backfill of last month stays until newer data pushes it out.
#[test]
fn retention_counts_from_the_newest_sample_not_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000i64;
    let now = obsd::model::now_ms();
    let opts = StoreOptions {
        background: false,
        retention: Duration::from_secs(15 * 86_400),
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let labels = obsd::model::Labels::metric("backfill", &[("job", "import")]);
    // Days 40 to 30 before now, every 10 minutes: all of it older than 15 d by the clock.
    let mut app = store.appender();
    let mut t = now - 40 * day;
    while t <= now - 30 * day {
        app.append(&labels, t, 1.0).unwrap();
        t += 600_000;
    }
    app.commit().unwrap();
    store.cut_heads().unwrap();
    let imported = count(&store);
    let report = store.apply_retention(now).unwrap();
    assert_eq!(report.chunks_deleted, 0, "the backfill is within 15 d of the newest sample");
    assert_eq!(count(&store), imported);

    // New data arrives: now the backfill is more than 15 d older than the newest sample.
    let mut app = store.appender();
    app.append(&labels, now, 2.0).unwrap();
    app.commit().unwrap();
    let report = store.apply_retention(now).unwrap();
    assert!(report.chunks_deleted > 0);
    assert_eq!(count(&store), 1, "only the new sample is left");

    // A sample from the future does not move the reference past the clock.
    let other = obsd::model::Labels::metric("backfill", &[("job", "other")]);
    let mut app = store.appender();
    app.append(&other, now - 10 * day, 3.0).unwrap();
    app.append(&other, now + 365 * day, 4.0).unwrap();
    app.commit().unwrap();
    store.apply_retention(now).unwrap();
    assert_eq!(count(&store), 3, "data within 15 d of now stays despite a sample a year ahead");
    store.close().unwrap();
}

/// An import reaching back further than the default retention says, at WARN, that the service
/// would delete the older part once it stores current data; a recent one says nothing.
#[test]
fn an_import_older_than_the_retention_warns() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let now_s = obsd::model::now_ms() / 1000;
    let recent = om_file(base.path(), "recent.om", now_s - 86_400, 30, "# EOF\n");
    let (ok, out, err) = run(&data, &["store", "import", recent.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(!err.contains("WARN"), "{err}");
    let old = om_file(base.path(), "old.om", now_s - 40 * 86_400, 30, "# EOF\n");
    let (ok, out, err) = run(&data, &["store", "import", old.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("WARN") && err.contains("40.0 days ago") && err.contains("retention_time"), "{err}");
}

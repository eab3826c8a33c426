//! `obsd store` commands never make or change a store by mistake: `stats` and `check` refuse a
//! path that holds no store (creating nothing), `import` writes all of a file or nothing of it
//! and requires OpenMetrics' `# EOF`, and retention counts back from the newest sample, so a
//! backfill of older data survives the next pass.

mod common;

use obsd::store::{Matcher, Store, StoreOptions};
use std::time::Duration;

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
    let now = obsd::store::now_ms();
    let opts = StoreOptions {
        background: false,
        retention: Duration::from_secs(15 * 86_400),
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let labels = obsd::store::Labels::metric("backfill", &[("job", "import")]);
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
    let other = obsd::store::Labels::metric("backfill", &[("job", "other")]);
    let mut app = store.appender();
    app.append(&other, now - 10 * day, 3.0).unwrap();
    app.append(&other, now + 365 * day, 4.0).unwrap();
    app.commit().unwrap();
    store.apply_retention(now).unwrap();
    assert_eq!(count(&store), 3, "data within 15 d of now stays despite a sample a year ahead");
    store.close().unwrap();
}

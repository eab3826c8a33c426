//! Hidden `obsd store stress-append`: appends as fast as it can and prints each point made
//! durable, for the crash tests that kill it at random moments.

use crate::model::Labels;
use crate::store::{Store, StoreOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The value stress-append writes for series `i` at `t`; every 17th timestamp is a stale
/// marker so bit-exact NaN survival is checked too.
pub fn stress_value(i: u64, t: i64) -> f64 {
    if t % 17 == 0 { crate::model::stale_nan() } else { (t as f64) * 7.0 + i as f64 / 3.0 }
}

/// Labels of stress series `i`.
pub fn stress_labels(i: u64) -> Labels {
    Labels::metric("stress_total", &[("series", &i.to_string()), ("job", "stress")])
}

/// Appends `series` series at t = start, start+1, ... as fast as it can; after every `sync_every`
/// commits calls `Store::sync` and prints `durable T` (every t ≤ T of every series is durable).
/// Stops after `count` timestamps (0 = forever).
pub fn stress_append(
    dir: &Path,
    series: u64,
    start: i64,
    sync_every: u64,
    fsync_interval_ms: u64,
    count: u64,
) -> anyhow::Result<()> {
    let opts = StoreOptions {
        wal_fsync_interval: Duration::from_millis(fsync_interval_ms),
        checkpoint_interval: Duration::from_millis(700),
        // Stress timestamps are tiny numbers (near the epoch); never let retention touch them.
        retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..StoreOptions::default()
    };
    let store = Store::open(dir, opts)?;
    let mut refs = Vec::new();
    let mut app = store.appender();
    for i in 0..series {
        refs.push(app.series_ref(&stress_labels(i))?);
    }
    app.rollback();
    let out = std::io::stdout();
    writeln!(out.lock(), "started {start}")?;
    let mut t = start;
    let mut commits = 0u64;
    loop {
        let mut app = store.appender();
        for (i, r) in refs.iter().enumerate() {
            // A restarted run may repeat timestamps already stored: same value, so a no-op.
            let _ = app.append_ref(r, t, stress_value(i as u64, t));
        }
        app.commit()?;
        commits += 1;
        if commits.is_multiple_of(sync_every.max(1)) {
            store.sync()?;
            let mut o = out.lock();
            writeln!(o, "durable {t}")?;
            o.flush()?;
        }
        t += 1;
        if count > 0 && (t - start) as u64 >= count {
            store.sync()?;
            writeln!(out.lock(), "durable {}", t - 1)?;
            break;
        }
    }
    store.close()?;
    Ok(())
}

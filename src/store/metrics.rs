//! The store's self metrics: the counters every part of the store bumps, and their rendering as
//! the `obsd_store_*` families.

use super::{Inner, access, read};
use crate::exposition::MetricFamily;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(super) struct Metrics {
    pub(super) samples_appended: AtomicU64,
    pub(super) out_of_order: AtomicU64,
    pub(super) duplicate: AtomicU64,
    pub(super) exemplars_appended: AtomicU64,
    pub(super) series_created: AtomicU64,
    pub(super) series_removed: AtomicU64,
    pub(super) chunks_written: AtomicU64,
    pub(super) chunks_merged: AtomicU64,
    pub(super) chunks_deleted: AtomicU64,
    pub(super) commits: AtomicU64,
    pub(super) wal_corruptions: AtomicU64,
    pub(super) wal_replay_seconds_x1e6: AtomicU64,
    pub(super) chunk_corruptions: AtomicU64,
    pub(super) db_recoveries: AtomicU64,
    pub(super) checkpoints: AtomicU64,
    pub(super) checkpoint_seconds_x1e6: AtomicU64,
    pub(super) retention_runs: AtomicU64,
    pub(super) retention_seconds_x1e6: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) compaction_seconds_x1e6: AtomicU64,
    pub(super) write_errors: AtomicU64,
    pub(super) commits_refused: AtomicU64,
    pub(super) db_reopens: AtomicU64,
    pub(super) open_errors: access::OpenErrors,
}

impl Inner {
    pub(super) fn metric_families(&self) -> Vec<MetricFamily> {
        let m = &self.metrics;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let secs = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e6;
        let (series, head_chunks) = {
            let ix = read(&self.index);
            let open = ix.series.values().filter(|s| s.lock_head().open.is_some()).count();
            (ix.series.len(), open)
        };
        let mut out = vec![
            MetricFamily::gauge("obsd_store_series", "Series in the store.").with_value(series as f64),
            MetricFamily::gauge("obsd_store_head_chunks", "Open chunks in the in-memory head.")
                .with_value(head_chunks as f64),
            MetricFamily::counter("obsd_store_chunks_written_total", "Chunks written to sled.")
                .with_value(get(&m.chunks_written)),
            MetricFamily::counter(
                "obsd_store_chunks_merged_total",
                "Chunks folded into one chunk per series and closed 2 h range.",
            )
            .with_value(get(&m.chunks_merged)),
            MetricFamily::counter("obsd_store_chunks_deleted_total", "Chunks deleted by retention.")
                .with_value(get(&m.chunks_deleted)),
            MetricFamily::counter("obsd_store_samples_appended_total", "Samples appended.")
                .with_value(get(&m.samples_appended)),
            MetricFamily::counter("obsd_store_exemplars_appended_total", "Exemplars appended.")
                .with_value(get(&m.exemplars_appended)),
            MetricFamily::counter("obsd_store_commits_total", "Appender commits.")
                .with_value(get(&m.commits)),
            MetricFamily::counter(
                "obsd_store_out_of_order_samples_total",
                "Samples rejected for being older than their series' newest sample.",
            )
            .with_value(get(&m.out_of_order)),
            MetricFamily::counter(
                "obsd_store_duplicate_samples_total",
                "Samples rejected for repeating a timestamp with another value.",
            )
            .with_value(get(&m.duplicate)),
            MetricFamily::counter("obsd_store_series_created_total", "Series created.")
                .with_value(get(&m.series_created)),
            MetricFamily::counter("obsd_store_series_removed_total", "Series removed by retention.")
                .with_value(get(&m.series_removed)),
            MetricFamily::gauge("obsd_store_disk_bytes", "Bytes of the store's files (sled and WAL).")
                .with_value(self.disk_bytes() as f64),
            MetricFamily::gauge("obsd_store_wal_bytes", "Bytes of WAL segments.")
                .with_value(self.wal.disk_bytes() as f64),
            MetricFamily::gauge("obsd_store_wal_replay_duration_seconds", "Time the last WAL replay took.")
                .with_value(secs(&m.wal_replay_seconds_x1e6)),
            MetricFamily::counter(
                "obsd_store_wal_corruptions_total",
                "WAL segments whose torn or corrupt tail was skipped at replay.",
            )
            .with_value(get(&m.wal_corruptions)),
            MetricFamily::counter(
                "obsd_store_chunk_corruptions_total",
                "Chunks, heads, series or symbols skipped because they failed their checksum or decode.",
            )
            .with_value(get(&m.chunk_corruptions)),
            MetricFamily::counter(
                "obsd_store_db_recoveries_total",
                "Times a damaged sled database was moved aside and rebuilt from the WAL.",
            )
            .with_value(get(&m.db_recoveries)),
            MetricFamily::counter("obsd_store_checkpoints_total", "Head checkpoints (WAL truncations).")
                .with_value(get(&m.checkpoints)),
            MetricFamily::gauge("obsd_store_checkpoint_duration_seconds", "Time the last checkpoint took.")
                .with_value(secs(&m.checkpoint_seconds_x1e6)),
            MetricFamily::counter("obsd_store_retention_runs_total", "Retention passes.")
                .with_value(get(&m.retention_runs)),
            MetricFamily::gauge(
                "obsd_store_retention_duration_seconds",
                "Time the last retention pass took.",
            )
            .with_value(secs(&m.retention_seconds_x1e6)),
            MetricFamily::counter(
                "obsd_store_compactions_total",
                "Rewrites of the sled database that give deleted space back to the filesystem.",
            )
            .with_value(get(&m.compactions)),
            MetricFamily::gauge("obsd_store_compaction_duration_seconds", "Time the last compaction took.")
                .with_value(secs(&m.compaction_seconds_x1e6)),
            MetricFamily::counter("obsd_store_write_errors_total", "Commits that failed to write to sled.")
                .with_value(get(&m.write_errors)),
            MetricFamily::counter(
                "obsd_store_commits_refused_total",
                "Commits refused whole because the store could not make them durable (full disk, failing WAL or sled).",
            )
            .with_value(get(&m.commits_refused)),
            MetricFamily::counter(
                "obsd_store_wal_failed_flushes_total",
                "WAL writes or fsyncs that failed; each is retried with nothing dropped.",
            )
            .with_value(self.wal.failed_flushes() as f64),
            MetricFamily::counter(
                "obsd_store_db_reopens_total",
                "Times the sled database was reopened after a failed write, without a restart.",
            )
            .with_value(get(&m.db_reopens)),
            {
                let mut f = MetricFamily::counter(
                    "obsd_store_open_errors_total",
                    "Opens and reopens of the store refused because the system denied its files (permission, read-only filesystem, full or failing disk) or another process held it.",
                );
                for reason in access::OpenErrorReason::ALL {
                    f.add(&[("reason", reason.label())], m.open_errors.get(reason) as f64);
                }
                f
            },
            MetricFamily::gauge("obsd_store_writable", "1 while the store takes commits, 0 while it refuses them.")
                .with_value(if self.unwritable().is_none() { 1.0 } else { 0.0 }),
        ];
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

//! The time-series store on sled, shaped like Prometheus's `storage` interface: an [`Appender`]
//! (append, commit, rollback) and a [`Querier`] (select by matchers over a time range, label
//! names and values).
//!
//! Layers, leaf first: `chunk` (the XOR layout the head appends to, and the decimal one chunks
//! may take on disk), `head` (per-series open chunk), `wal` (group committed write-ahead log),
//! `index` (series ↔ labels, postings), `keys` (sled layout), `head_file` (checkpointed heads).
//!
//! The store itself is split by verb, as Prometheus splits `tsdb/head*.go`. This file: the types
//! ([`Store`], [`StoreOptions`], [`StoreError`], `Inner`) and the lock helpers. `db`: the sled
//! handle and its generations, the one write path every sled write takes, and the failed-write
//! state with its reopen. `append`: the [`Appender`] and series creation. `query`: the
//! [`Querier`] and series sets. `recovery`: [`Store::open`] (sled, index, heads, WAL replay).
//! `maintenance`: checkpoints, merges of closed ranges, retention, compaction and the background
//! thread. `metrics`: the self metrics. The verb files use this file and `db`; beyond that,
//! `recovery` calls `maintenance` (a checkpoint after replay, the background thread) and
//! `append` (replay creates series and writes cut chunks as a commit does), and `maintenance`
//! calls `append`'s `write_chunks` (`cut_heads`).
//!
//! Write path: a commit validates and applies its samples to the series heads and copies one
//! WAL record into the WAL buffer under `commit_lock` (in-memory work only), then writes the
//! chunks its samples cut (120 samples or a 2 h boundary) to sled in one batch, each in the
//! smaller of the XOR and decimal layouts. Once a 2 h range is closed, each series' chunks in
//! it are merged into one (`merge_closed_ranges`, after checkpoints). Because heads
//! and the WAL are updated under the same lock, replaying the WAL reproduces the heads exactly.
//!
//! Durability: see `wal`. A commit is durable within `wal_fsync_interval` (default 1 s); that
//! is the most a `kill -9` or power loss loses. A checkpoint (every `checkpoint_interval`, at
//! close, and when the WAL grows large) rotates the WAL, writes every series head to a heads
//! file (`head_file`) and the chunks it cut to sled, flushes sled and deletes the older WAL
//! segments; restart = load heads + replay the newer segments.
//!
//! Damage: sled values carry crc32s; a bad chunk is skipped on read and counted; a bad WAL tail
//! is skipped and counted; a sled database that will not open is moved aside and the store
//! starts from what the WAL still holds. The store never refuses to start over damage.
//!
//! An error the system gives (permission, read-only filesystem, full or failing disk) is not
//! damage: the store refuses to open with the path, the errno and the remedy, and changes
//! nothing (`access`).

pub mod access;
mod append;
pub mod chunk;
pub mod cli;
mod db;
pub(crate) mod encoding;
pub mod head;
pub mod head_file;
pub mod index;
pub mod keys;
mod maintenance;
mod metrics;
mod query;
mod recovery;
mod space;
pub mod wal;

use crate::model::Matcher;
use crate::model::labels::Labels;
pub use append::Appender;
pub use maintenance::RetentionReport;
pub use query::{Querier, SampleIter, SeriesSamples, SeriesSet, StoredSeries};

use crate::exposition::MetricFamily;
use db::{Journal, Op};
use index::{Index, MemSeries};
use metrics::Metrics;
// `cli::scan` (stats, check) reads the heads file the last checkpoint wrote.
use recovery::checkpoint_segment;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store directory {dir}: {source}")]
    Dir { dir: PathBuf, source: io::Error },
    #[error("sled database: {0}")]
    Db(#[from] sled::Error),
    #[error("WAL: {0}")]
    Wal(io::Error),
    #[error("checkpoint heads file: {0}")]
    HeadFile(io::Error),
    /// A peer or scraper sent an older sample than the series holds (Prometheus's
    /// `ErrOutOfOrderSample`).
    #[error("out of order sample: {series} at t={t}")]
    OutOfOrderSample { series: String, t: i64 },
    /// Same timestamp, different value (Prometheus's `ErrDuplicateSampleForTimestamp`).
    #[error("duplicate sample for timestamp: {series} at t={t}")]
    DuplicateSample { series: String, t: i64 },
    #[error("series without labels cannot be stored")]
    EmptyLabels,
    /// The series behind a cached reference was removed (retention); append by labels again.
    #[error("series {0} no longer exists")]
    UnknownSeries(u64),
    #[error("sled database {dir} is in use by another obsd process (or another store handle)")]
    InUse { dir: PathBuf },
    #[error("store in {dir} has on-disk format {found}; this obsd reads format {expected}")]
    Version { dir: PathBuf, found: u32, expected: u32 },
    /// The store refuses writes it could not make durable (a full disk, a failing WAL or
    /// database); nothing of the refused commit was applied. The condition clears by itself
    /// once the cause is gone.
    #[error("the store cannot take writes now: {0}")]
    Unwritable(String),
    #[error("the sled database is being reopened after a failed write; try again")]
    Reopening,
    /// The system refused access to a store file (owner, read-only filesystem, full or failing
    /// disk). Not damage: nothing was changed or moved aside.
    #[error(
        "cannot use {path}: {error}; the store was not changed and nothing was moved aside. To fix: {remedy}",
        path = path.display(), error = access::describe(source)
    )]
    Refused { path: PathBuf, reason: access::OpenErrorReason, source: io::Error, remedy: String },
}

impl StoreError {
    /// A refusal for an I/O error at `path` in the store in `dir`.
    pub fn refused(dir: &Path, path: &Path, source: io::Error) -> StoreError {
        let reason = access::OpenErrorReason::of(&source);
        StoreError::Refused { path: path.to_path_buf(), reason, remedy: access::remedy(reason, dir), source }
    }

    /// Why an open failed, when the store could not be used (not damage, not a bad format).
    pub fn open_error_reason(&self) -> Option<access::OpenErrorReason> {
        match self {
            StoreError::Refused { reason, .. } => Some(*reason),
            StoreError::InUse { .. } => Some(access::OpenErrorReason::InUse),
            StoreError::Dir { source, .. } => Some(access::OpenErrorReason::of(source)),
            _ => None,
        }
    }

    /// Whether the caller's input was at fault (a 400 for remote write), not the store.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            StoreError::OutOfOrderSample { .. }
                | StoreError::DuplicateSample { .. }
                | StoreError::EmptyLabels
                | StoreError::UnknownSeries(_)
        )
    }
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Data older than this before the store's newest sample (never later than now) is
    /// deleted, as Prometheus counts it. Prometheus default: 15 days.
    pub retention: Duration,
    /// Oldest data is deleted while the store's files exceed this.
    pub retention_bytes: Option<u64>,
    /// Samples up to this much older than a series' newest are accepted (0 = reject, as
    /// Prometheus's `out_of_order_time_window` default).
    pub out_of_order_window: Duration,
    /// How often the WAL is written and fsynced; the durability window. Zero = every commit
    /// waits for its fsync.
    pub wal_fsync_interval: Duration,
    pub checkpoint_interval: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
    pub max_exemplars_per_series: usize,
    /// Least time between two rewrites of the sled database after retention deleted data
    /// (size-based retention rewrites whenever it must).
    pub compaction_interval: Duration,
    /// sled's page cache.
    pub cache_bytes: u64,
    /// Samples per in-order chunk before it is cut (Prometheus: 120). Chunks never span a
    /// 2 h range whatever this is. A backfill uses whole 2 h chunks: a quarter of the keys.
    pub chunk_samples: usize,
    /// Run checkpoint and retention in a background thread (off for one-shot CLI tools).
    pub background: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Duration::from_secs(15 * 24 * 3600),
            retention_bytes: None,
            out_of_order_window: Duration::ZERO,
            wal_fsync_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(300),
            retention_interval: Duration::from_secs(60),
            max_exemplars_per_series: 16,
            compaction_interval: Duration::from_secs(3600),
            cache_bytes: 256 << 20,
            chunk_samples: head::SAMPLES_PER_CHUNK,
            background: true,
        }
    }
}

/// An exemplar: a sample with labels (usually `trace_id`) pointing at a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    pub t: i64,
}

/// A handle on a series for fast repeated appends (what a scrape loop caches per line).
#[derive(Clone)]
pub struct SeriesRef(Arc<MemSeries>);

impl std::fmt::Debug for SeriesRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeriesRef({})", self.0.sid)
    }
}

impl SeriesRef {
    pub fn id(&self) -> u64 {
        self.0.sid
    }

    /// False once retention removed the series: a cached reference must be looked up again.
    pub fn is_live(&self) -> bool {
        !self.0.removed.load(Ordering::Acquire)
    }
}

/// What a commit did; rejected samples are counted, not fatal, as Prometheus's scrape loop
/// counts them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    pub appended: usize,
    pub out_of_order: usize,
    pub duplicate: usize,
    /// Same timestamp and value as already stored.
    pub noop: usize,
    /// Series removed by retention before the commit.
    pub unknown_series: usize,
    pub exemplars: usize,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

struct Inner {
    dir: PathBuf,
    opts: StoreOptions,
    /// The current sled generation; replaced by a compaction (readers keep the handle they
    /// cloned, which stays valid). `None` only while a failed database is reopened.
    db: RwLock<Option<sled::Db>>,
    /// sled writes not yet known to be on disk, replayed on the database should it have to be
    /// reopened after a failed write (sled loses what it had not flushed).
    unflushed: Mutex<Journal>,
    /// Held shared by every sled write, exclusively by a compaction's final switch.
    write_gate: RwLock<()>,
    /// While a compaction copies, writes are also recorded here to be replayed on the copy.
    dirty: Mutex<Option<Vec<Op>>>,
    last_compaction: Mutex<Option<Instant>>,
    index: RwLock<Index>,
    wal: wal::Wal,
    /// Orders head updates with WAL records; held only for in-memory work.
    commit_lock: Mutex<()>,
    metrics: Metrics,
    /// Series ids and symbols below these are in sled as of the last checkpoint.
    checkpointed_sid: AtomicU64,
    checkpointed_symbols: AtomicUsize,
    /// Serializes checkpoints and retention with each other (never taken by appenders).
    maintenance: Mutex<()>,
    /// Heads were loaded from sled `h` keys (a store checkpointed before heads files); the
    /// next checkpoint removes those keys.
    legacy_heads: AtomicBool,
    /// Chunk ranges starting before this are merged (see `merge_closed_ranges`).
    merged_until: AtomicI64,
    stop: (Mutex<bool>, Condvar),
    background: Mutex<Option<std::thread::JoinHandle<()>>>,
    closed: AtomicBool,
    /// The store may hold out-of-order chunks (`keys::META_OUT_OF_ORDER`): then a read can never
    /// stop at the head, since such a chunk may overlap any range.
    out_of_order_chunks: bool,
    /// Free space on the store's filesystem against the reserve (`space`).
    space: space::Space,
    /// The I/O error sled returned, once it has: sled then fails every later write until the
    /// database is reopened, so the store stops taking writes and says why.
    db_failure: Mutex<Option<String>>,
}

/// The store. Clone it freely; all clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Where a role (replica, federation) keeps its store below the data directory; the roles and
/// `obsd store …` agree on it through this one function.
pub fn role_dir(data_dir: &Path, role: &str) -> PathBuf {
    data_dir.join(role).join("tsdb")
}

/// A role's store could not be opened; names the role and its directory.
#[derive(Debug, Error)]
#[error("{role} store in {dir}: {message}")]
pub struct RoleStoreError {
    pub role: &'static str,
    pub dir: String,
    pub message: String,
}

/// Opens `role`'s store under `data_dir` off the async runtime: replaying the WAL is blocking I/O.
pub async fn open_role_store(
    data_dir: &Path,
    role: &'static str,
    retention: Duration,
    retention_bytes: Option<u64>,
) -> Result<Store, RoleStoreError> {
    let dir = role_dir(data_dir, role);
    let options = StoreOptions { retention, retention_bytes, ..StoreOptions::default() };
    let shown = dir.display().to_string();
    let error = |message: String| RoleStoreError { role, dir: shown.clone(), message };
    let opened = tokio::task::spawn_blocking(move || Store::open(&dir, options))
        .await
        .map_err(|e| error(e.to_string()))?;
    opened.map_err(|e| {
        // The process exits on this; the line says why where the service's log is read.
        let reason = e.open_error_reason().map_or("other", |r| r.label());
        tracing::error!(role, dir = %shown, reason, error = %e, "the store cannot be opened");
        error(e.to_string())
    })
}

use crate::model::now_ms;

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

impl Store {
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether the store takes commits now; the reason when it does not (for `/-/ready`).
    pub fn write_health(&self) -> Result<(), String> {
        self.inner.unwritable().map_or(Ok(()), Err)
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    /// Makes every commit so far durable (WAL write + fsync).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.inner.wal.sync().map_err(StoreError::Wal)
    }

    /// Bytes of the store's files (sled + WAL) as the filesystem counts them.
    pub fn disk_bytes(&self) -> u64 {
        self.inner.disk_bytes()
    }

    pub fn series_count(&self) -> usize {
        read(&self.inner.index).series.len()
    }

    /// Damage found since open: (WAL segments with a bad tail, chunks failing their crc or
    /// decode, databases moved aside).
    pub fn damage(&self) -> Damage {
        let m = &self.inner.metrics;
        Damage {
            wal_corruptions: m.wal_corruptions.load(Ordering::Relaxed),
            chunk_corruptions: m.chunk_corruptions.load(Ordering::Relaxed),
            db_recoveries: m.db_recoveries.load(Ordering::Relaxed),
        }
    }

    /// `obsd_store_*` self metrics.
    pub fn metric_families(&self) -> Vec<MetricFamily> {
        self.inner.metric_families()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub wal_corruptions: u64,
    pub chunk_corruptions: u64,
    pub db_recoveries: u64,
}

impl Damage {
    pub fn any(&self) -> bool {
        self.wal_corruptions + self.chunk_corruptions + self.db_recoveries > 0
    }
}

impl Inner {
    fn ooo_window_ms(&self) -> i64 {
        self.opts.out_of_order_window.as_millis().min(i64::MAX as u128) as i64
    }

    fn heads_dir(&self) -> PathBuf {
        self.dir.join("heads")
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::SeqCst) {
            // Best effort: the WAL already holds every commit; this only shortens the next replay.
            let _ = self.wal.sync();
            let _ = self.flush_db();
        }
    }
}

/// Merges sorted sample lists; on equal timestamps the earlier list wins.
fn merge_samples(lists: Vec<Vec<(i64, f64)>>) -> Vec<(i64, f64)> {
    let mut all: Vec<(i64, usize, f64)> =
        lists.into_iter().enumerate().flat_map(|(i, l)| l.into_iter().map(move |(t, v)| (t, i, v))).collect();
    all.sort_by_key(|&(t, i, _)| (t, i));
    all.dedup_by_key(|s| s.0);
    all.into_iter().map(|(t, _, v)| (t, v)).collect()
}

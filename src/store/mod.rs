//! The time-series store on sled, shaped like Prometheus's `storage` interface: an [`Appender`]
//! (append, commit, rollback) and a [`Querier`] (select by matchers over a time range, label
//! names and values).
//!
//! Layers, leaf first: `chunk` (Gorilla codec, for the head), `decimal_chunk` (the smaller
//! layout chunks take on disk), `head` (per-series open chunk), `wal` (group committed
//! write-ahead log), `index` (series ↔ labels, postings), `keys` (sled layout).
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
mod metrics;
mod query;
mod space;
pub mod wal;

pub use crate::model::labels::Labels;
pub use crate::model::{MatchOp, Matcher};
pub use append::Appender;
pub use query::{Querier, SampleIter, SeriesSamples, SeriesSet, StoredSeries};

use crate::exposition::MetricFamily;
use db::{DB_LOCK_WAIT, Journal, Op, Ops, chunk_value, current_db_path, is_lock_error, write_current};
use head::{ClosedChunk, SeriesHead};
use index::{Index, MemSeries};
use metrics::Metrics;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};
use thiserror::Error;

pub use crate::model::{STALE_NAN_BITS, is_stale_nan, stale_nan};

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

pub use crate::model::now_ms;

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// The WAL segment of the last checkpoint (0: none yet); its heads file holds the heads.
fn checkpoint_segment(db: &sled::Db) -> Result<u64, StoreError> {
    Ok(db.get(keys::META_CHECKPOINT)?.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
}

/// Queues the replacement of one series' in-order chunks of one range by a single chunk;
/// returns how many chunks it replaces (0: fewer than two, or one of them damaged, which
/// then stays as it is for `store check` to report).
fn merge_chunk_group(sid: u64, group: &[(sled::IVec, keys::ChunkKey, sled::IVec)], batch: &mut Ops) -> usize {
    let (Some(first), Some(last)) = (group.first(), group.last()) else { return 0 };
    if group.len() < 2 {
        return 0;
    }
    let mut lists = Vec::with_capacity(group.len());
    for (_, _, v) in group {
        match keys::check_crc(v).map(chunk::decode) {
            Some(Ok(d)) => lists.push(d),
            _ => return 0,
        }
    }
    // In-order chunks do not overlap, except after a crash replayed samples a chunk on disk
    // already held: sorted and deduplicated as readers would see them.
    let samples = merge_samples(lists);
    let Some(bytes) = chunk::encode_smallest(&samples) else { return 0 };
    for (k, _, _) in group {
        batch.remove(&k[..]);
    }
    batch.insert(
        &keys::chunk(sid, last.1.maxt, first.1.mint, keys::KIND_IN_ORDER)[..],
        keys::with_crc(&bytes),
    );
    group.len()
}

/// Removes sled generations left by an interrupted or finished compaction.
fn remove_stale_generations(dir: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let is_gen =
            name == "db" || (name.starts_with("db.") && name[3..].chars().all(|c| c.is_ascii_digit()));
        if is_gen && e.path() != current {
            tracing::info!(path = %e.path().display(), "removing an old sled generation");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Opens sled, moving a database that will not open aside instead of refusing to start.
fn open_db(dir: &Path, opts: &StoreOptions, metrics: &Metrics) -> Result<sled::Db, StoreError> {
    let path = current_db_path(dir).map_err(|e| StoreError::refused(dir, &dir.join("CURRENT"), e))?;
    remove_stale_generations(dir, &path);
    let config = sled::Config::new().path(&path).cache_capacity(opts.cache_bytes).flush_every_ms(Some(1000));
    // A database another handle still holds is not damage: moving it aside would throw the
    // live data away. It is waited for (a restart within one process: sled's threads let go
    // of the file a little after the handle is dropped), then refused.
    let deadline = Instant::now() + DB_LOCK_WAIT;
    let reason = loop {
        // sled may panic rather than return an error on some damage; both are treated alike.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
        match attempt {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) if is_lock_error(&e) => {
                if Instant::now() >= deadline {
                    return Err(StoreError::InUse { dir: path.clone() });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // An error the system gave (EACCES, EROFS, ENOSPC, EIO, ...) says nothing about
            // the data: refused, so an intact database is never moved aside for it.
            Ok(Err(sled::Error::Io(io))) if io.raw_os_error().is_some() => {
                return Err(StoreError::refused(dir, &path, io));
            }
            Ok(Err(e)) => break e.to_string(),
            Err(_) => break "sled panicked while recovering".to_string(),
        }
    };
    // Only a database whose every byte reads is damaged: a read error (EIO from a failing
    // disk, which sled may report as a panic) is the system's, and moving aside would hide data.
    access::read_tree(&path).map_err(|(at, source)| StoreError::refused(dir, &at, source))?;
    let aside = dir.join(format!("db.damaged-{}", now_ms()));
    tracing::error!(
        path = %path.display(), moved_to = %aside.display(), %reason,
        "sled database is damaged and cannot be opened; moved aside, rebuilding from the WAL"
    );
    metrics.db_recoveries.fetch_add(1, Ordering::Relaxed);
    std::fs::rename(&path, &aside).map_err(|source| StoreError::Dir { dir: path.clone(), source })?;
    // Replay must then start from the oldest segment still present.
    Ok(sled::Config::new().path(&path).cache_capacity(opts.cache_bytes).flush_every_ms(Some(1000)).open()?)
}

impl Store {
    /// Opens (or creates) the store in `dir`: loads the index and heads, replays the WAL,
    /// starts background checkpoints and retention.
    pub fn open(dir: impl AsRef<Path>, opts: StoreOptions) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::refused(&dir, &dir, source))?;
        // Before anything is opened, changed or deleted: a file this process may not use must
        // be refused, not mistaken for damage further on.
        access::check_tree(&dir).map_err(|(path, source)| StoreError::refused(&dir, &path, source))?;
        let metrics = Metrics::default();
        let db = open_db(&dir, &opts, &metrics)?;
        // sled silently opens empty after losing its file's tail; a marker outside sled tells
        // "new store" from "lost database".
        let marker = dir.join("STORE");
        match db.get(keys::META_VERSION)? {
            None if marker.exists() && metrics.db_recoveries.load(Ordering::Relaxed) == 0 => {
                metrics.db_recoveries.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    dir = %dir.display(),
                    "sled database lost its contents (truncated or replaced); rebuilding from the WAL"
                );
                db.insert(keys::META_VERSION, &keys::FORMAT_VERSION.to_be_bytes())?;
            }
            Some(v) => {
                let found = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
                if found != keys::FORMAT_VERSION {
                    return Err(StoreError::Version { dir, found, expected: keys::FORMAT_VERSION });
                }
            }
            None => {
                db.insert(keys::META_VERSION, &keys::FORMAT_VERSION.to_be_bytes())?;
            }
        }
        if !marker.exists() {
            db.flush()?;
            std::fs::write(&marker, format!("obsd store, format {}\n", keys::FORMAT_VERSION))
                .map_err(|source| StoreError::Dir { dir: dir.clone(), source })?;
        }
        let wal_dir = dir.join("wal");
        let segments = wal::list_segments(&wal_dir).map_err(|e| StoreError::refused(&dir, &wal_dir, e))?;
        let checkpoint = checkpoint_segment(&db)?;
        let next_segment = segments.last().map_or(1, |l| l + 1).max(checkpoint);
        let wal = wal::Wal::open(&wal_dir, next_segment, opts.wal_fsync_interval)
            .map_err(|e| StoreError::refused(&dir, &wal_dir, e))?;
        if !opts.out_of_order_window.is_zero() && db.get(keys::META_OUT_OF_ORDER)?.is_none() {
            db.insert(keys::META_OUT_OF_ORDER, &[1])?;
            db.flush()?;
        }
        let out_of_order_chunks = db.get(keys::META_OUT_OF_ORDER)?.is_some();
        let inner = Arc::new(Inner {
            dir,
            opts,
            db: RwLock::new(Some(db)),
            unflushed: Mutex::new(Journal::default()),
            write_gate: RwLock::new(()),
            dirty: Mutex::new(None),
            last_compaction: Mutex::new(None),
            index: RwLock::new(Index::default()),
            wal,
            commit_lock: Mutex::new(()),
            metrics,
            checkpointed_sid: AtomicU64::new(0),
            checkpointed_symbols: AtomicUsize::new(0),
            maintenance: Mutex::new(()),
            legacy_heads: AtomicBool::new(false),
            merged_until: AtomicI64::new(i64::MIN),
            stop: (Mutex::new(false), Condvar::new()),
            background: Mutex::new(None),
            closed: AtomicBool::new(false),
            out_of_order_chunks,
            space: space::Space::new(),
            db_failure: Mutex::new(None),
        });
        inner.load(checkpoint)?;
        let started = Instant::now();
        let replayed = inner.replay(&segments, checkpoint)?;
        inner.metrics.wal_replay_seconds_x1e6.store(micros(started.elapsed()), Ordering::Relaxed);
        inner.settle_after_replay()?;
        if replayed > 0 {
            tracing::info!(records = replayed, elapsed = ?started.elapsed(), "WAL replayed");
            inner.checkpoint()?;
        }
        let store = Store { inner };
        if store.inner.opts.background {
            let weak = Arc::downgrade(&store.inner);
            let handle = std::thread::Builder::new()
                .name("obsd-store".into())
                .spawn(move || background(weak))
                .map_err(|source| StoreError::Dir { dir: store.inner.dir.clone(), source })?;
            *lock(&store.inner.background) = Some(handle);
        }
        Ok(store)
    }

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

    /// Writes all heads to sled and drops the WAL they cover.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.inner.checkpoint()
    }

    /// Folds each series' in-order chunks of every closed 2 h range into one chunk (what the
    /// background does after a checkpoint). Returns the chunks merged away.
    pub fn merge_closed_ranges(&self) -> Result<usize, StoreError> {
        self.inner.merge_closed_ranges()
    }

    /// Closes every series' open and out-of-order chunks, writes them to disk in their compact
    /// form and checkpoints, as a backfill ends (promtool's blocks hold no head either). A
    /// later append to a series starts a new chunk.
    pub fn cut_heads(&self) -> Result<(), StoreError> {
        let cuts: Vec<(Arc<MemSeries>, Vec<ClosedChunk>)> = {
            let _c = lock(&self.inner.commit_lock);
            let ix = read(&self.inner.index);
            ix.series
                .values()
                .filter_map(|s| {
                    let mut h = s.lock_head();
                    let mut cut: Vec<ClosedChunk> = h.cut_open().into_iter().collect();
                    cut.extend(h.cut_ooo());
                    (!cut.is_empty()).then(|| (s.clone(), cut))
                })
                .collect()
        };
        self.inner.write_chunks(&cuts)?;
        self.inner.checkpoint()
    }

    /// Rewrites the sled database into a fresh generation: gives deleted space back and packs a
    /// freshly backfilled store tightly. Runs beside writers.
    pub fn compact(&self) -> Result<(), StoreError> {
        let _m = lock(&self.inner.maintenance);
        self.inner.compact()
    }

    /// Deletes data older than the retention before the newest sample (or `now_ms`, if that
    /// is earlier) and, with a size limit, the oldest data until under it. Returns chunks
    /// deleted.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport, StoreError> {
        self.inner.apply_retention(now_ms)
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

    /// Stops background work, checkpoints, and flushes. Other clones become unusable for
    /// durable writes.
    pub fn close(self) -> Result<(), StoreError> {
        self.inner.shutdown()
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

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    pub chunks_deleted: u64,
    pub series_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

fn background(weak: Weak<Inner>) {
    let mut last_checkpoint = Instant::now();
    let mut last_retention: Option<Instant> = None;
    let mut last_reopen: Option<Instant> = None;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        {
            let stopped = lock(&inner.stop.0);
            let (stopped, _) = inner
                .stop
                .1
                .wait_timeout(stopped, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
        }
        if last_retention.is_none_or(|l| l.elapsed() >= inner.opts.retention_interval) {
            if let Err(e) = inner.apply_retention(now_ms()) {
                tracing::error!(error = %e, "retention failed");
            }
            last_retention = Some(Instant::now());
        }
        if lock(&inner.db_failure).is_some() {
            if last_reopen.is_none_or(|l: Instant| l.elapsed() >= Duration::from_secs(2)) {
                last_reopen = Some(Instant::now());
                if let Err(e) = inner.reopen_db() {
                    tracing::debug!(error = %e, "sled database not reopened yet");
                }
            }
            continue;
        }
        if !lock(&inner.unflushed).ops.is_empty()
            && let Err(e) = inner.flush_db()
        {
            tracing::debug!(error = %e, "sled flush failed");
        }
        let wal_big = inner.wal.disk_bytes() > 4 * wal::SEGMENT_BYTES;
        if last_checkpoint.elapsed() >= inner.opts.checkpoint_interval || wal_big {
            if let Err(e) = inner.checkpoint() {
                tracing::error!(error = %e, "checkpoint failed");
            }
            if let Err(e) = inner.merge_closed_ranges() {
                tracing::error!(error = %e, "merging closed chunk ranges failed");
            }
            last_checkpoint = Instant::now();
        }
    }
}

impl Inner {
    /// Rewrites the live keys into a fresh sled generation and switches to it, because sled
    /// keeps its file size after deletes (measured: a retention pass deleting 90% of the chunks
    /// left the file 14% larger; after this rewrite it was 9% of its size). Not worth it on a
    /// store without deletions: the copy is written in key order, which leaves sled's nodes
    /// half full (a fresh 10k-series import grew from 8.9 to 12.0 bytes/sample). Writers go on during the copy; their writes are replayed on the copy
    /// under a short exclusive gate. Caller holds `maintenance`.
    fn compact(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let old = self.db()?;
        let old_path =
            current_db_path(&self.dir).map_err(|source| StoreError::Dir { dir: self.dir.clone(), source })?;
        let next = (1u64..)
            .map(|n| format!("db.{n}"))
            .find(|name| !self.dir.join(name).exists() && self.dir.join(name) != old_path)
            .unwrap_or_else(|| "db.0".to_string());
        let new_path = self.dir.join(&next);
        *lock(&self.dirty) = Some(Vec::new());
        let result = (|| -> Result<sled::Db, StoreError> {
            let new = sled::Config::new()
                .path(&new_path)
                .cache_capacity(self.opts.cache_bytes)
                .flush_every_ms(Some(1000))
                .open()?;
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for kv in old.iter() {
                let (k, v) = kv?;
                batch.insert(k, v);
                n += 1;
                if n % 10_000 == 0 {
                    new.apply_batch(std::mem::take(&mut batch))?;
                }
            }
            new.apply_batch(batch)?;
            new.flush()?;
            Ok(new)
        })();
        let new = match result {
            Ok(new) => new,
            Err(e) => {
                *lock(&self.dirty) = None;
                let _ = std::fs::remove_dir_all(&new_path);
                return Err(e);
            }
        };
        {
            let _gate = write(&self.write_gate);
            let dirty = lock(&self.dirty).take().unwrap_or_default();
            new.apply_batch(Ops::to_batch(&dirty))?;
            new.flush()?;
            write_current(&self.dir, &next)
                .map_err(|source| StoreError::Dir { dir: self.dir.clone(), source })?;
            *write(&self.db) = Some(new);
        }
        drop(old);
        // Readers that still hold the old handle keep their open files; the names go now.
        let _ = std::fs::remove_dir_all(&old_path);
        *lock(&self.last_compaction) = Some(Instant::now());
        self.metrics.compactions.fetch_add(1, Ordering::Relaxed);
        self.metrics.compaction_seconds_x1e6.store(micros(started.elapsed()), Ordering::Relaxed);
        tracing::info!(elapsed = ?started.elapsed(), generation = %next, "sled database rewritten");
        Ok(())
    }

    fn ooo_window_ms(&self) -> i64 {
        self.opts.out_of_order_window.as_millis().min(i64::MAX as u128) as i64
    }

    fn heads_dir(&self) -> PathBuf {
        self.dir.join("heads")
    }

    /// Loads symbols and series from sled, and the heads of checkpoint `checkpoint`.
    fn load(&self, checkpoint: u64) -> Result<(), StoreError> {
        let mut ix = write(&self.index);
        for kv in self.db()?.scan_prefix([keys::SYMBOL]) {
            let (k, v) = kv?;
            match (keys::symbol_id(&k), std::str::from_utf8(&v)) {
                (Some(id), Ok(s)) => ix.symbols.load(id, s),
                _ => {
                    self.metrics.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key = ?k, "damaged symbol record skipped");
                }
            }
        }
        for (loaded, kv) in self.db()?.scan_prefix([keys::SERIES]).enumerate() {
            if loaded > 0 && loaded % 65536 == 0 {
                crate::systemd::startup_progress(|| {
                    format!("loading the series index of {}: {loaded} series", self.dir.display())
                });
            }
            let (k, v) = kv?;
            let labels = keys::sid_of(&k).zip(ix.decode_series(&v));
            match labels {
                Some((sid, labels)) if !labels.is_empty() => {
                    ix.insert(sid, &labels);
                }
                _ => {
                    self.metrics.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key = ?k, "damaged series record skipped");
                }
            }
        }
        let install = |sid: u64, h: SeriesHead| {
            let Some(s) = ix.series.get(&sid) else { return };
            if let Some(m) = h.mint() {
                s.note_time(m);
            }
            if let Some((t, _)) = h.last {
                s.note_time(t);
            }
            *s.lock_head() = h;
        };
        for kv in self.db()?.scan_prefix([keys::HEAD]) {
            let (k, v) = kv?;
            self.legacy_heads.store(true, Ordering::Relaxed);
            let head = keys::check_crc(&v).and_then(SeriesHead::decode_checkpoint);
            match keys::sid_of(&k).zip(head) {
                Some((sid, h)) => install(sid, h),
                None => {
                    self.metrics.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(key = ?k, "damaged head checkpoint skipped; its open chunk is lost");
                }
            }
        }
        let heads_dir = self.heads_dir();
        let path = head_file::path(&heads_dir, checkpoint);
        match head_file::read(&heads_dir, checkpoint, install) {
            Ok(Some(read)) if read.damaged > 0 => {
                self.metrics.chunk_corruptions.fetch_add(read.damaged as u64, Ordering::Relaxed);
                tracing::warn!(
                    path = %path.display(), damaged = read.damaged,
                    "damaged records in the checkpoint's heads file skipped; their open chunks are lost"
                );
            }
            Ok(_) => {}
            // Damage is counted in `damaged` above; an error here is the system refusing the
            // file, and the next checkpoint would replace it: refused, so no head is lost.
            Err(e) => return Err(StoreError::refused(&self.dir, &path, e)),
        }
        self.checkpointed_sid.store(ix.next_sid, Ordering::Relaxed);
        self.checkpointed_symbols.store(ix.symbols.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Replays WAL segments from `from` on; returns records applied.
    fn replay(&self, segments: &[u64], from: u64) -> Result<usize, StoreError> {
        let wal_dir = self.dir.join("wal");
        let window = self.ooo_window_ms();
        let mut applied = 0;
        // WAL ids of series that already existed under another id (recreated after a damaged db).
        let mut alias: std::collections::HashMap<u64, Arc<MemSeries>> = Default::default();
        let to_replay: Vec<u64> = segments.iter().copied().filter(|&s| s >= from).collect();
        let progress = |done: usize, records: usize| {
            crate::systemd::startup_progress(|| {
                format!(
                    "replaying the WAL of {}: segment {} of {}, {records} records applied",
                    self.dir.display(),
                    done + 1,
                    to_replay.len()
                )
            })
        };
        for (done, &seg) in to_replay.iter().enumerate() {
            progress(done, applied);
            let path = wal::segment_path(&wal_dir, seg);
            // A segment the system will not hand over is not damage: skipping it would drop
            // acknowledged samples for good once the next checkpoint deletes it.
            let data = std::fs::read(&path).map_err(|e| StoreError::refused(&self.dir, &path, e))?;
            let replay = wal::read_segment(&data);
            if let Some(reason) = replay.bad_reason {
                self.metrics.wal_corruptions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    path = %path.display(), reason, skipped_bytes = replay.bad_bytes,
                    damaged_runs = replay.bad_runs, records_read = replay.records.len(),
                    "WAL segment has torn or corrupt records; each is skipped, the records after it are read"
                );
            }
            for rec in replay.records {
                applied += 1;
                if applied % 4096 == 0 {
                    progress(done, applied);
                }
                match rec {
                    wal::Record::Series { sid, labels } => {
                        if labels.is_empty() {
                            continue;
                        }
                        let existing = {
                            let ix = read(&self.index);
                            let by_id = ix.series.get(&sid).cloned();
                            match by_id {
                                Some(s) if ix.labels_of(&s) == labels => Some(s),
                                _ => ix.lookup(&labels, ix.hash(&labels)).cloned(),
                            }
                        };
                        match existing {
                            Some(s) if s.sid == sid => {}
                            Some(s) => {
                                alias.insert(sid, s);
                            }
                            None => {
                                let taken = read(&self.index).series.contains_key(&sid);
                                if taken {
                                    // The id was reused by a damaged db's rebuild; give it a fresh one.
                                    let s = self.create_series(&labels, false)?;
                                    alias.insert(sid, s);
                                } else {
                                    self.insert_series_with_id(sid, &labels)?;
                                }
                            }
                        }
                    }
                    wal::Record::Samples(samples) => {
                        let mut cuts: Vec<(Arc<MemSeries>, Vec<ClosedChunk>)> = Vec::new();
                        for (sid, t, bits) in samples {
                            let Some(s) = alias
                                .get(&sid)
                                .cloned()
                                .or_else(|| read(&self.index).series.get(&sid).cloned())
                            else {
                                continue;
                            };
                            let mut cut = Vec::new();
                            let ok = s.lock_head().append_with_limit(
                                t,
                                f64::from_bits(bits),
                                window,
                                self.opts.chunk_samples,
                                &mut cut,
                            );
                            if ok.is_ok() {
                                s.note_time(t);
                            }
                            if !cut.is_empty() {
                                cuts.push((s, cut));
                            }
                        }
                        self.write_chunks(&cuts)?;
                    }
                    wal::Record::Exemplars(list) => {
                        for (sid, e) in list {
                            if let Some(s) = alias
                                .get(&sid)
                                .cloned()
                                .or_else(|| read(&self.index).series.get(&sid).cloned())
                            {
                                s.lock_head().push_exemplar(e, self.opts.max_exemplars_per_series);
                            }
                        }
                    }
                }
            }
        }
        Ok(applied)
    }

    /// After loading: a series whose head is empty takes its ordering point and time range from
    /// its newest and oldest chunk on disk.
    fn settle_after_replay(&self) -> Result<(), StoreError> {
        let series: Vec<Arc<MemSeries>> = read(&self.index).series.values().cloned().collect();
        for s in series {
            let prefix = keys::chunk_prefix(s.sid);
            if let Some(m) = self.disk_first_mint(s.sid)? {
                s.note_time(m);
            }
            let mut last_in_order = None;
            for kv in self.db()?.scan_prefix(prefix).rev() {
                let (k, v) = kv?;
                let Some(ck) = keys::parse_chunk(&k) else { continue };
                s.note_time(ck.maxt);
                if ck.kind == keys::KIND_IN_ORDER {
                    last_in_order = Some((ck, v));
                    break;
                }
            }
            let mut h = s.lock_head();
            if let Some((ck, v)) = last_in_order
                && h.last.is_none_or(|(t, _)| t < ck.maxt)
            {
                let last_bits = keys::check_crc(&v)
                    .and_then(|p| chunk::decode(p).ok())
                    .and_then(|samples| samples.last().map(|&(_, v)| v.to_bits()))
                    .unwrap_or(0);
                h.last = Some((ck.maxt, last_bits));
            }
        }
        Ok(())
    }

    fn insert_series_with_id(&self, sid: u64, labels: &Labels) -> Result<Arc<MemSeries>, StoreError> {
        let (series, new_syms) = {
            let mut ix = write(&self.index);
            let (s, syms) = ix.insert(sid, labels);
            let syms: Vec<(u32, String)> =
                syms.into_iter().map(|id| (id, ix.symbols.get(id).to_string())).collect();
            (s, syms)
        };
        self.persist_series(&series, &new_syms)?;
        Ok(series)
    }

    /// Prometheus compacts its 2 h head blocks; the store's counterpart: once no in-order
    /// sample can land in a 2 h range any more (the newest sample is a whole range past its end,
    /// plus the out-of-order window), each series' in-order chunks in it become one chunk.
    /// sled pays ~40 bytes of key and node per value and stores every byte about twice
    /// (log-structured), so four 120-sample chunks folded into one save about 0.4 bytes a
    /// sample. Chunks a stale series cuts into the range later stay beside it (readers merge).
    fn merge_closed_ranges(&self) -> Result<usize, StoreError> {
        let _m = lock(&self.maintenance);
        let series: Vec<Arc<MemSeries>> = read(&self.index).series.values().cloned().collect();
        let Some(newest) = series.iter().map(|s| s.last_t.load(Ordering::Relaxed)).max() else {
            return Ok(0);
        };
        let horizon = newest
            .saturating_sub(head::CHUNK_RANGE_MS)
            .saturating_sub(self.ooo_window_ms())
            .div_euclid(head::CHUNK_RANGE_MS)
            .saturating_mul(head::CHUNK_RANGE_MS);
        let from = self.merged_until.load(Ordering::Relaxed);
        if horizon <= from {
            return Ok(0);
        }
        let started = Instant::now();
        let db = self.db()?;
        let mut merged = 0;
        for s in series {
            // Chunks ending in [from, horizon): in-order ones never span a range boundary.
            let (start, end) =
                (keys::chunk_range_start(s.sid, from), keys::chunk_range_start(s.sid, horizon));
            let mut group: Vec<(sled::IVec, keys::ChunkKey, sled::IVec)> = Vec::new();
            let mut batch = Ops::default();
            for kv in db.range(start.to_vec()..end.to_vec()) {
                let (k, v) = kv?;
                let Some(ck) = keys::parse_chunk(&k) else { continue };
                if ck.kind != keys::KIND_IN_ORDER {
                    continue;
                }
                let range = ck.mint.div_euclid(head::CHUNK_RANGE_MS);
                if group.last().is_some_and(|g| g.1.mint.div_euclid(head::CHUNK_RANGE_MS) != range) {
                    merged += merge_chunk_group(s.sid, &std::mem::take(&mut group), &mut batch);
                }
                group.push((k, ck, v));
            }
            merged += merge_chunk_group(s.sid, &group, &mut batch);
            if !batch.0.is_empty() {
                self.apply(batch)?;
            }
        }
        self.merged_until.store(horizon, Ordering::Relaxed);
        add(&self.metrics.chunks_merged, merged);
        if merged > 0 {
            tracing::debug!(merged, horizon, elapsed = ?started.elapsed(), "closed chunk ranges merged");
        }
        Ok(merged)
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        let _m = lock(&self.maintenance);
        let started = Instant::now();
        let heads_dir = self.heads_dir();
        let (segment, heads_file, pending, new_series, new_syms, next_sid, nsyms) = {
            let _c = lock(&self.commit_lock);
            let ix = read(&self.index);
            // The new segment names each series before its first sample in it (see
            // `Appender::commit`), so it replays on its own if sled is ever lost (`open_db`).
            let segment = self.wal.rotate();
            // Written under the lock so every head matches the segment boundary exactly; it
            // goes through a 1 MB buffer to the page cache, the sync comes after the lock.
            let mut heads_file =
                head_file::HeadFileWriter::create(&heads_dir, segment).map_err(StoreError::HeadFile)?;
            let mut pending = Vec::new();
            for s in ix.series.values() {
                let h = s.lock_head();
                if !(h.is_empty() && h.last.is_none()) {
                    heads_file.add(s.sid, &h).map_err(StoreError::HeadFile)?;
                }
                if !h.pending.is_empty() {
                    pending.push((s.sid, h.pending.clone()));
                }
            }
            let since = self.checkpointed_sid.load(Ordering::Relaxed);
            let new_series: Vec<(u64, Vec<u8>)> = ix
                .series
                .values()
                .filter(|s| s.sid >= since)
                .map(|s| (s.sid, Index::encode_series(s)))
                .collect();
            let from = self.checkpointed_symbols.load(Ordering::Relaxed);
            let new_syms: Vec<(u32, String)> =
                (from..ix.symbols.len()).map(|i| (i as u32, ix.symbols.get(i as u32).to_string())).collect();
            (segment, heads_file, pending, new_series, new_syms, ix.next_sid, ix.symbols.len())
        };
        heads_file.finish().map_err(StoreError::HeadFile)?;
        let mut batch = Ops::default();
        for (sid, chunks) in &pending {
            for c in chunks {
                batch.insert(&keys::chunk(*sid, c.maxt, c.mint, c.kind)[..], chunk_value(c));
            }
        }
        let legacy_heads = self.legacy_heads.load(Ordering::Relaxed);
        if legacy_heads {
            for kv in self.db()?.scan_prefix([keys::HEAD]) {
                batch.remove(&kv?.0[..]);
            }
        }
        for (sid, enc) in &new_series {
            batch.insert(&keys::series(*sid)[..], enc.clone());
        }
        for (id, text) in &new_syms {
            batch.insert(&keys::symbol(*id)[..], text.as_bytes().to_vec());
        }
        batch.insert(keys::META_CHECKPOINT, segment.to_be_bytes().to_vec());
        self.apply(batch)?;
        self.flush_db()?;
        // Older segments' buffered tail must hit its file before the file is deleted, or the
        // flusher would recreate it afterwards.
        self.wal.sync().map_err(StoreError::Wal)?;
        self.wal.truncate_before(segment).map_err(StoreError::Wal)?;
        if legacy_heads {
            self.legacy_heads.store(false, Ordering::Relaxed);
        }
        head_file::remove_others(&heads_dir, segment).map_err(StoreError::HeadFile)?;
        self.checkpointed_sid.store(next_sid, Ordering::Relaxed);
        self.checkpointed_symbols.store(nsyms, Ordering::Relaxed);
        self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.metrics.checkpoint_seconds_x1e6.store(micros(started.elapsed()), Ordering::Relaxed);
        tracing::debug!(segment, elapsed = ?started.elapsed(), "checkpoint written");
        Ok(())
    }

    fn apply_retention(&self, now: i64) -> Result<RetentionReport, StoreError> {
        let _m = lock(&self.maintenance);
        let started = Instant::now();
        let retention_ms = self.opts.retention.as_millis().min(i64::MAX as u128) as i64;
        let mut report = RetentionReport { bytes_before: self.disk_bytes(), ..Default::default() };
        // As Prometheus: time retention counts back from the newest data, not the clock, so a
        // backfill of last month is not deleted on the next pass, and a replica cut off from
        // its targets keeps its last data. Never past the clock: one sample from the future
        // must not delete everything else.
        let reference = now.min(self.newest_sample().unwrap_or(now));
        let mut cutoff = reference.saturating_sub(retention_ms);
        self.delete_before(cutoff, &mut report)?;
        if let Some(limit) = self.opts.retention_bytes {
            // Each round deletes the oldest chunk range still present, until under the limit.
            for _ in 0..10_000 {
                if self.disk_bytes() <= limit {
                    break;
                }
                let Some(oldest) = self.oldest_chunk_maxt()? else { break };
                cutoff = cutoff.max(oldest.saturating_add(head::CHUNK_RANGE_MS));
                self.delete_before(cutoff, &mut report)?;
                self.compact()?;
            }
        }
        let due = lock(&self.last_compaction).is_none_or(|l| l.elapsed() >= self.opts.compaction_interval);
        if report.chunks_deleted > 0 && due {
            self.compact()?;
        } else if report.chunks_deleted > 0 {
            self.flush_db()?;
        }
        report.bytes_after = self.disk_bytes();
        self.metrics.retention_runs.fetch_add(1, Ordering::Relaxed);
        self.metrics.retention_seconds_x1e6.store(micros(started.elapsed()), Ordering::Relaxed);
        if report.chunks_deleted > 0 {
            tracing::info!(?report, elapsed = ?started.elapsed(), "retention deleted old data");
        }
        Ok(report)
    }

    /// The newest sample time of any series (heads and chunks on disk alike).
    fn newest_sample(&self) -> Option<i64> {
        let ix = read(&self.index);
        ix.series.values().map(|s| s.last_t.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN).max()
    }

    fn oldest_chunk_maxt(&self) -> Result<Option<i64>, StoreError> {
        let sids: Vec<u64> = read(&self.index).series.keys().copied().collect();
        let mut oldest: Option<i64> = None;
        for sid in sids {
            if let Some(kv) = self.db()?.scan_prefix(keys::chunk_prefix(sid)).next() {
                let (k, _) = kv?;
                if let Some(ck) = keys::parse_chunk(&k) {
                    oldest = Some(oldest.map_or(ck.maxt, |o| o.min(ck.maxt)));
                }
            }
        }
        Ok(oldest)
    }

    fn delete_before(&self, cutoff: i64, report: &mut RetentionReport) -> Result<(), StoreError> {
        let series: Vec<Arc<MemSeries>> = read(&self.index).series.values().cloned().collect();
        for s in series {
            if s.first_t.load(Ordering::Relaxed) >= cutoff {
                continue;
            }
            let mut batch = Ops::default();
            let mut n = 0;
            for kv in self
                .db()?
                .range(keys::chunk_prefix(s.sid).to_vec()..keys::chunk_range_start(s.sid, cutoff).to_vec())
            {
                let (k, _) = kv?;
                batch.remove(&k[..]);
                n += 1;
            }
            self.apply(batch)?;
            report.chunks_deleted += n;
            add(&self.metrics.chunks_deleted, n as usize);
            let first = self.disk_first_mint(s.sid)?;
            let mut h = s.lock_head();
            h.drop_before(cutoff);
            let first = [first, h.mint()].into_iter().flatten().min();
            match first {
                Some(f) => s.first_t.store(f, Ordering::Relaxed),
                None => {
                    // Nothing left anywhere: the series goes. Under its head lock, so a
                    // concurrent commit either landed before (and we saw data) or sees it gone.
                    // Lock order everywhere is index, then head.
                    drop(h);
                    let mut ix = write(&self.index);
                    let h = s.lock_head();
                    if !h.is_empty() {
                        continue;
                    }
                    s.removed.store(true, Ordering::Release);
                    ix.remove(s.sid);
                    s.first_t.store(i64::MAX, Ordering::Relaxed);
                    s.last_t.store(i64::MIN, Ordering::Relaxed);
                    drop(h);
                    drop(ix);
                    let mut batch = Ops::default();
                    batch.remove(&keys::series(s.sid)[..]);
                    batch.remove(&keys::head(s.sid)[..]);
                    self.apply(batch)?;
                    report.series_removed += 1;
                    self.metrics.series_removed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    fn shutdown(&self) -> Result<(), StoreError> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(h) = lock(&self.background).take() {
            let _ = h.join();
        }
        let result = self.checkpoint();
        let wal = self.wal.close().map_err(StoreError::Wal);
        self.flush_db()?;
        result.and(wal)
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

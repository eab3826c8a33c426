//! The span store on sled: spans grouped by trace id, indexed by service, service+operation,
//! tag key=value, duration and start time (layouts in `keys`), in one sled tree per time bucket
//! so retention drops whole trees instead of deleting span by span.
//!
//! Contract (after Jaeger's `tracestore/reader.go`): an unknown trace is `None`, never an
//! error; a search with no match is an empty list; returned spans are owned copies sorted by
//! start time. Searches return whole traces, newest first.
//!
//! Durability: a write returns once sled has applied it in memory; sled writes to disk every
//! `flush_interval` (default 1 s), so `kill -9` loses at most that window of acknowledged
//! spans. A clean stop flushes. Retention: a bucket is dropped once its newest possible span is
//! older than `retention`, so spans live between `retention` and `retention + bucket width`
//! (width = retention/28 clamped to 1 s..6 h). Size retention drops the oldest bucket per
//! sweep while sled reports more than `retention_size_bytes` on disk; sled frees disk lazily,
//! so the size bound is approximate.

mod codec;
pub mod keys;
mod model;
mod reader;
mod writer;

pub use model::{IdError, KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
pub use reader::{Dependency, Operation, Reader, TraceQuery};
pub use writer::{FUTURE_ALLOWANCE_US, WriteOutcome, Writer};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("span store at {path}: cannot open (is another obsd using it?): {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("span store (internal): {0}")]
    Sled(#[from] sled::Error),
    #[error("span store (internal): corrupt value under key {key:02x?}: {message}")]
    Corrupt { key: Vec<u8>, message: String },
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub retention: Duration,
    /// 0 = unlimited.
    pub retention_size_bytes: u64,
    pub flush_interval: Duration,
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retention: Duration::from_secs(7 * 86400),
            retention_size_bytes: 0,
            flush_interval: Duration::from_secs(1),
            cache_bytes: 128 * 1024 * 1024,
        }
    }
}

struct Bucket {
    name: String,
    width_us: u64,
    tree: sled::Tree,
}

pub(crate) struct Inner {
    db: sled::Db,
    meta: sled::Tree,
    /// Bucket start (µs) → bucket; every bucket ever created and not yet dropped.
    buckets: RwLock<BTreeMap<u64, Arc<Bucket>>>,
    bucket_width_us: u64,
    retention_us: u64,
    retention_size_bytes: u64,
    processes: RwLock<HashMap<u64, Arc<Process>>>,
    /// service → newest bucket start already recorded in `meta`, to write it once per bucket.
    services_seen: Mutex<HashMap<String, u64>>,
    /// The same for operations, keyed by their `meta` key.
    operations_seen: Mutex<HashMap<Vec<u8>, u64>>,
    /// Makes chunk keys unique; starts at the open time in µs so it keeps rising across restarts.
    next_seq: std::sync::atomic::AtomicU64,
}

/// A handle to the open store; clones share it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

const BUCKET_PREFIX: &str = "spans/";

fn parse_bucket_name(name: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(name).ok()?.strip_prefix(BUCKET_PREFIX)?;
    let (start, width) = text.split_once('/')?;
    Some((start.parse::<u64>().ok()? * 1_000_000, width.parse::<u64>().ok()? * 1_000_000))
}

/// What one retention sweep removed.
#[derive(Debug, Default, PartialEq)]
pub struct RetentionOutcome {
    pub dropped_by_time: usize,
    pub dropped_by_size: usize,
    /// Service and operation names no span within retention carries any more.
    pub names_forgotten: usize,
}

impl Store {
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open { path: dir.to_path_buf(), source };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(Some(options.flush_interval.as_millis().max(1) as u64))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(open_err)?;
        let meta = db.open_tree("meta")?;
        let retention_s = options.retention.as_secs().max(1);
        let width_s = (retention_s / 28).clamp(1, 6 * 3600);
        let mut buckets = BTreeMap::new();
        for name in db.tree_names() {
            if let Some((start_us, width_us)) = parse_bucket_name(&name) {
                let tree = db.open_tree(&name)?;
                let name = String::from_utf8_lossy(&name).into_owned();
                buckets.insert(start_us, Arc::new(Bucket { name, width_us, tree }));
            }
        }
        let mut processes = HashMap::new();
        for item in meta.scan_prefix([keys::META_PROCESS]) {
            let (k, v) = item?;
            let Some(hash) = k.get(1..9).and_then(|h| h.try_into().ok()).map(u64::from_be_bytes) else {
                continue;
            };
            let process = codec::decode_process(&v)
                .map_err(|e| StoreError::Corrupt { key: k.to_vec(), message: e.to_string() })?;
            processes.insert(hash, Arc::new(process));
        }
        tracing::info!(
            path = %dir.display(),
            buckets = buckets.len(),
            bucket_width_s = width_s,
            "span store opened"
        );
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                meta,
                buckets: RwLock::new(buckets),
                bucket_width_us: width_s * 1_000_000,
                retention_us: options.retention.as_micros() as u64,
                retention_size_bytes: options.retention_size_bytes,
                processes: RwLock::new(processes),
                services_seen: Mutex::new(HashMap::new()),
                operations_seen: Mutex::new(HashMap::new()),
                next_seq: std::sync::atomic::AtomicU64::new(now_us()),
            }),
        })
    }

    pub fn writer(&self) -> Writer {
        Writer { inner: self.inner.clone() }
    }

    pub fn reader(&self) -> Reader {
        Reader { inner: self.inner.clone() }
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        Ok(())
    }

    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }

    pub fn bucket_count(&self) -> usize {
        self.inner.buckets.read().map(|b| b.len()).unwrap_or(0)
    }

    /// How often retention should run: often enough that a bucket goes soon after it expires.
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_micros(self.inner.bucket_width_us).min(Duration::from_secs(60))
    }

    /// Drops expired buckets, then at most one more (the oldest) if the store is over its size.
    pub fn enforce_retention(&self, now_us: u64) -> Result<RetentionOutcome, StoreError> {
        let inner = &self.inner;
        let cutoff = now_us.saturating_sub(inner.retention_us);
        let mut outcome = RetentionOutcome::default();
        let expired: Vec<u64> = {
            let buckets = inner.buckets.read().unwrap_or_else(|p| p.into_inner());
            buckets.iter().filter(|(start, b)| *start + b.width_us <= cutoff).map(|(s, _)| *s).collect()
        };
        for start in expired {
            inner.drop_bucket(start)?;
            outcome.dropped_by_time += 1;
        }
        if inner.retention_size_bytes > 0 && self.size_on_disk() > inner.retention_size_bytes {
            let oldest = {
                let buckets = inner.buckets.read().unwrap_or_else(|p| p.into_inner());
                (buckets.len() > 1).then(|| buckets.keys().next().copied()).flatten()
            };
            if let Some(start) = oldest {
                inner.drop_bucket(start)?;
                outcome.dropped_by_size += 1;
            }
        }
        outcome.names_forgotten = inner.forget_names(inner.live_cutoff(now_us))?;
        Ok(outcome)
    }
}

impl Inner {
    /// The oldest time a service or operation name must have been seen at to be listed: a
    /// bucket still held may start up to one width before the retention window.
    fn live_cutoff(&self, now_us: u64) -> u64 {
        now_us.saturating_sub(self.retention_us + self.bucket_width_us)
    }

    /// Forgets service and operation names last seen before `cutoff` (the readers' own
    /// cutoff, so nothing they would list goes), in memory and in `meta`. Senders that make
    /// up a new service or operation name per span would otherwise grow both forever.
    fn forget_names(&self, cutoff: u64) -> Result<usize, StoreError> {
        self.services_seen.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, last| *last >= cutoff);
        self.operations_seen.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, last| *last >= cutoff);
        let mut stale = sled::Batch::default();
        let mut forgotten = 0;
        for prefix in [keys::META_SERVICE, keys::META_OPERATION] {
            for item in self.meta.scan_prefix([prefix]) {
                let (k, v) = item?;
                let last = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes).unwrap_or(0);
                if last < cutoff {
                    stale.remove(k);
                    forgotten += 1;
                }
            }
        }
        if forgotten > 0 {
            self.meta.apply_batch(stale)?;
        }
        Ok(forgotten)
    }

    fn drop_bucket(&self, start: u64) -> Result<(), StoreError> {
        let removed = self.buckets.write().unwrap_or_else(|p| p.into_inner()).remove(&start);
        if let Some(bucket) = removed {
            self.db.drop_tree(bucket.name.as_bytes())?;
            tracing::info!(bucket = %bucket.name, "span bucket dropped by retention");
        }
        Ok(())
    }

    fn bucket_for(&self, start_us: u64) -> Result<Arc<Bucket>, StoreError> {
        let start = start_us - start_us % self.bucket_width_us;
        if let Some(b) = self.buckets.read().unwrap_or_else(|p| p.into_inner()).get(&start) {
            return Ok(b.clone());
        }
        let mut buckets = self.buckets.write().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get(&start) {
            return Ok(b.clone());
        }
        let name = format!("{BUCKET_PREFIX}{}/{}", start / 1_000_000, self.bucket_width_us / 1_000_000);
        let tree = self.db.open_tree(name.as_bytes())?;
        let bucket = Arc::new(Bucket { name, width_us: self.bucket_width_us, tree });
        buckets.insert(start, bucket.clone());
        Ok(bucket)
    }

    /// Buckets that may hold spans starting in `[lo, hi]`, newest first.
    fn buckets_overlapping(&self, lo: u64, hi: u64) -> Vec<(u64, Arc<Bucket>)> {
        let buckets = self.buckets.read().unwrap_or_else(|p| p.into_inner());
        buckets
            .iter()
            .rev()
            .filter(|(start, b)| **start <= hi && **start + b.width_us > lo)
            .map(|(s, b)| (*s, b.clone()))
            .collect()
    }

    fn process(&self, hash: u64) -> Arc<Process> {
        self.processes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned()
            .unwrap_or_else(|| Arc::new(Process { service_name: "unknown".into(), tags: Vec::new() }))
    }
}

#[cfg(test)]
mod tests;

//! Opening: the sled database (moved aside when damaged, refused when the system denies it),
//! the format marker, then the index and the heads of the last checkpoint from disk, the WAL
//! segments after it replayed on top, and the heads settled against the chunks on disk.

use super::db::{DB_LOCK_WAIT, Journal, current_db_path, is_lock_error};
use super::head::{ClosedChunk, SeriesHead};
use super::index::{Index, MemSeries};
use super::maintenance::background;
use super::metrics::Metrics;
use super::{
    Inner, Labels, Store, StoreError, StoreOptions, access, chunk, head_file, keys, lock, micros, now_ms,
    read, space, wal, write,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The WAL segment of the last checkpoint (0: none yet); its heads file holds the heads.
pub(super) fn checkpoint_segment(db: &sled::Db) -> Result<u64, StoreError> {
    Ok(db.get(keys::META_CHECKPOINT)?.and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
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
}

impl Inner {
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
}

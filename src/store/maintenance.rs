//! Work off the write path: checkpoints (heads file, WAL truncation), merging each closed 2 h
//! range's chunks into one, retention by age and size, rewriting the sled database to give
//! deleted space back, and the background thread that runs them (and the reopen of a failed
//! database, `db`). Checkpoints, merges, retention and compactions serialize on `maintenance`.

use super::db::{Ops, chunk_value, current_db_path, write_current};
use super::head::ClosedChunk;
use super::index::{Index, MemSeries};
use super::{
    Inner, Store, StoreError, add, chunk, head, head_file, keys, lock, merge_samples, micros, now_ms, read,
    wal, write,
};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

impl Store {
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

    /// Stops background work, checkpoints, and flushes. Other clones become unusable for
    /// durable writes.
    pub fn close(self) -> Result<(), StoreError> {
        self.inner.shutdown()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    pub chunks_deleted: u64,
    pub series_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
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

pub(super) fn background(weak: Weak<Inner>) {
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

    pub(super) fn checkpoint(&self) -> Result<(), StoreError> {
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

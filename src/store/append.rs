//! Writing: an [`Appender`] queues samples and exemplars and applies them in one commit (heads,
//! one WAL record, one sled batch for the chunks that cut). Series are created here, logged to
//! the WAL before any sample names them. WAL replay reuses `create_series` and `write_chunks`;
//! `cut_heads` the latter.

use super::db::{Ops, chunk_value};
use super::head::{Appended, ClosedChunk, Rejection};
use super::index::{Index, MemSeries};
use super::{
    CommitSummary, Exemplar, Inner, Labels, SeriesRef, Store, StoreError, add, chunk, keys, lock,
    merge_samples, read, wal, write,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Store {
    pub fn appender(&self) -> Appender {
        Appender {
            inner: self.inner.clone(),
            samples: Vec::new(),
            exemplars: Vec::new(),
            cut_after: Vec::new(),
        }
    }
}

/// Collects samples and exemplars; nothing is visible or durable until [`Appender::commit`].
pub struct Appender {
    inner: Arc<Inner>,
    samples: Vec<(Arc<MemSeries>, i64, f64)>,
    exemplars: Vec<(Arc<MemSeries>, Exemplar)>,
    /// Series whose open chunk the commit closes after applying the samples.
    cut_after: Vec<Arc<MemSeries>>,
}

impl Appender {
    /// Queues a sample for the series named by `labels` (created if new). Returns a reference
    /// for later appends. An out-of-order or duplicate sample is refused here, as Prometheus's
    /// appender refuses it, and counted.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, StoreError> {
        let s = self.inner.get_or_create(labels)?;
        let r = SeriesRef(s);
        self.append_ref(&r, t, v)?;
        Ok(r)
    }

    /// Queues a sample for a series already referenced.
    pub fn append_ref(&mut self, r: &SeriesRef, t: i64, v: f64) -> Result<(), StoreError> {
        if !r.is_live() {
            return Err(StoreError::UnknownSeries(r.0.sid));
        }
        let check = r.0.lock_head().check(t, v, self.inner.ooo_window_ms());
        match check {
            Ok(()) => {
                self.samples.push((r.0.clone(), t, v));
                Ok(())
            }
            Err(rej) => Err(self.rejection(&r.0, rej, t)),
        }
    }

    /// Queues a sample without the early check: the commit refuses and counts what does not
    /// fit (the scrape path, which only needs the counts).
    pub fn queue(&mut self, r: SeriesRef, t: i64, v: f64) {
        self.samples.push((r.0, t, v));
    }

    fn rejection(&self, s: &MemSeries, rej: Rejection, t: i64) -> StoreError {
        let series = read(&self.inner.index).labels_of(s).to_string();
        match rej {
            Rejection::Duplicate => {
                self.inner.metrics.duplicate.fetch_add(1, Ordering::Relaxed);
                StoreError::DuplicateSample { series, t }
            }
            Rejection::OutOfOrder | Rejection::TooOld => {
                self.inner.metrics.out_of_order.fetch_add(1, Ordering::Relaxed);
                StoreError::OutOfOrderSample { series, t }
            }
        }
    }

    /// Looks a series up (creating it) without appending: for callers that cache references.
    pub fn series_ref(&mut self, labels: &Labels) -> Result<SeriesRef, StoreError> {
        Ok(SeriesRef(self.inner.get_or_create(labels)?))
    }

    /// Closes the series' open chunk once this commit's samples are in (a backfill that is
    /// done with the series), so it is written now rather than at a later cut.
    pub fn cut_after(&mut self, r: &SeriesRef) {
        self.cut_after.push(r.0.clone());
    }

    /// Queues an exemplar for a series (kept in a bounded ring per series).
    pub fn append_exemplar(&mut self, r: &SeriesRef, e: Exemplar) {
        self.exemplars.push((r.0.clone(), e));
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.exemplars.is_empty()
    }

    /// Applies every queued sample: heads, one WAL record, one sled batch for the chunks cut.
    /// Samples that became out of order since `append` (a concurrent writer) are counted in
    /// the summary, not returned as an error.
    pub fn commit(mut self) -> Result<CommitSummary, StoreError> {
        let inner = self.inner.clone();
        if let Some(why) = inner.unwritable() {
            inner.metrics.commits_refused.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unwritable(why));
        }
        let window = inner.ooo_window_ms();
        let mut summary = CommitSummary::default();
        let mut cuts: Vec<(Arc<MemSeries>, Vec<ClosedChunk>)> = Vec::new();
        let samples = std::mem::take(&mut self.samples);
        let exemplars = std::mem::take(&mut self.exemplars);
        let mut accepted: Vec<(u64, i64, u64)> = Vec::with_capacity(samples.len());
        let mut rec = Vec::with_capacity(samples.len() * 12 + 16);
        let pos = {
            let _c = lock(&inner.commit_lock);
            // Series whose record this WAL segment does not hold yet.
            let segment = inner.wal.segment();
            let mut unnamed: Vec<Arc<MemSeries>> = Vec::new();
            // A read per sample, a write only once per series and segment (under commit_lock).
            let mut name = |s: &Arc<MemSeries>| {
                if s.wal_segment.load(Ordering::Relaxed) != segment {
                    s.wal_segment.store(segment, Ordering::Relaxed);
                    unnamed.push(s.clone());
                }
            };
            for (s, t, v) in samples {
                let mut cut = Vec::new();
                let mut h = s.lock_head();
                if s.removed.load(Ordering::Acquire) {
                    summary.unknown_series += 1;
                    continue;
                }
                match h.append_with_limit(t, v, window, inner.opts.chunk_samples, &mut cut) {
                    Ok(Appended::InOrder | Appended::OutOfOrder) => {
                        accepted.push((s.sid, t, v.to_bits()));
                        s.note_time(t);
                        summary.appended += 1;
                        name(&s);
                    }
                    Ok(Appended::Noop) => summary.noop += 1,
                    Err(Rejection::Duplicate) => summary.duplicate += 1,
                    Err(Rejection::OutOfOrder | Rejection::TooOld) => summary.out_of_order += 1,
                }
                drop(h);
                if !cut.is_empty() {
                    cuts.push((s, cut));
                }
            }
            for s in std::mem::take(&mut self.cut_after) {
                let cut = s.lock_head().cut_open();
                if let Some(c) = cut {
                    cuts.push((s, vec![c]));
                }
            }
            let mut ex_accepted = Vec::new();
            for (s, e) in exemplars {
                if s.lock_head().push_exemplar(e.clone(), inner.opts.max_exemplars_per_series) {
                    ex_accepted.push((s.sid, e));
                    name(&s);
                }
            }
            summary.exemplars = ex_accepted.len();
            if !unnamed.is_empty() {
                // Index after heads, never while holding one (lock order: index, then head).
                let ix = read(&inner.index);
                for s in &unnamed {
                    wal::encode_series(&mut rec, s.sid, &ix.labels_of(s));
                }
            }
            if !accepted.is_empty() {
                wal::encode_samples(&mut rec, &accepted);
            }
            if !ex_accepted.is_empty() {
                wal::encode_exemplars(&mut rec, &ex_accepted);
            }
            (!rec.is_empty()).then(|| inner.wal.append(&rec))
        };
        let m = &inner.metrics;
        add(&m.samples_appended, summary.appended);
        add(&m.out_of_order, summary.out_of_order);
        add(&m.duplicate, summary.duplicate);
        add(&m.exemplars_appended, summary.exemplars);
        m.commits.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = inner.write_chunks(&cuts) {
            // The samples are in the WAL and the chunks stay pending in the heads, so the next
            // checkpoint writes them; the error is still reported.
            m.write_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        if let Some(pos) = pos
            && inner.opts.wal_fsync_interval.is_zero()
        {
            inner.wal.wait_durable(pos).map_err(StoreError::Wal)?;
        }
        Ok(summary)
    }

    /// Drops everything queued.
    pub fn rollback(mut self) {
        self.samples.clear();
        self.exemplars.clear();
    }
}

impl Inner {
    pub(super) fn persist_series(&self, s: &MemSeries, new_syms: &[(u32, String)]) -> Result<(), StoreError> {
        let mut batch = Ops::default();
        for (id, text) in new_syms {
            batch.insert(&keys::symbol(*id)[..], text.as_bytes().to_vec());
        }
        batch.insert(&keys::series(s.sid)[..], Index::encode_series(s));
        self.apply(batch)?;
        Ok(())
    }

    /// Finds or creates the series for `labels`. A new series is logged to the WAL before any
    /// sample can reference it.
    fn get_or_create(&self, labels: &Labels) -> Result<Arc<MemSeries>, StoreError> {
        if labels.is_empty() {
            return Err(StoreError::EmptyLabels);
        }
        {
            let ix = read(&self.index);
            let hash = ix.hash(labels);
            if let Some(s) = ix.lookup(labels, hash) {
                return Ok(s.clone());
            }
        }
        self.create_series(labels, true)
    }

    pub(super) fn create_series(&self, labels: &Labels, log: bool) -> Result<Arc<MemSeries>, StoreError> {
        let (series, new_syms) = {
            let mut ix = write(&self.index);
            let hash = ix.hash(labels);
            if let Some(s) = ix.lookup(labels, hash) {
                return Ok(s.clone());
            }
            let sid = ix.next_sid;
            let (s, syms) = ix.insert(sid, labels);
            if log {
                let mut rec = Vec::new();
                wal::encode_series(&mut rec, sid, labels);
                // Under the index lock: the record precedes any sample that can name the id,
                // and a checkpoint (which reads next_sid under this lock) sees it on its side.
                self.wal.append(&rec);
                s.wal_segment.store(self.wal.segment(), Ordering::Relaxed);
            }
            let syms: Vec<(u32, String)> =
                syms.into_iter().map(|id| (id, ix.symbols.get(id).to_string())).collect();
            (s, syms)
        };
        self.metrics.series_created.fetch_add(1, Ordering::Relaxed);
        self.persist_series(&series, &new_syms)?;
        Ok(series)
    }

    /// Writes cut chunks to sled in one batch, then lets the heads forget them.
    pub(super) fn write_chunks(&self, cuts: &[(Arc<MemSeries>, Vec<ClosedChunk>)]) -> Result<(), StoreError> {
        if cuts.is_empty() {
            return Ok(());
        }
        let mut batch = Ops::default();
        let mut n = 0;
        for (s, chunks) in cuts {
            for c in chunks {
                let key = keys::chunk(s.sid, c.maxt, c.mint, c.kind);
                let mut value = None;
                if c.kind == keys::KIND_OUT_OF_ORDER
                    && let Some(old) = self.db()?.get(key)?
                    && let Some(old) = keys::check_crc(&old)
                    && let Ok(old) = chunk::decode(old)
                    && let Ok(new) = chunk::decode(&c.bytes)
                {
                    // Two out-of-order chunks with the same span: keep both's samples.
                    let merged = merge_samples(vec![new, old]);
                    let bytes = chunk::encode_smallest(&merged).unwrap_or_else(|| chunk::encode(&merged));
                    value = Some(keys::with_crc(&bytes));
                }
                batch.insert(&key[..], value.unwrap_or_else(|| chunk_value(c)));
                n += 1;
            }
        }
        self.apply(batch)?;
        add(&self.metrics.chunks_written, n);
        for (s, chunks) in cuts {
            s.lock_head().confirm(chunks);
        }
        Ok(())
    }
}

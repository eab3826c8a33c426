//! Reading: a [`Querier`] over a time range selects series by matchers from the index into a
//! [`SeriesSet`]; each [`StoredSeries`] takes its chunks from the head and from sled as the
//! caller advances, and [`SampleIter`] decodes them lazily, merging chunks that overlap.

use super::head::{self, ClosedChunk};
use super::index::MemSeries;
use super::{Exemplar, Inner, Labels, Matcher, Store, StoreError, chunk, keys, merge_samples, read};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Store {
    /// A reader over `[mint, maxt]` (inclusive, milliseconds).
    pub fn querier(&self, mint: i64, maxt: i64) -> Querier {
        Querier { inner: self.inner.clone(), mint, maxt }
    }
}

/// A series' labels and its samples, collected.
pub type SeriesSamples = (Labels, Vec<(i64, f64)>);

/// Reads series over a fixed time range.
pub struct Querier {
    inner: Arc<Inner>,
    mint: i64,
    maxt: i64,
}

/// One selected series: its labels and the chunks overlapping the query.
pub struct StoredSeries {
    pub labels: Labels,
    chunks: Vec<ClosedChunk>,
    /// The samples already decoded (read from the head alone); `chunks` is then empty.
    decoded: Option<Vec<(i64, f64)>>,
    mint: i64,
    maxt: i64,
    inner: Arc<Inner>,
}

impl StoredSeries {
    /// Samples in time order within the query range; equal timestamps from overlapping chunks
    /// appear once.
    pub fn samples(&self) -> SampleIter {
        if let Some(decoded) = &self.decoded {
            return SampleIter {
                chunks: Vec::new(),
                next_chunk: 0,
                buf: decoded.clone(),
                pos: 0,
                mint: self.mint,
                maxt: self.maxt,
                inner: self.inner.clone(),
                last_t: None,
            };
        }
        let mut chunks = self.chunks.clone();
        chunks.sort_by_key(|c| (c.mint, c.maxt));
        let overlapping = chunks.windows(2).any(|w| w[1].mint <= w[0].maxt);
        let mut it = SampleIter {
            chunks,
            next_chunk: 0,
            buf: Vec::new(),
            pos: 0,
            mint: self.mint,
            maxt: self.maxt,
            inner: self.inner.clone(),
            last_t: None,
        };
        if overlapping {
            let decoded: Vec<Vec<(i64, f64)>> = it.chunks.iter().map(|c| it.decode(c)).collect();
            it.buf = merge_samples(decoded);
            it.next_chunk = it.chunks.len();
        }
        it
    }

    /// Convenience: all samples collected.
    pub fn collect_samples(&self) -> Vec<(i64, f64)> {
        self.samples().collect()
    }

    /// Labels and samples, without copying samples a head-only read already decoded.
    pub fn into_parts(self) -> (Labels, Vec<(i64, f64)>) {
        let samples = match self.decoded {
            Some(decoded) => decoded,
            None => self.samples().collect(),
        };
        (self.labels, samples)
    }
}

pub struct SampleIter {
    chunks: Vec<ClosedChunk>,
    next_chunk: usize,
    buf: Vec<(i64, f64)>,
    pos: usize,
    mint: i64,
    maxt: i64,
    inner: Arc<Inner>,
    last_t: Option<i64>,
}

impl SampleIter {
    fn decode(&self, c: &ClosedChunk) -> Vec<(i64, f64)> {
        decode_or_count(&self.inner, &c.bytes, c.mint)
    }
}

/// A chunk's samples; a chunk that does not decode is counted, logged and read as empty.
fn decode_or_count(inner: &Inner, bytes: &[u8], mint: i64) -> Vec<(i64, f64)> {
    chunk::decode(bytes).unwrap_or_else(|e| {
        inner.metrics.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, mint, "damaged chunk skipped");
        Vec::new()
    })
}

impl Iterator for SampleIter {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        loop {
            while self.pos < self.buf.len() {
                let s = self.buf[self.pos];
                self.pos += 1;
                if s.0 < self.mint || self.last_t.is_some_and(|l| s.0 <= l) {
                    continue;
                }
                if s.0 > self.maxt {
                    self.pos = self.buf.len();
                    self.next_chunk = self.chunks.len();
                    return None;
                }
                self.last_t = Some(s.0);
                return Some(s);
            }
            let c = self.chunks.get(self.next_chunk)?.clone();
            self.next_chunk += 1;
            self.buf = self.decode(&c);
            self.pos = 0;
        }
    }
}

/// Selected series in label order; chunks are read from sled as the caller advances.
pub struct SeriesSet {
    inner: Arc<Inner>,
    series: std::vec::IntoIter<(Labels, Arc<MemSeries>)>,
    mint: i64,
    maxt: i64,
}

impl Iterator for SeriesSet {
    type Item = Result<StoredSeries, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (labels, s) = self.series.next()?;
        Some(self.load(labels, &s))
    }
}

impl SeriesSet {
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.len() == 0
    }

    fn load(&self, labels: Labels, s: &MemSeries) -> Result<StoredSeries, StoreError> {
        // Head first, then disk: a chunk cut and written in between is then seen twice (and
        // merged), never missed.
        let mut chunks = {
            let head = s.lock_head();
            // Every in-order sample from the open chunk's start on is in it: a read inside it
            // (an instant query's lookback, typically) is answered from it alone, decoded here,
            // with no sled range scan. Out-of-order chunks could overlap any range.
            if let Some(open) = &head.open
                && !open.is_empty()
                && head.open_mint <= self.mint
                && !self.inner.out_of_order_chunks
            {
                let mut samples = decode_or_count(&self.inner, &open.bytes(), head.open_mint);
                samples.retain(|&(t, _)| t >= self.mint && t <= self.maxt);
                return Ok(StoredSeries {
                    labels,
                    chunks: Vec::new(),
                    decoded: Some(samples),
                    mint: self.mint,
                    maxt: self.maxt,
                    inner: self.inner.clone(),
                });
            }
            head.chunks_for_read(self.mint, self.maxt)
        };
        let start = keys::chunk_range_start(s.sid, self.mint);
        let end = keys::chunk_prefix(s.sid.wrapping_add(1));
        let stop_after = self.maxt.saturating_add(head::CHUNK_RANGE_MS);
        let range = if s.sid == u64::MAX {
            self.inner.db()?.range(start.to_vec()..)
        } else {
            self.inner.db()?.range(start.to_vec()..end.to_vec())
        };
        for kv in range {
            let (k, v) = kv?;
            let Some(ck) = keys::parse_chunk(&k) else { break };
            if ck.sid != s.sid || ck.maxt > stop_after {
                break;
            }
            if ck.mint > self.maxt {
                continue;
            }
            match keys::check_crc(&v) {
                Some(bytes) => chunks.push(ClosedChunk {
                    mint: ck.mint,
                    maxt: ck.maxt,
                    kind: ck.kind,
                    bytes: bytes.into(),
                }),
                None => {
                    self.inner.metrics.chunk_corruptions.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(series = %labels, mint = ck.mint, maxt = ck.maxt, "chunk failed its checksum; skipped");
                }
            }
        }
        Ok(StoredSeries {
            labels,
            chunks,
            decoded: None,
            mint: self.mint,
            maxt: self.maxt,
            inner: self.inner.clone(),
        })
    }
}

impl Querier {
    fn matching(&self, matchers: &[Matcher]) -> Vec<(Labels, Arc<MemSeries>)> {
        let ix = read(&self.inner.index);
        let mut out: Vec<(Labels, Arc<MemSeries>)> = ix
            .select(matchers)
            .into_iter()
            .filter(|s| s.overlaps(self.mint, self.maxt))
            .map(|s| (ix.labels_of(&s), s))
            .collect();
        drop(ix);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Series matching all `matchers` with data in the range, sorted by labels.
    pub fn select(&self, matchers: &[Matcher]) -> SeriesSet {
        let series = self.matching(matchers);
        SeriesSet { inner: self.inner.clone(), series: series.into_iter(), mint: self.mint, maxt: self.maxt }
    }

    /// Every series' labels and samples, collected (tests and small callers).
    pub fn select_all(&self, matchers: &[Matcher]) -> Result<Vec<SeriesSamples>, StoreError> {
        self.select(matchers).map(|s| s.map(|s| (s.labels.clone(), s.collect_samples()))).collect()
    }

    /// Label names of series matching `matchers` (all series if none) with data in range.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let ix = read(&self.inner.index);
        let mut names = std::collections::BTreeSet::new();
        for s in ix.select(matchers).iter().filter(|s| s.overlaps(self.mint, self.maxt)) {
            for &(n, _) in s.labels.iter() {
                names.insert(n);
            }
        }
        let mut out: Vec<String> = names.into_iter().map(|n| ix.symbols.get(n).to_string()).collect();
        out.sort();
        out
    }

    /// Values of label `name` over series matching `matchers` with data in range, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let ix = read(&self.inner.index);
        let Some(nsym) = ix.symbols.lookup(name) else { return Vec::new() };
        let mut values = std::collections::BTreeSet::new();
        for s in ix.select(matchers).iter().filter(|s| s.overlaps(self.mint, self.maxt)) {
            if let Some(&(_, v)) = s.labels.iter().find(|&&(n, _)| n == nsym) {
                values.insert(ix.symbols.get(v).to_string());
            }
        }
        values.into_iter().collect()
    }

    /// Exemplars of matching series within the range, per series, oldest first.
    pub fn select_exemplars(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<Exemplar>)> {
        let ix = read(&self.inner.index);
        let series = ix.select(matchers);
        let mut out = Vec::new();
        for s in series {
            let ex: Vec<Exemplar> = s
                .lock_head()
                .exemplars
                .iter()
                .filter(|e| e.t >= self.mint && e.t <= self.maxt)
                .cloned()
                .collect();
            if !ex.is_empty() {
                out.push((ix.labels_of(&s), ex));
            }
        }
        drop(ix);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

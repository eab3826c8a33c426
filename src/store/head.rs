//! The in-memory head of one series: its open chunk, the chunks cut from it that sled has not
//! confirmed yet, a small buffer of out-of-order samples, and its exemplar ring.
//!
//! Validation follows Prometheus's head appender: a sample newer than the last is appended; the
//! same timestamp with the same value bits is a no-op; the same timestamp with other bits is a
//! duplicate; an older sample is out of order unless it falls inside the out-of-order window,
//! in which case it is kept apart and later written as its own (overlapping) chunk.

use super::Exemplar;
use super::chunk::{XorAppender, XorIter};
use super::encoding::{Reader, put_bytes, put_uvarint, put_varint};
use crate::model::labels::Labels;
use std::collections::VecDeque;
use std::sync::Arc;

/// Samples per chunk before it is cut, as in Prometheus (its `samplesPerChunk`).
pub const SAMPLES_PER_CHUNK: usize = 120;
/// Chunks never span a 2 h aligned boundary, which also caps any chunk's span so a time-range
/// scan can stop early.
pub const CHUNK_RANGE_MS: i64 = 2 * 3600 * 1000;
/// Out-of-order samples buffered per series before they are written as a chunk.
pub const OOO_CHUNK_SAMPLES: usize = 32;

/// A chunk cut from the head, waiting to be (or just) written to sled.
#[derive(Debug, Clone)]
pub struct ClosedChunk {
    pub mint: i64,
    pub maxt: i64,
    pub kind: u8,
    pub bytes: Arc<[u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    OutOfOrder,
    Duplicate,
    /// Older than the out-of-order window allows and than the head's minimum time.
    TooOld,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    InOrder,
    OutOfOrder,
    /// Same timestamp and value bits as a sample already there.
    Noop,
}

#[derive(Debug, Default)]
pub struct SeriesHead {
    /// In-order open chunk; `None` until the first sample.
    pub open: Option<XorAppender>,
    pub open_mint: i64,
    /// Last in-order timestamp and value bits, also kept when the open chunk is cut, and set
    /// from disk after a restart so ordering survives it.
    pub last: Option<(i64, u64)>,
    /// Cut chunks not yet confirmed in sled; readers see them from here.
    pub pending: Vec<ClosedChunk>,
    /// Out-of-order samples, sorted by time, unique timestamps.
    pub ooo: Vec<(i64, u64)>,
    pub exemplars: VecDeque<Exemplar>,
}

fn chunk_end(mint: i64) -> i64 {
    (mint.div_euclid(CHUNK_RANGE_MS) + 1).saturating_mul(CHUNK_RANGE_MS)
}

impl SeriesHead {
    /// Checks a sample without changing anything (the appender's early answer).
    pub fn check(&self, t: i64, v: f64, ooo_window: i64) -> Result<(), Rejection> {
        let Some((last_t, last_v)) = self.last else { return Ok(()) };
        if t > last_t {
            return Ok(());
        }
        if t == last_t {
            return if v.to_bits() == last_v { Ok(()) } else { Err(Rejection::Duplicate) };
        }
        if ooo_window > 0 && t >= last_t.saturating_sub(ooo_window) {
            return Ok(());
        }
        Err(Rejection::OutOfOrder)
    }

    /// Appends one sample; chunks cut on the way are pushed to `pending` and to `cut`.
    pub fn append(
        &mut self,
        t: i64,
        v: f64,
        ooo_window: i64,
        cut: &mut Vec<ClosedChunk>,
    ) -> Result<Appended, Rejection> {
        self.append_with_limit(t, v, ooo_window, SAMPLES_PER_CHUNK, cut)
    }

    /// [`Self::append`] with chunks cut at `chunk_samples` samples instead of the default.
    pub fn append_with_limit(
        &mut self,
        t: i64,
        v: f64,
        ooo_window: i64,
        chunk_samples: usize,
        cut: &mut Vec<ClosedChunk>,
    ) -> Result<Appended, Rejection> {
        let bits = v.to_bits();
        if let Some((last_t, last_v)) = self.last
            && t <= last_t
        {
            if t == last_t {
                return if bits == last_v { Ok(Appended::Noop) } else { Err(Rejection::Duplicate) };
            }
            if ooo_window <= 0 || t < last_t.saturating_sub(ooo_window) {
                return Err(Rejection::OutOfOrder);
            }
            return self.append_ooo(t, bits, cut);
        }
        let needs_cut = match &self.open {
            Some(open) => open.len() >= chunk_samples || open.is_full() || t >= chunk_end(self.open_mint),
            None => false,
        };
        if needs_cut && let Some(chunk) = self.cut_open() {
            cut.push(chunk);
        }
        let open = self.open.get_or_insert_with(|| {
            self.open_mint = t;
            XorAppender::new()
        });
        open.append(t, v);
        self.last = Some((t, bits));
        Ok(Appended::InOrder)
    }

    fn append_ooo(&mut self, t: i64, bits: u64, cut: &mut Vec<ClosedChunk>) -> Result<Appended, Rejection> {
        // The open chunk is small; a sample already in it must not be stored twice.
        if let Some(open) = &self.open
            && t >= self.open_mint
            && let bytes = open.bytes()
            && let Ok(iter) = XorIter::new(&bytes)
        {
            for (st, sv) in iter.flatten() {
                if st == t {
                    return if sv.to_bits() == bits { Ok(Appended::Noop) } else { Err(Rejection::Duplicate) };
                }
            }
        }
        match self.ooo.binary_search_by_key(&t, |s| s.0) {
            Ok(i) => {
                return if self.ooo[i].1 == bits { Ok(Appended::Noop) } else { Err(Rejection::Duplicate) };
            }
            Err(i) => self.ooo.insert(i, (t, bits)),
        }
        let span_too_wide = match (self.ooo.first(), self.ooo.last()) {
            (Some(a), Some(b)) => b.0 - a.0 >= CHUNK_RANGE_MS,
            _ => false,
        };
        if self.ooo.len() >= OOO_CHUNK_SAMPLES || span_too_wide {
            cut.extend(self.cut_ooo());
        }
        Ok(Appended::OutOfOrder)
    }

    /// Writes the out-of-order buffer out as chunks (each within one chunk range).
    pub fn cut_ooo(&mut self) -> Vec<ClosedChunk> {
        let mut out = Vec::new();
        let samples = std::mem::take(&mut self.ooo);
        let mut i = 0;
        while i < samples.len() {
            let mint = samples[i].0;
            let mut app = XorAppender::new();
            let mut maxt = mint;
            while i < samples.len() && samples[i].0 < mint.saturating_add(CHUNK_RANGE_MS) && !app.is_full() {
                app.append(samples[i].0, f64::from_bits(samples[i].1));
                maxt = samples[i].0;
                i += 1;
            }
            let c =
                ClosedChunk { mint, maxt, kind: super::keys::KIND_OUT_OF_ORDER, bytes: app.bytes().into() };
            self.pending.push(c.clone());
            out.push(c);
        }
        out
    }

    /// Closes the open chunk (full, at a range boundary, or a backfill done with the series);
    /// the next append starts a new one.
    pub fn cut_open(&mut self) -> Option<ClosedChunk> {
        let open = self.open.take().filter(|o| !o.is_empty())?;
        let chunk = ClosedChunk {
            mint: self.open_mint,
            maxt: open.last_t(),
            kind: super::keys::KIND_IN_ORDER,
            bytes: open.bytes().into(),
        };
        self.pending.push(chunk.clone());
        Some(chunk)
    }

    /// Forgets pending chunks sled now holds.
    pub fn confirm(&mut self, written: &[ClosedChunk]) {
        self.pending.retain(|p| !written.iter().any(|w| Arc::ptr_eq(&w.bytes, &p.bytes)));
    }

    /// Earliest time held in memory.
    pub fn mint(&self) -> Option<i64> {
        let mut m: Option<i64> = None;
        let mut see = |t: i64| m = Some(m.map_or(t, |x| x.min(t)));
        if self.open.as_ref().is_some_and(|o| !o.is_empty()) {
            see(self.open_mint);
        }
        for p in &self.pending {
            see(p.mint);
        }
        if let Some(f) = self.ooo.first() {
            see(f.0);
        }
        m
    }

    pub fn push_exemplar(&mut self, e: Exemplar, cap: usize) -> bool {
        // Prometheus drops an exemplar identical to the newest one (a scrape repeats it).
        if self.exemplars.back().is_some_and(|last| last == &e) {
            return false;
        }
        if cap == 0 {
            return false;
        }
        while self.exemplars.len() >= cap {
            self.exemplars.pop_front();
        }
        self.exemplars.push_back(e);
        true
    }

    /// Drops in-memory data that ends before `cutoff` (retention).
    pub fn drop_before(&mut self, cutoff: i64) {
        if self.open.as_ref().is_some_and(|o| o.last_t() < cutoff) {
            self.open = None;
        }
        self.pending.retain(|p| p.maxt >= cutoff);
        self.ooo.retain(|s| s.0 >= cutoff);
        self.exemplars.retain(|e| e.t >= cutoff);
    }

    /// Samples held in the open chunk and the out-of-order buffer.
    pub fn sample_count(&self) -> u64 {
        self.open.as_ref().map_or(0, |o| o.len() as u64) + self.ooo.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.pending.is_empty() && self.ooo.is_empty() && self.exemplars.is_empty()
    }

    /// The head's chunks for a reader, restricted to those overlapping `[mint, maxt]`.
    pub fn chunks_for_read(&self, mint: i64, maxt: i64) -> Vec<ClosedChunk> {
        let mut out: Vec<ClosedChunk> =
            self.pending.iter().filter(|c| c.maxt >= mint && c.mint <= maxt).cloned().collect();
        if let Some(open) = &self.open
            && !open.is_empty()
            && open.last_t() >= mint
            && self.open_mint <= maxt
        {
            out.push(ClosedChunk {
                mint: self.open_mint,
                maxt: open.last_t(),
                kind: super::keys::KIND_IN_ORDER,
                bytes: open.bytes().into(),
            });
        }
        if self.ooo.iter().any(|s| s.0 >= mint && s.0 <= maxt) {
            let mut app = XorAppender::new();
            for &(t, b) in &self.ooo {
                app.append(t, f64::from_bits(b));
            }
            out.push(ClosedChunk {
                mint: self.ooo[0].0,
                maxt: self.ooo[self.ooo.len() - 1].0,
                kind: super::keys::KIND_OUT_OF_ORDER,
                bytes: app.bytes().into(),
            });
        }
        out
    }

    /// Checkpoint form: `last` marker, open chunk, out-of-order buffer, exemplars. Pending
    /// chunks are written as chunk keys beside it, not in here.
    pub fn encode_checkpoint(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.encode_checkpoint_into(&mut b);
        b
    }

    /// [`Self::encode_checkpoint`] appended to `b`.
    pub fn encode_checkpoint_into(&self, b: &mut Vec<u8>) {
        b.push(1); // version
        match self.last {
            Some((t, v)) => {
                b.push(1);
                put_varint(b, t);
                b.extend_from_slice(&v.to_be_bytes());
            }
            None => b.push(0),
        }
        match &self.open {
            Some(open) => {
                b.push(1);
                put_varint(b, self.open_mint);
                put_uvarint(b, open.byte_len() as u64);
                open.write_to(b);
            }
            None => b.push(0),
        }
        put_uvarint(b, self.ooo.len() as u64);
        for &(t, v) in &self.ooo {
            put_varint(b, t);
            b.extend_from_slice(&v.to_be_bytes());
        }
        put_uvarint(b, self.exemplars.len() as u64);
        for e in &self.exemplars {
            put_exemplar(b, e);
        }
    }

    pub fn decode_checkpoint(buf: &[u8]) -> Option<SeriesHead> {
        let mut r = Reader::new(buf);
        if r.u8()? != 1 {
            return None;
        }
        let mut h = SeriesHead::default();
        if r.u8()? == 1 {
            h.last = Some((r.varint()?, r.u64_be()?));
        }
        if r.u8()? == 1 {
            h.open_mint = r.varint()?;
            h.open = Some(XorAppender::from_bytes(r.bytes()?).ok()?);
        }
        for _ in 0..r.uvarint()? {
            h.ooo.push((r.varint()?, r.u64_be()?));
        }
        for _ in 0..r.uvarint()? {
            h.exemplars.push_back(read_exemplar(&mut r)?);
        }
        Some(h)
    }
}

pub fn put_exemplar(b: &mut Vec<u8>, e: &Exemplar) {
    put_varint(b, e.t);
    b.extend_from_slice(&e.value.to_bits().to_be_bytes());
    put_uvarint(b, e.labels.len() as u64);
    for (n, v) in e.labels.iter() {
        put_bytes(b, n.as_bytes());
        put_bytes(b, v.as_bytes());
    }
}

pub fn read_exemplar(r: &mut Reader<'_>) -> Option<Exemplar> {
    let t = r.varint()?;
    let value = f64::from_bits(r.u64_be()?);
    let n = r.uvarint()?;
    let mut pairs = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        pairs.push((r.str()?.to_string(), r.str()?.to_string()));
    }
    Some(Exemplar { labels: Labels::from_pairs(pairs), value, t })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_ordering_rules() {
        let mut h = SeriesHead::default();
        let mut cut = Vec::new();
        assert_eq!(h.append(100, 1.0, 0, &mut cut), Ok(Appended::InOrder));
        assert_eq!(h.append(100, 1.0, 0, &mut cut), Ok(Appended::Noop));
        assert_eq!(h.append(100, 2.0, 0, &mut cut), Err(Rejection::Duplicate));
        assert_eq!(h.append(99, 2.0, 0, &mut cut), Err(Rejection::OutOfOrder));
        assert_eq!(h.check(99, 2.0, 0), Err(Rejection::OutOfOrder));
        // NaN with other bits is a different value.
        assert_eq!(h.append(200, f64::NAN, 0, &mut cut), Ok(Appended::InOrder));
        assert_eq!(
            h.append(200, f64::from_bits(0x7ff0_0000_0000_0002), 0, &mut cut),
            Err(Rejection::Duplicate)
        );
        // Within a window, late samples are kept apart.
        assert_eq!(h.append(150, 5.0, 100, &mut cut), Ok(Appended::OutOfOrder));
        assert_eq!(h.append(150, 5.0, 100, &mut cut), Ok(Appended::Noop));
        assert_eq!(h.append(150, 6.0, 100, &mut cut), Err(Rejection::Duplicate));
        assert_eq!(h.append(100, 1.0, 100, &mut cut), Ok(Appended::Noop));
        assert_eq!(h.append(50, 1.0, 100, &mut cut), Err(Rejection::OutOfOrder));
    }

    #[test]
    fn cuts_at_sample_count_and_range_boundary() {
        let mut h = SeriesHead::default();
        let mut cut = Vec::new();
        for i in 0..SAMPLES_PER_CHUNK as i64 + 1 {
            h.append(i, 0.0, 0, &mut cut).unwrap();
        }
        assert_eq!(cut.len(), 1);
        assert_eq!((cut[0].mint, cut[0].maxt), (0, SAMPLES_PER_CHUNK as i64 - 1));
        h.append(CHUNK_RANGE_MS, 0.0, 0, &mut cut).unwrap();
        assert_eq!(cut.len(), 2);
        assert_eq!(h.pending.len(), 2);
        let written = cut.clone();
        h.confirm(&written);
        assert!(h.pending.is_empty());
    }

    #[test]
    fn checkpoint_round_trip() {
        let mut h = SeriesHead::default();
        let mut cut = Vec::new();
        for i in 0..10 {
            h.append(i * 10, i as f64, 1000, &mut cut).unwrap();
        }
        h.append(55, 1.5, 1000, &mut cut).unwrap();
        h.push_exemplar(Exemplar { labels: Labels::from_pairs([("trace_id", "abc")]), value: 1.0, t: 5 }, 4);
        let back = SeriesHead::decode_checkpoint(&h.encode_checkpoint()).unwrap();
        assert_eq!(back.last, h.last);
        assert_eq!(back.ooo, h.ooo);
        assert_eq!(back.exemplars, h.exemplars);
        assert_eq!(back.open.unwrap().bytes(), h.open.unwrap().bytes());
        assert!(SeriesHead::decode_checkpoint(&[1, 1]).is_none());
    }
}

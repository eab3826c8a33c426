//! The write-ahead path: what makes the in-memory head durable between checkpoints.
//!
//! Files `wal/NNNNNNNNNNNNNNNN` (16 hex digits), appended in order. A record is framed as
//! `[u32 BE body length][u32 BE crc32(body)][body]`, body = one type byte + payload.
//!
//! Group commit: an appender only copies its encoded record into an in-memory buffer under a
//! short mutex (no I/O). One flusher thread swaps the buffer out, writes and fsyncs it outside
//! that mutex every `fsync_interval`, or at once when someone waits for durability. So:
//!
//! **Durability window**: a commit is on disk (write + fsync) at most `fsync_interval` after it
//! returns (default 1 s), and a `kill -9` or power loss loses at most that window of commits.
//! With `fsync_interval = 0` every commit waits for the fsync that covers it (many commits share
//! one fsync), and nothing acknowledged is lost. `Store::sync` forces the point on demand.
//!
//! Replay reads every segment from the checkpoint's on. A torn or corrupt record (short frame,
//! crc mismatch, undecodable body) ends that segment's replay with a warning and a counter; later
//! segments are still read, and new records always go to a fresh segment, never after a torn tail.

use super::encoding::{Reader, put_bytes, put_uvarint, put_varint};
use crate::model::labels::Labels;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;
const REC_EXEMPLARS: u8 = 3;

/// A segment is closed and a new one started past this size, so checkpoints can delete whole
/// files.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// One WAL record, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A series was created with this id.
    Series { sid: u64, labels: Labels },
    /// Samples accepted by one commit: (series id, t, value bits).
    Samples(Vec<(u64, i64, u64)>),
    /// Exemplars accepted by one commit.
    Exemplars(Vec<(u64, super::Exemplar)>),
}

pub fn encode_series(out: &mut Vec<u8>, sid: u64, labels: &Labels) {
    frame(out, |b| {
        b.push(REC_SERIES);
        put_uvarint(b, sid);
        put_uvarint(b, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_bytes(b, n.as_bytes());
            put_bytes(b, v.as_bytes());
        }
    });
}

/// Samples in one record; timestamps are delta-coded against the previous sample of the record
/// because a scrape's samples share a timestamp.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[(u64, i64, u64)]) {
    frame(out, |b| {
        b.push(REC_SAMPLES);
        put_uvarint(b, samples.len() as u64);
        let mut prev_t = 0i64;
        for &(sid, t, v) in samples {
            put_uvarint(b, sid);
            put_varint(b, t.wrapping_sub(prev_t));
            prev_t = t;
            b.extend_from_slice(&v.to_be_bytes());
        }
    });
}

pub fn encode_exemplars(out: &mut Vec<u8>, exemplars: &[(u64, super::Exemplar)]) {
    frame(out, |b| {
        b.push(REC_EXEMPLARS);
        put_uvarint(b, exemplars.len() as u64);
        for (sid, e) in exemplars {
            put_uvarint(b, *sid);
            super::head::put_exemplar(b, e);
        }
    });
}

fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    body(out);
    let len = (out.len() - start - 8) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

fn decode_body(body: &[u8]) -> Option<Record> {
    let mut r = Reader::new(body);
    match r.u8()? {
        REC_SERIES => {
            let sid = r.uvarint()?;
            let n = r.uvarint()?;
            let mut pairs = Vec::with_capacity(n.min(256) as usize);
            for _ in 0..n {
                pairs.push((r.str()?.to_string(), r.str()?.to_string()));
            }
            Some(Record::Series { sid, labels: Labels::from_pairs(pairs) })
        }
        REC_SAMPLES => {
            let n = r.uvarint()?;
            let mut out = Vec::with_capacity(n.min(1 << 16) as usize);
            let mut t = 0i64;
            for _ in 0..n {
                let sid = r.uvarint()?;
                t = t.wrapping_add(r.varint()?);
                out.push((sid, t, r.u64_be()?));
            }
            Some(Record::Samples(out))
        }
        REC_EXEMPLARS => {
            let n = r.uvarint()?;
            let mut out = Vec::with_capacity(n.min(1 << 12) as usize);
            for _ in 0..n {
                let sid = r.uvarint()?;
                out.push((sid, super::head::read_exemplar(&mut r)?));
            }
            Some(Record::Exemplars(out))
        }
        _ => None,
    }
}

/// What replaying one segment found.
#[derive(Debug, Default)]
pub struct SegmentReplay {
    pub records: Vec<Record>,
    /// Bytes that could not be read (a torn write or damage), skipped in one or more runs.
    pub bad_bytes: u64,
    /// Runs of unreadable bytes: each is stepped over to the next whole record.
    pub bad_runs: usize,
    /// Why the first unreadable run could not be read.
    pub bad_reason: Option<&'static str>,
}

/// The record framed at `pos`, with the position after it, or why there is none.
fn frame_at(data: &[u8], pos: usize) -> Result<(Record, usize), &'static str> {
    let h = data.get(pos..pos + 8).ok_or("torn frame header")?;
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let body = data.get(pos + 8..pos + 8 + len).ok_or("torn record")?;
    if crc32fast::hash(body) != crc {
        return Err("crc mismatch");
    }
    let rec = decode_body(body).ok_or("undecodable record")?;
    Ok((rec, pos + 8 + len))
}

/// Where the next whole record after damage at `from` starts. A candidate must carry a known
/// record type, fit in the segment and match its crc, so damage is not misread as a record.
fn resync(data: &[u8], from: usize) -> Option<usize> {
    (from + 1..data.len().saturating_sub(8)).find(|&q| {
        let len = u32::from_be_bytes([data[q], data[q + 1], data[q + 2], data[q + 3]]) as usize;
        len > 0
            && q + 8 + len <= data.len()
            && matches!(data[q + 8], REC_SERIES | REC_SAMPLES | REC_EXEMPLARS)
            && frame_at(data, q).is_ok()
    })
}

/// Decodes a segment's records. A damaged record costs only itself: reading resumes at the
/// next whole record, so a torn write followed by good ones (a disk that filled, then had
/// space again) loses nothing acknowledged after it.
pub fn read_segment(data: &[u8]) -> SegmentReplay {
    let mut out = SegmentReplay::default();
    let mut pos = 0usize;
    while pos < data.len() {
        match frame_at(data, pos) {
            Ok((rec, next)) => {
                out.records.push(rec);
                pos = next;
            }
            Err(reason) => {
                out.bad_reason.get_or_insert(reason);
                out.bad_runs += 1;
                let next = resync(data, pos).unwrap_or(data.len());
                out.bad_bytes += (next - pos) as u64;
                pos = next;
            }
        }
    }
    out
}

fn segment_name(n: u64) -> String {
    format!("{n:016x}")
}

/// Segment numbers present in `dir`, sorted. Foreign files are ignored.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let e = e?;
                if let Some(n) = e.file_name().to_str().and_then(|s| u64::from_str_radix(s, 16).ok()) {
                    out.push(n);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    out.sort_unstable();
    Ok(out)
}

pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(segment_name(n))
}

struct Pending {
    /// Segment new appends go to.
    segment: u64,
    buf: Vec<u8>,
    /// Buffers of earlier segments not yet written (after a rotation).
    queued: Vec<(u64, Vec<u8>)>,
    /// Logical position: bytes ever appended.
    appended: u64,
    closed: bool,
}

struct FileState {
    segment: u64,
    file: Option<File>,
    size: u64,
}

struct Shared {
    dir: PathBuf,
    pending: Mutex<Pending>,
    wake: Condvar,
    file: Mutex<FileState>,
    durable: Mutex<(u64, Option<String>)>,
    durable_cv: Condvar,
    interval: Duration,
    /// Flushes that failed (a write or an fsync), each retried.
    failed_flushes: AtomicU64,
}

/// The WAL writer. Cheap to share; appends never do I/O.
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the store down with poisoned locks.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wal {
    /// Starts writing at a fresh `segment` (past every existing one).
    pub fn open(dir: &Path, segment: u64, fsync_interval: Duration) -> io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            pending: Mutex::new(Pending {
                segment,
                buf: Vec::new(),
                queued: Vec::new(),
                appended: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            file: Mutex::new(FileState { segment, file: None, size: 0 }),
            durable: Mutex::new((0, None)),
            durable_cv: Condvar::new(),
            interval: fsync_interval,
            failed_flushes: AtomicU64::new(0),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new().name("obsd-wal".into()).spawn(move || flusher(&s))?;
        Ok(Wal { shared, flusher: Mutex::new(Some(handle)) })
    }

    /// Queues framed records; returns the logical position to wait for.
    pub fn append(&self, framed: &[u8]) -> u64 {
        let mut p = lock(&self.shared.pending);
        p.buf.extend_from_slice(framed);
        p.appended += framed.len() as u64;
        if p.buf.len() > SEGMENT_BYTES as usize / 8 {
            self.shared.wake.notify_one();
        }
        p.appended
    }

    /// Why the last flush failed, while flushes fail: the store then refuses commits, since
    /// what it would acknowledge could not be made durable. Cleared by the next good flush.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.durable).1.clone()
    }

    /// Flushes that failed since the WAL was opened.
    pub fn failed_flushes(&self) -> u64 {
        self.shared.failed_flushes.load(Ordering::Relaxed)
    }

    /// The segment appends go to now.
    pub fn segment(&self) -> u64 {
        lock(&self.shared.pending).segment
    }

    /// Ends the current segment: later appends go to a new one. Returns the new segment number;
    /// every record appended before this call is in an earlier segment. No I/O.
    pub fn rotate(&self) -> u64 {
        let mut p = lock(&self.shared.pending);
        let buf = std::mem::take(&mut p.buf);
        let seg = p.segment;
        p.queued.push((seg, buf));
        p.segment += 1;
        p.segment
    }

    /// Waits until everything appended up to `pos` is written and fsynced.
    pub fn wait_durable(&self, pos: u64) -> io::Result<()> {
        self.shared.wake.notify_one();
        let mut d = lock(&self.shared.durable);
        while d.0 < pos {
            if let Some(err) = &d.1 {
                return Err(io::Error::other(err.clone()));
            }
            // The flusher notifies after each fsync; the timeout guards a missed wake-up.
            d = self
                .shared
                .durable_cv
                .wait_timeout(d, Duration::from_millis(50))
                .map(|r| r.0)
                .unwrap_or_else(|e| e.into_inner().0);
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&self) -> io::Result<()> {
        let pos = lock(&self.shared.pending).appended;
        self.wait_durable(pos)
    }

    /// Deletes segments before `segment` (they are covered by a checkpoint).
    pub fn truncate_before(&self, segment: u64) -> io::Result<u64> {
        let mut removed = 0;
        for n in list_segments(&self.shared.dir)? {
            if n < segment {
                fs::remove_file(segment_path(&self.shared.dir, n))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Bytes in segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        list_segments(&self.shared.dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|&n| fs::metadata(segment_path(&self.shared.dir, n)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// Flushes and stops the flusher.
    pub fn close(&self) -> io::Result<()> {
        let result = self.sync();
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_all();
        if let Some(h) = lock(&self.flusher).take() {
            let _ = h.join();
        }
        result
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn flusher(s: &Shared) {
    loop {
        let closed = {
            let p = lock(&s.pending);
            let p = if s.interval.is_zero() {
                // Without an interval, sleep until a commit asks.
                s.wake
                    .wait_timeout(p, Duration::from_millis(200))
                    .map(|r| r.0)
                    .unwrap_or_else(|e| e.into_inner().0)
            } else {
                s.wake.wait_timeout(p, s.interval).map(|r| r.0).unwrap_or_else(|e| e.into_inner().0)
            };
            p.closed
        };
        let result = flush_once(s);
        let mut d = lock(&s.durable);
        match result {
            Ok(pos) => {
                d.0 = d.0.max(pos);
                if let Some(error) = d.1.take() {
                    tracing::warn!(%error, "WAL writes succeed again; commits are accepted");
                }
            }
            Err(e) => {
                s.failed_flushes.fetch_add(1, Ordering::Relaxed);
                if d.1.is_none() {
                    tracing::error!(
                        error = %e,
                        "WAL write failed; commits are refused until it succeeds again (retried every flush)"
                    );
                }
                d.1 = Some(e.to_string());
            }
        }
        drop(d);
        s.durable_cv.notify_all();
        if closed {
            return;
        }
    }
}

/// Writes and fsyncs what is pending; returns the logical position now durable.
///
/// A piece (one segment's bytes) is done only once written and fsynced. When a write or an
/// fsync fails (a full disk), the segment is cut back to where the piece began, so no torn
/// record is left for later records to follow, and that piece and every later one go back to
/// the front of the queue, to be written again by the next attempt: nothing taken from the
/// queue is dropped. A failed fsync may have lost written pages from the page cache, so the
/// piece is rewritten whole rather than trusted.
fn flush_once(s: &Shared) -> io::Result<u64> {
    let mut f = lock(&s.file);
    let (pieces, appended) = {
        let mut p = lock(&s.pending);
        let mut pieces = std::mem::take(&mut p.queued);
        let seg = p.segment;
        pieces.push((seg, std::mem::take(&mut p.buf)));
        (pieces, p.appended)
    };
    let mut pieces = pieces.into_iter();
    while let Some((seg, buf)) = pieces.next() {
        if buf.is_empty() && f.segment == seg && f.file.is_some() {
            continue;
        }
        if let Err(e) = write_piece(s, &mut f, seg, &buf) {
            let mut p = lock(&s.pending);
            requeue(&mut p, std::iter::once((seg, buf)).chain(pieces));
            return Err(e);
        }
    }
    Ok(appended)
}

/// Appends one segment's bytes and fsyncs them; on failure the file is cut back.
fn write_piece(s: &Shared, f: &mut FileState, seg: u64, buf: &[u8]) -> io::Result<()> {
    if f.segment != seg || f.file.is_none() {
        let path = segment_path(&s.dir, seg);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        f.size = file.metadata()?.len();
        f.file = Some(file);
        f.segment = seg;
        // The directory entry of a new segment must survive a crash too.
        File::open(&s.dir)?.sync_all()?;
    }
    if buf.is_empty() {
        return Ok(());
    }
    let before = f.size;
    let Some(file) = f.file.as_mut() else { return Ok(()) };
    match file.write_all(buf).and_then(|()| file.sync_data()) {
        Ok(()) => {
            f.size += buf.len() as u64;
            Ok(())
        }
        Err(e) => {
            // Cutting a file shorter needs no free space. Should even that fail, the file is
            // reopened before the next write and replay steps over the torn bytes
            // (`read_segment` resynchronises on the next whole record).
            if let Err(cut) = file.set_len(before).and_then(|()| file.sync_data()) {
                tracing::error!(segment = seg, error = %cut, "cannot cut a WAL segment back after a failed write");
                f.file = None;
            }
            Err(e)
        }
    }
}

/// Puts pieces that were taken but not made durable back in front of what was appended since.
fn requeue(p: &mut Pending, pieces: impl Iterator<Item = (u64, Vec<u8>)>) {
    for (seg, mut buf) in pieces {
        if buf.is_empty() {
            continue;
        }
        if let Some(later) = p.queued.iter_mut().find(|(s, _)| *s == seg) {
            buf.extend_from_slice(&later.1);
            later.1 = buf;
        } else if seg == p.segment {
            buf.extend_from_slice(&p.buf);
            p.buf = buf;
        } else {
            let at = p.queued.iter().position(|(s, _)| *s > seg).unwrap_or(p.queued.len());
            p.queued.insert(at, (seg, buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_tail_is_cut() {
        let mut b = Vec::new();
        let l = Labels::metric("up", &[("job", "x")]);
        encode_series(&mut b, 3, &l);
        let first_len = b.len();
        let stale = 0x7ff0_0000_0000_0002u64;
        encode_samples(&mut b, &[(3, 1000, 1f64.to_bits()), (3, 999, stale), (4, -5, 0)]);
        let full = read_segment(&b);
        assert_eq!(full.records.len(), 2);
        assert_eq!(full.records[0], Record::Series { sid: 3, labels: l });
        assert_eq!(
            full.records[1],
            Record::Samples(vec![(3, 1000, 1f64.to_bits()), (3, 999, stale), (4, -5, 0)])
        );
        assert_eq!(full.bad_bytes, 0);
        for cut in 1..b.len() {
            let r = read_segment(&b[..cut]);
            assert!(r.records.len() < 2, "cut {cut}");
            assert_eq!(r.bad_bytes == 0, cut == first_len, "cut {cut}");
        }
        let mut flipped = b.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        let r = read_segment(&flipped);
        assert_eq!(r.records.len(), 1);
        assert_eq!(r.bad_reason, Some("crc mismatch"));
    }

    #[test]
    fn a_torn_record_mid_segment_costs_only_itself() {
        let l = Labels::metric("up", &[("job", "x")]);
        let mut first = Vec::new();
        encode_series(&mut first, 1, &l);
        let mut torn = Vec::new();
        encode_samples(&mut torn, &[(1, 10, 1), (1, 11, 2), (1, 12, 3)]);
        let mut last = Vec::new();
        encode_samples(&mut last, &[(1, 20, 4)]);
        for cut in 1..torn.len() {
            // A write that ran out of space part way, then good writes once space returned.
            let mut seg = first.clone();
            seg.extend_from_slice(&torn[..cut]);
            seg.extend_from_slice(&last);
            let r = read_segment(&seg);
            assert_eq!(r.records.len(), 2, "cut {cut}: {:?}", r.bad_reason);
            assert_eq!(r.records[1], Record::Samples(vec![(1, 20, 4)]), "cut {cut}");
            assert_eq!(r.bad_runs, 1, "cut {cut}");
            assert_eq!(r.bad_bytes, cut as u64, "cut {cut}");
        }
    }

    #[test]
    fn writer_rotates_and_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 5, Duration::from_secs(60)).unwrap();
        let mut b = Vec::new();
        encode_samples(&mut b, &[(1, 1, 1)]);
        wal.append(&b);
        assert_eq!(wal.rotate(), 6);
        let pos = wal.append(&b);
        wal.wait_durable(pos).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), vec![5, 6]);
        assert_eq!(fs::read(segment_path(dir.path(), 5)).unwrap(), b);
        assert_eq!(fs::read(segment_path(dir.path(), 6)).unwrap(), b);
        assert_eq!(wal.truncate_before(6).unwrap(), 1);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![6]);
        wal.close().unwrap();
    }
}

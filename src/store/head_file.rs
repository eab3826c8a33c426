//! Series heads at a checkpoint, in one file per checkpoint (`heads/<segment>`): every series'
//! open chunk, out-of-order buffer and exemplars as they stood when WAL segment `segment`
//! began, so a restart loads this file and replays that segment on.
//!
//! A file and not sled keys: sled keeps every rewritten value in its page cache and its log,
//! and rewriting 100k heads each checkpoint took ~400 MB of heap at the checkpoint and tens
//! of MB of log (measured with heaptrack on the replica benchmark). This file is written
//! front to back through a small buffer, renamed into place once synced, and read once.
//!
//! Layout: `MAGIC`, then records `uvarint len | crc32 (BE) of payload | payload`, payload =
//! `uvarint series id | head checkpoint bytes`; a record of length 0 ends the file, followed by
//! the record count as u64 BE. A record whose crc fails is skipped and counted as damage.

use super::encoding::{Reader, put_uvarint};
use super::head::SeriesHead;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"obsdhd01";

pub fn path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:016x}"))
}

/// Writes one checkpoint's heads; nothing is visible under the final name until [`finish`].
///
/// [`finish`]: HeadFileWriter::finish
pub struct HeadFileWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    record: Vec<u8>,
    frame: Vec<u8>,
    count: u64,
}

impl HeadFileWriter {
    pub fn create(dir: &Path, segment: u64) -> io::Result<HeadFileWriter> {
        fs::create_dir_all(dir)?;
        let path = path(dir, segment);
        let tmp = path.with_extension("tmp");
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        out.write_all(MAGIC)?;
        Ok(HeadFileWriter {
            out,
            tmp,
            path,
            dir: dir.to_path_buf(),
            record: Vec::new(),
            frame: Vec::new(),
            count: 0,
        })
    }

    pub fn add(&mut self, sid: u64, head: &SeriesHead) -> io::Result<()> {
        self.record.clear();
        put_uvarint(&mut self.record, sid);
        head.encode_checkpoint_into(&mut self.record);
        self.frame.clear();
        put_uvarint(&mut self.frame, self.record.len() as u64);
        self.frame.extend_from_slice(&crc32fast::hash(&self.record).to_be_bytes());
        self.out.write_all(&self.frame)?;
        self.out.write_all(&self.record)?;
        self.count += 1;
        Ok(())
    }

    /// Ends, syncs and renames the file into place (and syncs the directory entry).
    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&[0])?;
        self.out.write_all(&self.count.to_be_bytes())?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.path)?;
        File::open(&self.dir)?.sync_all()
    }
}

/// What reading a heads file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeadFileRead {
    pub heads: usize,
    /// Records that failed their crc or did not decode, plus a missing end (a cut file).
    pub damaged: usize,
}

/// Calls `f` with each head in the file for `segment`. `Ok(None)` when there is no such file.
pub fn read(
    dir: &Path,
    segment: u64,
    mut f: impl FnMut(u64, SeriesHead),
) -> io::Result<Option<HeadFileRead>> {
    let file = match File::open(path(dir, segment)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut report = HeadFileRead::default();
    let mut magic = [0u8; 8];
    if !read_full(&mut input, &mut magic)? || &magic != MAGIC {
        report.damaged += 1;
        return Ok(Some(report));
    }
    let mut payload = Vec::new();
    let mut records = 0u64;
    loop {
        let Some(len) = read_uvarint(&mut input)? else {
            report.damaged += 1; // cut before the end record
            break;
        };
        if len == 0 {
            let mut count = [0u8; 8];
            if !read_full(&mut input, &mut count)? || u64::from_be_bytes(count) != records {
                report.damaged += 1;
            }
            break;
        }
        records += 1;
        let mut crc = [0u8; 4];
        payload.resize(len as usize, 0);
        if !read_full(&mut input, &mut crc)? || !read_full(&mut input, &mut payload)? {
            report.damaged += 1;
            break;
        }
        if crc32fast::hash(&payload).to_be_bytes() != crc {
            report.damaged += 1;
            continue;
        }
        let mut r = Reader::new(&payload);
        let decoded = r.uvarint().and_then(|sid| Some((sid, SeriesHead::decode_checkpoint(r.rest())?)));
        match decoded {
            Some((sid, head)) => {
                report.heads += 1;
                f(sid, head);
            }
            None => report.damaged += 1,
        }
    }
    Ok(Some(report))
}

/// Fills `buf`; `false` when the file ends first (a cut file is damage). Any other error is
/// the system's and is returned: it says nothing about the file's contents.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match input.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// A uvarint from a stream; `None` at end of input or on one longer than 10 bytes.
fn read_uvarint(input: &mut impl BufRead) -> io::Result<Option<u64>> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let mut b = [0u8; 1];
        if input.read(&mut b)? == 0 {
            return Ok(None);
        }
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] < 0x80 {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Deletes the heads files of checkpoints other than `keep` (and unfinished ones).
pub fn remove_others(dir: &Path, keep: u64) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let keep = path(dir, keep);
    for entry in entries {
        let path = entry?.path();
        if path != keep {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(samples: &[(i64, f64)]) -> SeriesHead {
        let mut h = SeriesHead::default();
        let mut cut = Vec::new();
        for &(t, v) in samples {
            h.append(t, v, 0, &mut cut).unwrap();
        }
        h
    }

    fn read_all(dir: &Path, segment: u64) -> (Vec<(u64, Vec<u8>)>, Option<HeadFileRead>) {
        let mut got = Vec::new();
        let report = read(dir, segment, |sid, h| got.push((sid, h.encode_checkpoint()))).unwrap();
        (got, report)
    }

    #[test]
    fn heads_round_trip_and_only_finished_files_count() {
        let dir = tempfile::tempdir().unwrap();
        let heads: Vec<(u64, SeriesHead)> =
            (1..=50).map(|sid| (sid, head(&[(1000, sid as f64), (2000, 0.5), (3000, f64::NAN)]))).collect();
        let mut w = HeadFileWriter::create(dir.path(), 7).unwrap();
        for (sid, h) in &heads {
            w.add(*sid, h).unwrap();
        }
        assert_eq!(read_all(dir.path(), 7).1, None, "visible before finish");
        w.finish().unwrap();
        let (got, report) = read_all(dir.path(), 7);
        assert_eq!(report, Some(HeadFileRead { heads: 50, damaged: 0 }));
        let want: Vec<_> = heads.iter().map(|(sid, h)| (*sid, h.encode_checkpoint())).collect();
        assert_eq!(got, want);

        HeadFileWriter::create(dir.path(), 9).unwrap().finish().unwrap();
        std::fs::write(dir.path().join("0000000000000008.tmp"), b"half").unwrap();
        remove_others(dir.path(), 9).unwrap();
        assert_eq!(read_all(dir.path(), 7).1, None);
        assert_eq!(read_all(dir.path(), 9).1, Some(HeadFileRead { heads: 0, damaged: 0 }));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn damage_skips_records_and_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HeadFileWriter::create(dir.path(), 1).unwrap();
        for sid in 1..=3 {
            w.add(sid, &head(&[(1000, 1.0), (2000, 2.0)])).unwrap();
        }
        w.finish().unwrap();
        let p = path(dir.path(), 1);
        let good = std::fs::read(&p).unwrap();
        // A flipped byte in the second record's payload: that record alone is lost.
        let mut flipped = good.clone();
        let record = (good.len() - 8 - 1 - 8) / 3;
        flipped[8 + record + record / 2] ^= 0x40;
        std::fs::write(&p, &flipped).unwrap();
        let (got, report) = read_all(dir.path(), 1);
        assert_eq!(report, Some(HeadFileRead { heads: 2, damaged: 1 }));
        assert_eq!(got.iter().map(|(sid, _)| *sid).collect::<Vec<_>>(), [1, 3]);
        // Every truncation reads without panicking and reports the cut.
        for cut in 0..good.len() {
            std::fs::write(&p, &good[..cut]).unwrap();
            let (got, report) = read_all(dir.path(), 1);
            let report = report.unwrap();
            assert!(report.damaged >= 1, "cut at {cut} not reported");
            assert!(got.len() <= 3);
        }
    }
}

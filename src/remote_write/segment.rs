//! The on-disk form of a remote-write shard: segment files of records
//! (`[len u32][crc32 u32][samples u32][0 u32][max_t i64]` then a protobuf `WriteRequest`) and the
//! `cursor` file naming the first unsent record. Reading tells a record still being written
//! (`End`) from a damaged one (`Corrupt`), and finds the next whole record after damage.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes of a record's header.
pub(super) const HEADER: usize = 24;

/// Appends one record (header, then the encoded `WriteRequest`) to `buf`.
pub(super) fn put_record(buf: &mut Vec<u8>, payload: &[u8], samples: u32, max_t: i64) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(&samples.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&max_t.to_le_bytes());
    buf.extend_from_slice(payload);
}

pub(super) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Segment ids present in a shard directory, ascending.
pub(super) fn segments(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

pub(super) fn read_cursor(dir: &Path) -> (u64, u64) {
    fs::read_to_string(dir.join("cursor"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u64>());
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((0, 0))
}

pub(super) fn write_cursor(dir: &Path, cursor: (u64, u64)) -> std::io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    fs::write(&tmp, format!("{} {}\n", cursor.0, cursor.1))?;
    fs::rename(tmp, dir.join("cursor"))
}

/// One record read back from a segment.
pub(super) struct Record {
    pub(super) samples: u32,
    pub(super) max_t: i64,
    pub(super) payload: Vec<u8>,
    pub(super) len: u64,
}

pub(super) enum ReadOutcome {
    Record(Record),
    /// No complete record at this offset (yet): the file ends first.
    End,
    /// A complete record that fails its crc, or a header no writer made. The samples count
    /// comes from the header, which may itself be damaged (`None` when implausible).
    Corrupt {
        samples: Option<u32>,
    },
}

/// The largest record a writer makes (a `max_samples_per_send` batch is far below it).
pub(super) const MAX_RECORD: usize = 256 << 20;

pub(super) fn read_record(file: &mut File, offset: u64) -> std::io::Result<ReadOutcome> {
    file.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; HEADER];
    if let Err(e) = file.read_exact(&mut header) {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof { Ok(ReadOutcome::End) } else { Err(e) };
    }
    let word = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let len = word(0) as usize;
    let crc = word(4);
    let samples = word(8);
    let mut t = [0u8; 8];
    t.copy_from_slice(&header[16..24]);
    let max_t = i64::from_le_bytes(t);
    if len > MAX_RECORD || word(12) != 0 {
        return Ok(ReadOutcome::Corrupt { samples: None });
    }
    let mut payload = vec![0u8; len];
    if let Err(e) = file.read_exact(&mut payload) {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof { Ok(ReadOutcome::End) } else { Err(e) };
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(ReadOutcome::Corrupt { samples: Some(samples) });
    }
    Ok(ReadOutcome::Record(Record { samples, max_t, payload, len: (HEADER + len) as u64 }))
}

/// Where the next whole record after damage at `offset` starts in a closed segment, if any
/// does: a torn record (a write that failed on a full disk) then costs only itself.
pub(super) fn resync(file: &mut File, offset: u64) -> Option<u64> {
    let mut rest = Vec::new();
    file.seek(SeekFrom::Start(offset + 1)).ok()?;
    file.read_to_end(&mut rest).ok()?;
    let word = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (0..rest.len().saturating_sub(HEADER)).find_map(|q| {
        let len = word(&rest, q) as usize;
        let whole = len <= MAX_RECORD && word(&rest, q + 12) == 0 && q + HEADER + len <= rest.len();
        (whole && crc32fast::hash(&rest[q + HEADER..q + HEADER + len]) == word(&rest, q + 4))
            .then_some(offset + 1 + q as u64)
    })
}

/// The samples count and newest time of every record of a closed segment from `offset` on,
/// damaged records included with the count their header gives (no time), as the sender will
/// meet them: it counts those as dropped.
pub(super) fn for_each_record(file: &mut File, mut offset: u64, mut each: impl FnMut(u32, Option<i64>)) {
    loop {
        match read_record(file, offset) {
            Ok(ReadOutcome::Record(r)) => {
                each(r.samples, Some(r.max_t));
                offset += r.len;
            }
            Ok(ReadOutcome::Corrupt { samples }) => {
                each(samples.unwrap_or(0), None);
                match resync(file, offset) {
                    Some(next) => offset = next,
                    None => return,
                }
            }
            _ => return,
        }
    }
}

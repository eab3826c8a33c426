//! sled key layouts. Everything lives in sled's default tree under a one-byte prefix; numbers are
//! big-endian so sled's byte order is numeric order, and timestamps have their sign bit flipped
//! so negative times sort before positive ones.
//!
//! | prefix | key | value | why |
//! |---|---|---|---|
//! | `m` | `m` + name | meta value | format version, checkpoint segment |
//! | `y` | `y` + symbol u32 | the string | label strings interned once; series refer to ids |
//! | `s` | `s` + series id u64 | uvarint count, then (name sym, value sym) uvarint pairs | series id → label set |
//! | `c` | `c` + series id u64 + maxt + mint + kind u8 | crc32 (4 bytes BE) + chunk (decimal layout, or XOR when smaller) | closed chunks, per series in maxt order; one per series and 2 h range once the range is closed |
//! | `h` | `h` + series id u64 | crc32 + head state (see `head::encode_checkpoint`) | heads checkpointed by obsd before the heads file (`head_file`); read once, removed by the next checkpoint |
//!
//! Chunks are keyed by maxt first so a range scan from `(series, query mint)` starts at the
//! first chunk that can overlap the query; chunk spans are capped (`head::CHUNK_RANGE_MS`), so
//! the scan stops once maxt passes the query's maxt plus that cap. `kind` separates in-order
//! chunks from chunks of out-of-order samples that may overlap them.

pub const META: u8 = b'm';
pub const SYMBOL: u8 = b'y';
pub const SERIES: u8 = b's';
pub const CHUNK: u8 = b'c';
pub const HEAD: u8 = b'h';

/// Meta key: the WAL segment replay starts from (everything before it is in the checkpoint).
pub const META_CHECKPOINT: &[u8] = b"mcheckpoint";
/// Meta key: present once the store has been opened with an out-of-order window, i.e. once it
/// may hold out-of-order chunks (which can overlap any time range).
pub const META_OUT_OF_ORDER: &[u8] = b"mout_of_order";
/// Meta key: on-disk format version, checked at open.
pub const META_VERSION: &[u8] = b"mversion";
pub const FORMAT_VERSION: u32 = 1;

pub const KIND_IN_ORDER: u8 = 0;
pub const KIND_OUT_OF_ORDER: u8 = 1;

pub fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn time_from(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

fn u64_from(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

pub fn symbol(id: u32) -> [u8; 5] {
    let mut k = [SYMBOL, 0, 0, 0, 0];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn symbol_id(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.get(1..5)?.try_into().ok()?))
}

pub fn series(sid: u64) -> [u8; 9] {
    let mut k = [SERIES; 9];
    k[1..].copy_from_slice(&sid.to_be_bytes());
    k
}

pub fn head(sid: u64) -> [u8; 9] {
    let mut k = [HEAD; 9];
    k[1..].copy_from_slice(&sid.to_be_bytes());
    k
}

/// The series id of an `s`, `h` or `c` key.
pub fn sid_of(key: &[u8]) -> Option<u64> {
    u64_from(key.get(1..)?)
}

pub fn chunk(sid: u64, maxt: i64, mint: i64, kind: u8) -> [u8; 26] {
    let mut k = [0u8; 26];
    k[0] = CHUNK;
    k[1..9].copy_from_slice(&sid.to_be_bytes());
    k[9..17].copy_from_slice(&time_bytes(maxt));
    k[17..25].copy_from_slice(&time_bytes(mint));
    k[25] = kind;
    k
}

/// All chunk keys of a series whose maxt is at least `from`.
pub fn chunk_range_start(sid: u64, from_maxt: i64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = CHUNK;
    k[1..9].copy_from_slice(&sid.to_be_bytes());
    k[9..17].copy_from_slice(&time_bytes(from_maxt));
    k
}

pub fn chunk_prefix(sid: u64) -> [u8; 9] {
    let mut k = [CHUNK; 9];
    k[1..].copy_from_slice(&sid.to_be_bytes());
    k
}

/// A parsed chunk key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkKey {
    pub sid: u64,
    pub maxt: i64,
    pub mint: i64,
    pub kind: u8,
}

pub fn parse_chunk(key: &[u8]) -> Option<ChunkKey> {
    if key.len() != 26 || key[0] != CHUNK {
        return None;
    }
    Some(ChunkKey {
        sid: u64_from(&key[1..9])?,
        maxt: time_from(&key[9..17])?,
        mint: time_from(&key[17..25])?,
        kind: key[25],
    })
}

/// A value with its crc32 in front, so damage sled does not notice is caught on read.
pub fn with_crc(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 4);
    v.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The payload if the crc matches.
pub fn check_crc(value: &[u8]) -> Option<&[u8]> {
    let (crc, payload) = value.split_at_checked(4)?;
    (crc32fast::hash(payload).to_be_bytes() == crc).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_is_numeric_order() {
        let ts = [i64::MIN, -1_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in ts.windows(2) {
            assert!(time_bytes(w[0]) < time_bytes(w[1]));
        }
        for t in ts {
            assert_eq!(time_from(&time_bytes(t)), Some(t));
        }
    }

    #[test]
    fn chunk_key_round_trip_and_order() {
        let k = chunk(7, 100, -5, KIND_OUT_OF_ORDER);
        assert_eq!(parse_chunk(&k), Some(ChunkKey { sid: 7, maxt: 100, mint: -5, kind: 1 }));
        assert!(chunk(7, 100, 0, 0) < chunk(7, 101, -9, 0));
        assert!(chunk(7, i64::MAX, 0, 0) < chunk(8, i64::MIN, 0, 0));
        assert!(chunk_range_start(7, 100)[..] <= chunk(7, 100, 0, 0)[..]);
        assert_eq!(sid_of(&series(42)), Some(42));
    }

    #[test]
    fn crc_catches_flips() {
        let v = with_crc(b"hello");
        assert_eq!(check_crc(&v), Some(&b"hello"[..]));
        let mut bad = v.clone();
        bad[6] ^= 1;
        assert_eq!(check_crc(&bad), None);
        assert_eq!(check_crc(&[1, 2]), None);
    }
}

//! Key layouts of the span store, one sled tree per time bucket (`spans/<start_s>/<width_s>`),
//! after Jaeger's badger spanstore (`writer.go`). All integers are big-endian so sled's byte
//! order is numeric order; strings are `u16 length | bytes` so a prefix never matches a longer
//! name (`web` vs `webapp`), which Jaeger's separator-less concatenation would.
//!
//! ```text
//! 0x80 SPANS     | trace_id(16) | start_us(8) | seq(8)                 → 0x01 | snappy(StoredChunk)
//! 0x91 SERVICE   | service | max_start_us(8) | seq(8)                  → postings with durations
//! 0x92 OPERATION | service | operation | max_start_us(8) | seq(8)      → postings with durations
//! 0x93 TAG       | service | partition(1) | max_start_us(8) | seq(8)    → tag entries
//! ```
//!
//! sled's cost (CPU and bytes) is per key, so neither spans nor index entries get one each,
//! unlike Jaeger's badger layout. A write stores one chunk per trace and batch (`seq` makes it
//! unique), and one posting list per index term and batch: each posting is a trace of the batch
//! that has a span with that term, as `trace_id(16) | varint(max_start_us - start_us)`, where
//! `start_us` is the trace chunk's earliest span; service and operation postings add
//! `varint(shortest) | varint(longest - shortest)`, the chunk's span durations for that term,
//! which is what duration search reads. Tag terms (`key | value`) are hashed into
//! `TAG_PARTITIONS` partitions per service; a partition's value is a sequence of
//! `varint(len) | term | varint(len) | postings` entries, one per term of the batch. Index keys end with the batch's newest posting start and
//! the batch number, so a time window is one range scan from its lower bound, newest batches
//! first when reversed. The stored value of a chunk starts with a format byte: 0x01 is snappy-
//! compressed protobuf; a raw protobuf (first byte 0x0a) is read too.
//!
//! The `meta` tree holds what outlives buckets:
//!
//! ```text
//! "s" | service                       → last bucket start_us(8) it was seen in
//! "o" | service | kind | operation    → last bucket start_us(8)
//! "p" | hash(8)                       → StoredProcess (deduplicated resources)
//! ```

pub const SPAN: u8 = 0x80;
pub const SERVICE: u8 = 0x91;
pub const OPERATION: u8 = 0x92;
pub const TAG: u8 = 0x93;

/// The format byte of a snappy-compressed chunk value.
pub const CHUNK_SNAPPY: u8 = 0x01;

pub const META_SERVICE: u8 = b's';
pub const META_OPERATION: u8 = b'o';
pub const META_PROCESS: u8 = b'p';

/// Names and tag values longer than this are cut in index keys (and in queries the same way),
/// so one huge attribute cannot bloat every index entry.
pub const MAX_INDEXED_STRING: usize = 256;

pub fn push_str(buf: &mut Vec<u8>, s: &str) {
    let s = truncate(s);
    // truncate() keeps at most MAX_INDEXED_STRING bytes, so the length fits in u16.
    buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

pub fn truncate(s: &str) -> &str {
    if s.len() <= MAX_INDEXED_STRING {
        return s;
    }
    let mut end = MAX_INDEXED_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Reads a `u16 len | bytes` string at `pos`, returning it and the position after it.
pub fn read_str(key: &[u8], pos: usize) -> Option<(&str, usize)> {
    let len = u16::from_be_bytes(key.get(pos..pos + 2)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(key.get(pos + 2..pos + 2 + len)?).ok()?;
    Some((s, pos + 2 + len))
}

pub fn chunk_key(trace_id: &[u8; 16], start_us: u64, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(SPAN);
    k.extend_from_slice(trace_id);
    k.extend_from_slice(&start_us.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn span_prefix(trace_id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(SPAN);
    k.extend_from_slice(trace_id);
    k
}

/// The newest posting start of an index key (just before its trailing batch number).
pub fn index_max_start_us(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(16)?;
    Some(u64::from_be_bytes(key[at..at + 8].try_into().ok()?))
}

pub fn service_prefix(service: &str) -> Vec<u8> {
    let mut k = vec![SERVICE];
    push_str(&mut k, service);
    k
}

pub fn operation_prefix(service: &str, operation: &str) -> Vec<u8> {
    let mut k = vec![OPERATION];
    push_str(&mut k, service);
    push_str(&mut k, operation);
    k
}

/// `prefix | max_start_us | seq`: the shape of every index key.
pub fn index_key(prefix: &[u8], max_start_us: u64, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 16);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&max_start_us.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Inclusive key range of `prefix` entries that may hold postings starting at `lo` or later:
/// every key whose newest posting is at least `lo`.
pub fn index_range_from(prefix: &[u8], lo: u64) -> (Vec<u8>, Vec<u8>) {
    let mut start = prefix.to_vec();
    start.extend_from_slice(&lo.to_be_bytes());
    let mut end = prefix.to_vec();
    end.extend_from_slice(&[0xff; 16]);
    (start, end)
}

/// One entry of a posting list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub trace_id: [u8; 16],
    pub start_us: u64,
    /// Shortest and longest span duration of the term in the chunk (0, 0 for tag postings).
    pub min_duration_us: u64,
    pub max_duration_us: u64,
}

/// Whether postings under this key carry durations.
pub fn has_durations(key: &[u8]) -> bool {
    matches!(key.first(), Some(&SERVICE) | Some(&OPERATION))
}

pub fn encode_postings(postings: &[Posting], max_start_us: u64, durations: bool, out: &mut Vec<u8>) {
    use prost::encoding::encode_varint;
    for p in postings {
        out.extend_from_slice(&p.trace_id);
        encode_varint(max_start_us.saturating_sub(p.start_us), out);
        if durations {
            encode_varint(p.min_duration_us, out);
            encode_varint(p.max_duration_us.saturating_sub(p.min_duration_us), out);
        }
    }
}

/// Decodes the posting list stored under a service or operation `key`; `None` if damaged.
pub fn decode_postings(key: &[u8], value: &[u8]) -> Option<Vec<Posting>> {
    decode_posting_list(index_max_start_us(key)?, has_durations(key), value)
}

fn decode_posting_list(max_start: u64, durations: bool, mut value: &[u8]) -> Option<Vec<Posting>> {
    use prost::encoding::decode_varint;
    let mut out = Vec::new();
    while !value.is_empty() {
        let trace_id: [u8; 16] = value.get(..16)?.try_into().ok()?;
        value = &value[16..];
        let start_us = max_start.checked_sub(decode_varint(&mut value).ok()?)?;
        let (min_duration_us, max_duration_us) = if durations {
            let min = decode_varint(&mut value).ok()?;
            (min, min.saturating_add(decode_varint(&mut value).ok()?))
        } else {
            (0, 0)
        };
        out.push(Posting { trace_id, start_us, min_duration_us, max_duration_us });
    }
    Some(out)
}

/// Tag terms are spread over this many partitions per service: one index key per partition
/// and batch instead of one per distinct tag value (a batch of 512 spans can carry hundreds of
/// ids or routes), at the price of a search skipping the other terms of its partition.
pub const TAG_PARTITIONS: u64 = 64;

/// `TAG | service | partition` for the tag term `key | value` (as `push_str` writes them).
pub fn tag_partition_prefix(service: &str, term: &[u8]) -> Vec<u8> {
    let mut k = vec![TAG];
    push_str(&mut k, service);
    k.push((fnv1a(term) % TAG_PARTITIONS) as u8);
    k
}

/// The `key | value` part of a tag term, as it is looked up inside a partition.
pub fn tag_term(key: &str, value: &str) -> Vec<u8> {
    let mut t = Vec::with_capacity(key.len() + value.len() + 4);
    push_str(&mut t, key);
    push_str(&mut t, value);
    t
}

/// Appends one term's entry to a tag partition value: `varint(len) term varint(len) postings`.
pub fn encode_tag_entry(term: &[u8], postings: &[Posting], max_start_us: u64, out: &mut Vec<u8>) {
    use prost::encoding::encode_varint;
    let mut list = Vec::with_capacity(postings.len() * 20);
    encode_postings(postings, max_start_us, false, &mut list);
    encode_varint(term.len() as u64, out);
    out.extend_from_slice(term);
    encode_varint(list.len() as u64, out);
    out.extend_from_slice(&list);
}

/// The postings of `term` in the tag partition value stored under `key` (empty if the term is
/// not there); `None` if the value is damaged.
pub fn tag_postings(key: &[u8], mut value: &[u8], term: &[u8]) -> Option<Vec<Posting>> {
    use prost::encoding::decode_varint;
    let max_start = index_max_start_us(key)?;
    while !value.is_empty() {
        let len = usize::try_from(decode_varint(&mut value).ok()?).ok()?;
        let this = value.get(..len)?;
        value = &value[len..];
        let len = usize::try_from(decode_varint(&mut value).ok()?).ok()?;
        let list = value.get(..len)?;
        value = &value[len..];
        if this == term {
            return decode_posting_list(max_start, false, list);
        }
    }
    Some(Vec::new())
}

pub fn meta_service(service: &str) -> Vec<u8> {
    let mut k = vec![META_SERVICE];
    push_str(&mut k, service);
    k
}

pub fn push_meta_operation(k: &mut Vec<u8>, service: &str, kind: &str, operation: &str) {
    k.push(META_OPERATION);
    push_str(k, service);
    push_str(k, kind);
    push_str(k, operation);
}

pub fn meta_process(hash: u64) -> Vec<u8> {
    let mut k = vec![META_PROCESS];
    k.extend_from_slice(&hash.to_be_bytes());
    k
}

/// FNV-1a: a hash stable across restarts and builds, for what is stored.
pub fn fnv1a(encoded: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in encoded {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_keeps_names_apart() {
        let web = service_prefix("web");
        let webapp = index_key(&service_prefix("webapp"), 1, 2);
        assert!(!webapp.starts_with(&web));
        let k = index_key(&operation_prefix("svc", "GET /"), 42, 7);
        assert_eq!(index_max_start_us(&k), Some(42));
        let (s, pos) = read_str(&k, 1).unwrap();
        assert_eq!(s, "svc");
        assert_eq!(read_str(&k, pos).unwrap().0, "GET /");
    }

    #[test]
    fn postings_round_trip() {
        let postings = vec![
            Posting { trace_id: [1; 16], start_us: 1_000, min_duration_us: 5, max_duration_us: 70 },
            Posting { trace_id: [2; 16], start_us: 900_000, min_duration_us: 0, max_duration_us: 0 },
        ];
        for (prefix, durations) in [(service_prefix("svc"), true), (operation_prefix("svc", "op"), true)] {
            let key = index_key(&prefix, 900_000, 3);
            let mut value = Vec::new();
            encode_postings(&postings, 900_000, durations, &mut value);
            let back = decode_postings(&key, &value).unwrap();
            assert_eq!(back.len(), 2);
            assert_eq!(back[1].start_us, 900_000);
            assert_eq!(back[0].trace_id, [1; 16]);
            assert_eq!(back, postings);
            assert!(decode_postings(&key, &value[..value.len() - 1]).is_none());
        }
        let key = index_key(&tag_partition_prefix("svc", &tag_term("k", "v")), 900_000, 3);
        let mut value = Vec::new();
        encode_tag_entry(&tag_term("k", "v"), &postings, 900_000, &mut value);
        encode_tag_entry(&tag_term("k", "w"), &postings[..1], 900_000, &mut value);
        let back = tag_postings(&key, &value, &tag_term("k", "w")).unwrap();
        assert_eq!((back.len(), back[0].start_us, back[0].max_duration_us), (1, 1_000, 0));
        assert_eq!(tag_postings(&key, &value, &tag_term("k", "v")).unwrap().len(), 2);
        assert!(tag_postings(&key, &value, &tag_term("k", "x")).unwrap().is_empty());
        assert!(tag_postings(&key, &value[..value.len() - 1], &tag_term("k", "w")).is_none());
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary() {
        let long = "é".repeat(200);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_INDEXED_STRING);
        assert!(long.starts_with(cut));
    }
}

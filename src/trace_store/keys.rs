//! Key layouts of the span store, one sled tree per time bucket (`spans/<start_s>/<width_s>`),
//! after Jaeger's badger spanstore (`writer.go`). All integers are big-endian so sled's byte
//! order is numeric order; strings are `u16 length | bytes` so a prefix never matches a longer
//! name (`web` vs `webapp`), which Jaeger's separator-less concatenation would.
//!
//! ```text
//! 0x80 SPANS     | trace_id(16) | start_us(8) | seq(8)                 → StoredChunk
//! 0x81 SERVICE   | service | start_us(8) | trace_id(16)                  → ""
//! 0x82 OPERATION | service | operation | start_us(8) | trace_id(16)      → ""
//! 0x83 TAG       | service | key | value | start_us(8) | trace_id(16)    → ""
//! 0x84 DURATION  | service | duration_us(8) | start_us(8) | trace_id(16) → ""
//! ```
//!
//! Unlike Jaeger's one key per span, a write stores one chunk per trace per batch (`seq` makes
//! it unique) and each index entry once per chunk (`start_us` = the chunk's earliest span),
//! because sled's cost is per key: this cuts keys per span several-fold. Durations index only
//! each chunk's shortest and longest span per service (exact for a min or a max bound alone).
//! Chunk keys sort by trace id, so a trace is one prefix scan per bucket; index keys end with
//! the start time, so a time window is one range scan, newest first when reversed. Index
//! values are empty: a search yields trace ids, then the traces are read by id.
//!
//! The `meta` tree holds what outlives buckets:
//!
//! ```text
//! "s" | service                       → last bucket start_us(8) it was seen in
//! "o" | service | kind | operation    → last bucket start_us(8)
//! "p" | hash(8)                       → StoredProcess (deduplicated resources)
//! ```

pub const SPAN: u8 = 0x80;
pub const SERVICE: u8 = 0x81;
pub const OPERATION: u8 = 0x82;
pub const TAG: u8 = 0x83;
pub const DURATION: u8 = 0x84;

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

/// The trace id at the end of every index key.
pub fn index_trace_id(key: &[u8]) -> Option<[u8; 16]> {
    key.len().checked_sub(16).and_then(|at| key[at..].try_into().ok())
}

/// The start time just before the trailing trace id of every index key.
pub fn index_start_us(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(24)?;
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

pub fn tag_prefix(service: &str, key: &str, value: &str) -> Vec<u8> {
    let mut k = vec![TAG];
    push_str(&mut k, service);
    push_str(&mut k, key);
    push_str(&mut k, value);
    k
}

pub fn duration_prefix(service: &str) -> Vec<u8> {
    let mut k = vec![DURATION];
    push_str(&mut k, service);
    k
}

/// `prefix | start_us | trace_id`: the shape of every index key.
pub fn with_time(prefix: &[u8], start_us: u64, trace_id: &[u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 24);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&start_us.to_be_bytes());
    k.extend_from_slice(trace_id);
    k
}

/// Inclusive key range of `prefix` entries whose next 8 bytes lie in `[lo, hi]`.
pub fn time_range(prefix: &[u8], lo: u64, hi: u64) -> (Vec<u8>, Vec<u8>) {
    let mut start = prefix.to_vec();
    start.extend_from_slice(&lo.to_be_bytes());
    let mut end = prefix.to_vec();
    end.extend_from_slice(&hi.to_be_bytes());
    end.extend_from_slice(&[0xff; 17]);
    (start, end)
}

pub fn meta_service(service: &str) -> Vec<u8> {
    let mut k = vec![META_SERVICE];
    push_str(&mut k, service);
    k
}

pub fn meta_operation(service: &str, kind: &str, operation: &str) -> Vec<u8> {
    let mut k = vec![META_OPERATION];
    push_str(&mut k, service);
    push_str(&mut k, kind);
    push_str(&mut k, operation);
    k
}

pub fn meta_process(hash: u64) -> Vec<u8> {
    let mut k = vec![META_PROCESS];
    k.extend_from_slice(&hash.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_keeps_names_apart() {
        let web = service_prefix("web");
        let webapp = with_time(&service_prefix("webapp"), 1, &[1; 16]);
        assert!(!webapp.starts_with(&web));
        let k = with_time(&operation_prefix("svc", "GET /"), 42, &[7; 16]);
        assert_eq!(index_start_us(&k), Some(42));
        assert_eq!(index_trace_id(&k), Some([7; 16]));
        let (s, pos) = read_str(&k, 1).unwrap();
        assert_eq!(s, "svc");
        assert_eq!(read_str(&k, pos).unwrap().0, "GET /");
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary() {
        let long = "é".repeat(200);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_INDEXED_STRING);
        assert!(long.starts_with(cut));
    }
}

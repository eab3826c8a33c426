//! The on-disk encoding of spans and processes: protobuf via prost, because it is compact,
//! already compiled in for OTLP, and tolerates added fields across obsd versions (new tags are
//! skipped by old readers, missing ones read as defaults).
//!
//! The trace id is not repeated in the value (it is in the key) and the process is stored once
//! per distinct process under its hash, not once per span. Chunks are written straight from
//! the borrowed spans (the same wire format `StoredChunk` decodes, without copying every string
//! into it first) and snappy-compressed: the spans of one trace repeat tag keys, names and
//! values, so this about halves them for little CPU.

use super::model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use prost::Message;
use std::sync::Arc;

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredSpan {
    #[prost(fixed64, tag = "1")]
    pub span_id: u64,
    #[prost(string, tag = "2")]
    pub operation_name: String,
    #[prost(message, repeated, tag = "3")]
    pub references: Vec<StoredRef>,
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    #[prost(uint64, tag = "5")]
    pub start_time_us: u64,
    #[prost(uint64, tag = "6")]
    pub duration_us: u64,
    #[prost(message, repeated, tag = "7")]
    pub tags: Vec<StoredKv>,
    #[prost(message, repeated, tag = "8")]
    pub logs: Vec<StoredLog>,
    #[prost(fixed64, tag = "9")]
    pub process_hash: u64,
    #[prost(string, repeated, tag = "10")]
    pub warnings: Vec<String>,
}

/// The spans of one trace written by one batch: one sled value, so a write costs one key per
/// trace and batch instead of one per span.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredChunk {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<StoredSpan>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredRef {
    /// 0 = CHILD_OF, 1 = FOLLOWS_FROM (Jaeger's enum values).
    #[prost(uint32, tag = "1")]
    pub ref_type: u32,
    /// Empty when the reference is within the span's own trace.
    #[prost(bytes = "vec", tag = "2")]
    pub trace_id: Vec<u8>,
    #[prost(fixed64, tag = "3")]
    pub span_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredLog {
    #[prost(uint64, tag = "1")]
    pub timestamp_us: u64,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<StoredKv>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredKv {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(oneof = "StoredValue", tags = "2, 3, 4, 5, 6")]
    pub value: Option<StoredValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum StoredValue {
    #[prost(string, tag = "2")]
    Str(String),
    #[prost(bool, tag = "3")]
    Bool(bool),
    #[prost(sint64, tag = "4")]
    Int64(i64),
    #[prost(double, tag = "5")]
    Float64(f64),
    #[prost(bytes = "vec", tag = "6")]
    Binary(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredProcess {
    #[prost(string, tag = "1")]
    pub service_name: String,
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<StoredKv>,
}

fn kv_out(kv: &KeyValue) -> StoredKv {
    let value = match &kv.value {
        Value::Str(s) => StoredValue::Str(s.clone()),
        Value::Bool(b) => StoredValue::Bool(*b),
        Value::Int64(i) => StoredValue::Int64(*i),
        Value::Float64(f) => StoredValue::Float64(*f),
        Value::Binary(b) => StoredValue::Binary(b.clone()),
    };
    StoredKv { key: kv.key.clone(), value: Some(value) }
}

fn kv_in(kv: StoredKv) -> KeyValue {
    let value = match kv.value {
        Some(StoredValue::Str(s)) => Value::Str(s),
        Some(StoredValue::Bool(b)) => Value::Bool(b),
        Some(StoredValue::Int64(i)) => Value::Int64(i),
        Some(StoredValue::Float64(f)) => Value::Float64(f),
        Some(StoredValue::Binary(b)) => Value::Binary(b),
        None => Value::Str(String::new()),
    };
    KeyValue { key: kv.key, value }
}

pub fn encode_process(p: &Process) -> Vec<u8> {
    StoredProcess { service_name: p.service_name.clone(), tags: p.tags.iter().map(kv_out).collect() }
        .encode_to_vec()
}

pub fn decode_process(bytes: &[u8]) -> Result<Process, prost::DecodeError> {
    let p = StoredProcess::decode(bytes)?;
    Ok(Process { service_name: p.service_name, tags: p.tags.into_iter().map(kv_in).collect() })
}

/// FNV-1a over the encoded process: stable across restarts and builds, unlike `DefaultHasher`.
pub fn process_hash(encoded: &[u8]) -> u64 {
    super::keys::fnv1a(encoded)
}

/// The stored value of a chunk: the format byte, then snappy-compressed `StoredChunk`.
pub fn encode_chunk(spans: &[(&Span, u64)]) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut body = Vec::new();
    for (span, hash) in spans {
        body.clear();
        wire::span(span, *hash, &mut body);
        wire::message(1, &body, &mut raw);
    }
    let mut out = vec![0; 1 + snap::raw::max_compress_len(raw.len())];
    out[0] = super::keys::CHUNK_SNAPPY;
    match snap::raw::Encoder::new().compress(&raw, &mut out[1..]) {
        Ok(n) => {
            out.truncate(1 + n);
            out
        }
        // Cannot happen with a buffer of max_compress_len; the raw form is readable too.
        Err(_) => raw,
    }
}

/// Protobuf encoding of the `Stored*` messages from borrowed model values.
mod wire {
    use super::super::model::{KeyValue, RefType, Span, Value};
    use prost::encoding::{self, WireType, encode_key, encode_varint};

    pub fn message(tag: u32, body: &[u8], out: &mut Vec<u8>) {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn str(tag: u32, s: &str, out: &mut Vec<u8>) {
        message(tag, s.as_bytes(), out);
    }

    fn kv(tag: u32, kv: &KeyValue, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        scratch.clear();
        str(1, &kv.key, scratch);
        match &kv.value {
            Value::Str(s) => str(2, s, scratch),
            Value::Bool(b) => encoding::bool::encode(3, b, scratch),
            Value::Int64(i) => encoding::sint64::encode(4, i, scratch),
            Value::Float64(f) => encoding::double::encode(5, f, scratch),
            Value::Binary(b) => message(6, b, scratch),
        }
        message(tag, scratch, out);
    }

    pub fn span(span: &Span, process_hash: u64, out: &mut Vec<u8>) {
        let mut scratch = Vec::new();
        let mut inner = Vec::new();
        encoding::fixed64::encode(1, &span.span_id.as_u64(), out);
        str(2, &span.operation_name, out);
        for r in &span.references {
            scratch.clear();
            let ref_type: u32 = match r.ref_type {
                RefType::ChildOf => 0,
                RefType::FollowsFrom => 1,
            };
            encoding::uint32::encode(1, &ref_type, &mut scratch);
            if r.trace_id != span.trace_id {
                message(2, &r.trace_id.0, &mut scratch);
            }
            encoding::fixed64::encode(3, &r.span_id.as_u64(), &mut scratch);
            message(3, &scratch, out);
        }
        encoding::uint32::encode(4, &span.flags, out);
        encoding::uint64::encode(5, &span.start_time_us, out);
        encoding::uint64::encode(6, &span.duration_us, out);
        for t in &span.tags {
            kv(7, t, &mut scratch, out);
        }
        for l in &span.logs {
            inner.clear();
            encoding::uint64::encode(1, &l.timestamp_us, &mut inner);
            for f in &l.fields {
                kv(2, f, &mut scratch, &mut inner);
            }
            message(8, &inner, out);
        }
        encoding::fixed64::encode(9, &process_hash, out);
        for w in &span.warnings {
            str(10, w, out);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Decodes a chunk; `process` maps a process hash to the process.
pub fn decode_chunk(
    trace_id: TraceId,
    bytes: &[u8],
    process: impl Fn(u64) -> Arc<Process>,
) -> Result<Vec<Span>, ChunkError> {
    let chunk = match bytes.split_first() {
        Some((&super::keys::CHUNK_SNAPPY, compressed)) => {
            StoredChunk::decode(snap::raw::Decoder::new().decompress_vec(compressed)?.as_slice())?
        }
        _ => StoredChunk::decode(bytes)?,
    };
    Ok(chunk.spans.into_iter().map(|s| span_from(trace_id, s, &process)).collect())
}

fn span_from(trace_id: TraceId, s: StoredSpan, process: &impl Fn(u64) -> Arc<Process>) -> Span {
    Span {
        trace_id,
        span_id: SpanId::from_u64(s.span_id),
        operation_name: s.operation_name,
        references: s
            .references
            .into_iter()
            .map(|r| SpanRef {
                ref_type: if r.ref_type == 1 { RefType::FollowsFrom } else { RefType::ChildOf },
                trace_id: r.trace_id.as_slice().try_into().map(TraceId).unwrap_or(trace_id),
                span_id: SpanId::from_u64(r.span_id),
            })
            .collect(),
        flags: s.flags,
        start_time_us: s.start_time_us,
        duration_us: s.duration_us,
        tags: s.tags.into_iter().map(kv_in).collect(),
        logs: s
            .logs
            .into_iter()
            .map(|l| Log { timestamp_us: l.timestamp_us, fields: l.fields.into_iter().map(kv_in).collect() })
            .collect(),
        process: process(s.process_hash),
        warnings: s.warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_compressed_and_legacy_raw() {
        let process =
            Arc::new(Process { service_name: "web".into(), tags: vec![KeyValue::str("host", "a")] });
        let trace_id = TraceId([3; 16]);
        let span = Span {
            trace_id,
            span_id: SpanId::from_u64(7),
            operation_name: "GET /".into(),
            references: vec![
                SpanRef { ref_type: RefType::ChildOf, trace_id, span_id: SpanId::from_u64(1) },
                SpanRef {
                    ref_type: RefType::FollowsFrom,
                    trace_id: TraceId([9; 16]),
                    span_id: SpanId::from_u64(2),
                },
            ],
            flags: 1,
            start_time_us: 1_000_000,
            duration_us: 250,
            tags: vec![
                KeyValue::str("s", "x"),
                KeyValue { key: "b".into(), value: Value::Bool(false) },
                KeyValue { key: "i".into(), value: Value::Int64(-5) },
                KeyValue { key: "f".into(), value: Value::Float64(0.5) },
                KeyValue { key: "bin".into(), value: Value::Binary(vec![0, 1]) },
            ],
            logs: vec![Log { timestamp_us: 1_000_100, fields: vec![KeyValue::str("event", "e")] }],
            process: process.clone(),
            warnings: vec!["w".into()],
        };
        let stored = encode_chunk(&[(&span, 42), (&span, 42)]);
        assert_eq!(stored[0], super::super::keys::CHUNK_SNAPPY);
        let back = decode_chunk(trace_id, &stored, |h| {
            assert_eq!(h, 42);
            process.clone()
        })
        .unwrap();
        assert_eq!(back, vec![span.clone(), span.clone()]);
        // What earlier versions stored: the raw protobuf.
        let raw = snap::raw::Decoder::new().decompress_vec(&stored[1..]).unwrap();
        assert_eq!(raw[0], 0x0a);
        assert_eq!(decode_chunk(trace_id, &raw, |_| process.clone()).unwrap(), vec![span.clone(), span]);
        assert!(
            decode_chunk(trace_id, &[super::super::keys::CHUNK_SNAPPY, 0xff], |_| process.clone()).is_err()
        );
    }
}

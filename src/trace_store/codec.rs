//! The on-disk encoding of spans and processes: protobuf via prost, because it is compact,
//! already compiled in for OTLP, and tolerates added fields across obsd versions (new tags are
//! skipped by old readers, missing ones read as defaults).
//!
//! The trace id is not repeated in the value (it is in the key) and the process is stored once
//! per distinct process under its hash, not once per span.

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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in encoded {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn encode_chunk(spans: &[(&Span, u64)]) -> Vec<u8> {
    StoredChunk { spans: spans.iter().map(|(s, h)| stored_span(s, *h)).collect() }.encode_to_vec()
}

/// Decodes a chunk; `process` maps a process hash to the process.
pub fn decode_chunk(
    trace_id: TraceId,
    bytes: &[u8],
    process: impl Fn(u64) -> Arc<Process>,
) -> Result<Vec<Span>, prost::DecodeError> {
    let chunk = StoredChunk::decode(bytes)?;
    Ok(chunk.spans.into_iter().map(|s| span_from(trace_id, s, &process)).collect())
}

fn stored_span(span: &Span, process_hash: u64) -> StoredSpan {
    StoredSpan {
        span_id: span.span_id.as_u64(),
        operation_name: span.operation_name.clone(),
        references: span
            .references
            .iter()
            .map(|r| StoredRef {
                ref_type: match r.ref_type {
                    RefType::ChildOf => 0,
                    RefType::FollowsFrom => 1,
                },
                trace_id: if r.trace_id == span.trace_id { Vec::new() } else { r.trace_id.0.to_vec() },
                span_id: r.span_id.as_u64(),
            })
            .collect(),
        flags: span.flags,
        start_time_us: span.start_time_us,
        duration_us: span.duration_us,
        tags: span.tags.iter().map(kv_out).collect(),
        logs: span
            .logs
            .iter()
            .map(|l| StoredLog {
                timestamp_us: l.timestamp_us,
                fields: l.fields.iter().map(kv_out).collect(),
            })
            .collect(),
        process_hash,
        warnings: span.warnings.clone(),
    }
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

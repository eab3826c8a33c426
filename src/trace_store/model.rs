//! The span model the store keeps: Jaeger's model (`model.proto` / the v1 query JSON), because the
//! query API speaks it and every intake protocol maps onto it the way Jaeger itself maps them.

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IdError {
    #[error("trace id {0:?} is not 1 to 32 hex digits")]
    TraceIdText(String),
    #[error("trace id is {0} bytes; OTLP requires 16")]
    TraceIdLength(usize),
    #[error("span id is {0} bytes; OTLP requires 8")]
    SpanIdLength(usize),
    #[error("trace id is all zeroes")]
    ZeroTraceId,
    #[error("span id is all zeroes")]
    ZeroSpanId,
}

impl TraceId {
    pub fn from_bytes(bytes: &[u8]) -> Result<TraceId, IdError> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| IdError::TraceIdLength(bytes.len()))?;
        if arr == [0; 16] {
            return Err(IdError::ZeroTraceId);
        }
        Ok(TraceId(arr))
    }

    pub fn from_high_low(high: u64, low: u64) -> TraceId {
        let mut arr = [0u8; 16];
        arr[..8].copy_from_slice(&high.to_be_bytes());
        arr[8..].copy_from_slice(&low.to_be_bytes());
        TraceId(arr)
    }

    /// Parses Jaeger's text form: up to 32 hex digits, leading zeroes optional.
    pub fn parse_hex(text: &str) -> Result<TraceId, IdError> {
        let bad = || IdError::TraceIdText(text.to_string());
        if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let padded = format!("{text:0>32}");
        let mut arr = [0u8; 16];
        for (i, byte) in arr.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(TraceId(arr))
    }
}

impl SpanId {
    pub fn from_bytes(bytes: &[u8]) -> Result<SpanId, IdError> {
        let arr: [u8; 8] = bytes.try_into().map_err(|_| IdError::SpanIdLength(bytes.len()))?;
        if arr == [0; 8] {
            return Err(IdError::ZeroSpanId);
        }
        Ok(SpanId(arr))
    }

    pub fn from_u64(v: u64) -> SpanId {
        SpanId(v.to_be_bytes())
    }

    pub fn as_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Jaeger prints ids as 16 or 32 hex digits: a trace id whose high half is zero (64-bit ids
/// from old Jaeger clients) is printed with 16.
impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0[..8] == [0; 8] { write_hex(f, &self.0[8..]) } else { write_hex(f, &self.0) }
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// A typed tag value; Jaeger's five `ValueType`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int64(i64),
    Float64(f64),
    Binary(Vec<u8>),
}

impl Value {
    /// Appends the text a tag search (`tag=key:value`) compares with, as Jaeger's `AsString`;
    /// false for binary values, which are not searchable.
    pub fn write_search_text(&self, out: &mut String) -> bool {
        use std::fmt::Write;
        match self {
            Value::Str(s) => out.push_str(s),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int64(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float64(f) => {
                let _ = write!(out, "{f}");
            }
            Value::Binary(_) => return false,
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Value,
}

impl KeyValue {
    pub fn str(key: &str, value: impl Into<String>) -> KeyValue {
        KeyValue { key: key.to_string(), value: Value::Str(value.into()) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    ChildOf,
    FollowsFrom,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanRef {
    pub ref_type: RefType,
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub timestamp_us: u64,
    pub fields: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub operation_name: String,
    pub references: Vec<SpanRef>,
    pub flags: u32,
    pub start_time_us: u64,
    pub duration_us: u64,
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    /// Shared by every span of one batch/resource, as in Jaeger's Batch.
    pub process: Arc<Process>,
    pub warnings: Vec<String>,
}

impl Span {
    pub fn tag(&self, key: &str) -> Option<&Value> {
        self.tags.iter().find(|t| t.key == key).map(|t| &t.value)
    }

    /// The first CHILD_OF reference within the same trace: the parent in the tree.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.references
            .iter()
            .find(|r| r.ref_type == RefType::ChildOf && r.trace_id == self.trace_id)
            .map(|r| r.span_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_text_forms() {
        let id = TraceId::parse_hex("abc").unwrap();
        assert_eq!(id.to_string(), "0000000000000abc");
        let full = TraceId::parse_hex("0102030405060708090a0b0c0d0e0f10").unwrap();
        assert_eq!(full.to_string(), "0102030405060708090a0b0c0d0e0f10");
        assert!(TraceId::parse_hex("xyz").is_err());
        assert!(TraceId::parse_hex(&"1".repeat(33)).is_err());
        assert_eq!(TraceId::from_bytes(&[0; 16]), Err(IdError::ZeroTraceId));
        assert_eq!(TraceId::from_bytes(&[1; 3]), Err(IdError::TraceIdLength(3)));
    }
}

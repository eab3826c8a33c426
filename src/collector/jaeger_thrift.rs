//! Jaeger's thrift intake: `Agent.emitBatch` over UDP (compact on :6831, binary on :6832, as
//! jaeger-agent) and a bare binary `Batch` in `POST /api/traces` (jaeger-collector :14268).
//! Structures from jaeger-idl `thrift/jaeger.thrift` and `agent.thrift`.

use super::intake::{Intake, IntakeError, Protocol as Proto, Reason};
use super::thrift::{Binary, Compact, Protocol, TType, ThriftError};
use crate::trace_store::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// jaeger-agent's `--processor.*.server-max-packet-size` default.
const MAX_PACKET: usize = 65_000;

pub struct Batch {
    pub spans: Vec<Span>,
    /// Spans dropped for a zero trace or span id.
    pub invalid: usize,
}

fn tag<P: Protocol>(p: &mut P) -> Result<KeyValue, ThriftError> {
    let (mut key, mut vtype) = (None, 0);
    let (mut s, mut d, mut b, mut l, mut bin) = (None, None, None, None, None);
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::Binary) => key = Some(p.read_string()?),
            (2, TType::I32) => vtype = p.read_i32()?,
            (3, TType::Binary) => s = Some(p.read_string()?),
            (4, TType::Double) => d = Some(p.read_double()?),
            (5, TType::Bool) => b = Some(p.read_bool()?),
            (6, TType::I64) => l = Some(p.read_i64()?),
            (7, TType::Binary) => bin = Some(p.read_binary()?),
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    let value = match vtype {
        1 => Value::Float64(d.unwrap_or_default()),
        2 => Value::Bool(b.unwrap_or_default()),
        3 => Value::Int64(l.unwrap_or_default()),
        4 => Value::Binary(bin.unwrap_or_default()),
        _ => Value::Str(s.unwrap_or_default()),
    };
    Ok(KeyValue { key: key.ok_or(ThriftError::Missing("Tag.key"))?, value })
}

fn list<P: Protocol, T>(
    p: &mut P,
    want: TType,
    item: impl FnMut(&mut P) -> Result<T, ThriftError>,
) -> Result<Vec<T>, ThriftError> {
    let (t, n) = p.read_list_begin()?;
    list_items(p, t, n, want, item)
}

/// The `n` elements of a list of type `t` whose header was read; those not of type `want`
/// are skipped.
fn list_items<P: Protocol, T>(
    p: &mut P,
    t: TType,
    n: usize,
    want: TType,
    mut item: impl FnMut(&mut P) -> Result<T, ThriftError>,
) -> Result<Vec<T>, ThriftError> {
    let mut out = Vec::new();
    for _ in 0..n {
        if t == want {
            out.push(item(p)?);
        } else {
            p.skip(t)?;
        }
    }
    Ok(out)
}

fn log<P: Protocol>(p: &mut P) -> Result<Log, ThriftError> {
    let (mut ts, mut fields) = (0i64, Vec::new());
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::I64) => ts = p.read_i64()?,
            (2, TType::List) => fields = list(p, TType::Struct, tag)?,
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    Ok(Log { timestamp_us: ts.max(0) as u64, fields })
}

fn span_ref<P: Protocol>(p: &mut P) -> Result<SpanRef, ThriftError> {
    let (mut kind, mut low, mut high, mut span) = (0, 0i64, 0i64, 0i64);
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::I32) => kind = p.read_i32()?,
            (2, TType::I64) => low = p.read_i64()?,
            (3, TType::I64) => high = p.read_i64()?,
            (4, TType::I64) => span = p.read_i64()?,
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    Ok(SpanRef {
        ref_type: if kind == 1 { RefType::FollowsFrom } else { RefType::ChildOf },
        trace_id: TraceId::from_high_low(high as u64, low as u64),
        span_id: SpanId::from_u64(span as u64),
    })
}

/// A thrift span before the batch's process is known (Process may follow Spans on the wire).
struct RawSpan {
    trace_low: i64,
    trace_high: i64,
    span_id: i64,
    parent: i64,
    operation: String,
    references: Vec<SpanRef>,
    flags: i32,
    start: i64,
    duration: i64,
    tags: Vec<KeyValue>,
    logs: Vec<Log>,
}

fn raw_span<P: Protocol>(p: &mut P) -> Result<RawSpan, ThriftError> {
    let mut s = RawSpan {
        trace_low: 0,
        trace_high: 0,
        span_id: 0,
        parent: 0,
        operation: String::new(),
        references: Vec::new(),
        flags: 0,
        start: 0,
        duration: 0,
        tags: Vec::new(),
        logs: Vec::new(),
    };
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::I64) => s.trace_low = p.read_i64()?,
            (2, TType::I64) => s.trace_high = p.read_i64()?,
            (3, TType::I64) => s.span_id = p.read_i64()?,
            (4, TType::I64) => s.parent = p.read_i64()?,
            (5, TType::Binary) => s.operation = p.read_string()?,
            (6, TType::List) => s.references = list(p, TType::Struct, span_ref)?,
            (7, TType::I32) => s.flags = p.read_i32()?,
            (8, TType::I64) => s.start = p.read_i64()?,
            (9, TType::I64) => s.duration = p.read_i64()?,
            (10, TType::List) => s.tags = list(p, TType::Struct, tag)?,
            (11, TType::List) => s.logs = list(p, TType::Struct, log)?,
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    Ok(s)
}

fn process<P: Protocol>(p: &mut P) -> Result<Process, ThriftError> {
    let mut out = Process::default();
    let mut have_name = false;
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::Binary) => {
                out.service_name = p.read_string()?;
                have_name = true;
            }
            (2, TType::List) => out.tags = list(p, TType::Struct, tag)?,
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    if !have_name {
        return Err(ThriftError::Missing("Process.serviceName"));
    }
    Ok(out)
}

/// Reads a `jaeger.Batch` struct of at most `max_spans` spans. The count is refused before
/// any span is decoded: an empty struct is one byte on the wire and a span in memory is over
/// a hundred, so a 32 MiB body of empty spans would otherwise take gigabytes.
pub fn batch<P: Protocol>(p: &mut P, max_spans: usize) -> Result<Batch, ThriftError> {
    let (mut proc_, mut raw) = (None, None);
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::Struct) => proc_ = Some(process(p)?),
            (2, TType::List) => {
                let (t, n) = p.read_list_begin()?;
                if n > max_spans {
                    return Err(ThriftError::TooManySpans { spans: n, limit: max_spans });
                }
                raw = Some(list_items(p, t, n, TType::Struct, raw_span)?);
            }
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    let process = Arc::new(proc_.ok_or(ThriftError::Missing("Batch.process"))?);
    let raw = raw.ok_or(ThriftError::Missing("Batch.spans"))?;
    let mut spans = Vec::with_capacity(raw.len());
    let mut invalid = 0;
    for r in raw {
        let trace_id = TraceId::from_high_low(r.trace_high as u64, r.trace_low as u64);
        if trace_id.0 == [0; 16] || r.span_id == 0 {
            invalid += 1;
            continue;
        }
        let mut references = r.references;
        // Jaeger's converter: a parentSpanId not already named by a CHILD_OF becomes the first one.
        if r.parent != 0 {
            let parent = SpanId::from_u64(r.parent as u64);
            if !references.iter().any(|x| x.ref_type == RefType::ChildOf && x.span_id == parent) {
                references.insert(0, SpanRef { ref_type: RefType::ChildOf, trace_id, span_id: parent });
            }
        }
        spans.push(Span {
            trace_id,
            span_id: SpanId::from_u64(r.span_id as u64),
            operation_name: r.operation,
            references,
            flags: r.flags as u32,
            start_time_us: r.start.max(0) as u64,
            duration_us: r.duration.max(0) as u64,
            tags: r.tags,
            logs: r.logs,
            process: process.clone(),
            warnings: Vec::new(),
        });
    }
    Ok(Batch { spans, invalid })
}

/// Reads `Agent.emitBatch(1: Batch batch)` as a UDP datagram carries it.
pub fn emit_batch<P: Protocol>(p: &mut P, max_spans: usize) -> Result<Batch, ThriftError> {
    let name = p.read_message_begin()?;
    if name != "emitBatch" {
        return Err(ThriftError::UnexpectedMessage(name));
    }
    let mut out = None;
    p.read_struct_begin();
    while let Some((id, t)) = p.read_field_begin()? {
        match (id, t) {
            (1, TType::Struct) => out = Some(batch(p, max_spans)?),
            _ => p.skip(t)?,
        }
    }
    p.read_struct_end();
    out.ok_or(ThriftError::Missing("emitBatch.batch"))
}

/// Binds a UDP agent port and logs its "listening" line (before "obsd started").
pub async fn bind_udp(name: &str, address: SocketAddr) -> std::io::Result<(UdpSocket, SocketAddr)> {
    let socket = UdpSocket::bind(address).await?;
    let local = socket.local_addr()?;
    tracing::info!(listener = %name, address = %local, tls = false, "listening");
    Ok((socket, local))
}

/// Receives datagrams until shutdown. UDP senders cannot be told to slow down, so a full
/// queue drops the batch (counted), as jaeger-agent does.
pub async fn serve_udp(
    socket: UdpSocket,
    compact: bool,
    intake: Intake,
    mut shutdown: watch::Receiver<bool>,
) {
    let protocol = if compact { Proto::JaegerCompactUdp } else { Proto::JaegerBinaryUdp };
    let mut buf = vec![0u8; MAX_PACKET + 1];
    loop {
        let n = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _)) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        if n > MAX_PACKET {
            intake.counters.rejected_batch(protocol, Reason::Oversized);
            continue;
        }
        let max_spans = intake.max_batch_spans();
        let decoded = if compact {
            emit_batch(&mut Compact::new(&buf[..n]), max_spans)
        } else {
            emit_batch(&mut Binary::new(&buf[..n]), max_spans)
        };
        match decoded {
            Ok(b) => {
                intake.counters.rejected_spans(protocol, Reason::InvalidId, b.invalid);
                if let Err(e) = intake.submit_nowait(protocol, b.spans) {
                    tracing::debug!(error = %e, "UDP batch dropped");
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, bytes = n, "undecodable Jaeger UDP packet");
                intake.counters.rejected_batch(protocol, Reason::Malformed);
            }
        }
    }
}

pub fn http_router(intake: Intake, max_body_bytes: usize) -> Router {
    Router::new().route("/api/traces", post(post_traces)).with_state(Arc::new((intake, max_body_bytes)))
}

fn plain(status: StatusCode, msg: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg + "\n").into_response()
}

/// jaeger-collector's `POST /api/traces`: 202 when accepted, 400 with a text reason otherwise.
async fn post_traces(State(state): State<Arc<(Intake, usize)>>, headers: HeaderMap, body: Body) -> Response {
    let (intake, limit) = (&state.0, state.1);
    let p = Proto::JaegerThriftHttp;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ctype.split(';').next().unwrap_or("").trim();
    if media != "application/x-thrift" && media != "application/vnd.apache.thrift.binary" {
        intake.counters.rejected_batch(p, Reason::Unsupported);
        return plain(StatusCode::BAD_REQUEST, format!("Unsupported content type: {ctype}"));
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            intake.counters.rejected_batch(p, Reason::Oversized);
            return plain(StatusCode::PAYLOAD_TOO_LARGE, format!("Unable to process request body: {e}"));
        }
    };
    let b = match batch(&mut Binary::new(&bytes), intake.max_batch_spans()) {
        Ok(b) => b,
        Err(e @ ThriftError::TooManySpans { .. }) => {
            intake.counters.rejected_batch(p, Reason::Oversized);
            return plain(StatusCode::BAD_REQUEST, e.to_string());
        }
        Err(e) => {
            intake.counters.rejected_batch(p, Reason::Malformed);
            return plain(StatusCode::BAD_REQUEST, format!("Unable to process request body: {e}"));
        }
    };
    intake.counters.rejected_spans(p, Reason::InvalidId, b.invalid);
    match intake.submit(p, b.spans).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e @ IntakeError::TooManySpans { .. }) => plain(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => {
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal compact encoder for the test: field headers with deltas, zigzag varints.
    struct W(Vec<u8>, i16);
    impl W {
        fn varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
        }
        fn field(&mut self, id: i16, t: u8) {
            self.0.push((((id - self.1) as u8) << 4) | t);
            self.1 = id;
        }
        fn i64f(&mut self, id: i16, v: i64) {
            self.field(id, 6);
            self.varint(((v << 1) ^ (v >> 63)) as u64);
        }
        fn strf(&mut self, id: i16, s: &str) {
            self.field(id, 8);
            self.varint(s.len() as u64);
            self.0.extend_from_slice(s.as_bytes());
        }
    }

    #[test]
    fn decodes_compact_emit_batch() {
        let mut w = W(vec![0x82, 0x81, 0x01, 9], 0);
        w.0.extend_from_slice(b"emitBatch");
        w.field(1, 12); // args.batch
        w.1 = 0;
        w.field(1, 12); // batch.process
        w.1 = 0;
        w.strf(1, "flask-app");
        w.0.push(0); // end process
        w.1 = 1;
        w.field(2, 9); // batch.spans: list of 1 struct
        w.0.push(0x1c);
        w.1 = 0;
        w.i64f(1, 7); // traceIdLow
        w.i64f(2, 0);
        w.i64f(3, 5); // spanId
        w.i64f(4, 3); // parent
        w.strf(5, "GET /");
        w.i64f(8, 1_000_000);
        w.i64f(9, 250);
        w.0.push(0); // end span
        w.0.push(0); // end batch
        w.0.push(0); // end args
        let b = emit_batch(&mut Compact::new(&w.0), 1).unwrap();
        let s = &b.spans[0];
        assert_eq!(s.process.service_name, "flask-app");
        assert_eq!(s.trace_id.to_string(), "0000000000000007");
        assert_eq!(s.operation_name, "GET /");
        assert_eq!((s.start_time_us, s.duration_us), (1_000_000, 250));
        assert_eq!(s.parent_span_id(), Some(SpanId::from_u64(3)));
        // Every truncation is an error, never a panic.
        for cut in 0..w.0.len() {
            assert!(emit_batch(&mut Compact::new(&w.0[..cut]), 1).is_err());
        }
        // Over the span limit, refused from the list's header before any span is read.
        assert!(matches!(
            emit_batch(&mut Compact::new(&w.0), 0),
            Err(ThriftError::TooManySpans { spans: 1, limit: 0 })
        ));
    }
}

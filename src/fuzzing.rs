//! One entry per parser that takes network or file input, for the fuzz targets under `fuzz/`
//! and for `tests/fuzz_corpora.rs`, which replays every committed corpus input and every
//! crash found on the stable toolchain. Each entry feeds the bytes to the parser the way its
//! listener or loader does and checks what must hold of any input: no panic, no abort, and
//! where a round trip exists, that it holds.

use crate::exposition::{Format, parse_exposition};

/// What every fuzz target calls with the fuzzer's bytes.
pub type Entry = fn(&[u8]);

/// The fuzz targets, by name: `fuzz/fuzz_targets/<name>.rs` calls the entry of that name.
pub const TARGETS: &[(&str, Entry)] = &[
    ("exposition_text", exposition_text),
    ("exposition_openmetrics", exposition_openmetrics),
    ("remote_write", remote_write),
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("jaeger_thrift_compact", jaeger_thrift_compact),
    ("jaeger_thrift_binary", jaeger_thrift_binary),
    ("balancer_response_head", balancer_response_head),
    ("balancer_chunked", balancer_chunked),
    ("promql", promql),
    ("config_toml", config_toml),
    ("prometheus_yaml", prometheus_yaml),
];

/// The bound OTLP/HTTP puts on a decoded request (8 × its 4 MiB body limit).
const OTLP_MAX_DECODED: usize = 32 << 20;
/// Spans one Jaeger batch may carry (the collector's default).
const JAEGER_MAX_SPANS: usize = 10_000;

pub fn exposition_text(data: &[u8]) {
    let _ = parse_exposition(&String::from_utf8_lossy(data), Format::Text);
}

pub fn exposition_openmetrics(data: &[u8]) {
    let _ = parse_exposition(&String::from_utf8_lossy(data), Format::OpenMetrics);
}

/// The body as `/api/v1/write` gets it (snappy block), and the same bytes as the protobuf
/// inside one, so the fuzzer reaches the wire checks and the decoder without having to find
/// valid snappy first. What decodes must encode and decode to the same request.
pub fn remote_write(data: &[u8]) {
    use crate::config::RemoteWriteLimits;
    use crate::remote_write::{decode, encode};
    let limits = RemoteWriteLimits::default();
    let _ = decode(data, &limits);
    let Ok(body) = snap::raw::Encoder::new().compress_vec(data) else { return };
    if let Ok(req) = decode(&body, &limits) {
        use prost::Message;
        // Compared as bytes: a NaN sample is not equal to itself.
        let again = decode(&encode(&req), &limits).map(|r| r.encode_to_vec());
        assert!(again.is_ok_and(|r| r == req.encode_to_vec()), "remote write round trip");
    }
}

/// As `/v1/traces` takes protobuf: pruned to the span limits on the wire, then decoded. The
/// pruning must never turn a request that decodes into one that does not.
pub fn otlp_protobuf(data: &[u8]) {
    use crate::collector::otlp_limits::{SpanLimits, prune_protobuf};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let Ok((pruned, _)) = prune_protobuf(data, SpanLimits::default(), OTLP_MAX_DECODED) else { return };
    match ExportTraceServiceRequest::decode(pruned.as_slice()) {
        Ok(req) => drop(crate::collector::otlp::convert(req)),
        Err(e) => assert!(ExportTraceServiceRequest::decode(data).is_err(), "pruning broke a request: {e}"),
    }
}

/// As `/v1/traces` takes JSON: the size check, the decode, then the span limits.
pub fn otlp_json(data: &[u8]) {
    use crate::collector::otlp_limits::{SpanLimits, apply, check_json_size};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    if check_json_size(data, OTLP_MAX_DECODED).is_err() {
        return;
    }
    if let Ok(mut req) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        apply(&mut req, SpanLimits::default());
        let _ = crate::collector::otlp::convert(req);
    }
}

pub fn jaeger_thrift_compact(data: &[u8]) {
    use crate::collector::{jaeger_thrift, thrift::Compact};
    let _ = jaeger_thrift::emit_batch(&mut Compact::new(data), JAEGER_MAX_SPANS);
    let _ = jaeger_thrift::batch(&mut Compact::new(data), JAEGER_MAX_SPANS);
}

pub fn jaeger_thrift_binary(data: &[u8]) {
    use crate::collector::{jaeger_thrift, thrift::Binary};
    let _ = jaeger_thrift::emit_batch(&mut Binary::new(data), JAEGER_MAX_SPANS);
    let _ = jaeger_thrift::batch(&mut Binary::new(data), JAEGER_MAX_SPANS);
}

pub fn balancer_response_head(data: &[u8]) {
    crate::balancer::headers::fuzz_response_head(data);
}

pub fn balancer_chunked(data: &[u8]) {
    crate::balancer::body::fuzz_chunked(data);
}

/// A query as `/api/v1/query` takes it; what parses must format and parse again.
pub fn promql(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(pretty) = crate::promql::format_query(text) {
        let _ = crate::promql::format_query(&pretty);
    }
}

pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::config::parse_str(text, None);
}

/// A Prometheus configuration file as `prometheus_config` names it.
pub fn prometheus_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) =
        crate::config::prometheus::parse_prometheus_yaml::<crate::config::prometheus::PrometheusFile>(text)
    {
        let _ = crate::config::prometheus::resolve(&file);
    }
}

/// Spans in an OTLP request, for checking the seeds.
pub fn otlp_span_count(
    req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> usize {
    crate::collector::otlp::span_count(req)
}

/// Spans a Jaeger seed decodes to (as a collector Batch or an agent emitBatch), for checking
/// the seeds; None when it decodes as neither.
pub fn jaeger_spans(target: &str, data: &[u8]) -> Option<usize> {
    use crate::collector::{jaeger_thrift, thrift::Binary, thrift::Compact};
    let (emit, batch) = if target.ends_with("compact") {
        (
            jaeger_thrift::emit_batch(&mut Compact::new(data), JAEGER_MAX_SPANS),
            jaeger_thrift::batch(&mut Compact::new(data), JAEGER_MAX_SPANS),
        )
    } else {
        (
            jaeger_thrift::emit_batch(&mut Binary::new(data), JAEGER_MAX_SPANS),
            jaeger_thrift::batch(&mut Binary::new(data), JAEGER_MAX_SPANS),
        )
    };
    emit.or(batch).ok().map(|b| b.spans.len())
}

//! OTLP → the store's Jaeger-shaped span, as the OpenTelemetry Collector's
//! `pkg/translator/jaeger/traces_to_jaegerproto.go` maps it (the mapping Jaeger itself uses).

use crate::trace_store::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as OtlpKeyValue, any_value};
use std::sync::Arc;

/// Jaeger's name for a resource without `service.name`.
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// The spans of one export request that could be mapped, and why the others could not.
#[derive(Debug, Default)]
pub struct Converted {
    pub spans: Vec<Span>,
    pub rejected: usize,
    /// The first rejection reason, for OTLP's `partial_success.error_message`.
    pub error: Option<String>,
}

pub fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

pub fn convert(req: ExportTraceServiceRequest) -> Converted {
    let mut out = Converted::default();
    for rs in req.resource_spans {
        let mut process = Process { service_name: NO_SERVICE_NAME.to_string(), tags: Vec::new() };
        for attr in rs.resource.map(|r| r.attributes).unwrap_or_default() {
            match (&attr.key[..], &attr.value) {
                ("service.name", Some(AnyValue { value: Some(any_value::Value::StringValue(s)) })) => {
                    process.service_name = s.clone();
                }
                _ => process.tags.push(key_value(attr)),
            }
        }
        let process = Arc::new(process);
        for ss in rs.scope_spans {
            let (scope_name, scope_version) = ss.scope.map(|s| (s.name, s.version)).unwrap_or_default();
            for span in ss.spans {
                match convert_span(span, &process, &scope_name, &scope_version) {
                    Ok(s) => out.spans.push(s),
                    Err(reason) => {
                        out.rejected += 1;
                        out.error.get_or_insert(reason);
                    }
                }
            }
        }
    }
    out
}

fn convert_span(
    span: opentelemetry_proto::tonic::trace::v1::Span,
    process: &Arc<Process>,
    scope_name: &str,
    scope_version: &str,
) -> Result<Span, String> {
    let trace_id = TraceId::from_bytes(&span.trace_id).map_err(|e| format!("span {:?}: {e}", span.name))?;
    let span_id = SpanId::from_bytes(&span.span_id).map_err(|e| format!("span {:?}: {e}", span.name))?;
    let mut references = Vec::new();
    if !span.parent_span_id.is_empty() && span.parent_span_id.iter().any(|b| *b != 0) {
        let parent = SpanId::from_bytes(&span.parent_span_id)
            .map_err(|e| format!("span {:?}: parent {e}", span.name))?;
        references.push(SpanRef { ref_type: RefType::ChildOf, trace_id, span_id: parent });
    }
    for link in &span.links {
        if let (Ok(t), Ok(s)) = (TraceId::from_bytes(&link.trace_id), SpanId::from_bytes(&link.span_id)) {
            references.push(SpanRef { ref_type: RefType::FollowsFrom, trace_id: t, span_id: s });
        }
    }
    let mut tags: Vec<KeyValue> = span.attributes.into_iter().map(key_value).collect();
    if !scope_name.is_empty() {
        tags.push(KeyValue::str("otel.scope.name", scope_name));
        if !scope_version.is_empty() {
            tags.push(KeyValue::str("otel.scope.version", scope_version));
        }
    }
    let kind = match span.kind {
        1 => Some("internal"),
        2 => Some("server"),
        3 => Some("client"),
        4 => Some("producer"),
        5 => Some("consumer"),
        _ => None,
    };
    if let Some(kind) = kind {
        tags.push(KeyValue::str("span.kind", kind));
    }
    if let Some(status) = &span.status {
        match status.code {
            1 => tags.push(KeyValue::str("otel.status_code", "OK")),
            2 => {
                tags.push(KeyValue::str("otel.status_code", "ERROR"));
                tags.push(KeyValue { key: "error".into(), value: Value::Bool(true) });
            }
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(KeyValue::str("otel.status_description", status.message.clone()));
        }
    }
    if !span.trace_state.is_empty() {
        tags.push(KeyValue::str("w3c.tracestate", span.trace_state.clone()));
    }
    let logs = span
        .events
        .into_iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 1);
            if !e.name.is_empty() {
                fields.push(KeyValue::str("event", e.name));
            }
            fields.extend(e.attributes.into_iter().map(key_value));
            Log { timestamp_us: e.time_unix_nano / 1000, fields }
        })
        .collect();
    // Jaeger's span has no dropped counts; its warnings are what the UI shows about a span.
    let mut warnings = Vec::new();
    for (n, what) in [
        (span.dropped_attributes_count, "attributes"),
        (span.dropped_events_count, "events"),
        (span.dropped_links_count, "links"),
    ] {
        if n > 0 {
            warnings.push(format!("{n} {what} dropped"));
        }
    }
    let start_us = span.start_time_unix_nano / 1000;
    let end_us = span.end_time_unix_nano / 1000;
    Ok(Span {
        trace_id,
        span_id,
        operation_name: span.name,
        references,
        flags: span.flags & 0xff,
        start_time_us: start_us,
        duration_us: end_us.saturating_sub(start_us),
        tags,
        logs,
        process: process.clone(),
        warnings,
    })
}

fn key_value(kv: OtlpKeyValue) -> KeyValue {
    let value = match kv.value.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::Int64(i),
        Some(any_value::Value::DoubleValue(d)) => Value::Float64(d),
        Some(any_value::Value::BytesValue(b)) => Value::Binary(b),
        Some(other) => Value::Str(any_to_json(&other).to_string()),
        None => Value::Str(String::new()),
    };
    KeyValue { key: kv.key, value }
}

/// Maps and arrays become JSON text, as pcommon's `Value.AsString` writes them.
fn any_to_json(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => {
            serde_json::Number::from_f64(*d).map(J::Number).unwrap_or(J::Null)
        }
        any_value::Value::BytesValue(b) => {
            use base64::Engine;
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(a) => {
            J::Array(a.values.iter().map(|v| v.value.as_ref().map(any_to_json).unwrap_or(J::Null)).collect())
        }
        any_value::Value::KvlistValue(kvs) => J::Object(
            kvs.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().and_then(|v| v.value.as_ref()).map(any_to_json).unwrap_or(J::Null),
                    )
                })
                .collect(),
        ),
        any_value::Value::StringValueStrindex(i) => J::from(*i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span};

    fn kv(key: &str, v: any_value::Value) -> OtlpKeyValue {
        OtlpKeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }

    #[test]
    fn maps_like_jaeger() {
        let otlp_span = opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![3; 8],
            name: "GET /".into(),
            kind: 2,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_002_500_000,
            attributes: vec![
                kv("http.status_code", any_value::Value::IntValue(500)),
                kv(
                    "list",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: Some(any_value::Value::StringValue("a".into())) }],
                    }),
                ),
            ],
            events: vec![span::Event {
                time_unix_nano: 1_001_000_000,
                name: "boom".into(),
                attributes: vec![kv("k", any_value::Value::BoolValue(true))],
                dropped_attributes_count: 0,
            }],
            links: vec![span::Link { trace_id: vec![9; 16], span_id: vec![8; 8], ..Default::default() }],
            status: Some(Status { code: 2, message: "bad".into() }),
            ..Default::default()
        };
        let bad = opentelemetry_proto::tonic::trace::v1::Span { trace_id: vec![1; 3], ..otlp_span.clone() };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", any_value::Value::StringValue("web".into())),
                        kv("host.name", any_value::Value::StringValue("vm1".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "flask".into(),
                        version: "1.0".into(),
                        ..Default::default()
                    }),
                    spans: vec![otlp_span, bad],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let out = convert(req);
        assert_eq!(out.rejected, 1);
        assert!(out.error.unwrap().contains("16"));
        let s = &out.spans[0];
        assert_eq!(s.process.service_name, "web");
        assert_eq!(s.process.tags, vec![KeyValue::str("host.name", "vm1")]);
        assert_eq!((s.start_time_us, s.duration_us), (1_000_000, 2_500));
        assert_eq!(s.references[0].ref_type, RefType::ChildOf);
        assert_eq!(s.references[1].ref_type, RefType::FollowsFrom);
        assert_eq!(s.tag("span.kind"), Some(&Value::Str("server".into())));
        assert_eq!(s.tag("otel.status_code"), Some(&Value::Str("ERROR".into())));
        assert_eq!(s.tag("error"), Some(&Value::Bool(true)));
        assert_eq!(s.tag("otel.status_description"), Some(&Value::Str("bad".into())));
        assert_eq!(s.tag("otel.scope.name"), Some(&Value::Str("flask".into())));
        assert_eq!(s.tag("list"), Some(&Value::Str("[\"a\"]".into())));
        assert_eq!(s.tag("http.status_code"), Some(&Value::Int64(500)));
        assert_eq!(s.logs[0].fields[0], KeyValue::str("event", "boom"));
        assert_eq!(s.logs[0].timestamp_us, 1_001_000);
    }
}

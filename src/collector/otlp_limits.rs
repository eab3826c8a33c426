//! The OpenTelemetry SDK's span limits, applied by the collector to what it receives: at most
//! 128 attributes per span, event, link, scope and resource (`OTEL_*_ATTRIBUTE_COUNT_LIMIT`),
//! 128 events and 128 links per span (`OTEL_SPAN_EVENT_COUNT_LIMIT`, `…_LINK_COUNT_LIMIT`), and
//! string values cut to 4,096 characters (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, which the SDK
//! leaves unlimited; a collector has to pick a bound). As in the SDK the first ones are kept
//! and the message's `dropped_*_count` grows by what was dropped.
//!
//! An OTLP message decodes to many times its wire size (an empty attribute is 2 bytes on the
//! wire and ~80 decoded), so protobuf is pruned on the wire, before prost allocates, and a
//! request whose kept part would still decode too large is refused. JSON gets a size estimate
//! before serde decodes it and the limits after.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use std::mem::size_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    pub attributes: usize,
    pub events: usize,
    pub links: usize,
    /// Characters of a string value (and of each string in an array value).
    pub value_length: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits { attributes: 128, events: 128, links: 128, value_length: 4096 }
    }
}

/// What the limits took out of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub attributes: u64,
    pub truncated_values: u64,
    pub events: u64,
    pub links: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("invalid protobuf: {0}")]
    Malformed(&'static str),
    #[error("request would take about {estimate} bytes decoded, over the limit of {limit} bytes")]
    TooLarge { estimate: usize, limit: usize },
}

/// The messages of the trace schema the pruning walks into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Request,
    ResourceSpans,
    Resource,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    /// A message the limits do not look into (a resource's entity refs): its strings are
    /// charged, nothing is dropped.
    Other,
}

impl Ty {
    fn decoded_size(self) -> usize {
        use opentelemetry_proto::tonic as p;
        match self {
            Ty::Request => size_of::<ExportTraceServiceRequest>(),
            Ty::ResourceSpans => size_of::<p::trace::v1::ResourceSpans>(),
            Ty::Resource => size_of::<p::resource::v1::Resource>(),
            Ty::ScopeSpans => size_of::<p::trace::v1::ScopeSpans>(),
            Ty::Scope => size_of::<p::common::v1::InstrumentationScope>(),
            Ty::Span => size_of::<p::trace::v1::Span>(),
            Ty::Event => size_of::<p::trace::v1::span::Event>(),
            Ty::Link => size_of::<p::trace::v1::span::Link>(),
            Ty::Status => size_of::<p::trace::v1::Status>(),
            Ty::KeyValue => size_of::<KeyValue>(),
            Ty::AnyValue => size_of::<AnyValue>(),
            Ty::ArrayValue | Ty::KeyValueList => size_of::<Vec<AnyValue>>(),
            Ty::Other => 0,
        }
    }

    /// The message type of a length-delimited field, or `None` for strings and bytes.
    fn child(self, field: u64) -> Option<Ty> {
        Some(match (self, field) {
            (Ty::Request, 1) => Ty::ResourceSpans,
            (Ty::ResourceSpans, 1) => Ty::Resource,
            (Ty::ResourceSpans, 2) => Ty::ScopeSpans,
            (Ty::Resource, 1) | (Ty::Scope, 3) | (Ty::Span, 9) | (Ty::Event, 3) | (Ty::Link, 4) => {
                Ty::KeyValue
            }
            (Ty::ScopeSpans, 1) => Ty::Scope,
            (Ty::ScopeSpans, 2) => Ty::Span,
            (Ty::Span, 11) => Ty::Event,
            (Ty::Span, 13) => Ty::Link,
            (Ty::Span, 15) => Ty::Status,
            (Ty::KeyValue, 2) | (Ty::ArrayValue, 1) => Ty::AnyValue,
            (Ty::AnyValue, 5) => Ty::ArrayValue,
            (Ty::AnyValue, 6) => Ty::KeyValueList,
            (Ty::KeyValueList, 1) => Ty::KeyValue,
            (Ty::Resource, 3) => Ty::Other,
            _ => return None,
        })
    }

    /// The repeated attributes field and the `dropped_attributes_count` field of a message.
    fn attribute_fields(self) -> Option<(u64, u64)> {
        match self {
            Ty::Resource => Some((1, 2)),
            Ty::Scope => Some((3, 4)),
            Ty::Span => Some((9, 10)),
            Ty::Event => Some((3, 4)),
            Ty::Link => Some((4, 5)),
            _ => None,
        }
    }
}

/// prost's own bound on message nesting (AnyValue arrays and maps nest without end).
const MAX_DEPTH: usize = 100;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

struct Pruner {
    limits: SpanLimits,
    dropped: Dropped,
    estimate: usize,
    max_decoded: usize,
}

impl Pruner {
    fn charge(&mut self, bytes: usize) -> Result<(), WireError> {
        self.estimate = self.estimate.saturating_add(bytes);
        if self.max_decoded > 0 && self.estimate > self.max_decoded {
            return Err(WireError::TooLarge { estimate: self.estimate, limit: self.max_decoded });
        }
        Ok(())
    }

    /// Writes `msg` (of type `ty`) to `out` without what the limits drop.
    fn message(&mut self, msg: &[u8], ty: Ty, depth: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::Malformed("recursion limit reached"));
        }
        self.charge(ty.decoded_size())?;
        let attrs = ty.attribute_fields();
        let (mut attributes, mut events, mut links) = (0usize, 0usize, 0usize);
        let (mut dropped_attributes, mut dropped_events, mut dropped_links) = (0u64, 0u64, 0u64);
        for f in crate::protobuf_wire::fields(msg) {
            let f = f.map_err(WireError::Malformed)?;
            // Counts already sent are added to, and written once at the end.
            if f.wire_type == 0 {
                match (ty, f.number) {
                    (_, n) if attrs.is_some_and(|(_, d)| d == n) => {
                        dropped_attributes = dropped_attributes.saturating_add(f.varint);
                        continue;
                    }
                    (Ty::Span, 12) => {
                        dropped_events = dropped_events.saturating_add(f.varint);
                        continue;
                    }
                    (Ty::Span, 14) => {
                        dropped_links = dropped_links.saturating_add(f.varint);
                        continue;
                    }
                    _ => {}
                }
            }
            let Some(payload) = f.payload else {
                out.extend_from_slice(f.encoded);
                continue;
            };
            if attrs.is_some_and(|(a, _)| a == f.number) {
                attributes += 1;
                if attributes > self.limits.attributes {
                    dropped_attributes += 1;
                    self.dropped.attributes += 1;
                    continue;
                }
            }
            if ty == Ty::Span && f.number == 11 {
                events += 1;
                if events > self.limits.events {
                    dropped_events += 1;
                    self.dropped.events += 1;
                    continue;
                }
            }
            if ty == Ty::Span && f.number == 13 {
                links += 1;
                if links > self.limits.links {
                    dropped_links += 1;
                    self.dropped.links += 1;
                    continue;
                }
            }
            match ty.child(f.number) {
                Some(child) => {
                    let mut sub = Vec::with_capacity(payload.len());
                    self.message(payload, child, depth + 1, &mut sub)?;
                    put_bytes_field(out, f.number, &sub);
                }
                None if ty == Ty::AnyValue && f.number == 1 => {
                    let kept = self.string_value(payload);
                    self.charge(kept.len())?;
                    put_bytes_field(out, 1, kept);
                }
                None => {
                    // A string or bytes field: its heap copy, and a Vec's header when repeated.
                    self.charge(payload.len() + size_of::<Vec<u8>>())?;
                    out.extend_from_slice(f.encoded);
                }
            }
        }
        for (n, count) in [
            (attrs.map(|(_, d)| d), dropped_attributes),
            ((ty == Ty::Span).then_some(12), dropped_events),
            ((ty == Ty::Span).then_some(14), dropped_links),
        ] {
            if let Some(n) = n
                && count > 0
            {
                put_varint(out, n << 3);
                put_varint(out, count.min(u64::from(u32::MAX)));
            }
        }
        Ok(())
    }

    fn string_value<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        // Not UTF-8: left whole for prost to refuse.
        let Ok(text) = std::str::from_utf8(bytes) else { return bytes };
        match text.char_indices().nth(self.limits.value_length) {
            Some((cut, _)) => {
                self.dropped.truncated_values += 1;
                &bytes[..cut]
            }
            None => bytes,
        }
    }
}

/// Rewrites an `ExportTraceServiceRequest` on the wire within `limits`, so that decoding it
/// allocates only what is kept; refuses one whose kept part would decode to more than
/// `max_decoded` bytes (0: no bound).
pub fn prune_protobuf(
    raw: &[u8],
    limits: SpanLimits,
    max_decoded: usize,
) -> Result<(Vec<u8>, Dropped), WireError> {
    let mut pruner = Pruner { limits, dropped: Dropped::default(), estimate: raw.len(), max_decoded };
    let mut out = Vec::with_capacity(raw.len());
    pruner.message(raw, Ty::Request, 0, &mut out)?;
    Ok((out, pruner.dropped))
}

/// What a JSON object costs at most once decoded: a KeyValue with its AnyValue, the commonest
/// object in OTLP/JSON (a span is larger, but carries many small objects with it).
const JSON_OBJECT_COST: usize = 128;

/// Refuses OTLP/JSON whose objects would decode to more than `max_decoded` bytes, counted
/// on the text before serde builds anything (`{}` is 2 bytes and decodes to ~80).
pub fn check_json_size(raw: &[u8], max_decoded: usize) -> Result<(), WireError> {
    if max_decoded == 0 {
        return Ok(());
    }
    let (mut in_string, mut escaped) = (false, false);
    let mut estimate = raw.len();
    for &b in raw {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => estimate += JSON_OBJECT_COST,
            b'[' | b',' => estimate += size_of::<String>(),
            _ => {}
        }
        if estimate > max_decoded {
            return Err(WireError::TooLarge { estimate, limit: max_decoded });
        }
    }
    Ok(())
}

/// Applies `limits` to a decoded request (OTLP/JSON, which has no wire form to prune).
pub fn apply(req: &mut ExportTraceServiceRequest, limits: SpanLimits) -> Dropped {
    let mut d = Dropped::default();
    for rs in &mut req.resource_spans {
        if let Some(r) = &mut rs.resource {
            r.dropped_attributes_count =
                add(r.dropped_attributes_count, attributes(&mut r.attributes, limits, &mut d));
        }
        for ss in &mut rs.scope_spans {
            if let Some(s) = &mut ss.scope {
                s.dropped_attributes_count =
                    add(s.dropped_attributes_count, attributes(&mut s.attributes, limits, &mut d));
            }
            for span in &mut ss.spans {
                span.dropped_attributes_count =
                    add(span.dropped_attributes_count, attributes(&mut span.attributes, limits, &mut d));
                let events = truncate(&mut span.events, limits.events);
                d.events += events;
                span.dropped_events_count = add(span.dropped_events_count, events);
                let links = truncate(&mut span.links, limits.links);
                d.links += links;
                span.dropped_links_count = add(span.dropped_links_count, links);
                for e in &mut span.events {
                    e.dropped_attributes_count =
                        add(e.dropped_attributes_count, attributes(&mut e.attributes, limits, &mut d));
                }
                for l in &mut span.links {
                    l.dropped_attributes_count =
                        add(l.dropped_attributes_count, attributes(&mut l.attributes, limits, &mut d));
                }
            }
        }
    }
    d
}

fn add(count: u32, more: u64) -> u32 {
    u32::try_from(u64::from(count).saturating_add(more)).unwrap_or(u32::MAX)
}

fn truncate<T>(items: &mut Vec<T>, limit: usize) -> u64 {
    let dropped = items.len().saturating_sub(limit);
    items.truncate(limit);
    dropped as u64
}

fn attributes(kvs: &mut Vec<KeyValue>, limits: SpanLimits, d: &mut Dropped) -> u64 {
    let dropped = truncate(kvs, limits.attributes);
    d.attributes += dropped;
    for kv in kvs {
        if let Some(v) = &mut kv.value {
            truncate_value(v, limits, d);
        }
    }
    dropped
}

/// Cuts every string in a value: the SDK's rule for strings and arrays of strings, carried
/// into maps and nested arrays as the wire pruning does. Decoding bounded the depth.
fn truncate_value(v: &mut AnyValue, limits: SpanLimits, d: &mut Dropped) {
    match &mut v.value {
        Some(any_value::Value::StringValue(s)) => truncate_string(s, limits, d),
        Some(any_value::Value::ArrayValue(a)) => {
            for v in &mut a.values {
                truncate_value(v, limits, d);
            }
        }
        Some(any_value::Value::KvlistValue(kvs)) => {
            for v in kvs.values.iter_mut().filter_map(|kv| kv.value.as_mut()) {
                truncate_value(v, limits, d);
            }
        }
        _ => {}
    }
}

fn truncate_string(s: &mut String, limits: SpanLimits, d: &mut Dropped) {
    if let Some((cut, _)) = s.char_indices().nth(limits.value_length) {
        s.truncate(cut);
        d.truncated_values += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
    use prost::Message;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn request(attributes: usize, value: &str) -> ExportTraceServiceRequest {
        let attrs: Vec<KeyValue> = (0..attributes).map(|i| kv(&format!("k{i}"), value)).collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: attrs.clone(), ..Default::default() }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "op".into(),
                        attributes: attrs.clone(),
                        dropped_attributes_count: 3,
                        events: (0..200)
                            .map(|_| span::Event { attributes: attrs.clone(), ..Default::default() })
                            .collect(),
                        links: vec![span::Link {
                            attributes: vec![KeyValue {
                                key: "list".into(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                                        values: vec![AnyValue {
                                            value: Some(any_value::Value::StringValue(value.into())),
                                        }],
                                    })),
                                }),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn limits() -> SpanLimits {
        SpanLimits { attributes: 4, events: 2, links: 128, value_length: 5 }
    }

    fn check(req: &ExportTraceServiceRequest, d: Dropped) {
        let rs = &req.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!((resource.attributes.len(), resource.dropped_attributes_count), (4, 6));
        let span = &rs.scope_spans[0].spans[0];
        assert_eq!(span.attributes.len(), 4);
        assert_eq!(span.dropped_attributes_count, 3 + 6, "added to what the sender dropped");
        assert_eq!(span.attributes[0], kv("k0", "éééé€"), "the first ones are kept, cut to 5 characters");
        assert_eq!((span.events.len(), span.dropped_events_count), (2, 198));
        assert_eq!(span.events[1].dropped_attributes_count, 6);
        let Some(any_value::Value::ArrayValue(a)) =
            &span.links[0].attributes[0].value.as_ref().unwrap().value
        else {
            panic!("array kept")
        };
        assert_eq!(a.values[0].value, Some(any_value::Value::StringValue("éééé€".into())));
        // Resource 6, span 6, 2 events × 6.
        assert_eq!(d, Dropped { attributes: 24, truncated_values: 4 + 4 + 8 + 1, events: 198, links: 0 });
    }

    #[test]
    fn protobuf_is_pruned_on_the_wire_as_the_sdk_limits_spans() {
        let req = request(10, "éééé€€€");
        let (pruned, d) = prune_protobuf(&req.encode_to_vec(), limits(), 0).unwrap();
        check(&ExportTraceServiceRequest::decode(pruned.as_slice()).unwrap(), d);
        // Within the limits nothing changes.
        let small = request(2, "ab");
        let (same, d) = prune_protobuf(&small.encode_to_vec(), SpanLimits::default(), 0).unwrap();
        assert_eq!(d.events, 72);
        let mut expected = small.clone();
        apply(&mut expected, SpanLimits::default());
        assert_eq!(ExportTraceServiceRequest::decode(same.as_slice()).unwrap(), expected);
    }

    #[test]
    fn decoded_requests_get_the_same_limits() {
        let mut req = request(10, "éééé€€€");
        let d = apply(&mut req, limits());
        check(&req, d);
    }

    #[test]
    fn a_request_of_empty_attributes_is_bounded_before_decoding() {
        // The shape: 4 MiB of empty attributes on one span (it added ~275 MB).
        let mut raw = Vec::new();
        let attribute = [0x4a, 0x00]; // field 9 (attributes), empty KeyValue
        let span: Vec<u8> = attribute.repeat(1 << 20);
        let mut scope = Vec::new();
        put_bytes_field(&mut scope, 2, &span);
        let mut rs = Vec::new();
        put_bytes_field(&mut rs, 2, &scope);
        put_bytes_field(&mut raw, 1, &rs);
        let (pruned, d) = prune_protobuf(&raw, SpanLimits::default(), 32 << 20).unwrap();
        assert_eq!(d.attributes, (1 << 20) - 128);
        assert!(pruned.len() < 1024, "{} bytes kept", pruned.len());
        let req = ExportTraceServiceRequest::decode(pruned.as_slice()).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((span.attributes.len(), span.dropped_attributes_count), (128, (1 << 20) - 128));
        // Empty spans instead: all kept by the limits, refused on their decoded size.
        let mut scope = Vec::new();
        for _ in 0..(1 << 20) {
            put_bytes_field(&mut scope, 2, &[]);
        }
        let mut rs = Vec::new();
        put_bytes_field(&mut rs, 2, &scope);
        let mut raw = Vec::new();
        put_bytes_field(&mut raw, 1, &rs);
        let e = prune_protobuf(&raw, SpanLimits::default(), 32 << 20).unwrap_err();
        assert!(matches!(e, WireError::TooLarge { .. }), "{e}");
        let json = format!("{{\"resourceSpans\":[{}{{}}]}}", "{},".repeat(1 << 20));
        assert!(check_json_size(json.as_bytes(), 32 << 20).is_err());
        assert!(check_json_size(b"{\"resourceSpans\":[{\"x\":\"{{{{{{{{\"}]}", 1024).is_ok());
    }

    #[test]
    fn nesting_past_prosts_limit_is_refused() {
        let mut value = Vec::new();
        for _ in 0..200 {
            let mut array = Vec::new();
            put_bytes_field(&mut array, 1, &value);
            let mut any = Vec::new();
            put_bytes_field(&mut any, 5, &array);
            value = any;
        }
        let mut kv = Vec::new();
        put_bytes_field(&mut kv, 2, &value);
        let mut span = Vec::new();
        put_bytes_field(&mut span, 9, &kv);
        let mut scope = Vec::new();
        put_bytes_field(&mut scope, 2, &span);
        let mut rs = Vec::new();
        put_bytes_field(&mut rs, 2, &scope);
        let mut raw = Vec::new();
        put_bytes_field(&mut raw, 1, &rs);
        assert_eq!(
            prune_protobuf(&raw, SpanLimits::default(), 0).unwrap_err(),
            WireError::Malformed("recursion limit reached")
        );
    }
}

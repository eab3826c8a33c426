//! Jaeger's v1 query HTTP API (`cmd/query/app/http_handler.go`, `query_parser.go`) as Grafana's
//! Jaeger data source calls it: the `{data,total,limit,offset,errors}` envelope, µs in search
//! and trace JSON, ms in dependencies, Go duration strings, 100 traces by default.

use crate::trace_store::{KeyValue, Process, Reader, RefType, Span, TraceId, TraceQuery, Value, now_us};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as J, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Jaeger's `defaultQueryLimit`.
const DEFAULT_LIMIT: usize = 100;
/// Jaeger's `defaultTraceQueryLookbackDuration` (2 days) when `start` is absent.
const DEFAULT_SEARCH_LOOKBACK_US: u64 = 2 * 24 * 3600 * 1_000_000;
/// Jaeger's `defaultDependencyLookbackDuration` (24 h).
const DEFAULT_DEPENDENCY_LOOKBACK_MS: u64 = 24 * 3600 * 1000;

pub fn router(reader: Reader) -> Router {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(service_operations))
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{trace_id}", get(trace_by_id))
        .route("/api/dependencies", get(dependencies))
        .with_state(Arc::new(reader))
}

type St = State<Arc<Reader>>;

fn envelope(status: StatusCode, data: J, total: usize, errors: Option<Vec<J>>) -> Response {
    let body = json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": errors });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    envelope(status, J::Null, 0, Some(vec![json!({ "code": status.as_u16(), "msg": msg.into() })]))
}

/// Runs a store scan on tokio's blocking pool: a search over a wide window or a long
/// dependency lookback reads and decodes much of the store, and on a runtime worker it would
/// stall every listener of the process (scrapes, span intake) while it ran.
async fn off_runtime(scan: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(scan)
        .await
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("query failed: {e}")))
}

fn store_error(e: crate::trace_store::StoreError) -> Response {
    tracing::error!(error = %e, "span store read failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Query pairs in order, repeated keys kept (`tag`, `traceID` repeat).
fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    let raw = raw.unwrap_or_default();
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
}

/// Go's `time.ParseDuration`: `[-+]` then decimal numbers with units ns, us, µs, ms, s, m, h.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let err = || format!("time: invalid duration {text:?}");
    let s = text.strip_prefix('+').unwrap_or(text);
    if s.starts_with('-') {
        return Err(format!("negative duration {text:?}"));
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return Err(err());
        }
        let number: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        rest = &rest[unit_end..];
        total_ns += number * unit_ns;
    }
    Ok((total_ns / 1000.0).round() as u64)
}

/// A query parameter the client got wrong; answered with 400 and this message.
struct BadParam(String);

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

fn parse_u64(pairs: &[(String, String)], key: &str) -> Result<Option<u64>, BadParam> {
    match first(pairs, key) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|e| {
            BadParam(format!("unable to parse param '{key}': strconv.ParseInt: parsing {v:?}: {e}"))
        }),
    }
}

async fn services(State(reader): St) -> Response {
    match reader.services() {
        Ok(s) => envelope(StatusCode::OK, json!(s), s.len(), None),
        Err(e) => store_error(e),
    }
}

async fn service_operations(State(reader): St, Path(service): Path<String>) -> Response {
    match reader.operations(&service, None) {
        Ok(ops) => {
            let mut names: Vec<String> = ops.into_iter().map(|o| o.name).collect();
            names.dedup();
            envelope(StatusCode::OK, json!(names), names.len(), None)
        }
        Err(e) => store_error(e),
    }
}

async fn operations(State(reader): St, RawQuery(q): RawQuery) -> Response {
    let q = pairs(q);
    let Some(service) = first(&q, "service") else {
        return error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    match reader.operations(service, first(&q, "spanKind")) {
        Ok(ops) => {
            let data: Vec<J> =
                ops.iter().map(|o| json!({ "name": o.name, "spanKind": o.span_kind })).collect();
            let n = data.len();
            envelope(StatusCode::OK, J::Array(data), n, None)
        }
        Err(e) => store_error(e),
    }
}

async fn search(State(reader): St, RawQuery(q): RawQuery) -> Response {
    off_runtime(move || search_store(&reader, pairs(q))).await
}

fn search_store(reader: &Reader, q: Vec<(String, String)>) -> Response {
    let trace_ids: Vec<&str> =
        q.iter().filter(|(k, v)| k == "traceID" && !v.is_empty()).map(|(_, v)| v.as_str()).collect();
    if !trace_ids.is_empty() {
        let mut traces = Vec::new();
        let mut errors = Vec::new();
        for text in trace_ids {
            let id = match TraceId::parse_hex(text) {
                Ok(id) => id,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            };
            match reader.trace(id) {
                Ok(Some(spans)) => traces.push(trace_json(&spans)),
                Ok(None) => {
                    errors.push(json!({ "code": 404, "msg": "trace not found", "traceID": id.to_string() }))
                }
                Err(e) => return store_error(e),
            }
        }
        return envelope(StatusCode::OK, J::Array(traces), 0, (!errors.is_empty()).then_some(errors));
    }
    let query = match parse_search(&q) {
        Ok(query) => query,
        Err(r) => return r.into_response(),
    };
    match reader.find_traces(&query) {
        Ok(traces) => {
            envelope(StatusCode::OK, J::Array(traces.iter().map(|t| trace_json(t)).collect()), 0, None)
        }
        Err(e) => store_error(e),
    }
}

fn parse_search(q: &[(String, String)]) -> Result<TraceQuery, BadParam> {
    let bad = BadParam;
    let service = first(q, "service").ok_or_else(|| bad("parameter 'service' is required".into()))?;
    let end = parse_u64(q, "end")?.unwrap_or_else(now_us);
    let start = parse_u64(q, "start")?.unwrap_or(end.saturating_sub(DEFAULT_SEARCH_LOOKBACK_US));
    let limit = match first(q, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v.parse::<usize>().map_err(|_| bad(format!("unable to parse param 'limit': {v:?}")))?,
    };
    let duration = |key: &str| -> Result<Option<u64>, BadParam> {
        first(q, key)
            .map(|v| parse_go_duration(v).map_err(|e| bad(format!("unable to parse param '{key}': {e}"))))
            .transpose()
    };
    let (min, max) = (duration("minDuration")?, duration("maxDuration")?);
    if let (Some(a), Some(b)) = (min, max)
        && b < a
    {
        return Err(bad("'maxDuration' should be greater than 'minDuration'".into()));
    }
    let mut tags = Vec::new();
    for (k, v) in q {
        if k == "tag" {
            let Some((key, value)) = v.split_once(':') else {
                return Err(bad(format!("malformed 'tag' parameter, expecting key:value, received: {v}")));
            };
            tags.push((key.to_string(), value.to_string()));
        } else if k == "tags" && !v.is_empty() {
            let map: HashMap<String, J> = serde_json::from_str(v)
                .map_err(|e| bad(format!("malformed 'tags' parameter, cannot unmarshal JSON: {e}")))?;
            for (key, value) in map {
                let text = match value {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                tags.push((key, text));
            }
        }
    }
    Ok(TraceQuery {
        service: service.to_string(),
        operation: first(q, "operation").map(str::to_string),
        tags,
        start_min_us: start,
        start_max_us: end,
        duration_min_us: min,
        duration_max_us: max,
        limit,
    })
}

async fn trace_by_id(State(reader): St, Path(id): Path<String>) -> Response {
    let id = match TraceId::parse_hex(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    off_runtime(move || match reader.trace(id) {
        Ok(Some(spans)) => envelope(StatusCode::OK, json!([trace_json(&spans)]), 0, None),
        Ok(None) => error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => store_error(e),
    })
    .await
}

async fn dependencies(State(reader): St, RawQuery(q): RawQuery) -> Response {
    let q = pairs(q);
    let end_ms = match parse_u64(&q, "endTs") {
        Ok(v) => v.unwrap_or_else(|| now_us() / 1000),
        Err(r) => return r.into_response(),
    };
    let lookback_ms = match parse_u64(&q, "lookback") {
        Ok(v) => v.unwrap_or(DEFAULT_DEPENDENCY_LOOKBACK_MS),
        Err(r) => return r.into_response(),
    };
    off_runtime(move || {
        match reader.dependencies(end_ms.saturating_mul(1000), lookback_ms.saturating_mul(1000)) {
            Ok(deps) => {
                let data: Vec<J> = deps
                    .iter()
                    .map(|d| json!({ "parent": d.parent, "child": d.child, "callCount": d.call_count }))
                    .collect();
                envelope(StatusCode::OK, J::Array(data), 0, None)
            }
            Err(e) => store_error(e),
        }
    })
    .await
}

fn kv_json(kv: &KeyValue) -> J {
    let (t, v) = match &kv.value {
        Value::Str(s) => ("string", json!(s)),
        Value::Bool(b) => ("bool", json!(b)),
        Value::Int64(i) => ("int64", json!(i)),
        Value::Float64(f) => ("float64", json!(f)),
        Value::Binary(b) => {
            use base64::Engine;
            ("binary", json!(base64::engine::general_purpose::STANDARD.encode(b)))
        }
    };
    json!({ "key": kv.key, "type": t, "value": v })
}

/// Jaeger's `uimodel.Trace`: processes keyed `p1`, `p2`… in order of first use.
pub fn trace_json(spans: &[Span]) -> J {
    let mut processes: Vec<&Process> = Vec::new();
    let mut out_spans = Vec::with_capacity(spans.len());
    for span in spans {
        let idx = match processes.iter().position(|p| **p == *span.process) {
            Some(i) => i,
            None => {
                processes.push(&span.process);
                processes.len() - 1
            }
        };
        let refs: Vec<J> = span
            .references
            .iter()
            .map(|r| {
                json!({
                    "refType": match r.ref_type { RefType::ChildOf => "CHILD_OF", RefType::FollowsFrom => "FOLLOWS_FROM" },
                    "traceID": r.trace_id.to_string(),
                    "spanID": r.span_id.to_string(),
                })
            })
            .collect();
        let mut s = json!({
            "traceID": span.trace_id.to_string(),
            "spanID": span.span_id.to_string(),
            "operationName": span.operation_name,
            "references": refs,
            "startTime": span.start_time_us,
            "duration": span.duration_us,
            "tags": span.tags.iter().map(kv_json).collect::<Vec<_>>(),
            "logs": span.logs.iter().map(|l| json!({
                "timestamp": l.timestamp_us,
                "fields": l.fields.iter().map(kv_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "processID": format!("p{}", idx + 1),
            "warnings": if span.warnings.is_empty() { J::Null } else { json!(span.warnings) },
        });
        if span.flags != 0
            && let Some(obj) = s.as_object_mut()
        {
            obj.insert("flags".into(), json!(span.flags));
        }
        out_spans.push(s);
    }
    let procs: serde_json::Map<String, J> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                format!("p{}", i + 1),
                json!({ "serviceName": p.service_name, "tags": p.tags.iter().map(kv_json).collect::<Vec<_>>() }),
            )
        })
        .collect();
    json!({
        "traceID": spans.first().map(|s| s.trace_id.to_string()).unwrap_or_default(),
        "spans": out_spans,
        "processes": procs,
        "warnings": J::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5ms"), Ok(1500));
        assert_eq!(parse_go_duration("100us"), Ok(100));
        assert_eq!(parse_go_duration("1h2m"), Ok(3_720_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn query_pairs_keep_repeats_and_decode() {
        let p = pairs(Some("tag=a%3Ab&tag=c:d&service=my+svc&x=%ZZ".into()));
        assert_eq!(p[0], ("tag".into(), "a:b".into()));
        assert_eq!(p[1], ("tag".into(), "c:d".into()));
        assert_eq!(p[2], ("service".into(), "my svc".into()));
        assert_eq!(p[3], ("x".into(), "%ZZ".into()));
    }
}

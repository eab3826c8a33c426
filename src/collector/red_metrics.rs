//! Span-derived RED metrics, named as the OpenTelemetry Collector's spanmetrics connector
//! (v0.109+) names them once exported to Prometheus: `<ns>_calls_total` and
//! `<ns>_duration_milliseconds_{bucket,sum,count}` with `service_name`, `span_name`,
//! `span_kind`, `status_code`. Each bucket keeps the latest span that fell in it as an
//! exemplar (`trace_id`, `span_id`), written only in OpenMetrics output, where exemplars exist.

use crate::exposition::{MetricFamily, MetricType, escape_help, escape_label_value, format_go_float};
use crate::trace_store::{Span, SpanId, TraceId, Value};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Series beyond this are not tracked (spanmetrics' cardinality guard); counted as dropped.
const MAX_SERIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    service: String,
    span_name: String,
    kind: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone)]
struct Exemplar {
    // Ids, not their hex text: formatting happens per scrape, not per span.
    trace_id: TraceId,
    span_id: SpanId,
    value_ms: f64,
    timestamp_s: f64,
}

#[derive(Debug, Clone)]
struct Series {
    calls: u64,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: Vec<u64>,
    sum_ms: f64,
    exemplars: Vec<Option<Exemplar>>,
}

/// Span kind label, status label and the series with them.
type KindStatusSeries = (&'static str, &'static str, Series);

/// Series by service, then span name, then (kind, status): looked up with the span's own
/// strings, so counting a span allocates nothing once its series exists.
#[derive(Default)]
struct Table {
    by_service: HashMap<String, HashMap<String, Vec<KindStatusSeries>>>,
    len: usize,
}

pub struct RedMetrics {
    namespace: String,
    bounds_ms: Vec<f64>,
    series: Mutex<Table>,
    dropped: Mutex<u64>,
}

fn kind_label(span: &Span) -> &'static str {
    match span.tag("span.kind") {
        Some(Value::Str(k)) => match k.as_str() {
            "server" => "SPAN_KIND_SERVER",
            "client" => "SPAN_KIND_CLIENT",
            "producer" => "SPAN_KIND_PRODUCER",
            "consumer" => "SPAN_KIND_CONSUMER",
            "internal" => "SPAN_KIND_INTERNAL",
            _ => "SPAN_KIND_UNSPECIFIED",
        },
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

/// OTLP's status when the span came over OTLP; for Jaeger clients, the `error` tag.
fn status_label(span: &Span) -> &'static str {
    match span.tag("otel.status_code") {
        Some(Value::Str(s)) if s == "ERROR" => "STATUS_CODE_ERROR",
        Some(Value::Str(s)) if s == "OK" => "STATUS_CODE_OK",
        _ => match span.tag("error") {
            Some(Value::Bool(true)) => "STATUS_CODE_ERROR",
            Some(Value::Str(s)) if s == "true" => "STATUS_CODE_ERROR",
            _ => "STATUS_CODE_UNSET",
        },
    }
}

impl RedMetrics {
    pub fn new(namespace: &str, bounds_ms: &[f64]) -> RedMetrics {
        RedMetrics {
            namespace: namespace.to_string(),
            bounds_ms: bounds_ms.to_vec(),
            series: Mutex::new(Table::default()),
            dropped: Mutex::new(0),
        }
    }

    fn name(&self, what: &str) -> String {
        if self.namespace.is_empty() { what.to_string() } else { format!("{}_{what}", self.namespace) }
    }

    pub fn record(&self, spans: &[Span]) {
        let now_s = crate::trace_store::now_us() as f64 / 1e6;
        let mut guard = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let table = &mut *guard;
        let n = self.bounds_ms.len() + 1;
        let mut dropped = 0;
        for span in spans {
            let (kind, status) = (kind_label(span), status_label(span));
            // Label values as the store indexes names: a sender's megabyte-long name must not
            // become a megabyte-long series in memory and in every scrape.
            let service = crate::trace_store::keys::truncate(&span.process.service_name);
            let name = crate::trace_store::keys::truncate(&span.operation_name);
            let existing = table
                .by_service
                .get_mut(service)
                .and_then(|ops| ops.get_mut(name))
                .and_then(|v| v.iter().position(|(k, st, _)| *k == kind && *st == status));
            let s = match existing {
                Some(i) => {
                    // Found just above: the lookups cannot miss.
                    let Some(list) = table.by_service.get_mut(service).and_then(|ops| ops.get_mut(name))
                    else {
                        continue;
                    };
                    &mut list[i].2
                }
                None if table.len >= MAX_SERIES => {
                    dropped += 1;
                    continue;
                }
                None => {
                    table.len += 1;
                    let list = table
                        .by_service
                        .entry(service.to_string())
                        .or_default()
                        .entry(name.to_string())
                        .or_default();
                    list.push((
                        kind,
                        status,
                        Series { calls: 0, buckets: vec![0; n], sum_ms: 0.0, exemplars: vec![None; n] },
                    ));
                    let last = list.len() - 1;
                    &mut list[last].2
                }
            };
            let ms = span.duration_us as f64 / 1000.0;
            let idx = self.bounds_ms.iter().position(|b| ms <= *b).unwrap_or(n - 1);
            s.calls += 1;
            s.buckets[idx] += 1;
            s.sum_ms += ms;
            s.exemplars[idx] = Some(Exemplar {
                trace_id: span.trace_id,
                span_id: span.span_id,
                value_ms: ms,
                timestamp_s: now_s,
            });
        }
        if dropped > 0 {
            *self.dropped.lock().unwrap_or_else(|e| e.into_inner()) += dropped;
        }
    }

    pub fn series_dropped(&self) -> u64 {
        *self.dropped.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sorted(&self) -> Vec<(SeriesKey, Series)> {
        let table = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = Vec::with_capacity(table.len);
        for (service, ops) in &table.by_service {
            for (span_name, list) in ops {
                for (kind, status, series) in list {
                    let key =
                        SeriesKey { service: service.clone(), span_name: span_name.clone(), kind, status };
                    all.push((key, series.clone()));
                }
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The two families in text format 0.0.4 form (no exemplars there).
    pub fn families(&self) -> Vec<MetricFamily> {
        let mut calls = MetricFamily::counter(
            self.name("calls_total"),
            "Number of spans, by service, span name, kind and status.",
        );
        let mut hist = MetricFamily::new(
            self.name("duration_milliseconds"),
            "Span durations in milliseconds, by service, span name, kind and status.",
            MetricType::Histogram,
        );
        for (key, s) in self.sorted() {
            let labels = labels(&key);
            calls.samples.push(sample("", labels.clone(), s.calls as f64));
            let mut cumulative = 0;
            for (i, count) in s.buckets.iter().enumerate() {
                cumulative += count;
                let mut l = labels.clone();
                l.push(("le".into(), self.le(i)));
                hist.samples.push(sample("_bucket", l, cumulative as f64));
            }
            hist.samples.push(sample("_sum", labels.clone(), s.sum_ms));
            hist.samples.push(sample("_count", labels, s.calls as f64));
        }
        vec![calls, hist]
    }

    fn le(&self, i: usize) -> String {
        self.bounds_ms.get(i).map(|b| format_go_float(*b)).unwrap_or_else(|| "+Inf".into())
    }

    /// The two families in OpenMetrics 1.0, with a `trace_id` exemplar on each bucket that has one.
    pub fn write_openmetrics(&self, out: &mut String) {
        let all = self.sorted();
        if all.is_empty() {
            return;
        }
        let calls = self.name("calls");
        let _ = writeln!(out, "# HELP {calls} Number of spans, by service, span name, kind and status.");
        let _ = writeln!(out, "# TYPE {calls} counter");
        for (key, s) in &all {
            let _ = writeln!(out, "{calls}_total{} {}", render_labels(&labels(key)), s.calls);
        }
        let hist = self.name("duration_milliseconds");
        let _ = writeln!(
            out,
            "# HELP {hist} Span durations in milliseconds, by service, span name, kind and status."
        );
        let _ = writeln!(out, "# TYPE {hist} histogram");
        let _ = writeln!(out, "# UNIT {hist} milliseconds");
        for (key, s) in &all {
            let base = labels(key);
            let mut cumulative = 0;
            for (i, count) in s.buckets.iter().enumerate() {
                cumulative += count;
                let mut l = base.clone();
                l.push(("le".into(), self.le(i)));
                let _ = write!(out, "{hist}_bucket{} {cumulative}", render_labels(&l));
                if let Some(e) = &s.exemplars[i] {
                    let _ = write!(
                        out,
                        " # {{trace_id=\"{}\",span_id=\"{}\"}} {} {:.3}",
                        e.trace_id,
                        e.span_id,
                        format_go_float(e.value_ms),
                        e.timestamp_s
                    );
                }
                out.push('\n');
            }
            let _ = writeln!(out, "{hist}_sum{} {}", render_labels(&base), format_go_float(s.sum_ms));
            let _ = writeln!(out, "{hist}_count{} {}", render_labels(&base), s.calls);
        }
    }
}

fn labels(key: &SeriesKey) -> Vec<(String, String)> {
    vec![
        ("service_name".into(), key.service.clone()),
        ("span_name".into(), key.span_name.clone()),
        ("span_kind".into(), key.kind.to_string()),
        ("status_code".into(), key.status.to_string()),
    ]
}

fn sample(suffix: &'static str, labels: Vec<(String, String)>, value: f64) -> crate::exposition::Sample {
    crate::exposition::Sample { suffix, labels, value, timestamp_ms: None }
}

fn render_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> =
        labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v))).collect();
    format!("{{{}}}", inner.join(","))
}

/// Other families (self and process metrics) in OpenMetrics form: counters lose `_total` in
/// their TYPE line, gauges stay, untyped becomes `unknown`.
pub fn write_families_openmetrics(out: &mut String, families: &[MetricFamily]) {
    for f in families {
        if f.samples.is_empty() {
            continue;
        }
        let (name, kind) = match f.kind {
            MetricType::Counter => (f.name.strip_suffix("_total").unwrap_or(&f.name), "counter"),
            MetricType::Gauge => (f.name.as_str(), "gauge"),
            MetricType::Histogram => (f.name.as_str(), "histogram"),
            MetricType::Summary => (f.name.as_str(), "summary"),
            other => (f.name.as_str(), other.metadata_name()),
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in &f.samples {
            let sample_name = if f.kind == MetricType::Counter {
                format!("{name}_total")
            } else {
                format!("{}{}", f.name, s.suffix)
            };
            let _ = writeln!(out, "{sample_name}{} {}", render_labels(&s.labels), format_go_float(s.value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_store::{KeyValue, Process, SpanId, TraceId};
    use std::sync::Arc;

    fn span(dur_us: u64, tags: Vec<KeyValue>) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            operation_name: "GET /".into(),
            references: vec![],
            flags: 0,
            start_time_us: 0,
            duration_us: dur_us,
            tags,
            logs: vec![],
            process: Arc::new(Process { service_name: "web".into(), tags: vec![] }),
            warnings: vec![],
        }
    }

    #[test]
    fn counts_and_buckets_like_spanmetrics() {
        let red = RedMetrics::new("traces_span_metrics", &crate::config::DEFAULT_SPAN_METRICS_BUCKETS_MS);
        red.record(&[
            span(3_000, vec![KeyValue::str("span.kind", "server")]),
            span(20_000_000, vec![KeyValue::str("span.kind", "server")]),
            span(1_000, vec![KeyValue::str("otel.status_code", "ERROR")]),
        ]);
        let mut text = String::new();
        crate::exposition::write_families(&mut text, &red.families());
        assert!(text.contains("traces_span_metrics_calls_total{service_name=\"web\",span_name=\"GET /\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\"} 2"), "{text}");
        assert!(text.contains("traces_span_metrics_duration_milliseconds_bucket{service_name=\"web\",span_name=\"GET /\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\",le=\"4\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(
            text.contains("span_kind=\"SPAN_KIND_UNSPECIFIED\",status_code=\"STATUS_CODE_ERROR\""),
            "{text}"
        );
        let mut om = String::new();
        red.write_openmetrics(&mut om);
        assert!(om.contains("# TYPE traces_span_metrics_calls counter"), "{om}");
        assert!(om.contains("le=\"4\"} 1 # {trace_id=\"01010101010101010101010101010101\""), "{om}");
    }
}

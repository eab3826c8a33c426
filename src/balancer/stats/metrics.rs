//! `/metrics`: haproxy_exporter 0.15's families, derived from the same rows as the page and
//! the CSV, and the balancer's own histogram.

use super::{Kind, Row, Val, rows};
use crate::balancer::counters::load;
use crate::balancer::health::exporter_up;
use crate::balancer::{Balancer, Generation};
use crate::exposition::{self, MetricFamily, MetricType, Sample};

// /metrics: haproxy_exporter 0.15 (haproxy_exporter.go `frontendMetrics`, `backendMetrics`,
// `serverMetrics`), column index → name, type, help.

struct ExporterMetric {
    column: &'static str,
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    code: Option<&'static str>,
}

const fn m(column: &'static str, name: &'static str, kind: MetricType, help: &'static str) -> ExporterMetric {
    ExporterMetric { column, name, kind, help, code: None }
}

const fn r(column: &'static str, code: &'static str) -> ExporterMetric {
    ExporterMetric {
        column,
        name: "http_responses_total",
        kind: MetricType::Counter,
        help: "Total of HTTP responses.",
        code: Some(code),
    }
}

const G: MetricType = MetricType::Gauge;
const C: MetricType = MetricType::Counter;

const RESPONSES: [ExporterMetric; 6] = [
    r("hrsp_1xx", "1xx"),
    r("hrsp_2xx", "2xx"),
    r("hrsp_3xx", "3xx"),
    r("hrsp_4xx", "4xx"),
    r("hrsp_5xx", "5xx"),
    r("hrsp_other", "other"),
];

const COMPRESSION: [ExporterMetric; 4] = [
    m("comp_in", "compressor_bytes_in_total", C, "Number of HTTP response bytes fed to the compressor"),
    m("comp_out", "compressor_bytes_out_total", C, "Number of HTTP response bytes emitted by the compressor"),
    m("comp_byp", "compressor_bytes_bypassed_total", C, "Number of bytes that bypassed the HTTP compressor"),
    m("comp_rsp", "http_responses_compressed_total", C, "Number of HTTP responses that were compressed"),
];

const SESSIONS: [ExporterMetric; 6] = [
    m("scur", "current_sessions", G, "Current number of active sessions."),
    m("smax", "max_sessions", G, "Maximum observed number of active sessions."),
    m("slim", "limit_sessions", G, "Configured session limit."),
    m("stot", "sessions_total", C, "Total number of sessions."),
    m("bin", "bytes_in_total", C, "Current total of incoming bytes."),
    m("bout", "bytes_out_total", C, "Current total of outgoing bytes."),
];

const FRONTEND_ONLY: [ExporterMetric; 7] = [
    m("dreq", "requests_denied_total", C, "Total of requests denied for security."),
    m("ereq", "request_errors_total", C, "Total of request errors."),
    m("rate", "current_session_rate", G, "Current number of sessions per second over last elapsed second."),
    m("rate_lim", "limit_session_rate", G, "Configured limit on new sessions per second."),
    m("rate_max", "max_session_rate", G, "Maximum observed number of sessions per second."),
    m("req_tot", "http_requests_total", C, "Total HTTP requests."),
    m("conn_tot", "connections_total", C, "Total number of connections"),
];

const BACKEND_SERVER: [ExporterMetric; 15] = [
    m("econ", "connection_errors_total", C, "Total of connection errors."),
    m("eresp", "response_errors_total", C, "Total of response errors."),
    m("wretr", "retry_warnings_total", C, "Total of retry warnings."),
    m("wredis", "redispatch_warnings_total", C, "Total of redispatch warnings."),
    m(
        "lbtot",
        "server_selected_total",
        C,
        "Total number of times a server was selected, either for new sessions, or when re-dispatching.",
    ),
    m("rate", "current_session_rate", G, "Current number of sessions per second over last elapsed second."),
    m("cli_abrt", "client_aborts_total", C, "Total number of data transfers aborted by the client."),
    m("srv_abrt", "server_aborts_total", C, "Total number of data transfers aborted by the server."),
    m(
        "qtime",
        "http_queue_time_average_seconds",
        G,
        "Avg. HTTP queue time for last 1024 successful connections.",
    ),
    m(
        "ctime",
        "http_connect_time_average_seconds",
        G,
        "Avg. HTTP connect time for last 1024 successful connections.",
    ),
    m(
        "rtime",
        "http_response_time_average_seconds",
        G,
        "Avg. HTTP response time for last 1024 successful connections.",
    ),
    m(
        "ttime",
        "http_total_time_average_seconds",
        G,
        "Avg. HTTP total time for last 1024 successful connections.",
    ),
    m("status", "up", G, ""),
    m("weight", "weight", G, ""),
    m("qcur", "current_queue", G, ""),
];

const BACKEND_ONLY: [ExporterMetric; 2] = [
    m("act", "current_server", G, "Current number of active servers"),
    m("rate_max", "max_session_rate", G, "Maximum number of sessions per second."),
];

const SERVER_ONLY: [ExporterMetric; 4] = [
    m("chkfail", "check_failures_total", C, "Total number of failed health checks."),
    m("downtime", "downtime_seconds_total", C, "Total downtime in seconds."),
    m("check_duration", "check_duration_seconds", G, "Previously run health check duration, in seconds"),
    m("rate_max", "max_session_rate", G, "Maximum observed number of sessions per second."),
];

fn help_for(prefix: &str, metric: &ExporterMetric) -> &'static str {
    match (prefix, metric.column) {
        ("backend", "status") => "Current health status of the backend (1 = UP, 0 = DOWN).",
        ("server", "status") => "Current health status of the server (1 = UP, 0 = DOWN).",
        ("backend", "weight") => "Total weight of the servers in the backend.",
        ("server", "weight") => "Current weight of the server.",
        ("backend", "qcur") => "Current number of queued requests not assigned to any server.",
        ("server", "qcur") => "Current number of queued requests assigned to this server.",
        ("backend", "qmax") => "Maximum observed number of queued requests not assigned to any server.",
        ("server", "qmax") => "Maximum observed number of queued requests assigned to this server.",
        _ => metric.help,
    }
}

/// haproxy_exporter's reading of one CSV cell: empty cells give no sample; status goes
/// through `parseStatusField`; times are milliseconds turned into seconds.
fn exporter_value(column: &str, v: &Val) -> Option<f64> {
    match (column, v) {
        ("status", Val::S(s)) => Some(if exporter_up(s) { 1.0 } else { 0.0 }),
        ("check_duration" | "qtime" | "ctime" | "rtime" | "ttime", Val::U(u)) => Some(*u as f64 / 1000.0),
        (_, Val::U(u)) => Some(*u as f64),
        (_, Val::S(s)) => s.parse::<i64>().ok().map(|n| n as f64),
    }
}

pub fn exporter_families(rows: &[Row]) -> Vec<MetricFamily> {
    let qmax = m("qmax", "max_queue", G, "");
    let mut families: std::collections::BTreeMap<String, MetricFamily> = std::collections::BTreeMap::new();
    for row in rows {
        let (prefix, labels): (&str, Vec<(String, String)>) = match row.kind {
            Kind::Frontend => ("frontend", vec![("frontend".into(), row.text("pxname"))]),
            Kind::Backend => ("backend", vec![("backend".into(), row.text("pxname"))]),
            Kind::Server => (
                "server",
                vec![("backend".into(), row.text("pxname")), ("server".into(), row.text("svname"))],
            ),
        };
        let mut table: Vec<&ExporterMetric> = SESSIONS.iter().chain(RESPONSES.iter()).collect();
        match row.kind {
            Kind::Frontend => table.extend(FRONTEND_ONLY.iter().chain(COMPRESSION.iter())),
            Kind::Backend => {
                table.extend(BACKEND_SERVER.iter().chain(BACKEND_ONLY.iter()).chain(COMPRESSION.iter()));
                table.push(&qmax);
            }
            Kind::Server => {
                table.extend(BACKEND_SERVER.iter().chain(SERVER_ONLY.iter()));
                table.push(&qmax);
            }
        }
        for metric in table {
            let Some(v) = row.get(metric.column) else { continue };
            let Some(value) = exporter_value(metric.column, v) else { continue };
            let name = format!("haproxy_{prefix}_{}", metric.name);
            let family = families
                .entry(name.clone())
                .or_insert_with(|| MetricFamily::new(name, help_for(prefix, metric), metric.kind));
            let mut l = labels.clone();
            if let Some(code) = metric.code {
                l.push(("code".into(), code.into()));
            }
            family.samples.push(Sample { suffix: "", labels: l, value, timestamp_ms: None });
        }
    }
    families.into_values().collect()
}

fn histogram_family(generation: &Generation) -> MetricFamily {
    let mut f = MetricFamily::new(
        "obsd_balancer_backend_request_duration_seconds",
        "Time from a request's arrival to the end of its response, per backend.",
        MetricType::Histogram,
    );
    for b in &generation.backends {
        let h = &b.shared.histogram;
        let mut cumulative = 0u64;
        for (bound, bucket) in h.bounds.iter().zip(&h.buckets) {
            cumulative += load(bucket);
            f.samples.push(Sample {
                suffix: "_bucket",
                labels: vec![
                    ("backend".into(), b.config.name.clone()),
                    ("le".into(), exposition::format_go_float(*bound)),
                ],
                value: cumulative as f64,
                timestamp_ms: None,
            });
        }
        let count = load(&h.count);
        f.samples.push(Sample {
            suffix: "_bucket",
            labels: vec![("backend".into(), b.config.name.clone()), ("le".into(), "+Inf".into())],
            value: count as f64,
            timestamp_ms: None,
        });
        f.samples.push(Sample {
            suffix: "_sum",
            labels: vec![("backend".into(), b.config.name.clone())],
            value: load(&h.sum_micros) as f64 / 1e6,
            timestamp_ms: None,
        });
        f.samples.push(Sample {
            suffix: "_count",
            labels: vec![("backend".into(), b.config.name.clone())],
            value: count as f64,
            timestamp_ms: None,
        });
    }
    f
}

pub fn metrics_text(balancer: &Balancer) -> String {
    let inner = balancer.inner();
    let scrapes = inner.scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let generation = inner.current();
    let rows = rows(&generation, &inner.stats_counters);
    let mut families = exporter_families(&rows);
    families.push(
        MetricFamily::gauge("haproxy_up", "Was the last scrape of HAProxy successful.").with_value(1.0),
    );
    families.push(
        MetricFamily::counter("haproxy_exporter_scrapes_total", "Current total HAProxy scrapes.")
            .with_value(scrapes as f64),
    );
    families.push(
        MetricFamily::counter(
            "haproxy_exporter_csv_parse_failures_total",
            "Number of errors while parsing CSV.",
        )
        .with_value(0.0),
    );
    families.push(histogram_family(&generation));
    families.extend(crate::self_metrics::common_families());
    // Histogram samples are already in bucket order; merge_and_sort would reorder them.
    let histogram_name = "obsd_balancer_backend_request_duration_seconds";
    let (hist, rest): (Vec<_>, Vec<_>) = families.into_iter().partition(|f| f.name == histogram_name);
    let mut sorted = exposition::merge_and_sort(rest);
    sorted.extend(hist);
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut body = String::with_capacity(32 * 1024);
    exposition::write_families(&mut body, &sorted);
    body
}

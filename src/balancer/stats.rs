//! The stats listener: HAProxy's stats page (HTML, `;csv`, `;json`) behind `stats auth`,
//! admin actions, and `/metrics` with haproxy_exporter 0.15's families.
//!
//! One model feeds all three: rows of `show stat` columns, filled where HAProxy 2.6 fills
//! them and left empty where it leaves them empty. `/metrics` is derived from the same rows
//! with haproxy_exporter's own column→metric table, so the exporter pointed at our `;csv`
//! and our `/metrics` cannot disagree.

use super::counters::{self, Counters, load};
use super::health::{Admin, exporter_up};
use super::{Balancer, Generation};
use crate::config::ProxyMode;
use crate::exposition::{self, MetricFamily, MetricType, Sample};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::Arc;

/// HAProxy 2.6's `show stat` header, verbatim.
const CSV_HEADER: &str = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out";

fn columns() -> Vec<&'static str> {
    CSV_HEADER.split(',').collect()
}

fn col(name: &str) -> usize {
    CSV_HEADER.split(',').position(|c| c == name).unwrap_or(usize::MAX)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    S(String),
    U(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend,
    Backend,
    Server,
}

pub struct Row {
    pub kind: Kind,
    pub iid: u64,
    pub sid: u64,
    pub fields: Vec<Option<Val>>,
}

impl Row {
    fn new(kind: Kind, px: &str, sv: &str, iid: u64, sid: u64) -> Row {
        let mut r = Row { kind, iid, sid, fields: vec![None; columns().len()] };
        r.s("pxname", px);
        r.s("svname", sv);
        r.u("pid", 1);
        r.u("iid", iid);
        r.u("sid", sid);
        r.u(
            "type",
            match kind {
                Kind::Frontend => 0,
                Kind::Backend => 1,
                Kind::Server => 2,
            },
        );
        r
    }

    fn s(&mut self, name: &str, v: impl Into<String>) {
        if let Some(f) = self.fields.get_mut(col(name)) {
            *f = Some(Val::S(v.into()));
        }
    }

    fn u(&mut self, name: &str, v: u64) {
        if let Some(f) = self.fields.get_mut(col(name)) {
            *f = Some(Val::U(v));
        }
    }

    pub fn get(&self, name: &str) -> Option<&Val> {
        self.fields.get(col(name)).and_then(|v| v.as_ref())
    }

    fn text(&self, name: &str) -> String {
        match self.get(name) {
            Some(Val::S(s)) => s.clone(),
            Some(Val::U(u)) => u.to_string(),
            None => String::new(),
        }
    }

    /// The traffic columns every row kind shares.
    fn traffic(&mut self, c: &Counters) {
        self.u("scur", load(&c.scur));
        self.u("smax", load(&c.smax));
        self.u("stot", load(&c.stot));
        self.u("bin", load(&c.bin));
        self.u("bout", load(&c.bout));
        let (rate, rate_max) = c.session_rate.read();
        self.u("rate", rate);
        self.u("rate_max", rate_max);
        for (i, name) in
            ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].iter().enumerate()
        {
            self.u(name, load(&c.hrsp[i]));
        }
    }

    fn times(&mut self, c: &Counters) {
        let t = c.times();
        self.u("qtime", t.qtime_ms.round() as u64);
        self.u("ctime", t.ctime_ms.round() as u64);
        self.u("rtime", t.rtime_ms.round() as u64);
        self.u("ttime", t.ttime_ms.round() as u64);
        self.u("qtime_max", t.qtime_max_ms.round() as u64);
        self.u("ctime_max", t.ctime_max_ms.round() as u64);
        self.u("rtime_max", t.rtime_max_ms.round() as u64);
        self.u("ttime_max", t.ttime_max_ms.round() as u64);
        self.u("lastsess", c.last_session_age().map(|d| d.as_secs()).unwrap_or(u64::MAX));
    }
}

fn frontend_row(name: &str, iid: u64, c: &Counters, slim: u64, mode: ProxyMode) -> Row {
    let mut r = Row::new(Kind::Frontend, name, "FRONTEND", iid, 0);
    r.traffic(c);
    r.u("slim", slim);
    r.u("dreq", load(&c.dreq));
    r.u("dresp", 0);
    r.u("ereq", load(&c.ereq));
    r.s("status", "OPEN");
    r.u("rate_lim", 0);
    let (req_rate, req_rate_max) = c.req_rate.read();
    r.u("req_rate", req_rate);
    r.u("req_rate_max", req_rate_max);
    r.u("req_tot", load(&c.req_tot));
    for name in ["comp_in", "comp_out", "comp_byp", "comp_rsp", "intercepted", "dcon", "dses", "wrew"] {
        r.u(name, 0);
    }
    r.s("mode", mode.as_str());
    let (conn_rate, conn_rate_max) = c.conn_rate.read();
    r.u("conn_rate", conn_rate);
    r.u("conn_rate_max", conn_rate_max);
    r.u("conn_tot", load(&c.conn_tot));
    r.u("eint", 0);
    r
}

/// Every row, in HAProxy's order: per proxy its FRONTEND, servers, BACKEND; then `stats`.
pub fn rows(generation: &Generation, stats: &Counters) -> Vec<Row> {
    let mut out = Vec::new();
    for fe in &generation.frontends {
        out.push(frontend_row(
            &fe.config.name,
            fe.id,
            &fe.counters,
            fe.config.maxconn as u64,
            fe.config.mode,
        ));
    }
    for b in &generation.backends {
        let bc = &b.shared.counters;
        let mut act = 0;
        let mut bck = 0;
        let mut weight = 0u64;
        let mut any_backup_up = false;
        for s in &b.servers {
            let h = s.state.health();
            let mut r = Row::new(Kind::Server, &b.config.name, &s.config.name, b.shared.id, s.state.id);
            let c = &s.state.counters;
            r.traffic(c);
            r.u("qcur", 0);
            r.u("qmax", 0);
            if s.config.maxconn > 0 {
                r.u("slim", u64::from(s.config.maxconn));
            }
            r.u("dresp", 0);
            r.u("econ", load(&c.econ));
            r.u("eresp", load(&c.eresp));
            r.u("wretr", load(&c.wretr));
            r.u("wredis", load(&c.wredis));
            let status = h.status_text();
            r.s("status", status.clone());
            let up = h.usable();
            let w = if h.admin == Admin::Ready { u64::from(s.config.weight) } else { 0 };
            r.u("weight", w);
            r.u("uweight", u64::from(s.config.weight));
            r.u("act", u64::from(!s.config.backup));
            r.u("bck", u64::from(s.config.backup));
            if s.config.check {
                r.u("chkfail", h.chkfail);
                r.u("chkdown", h.chkdown);
                r.u("check_rise", u64::from(h.rise));
                r.u("check_fall", u64::from(h.fall));
                r.u("check_health", u64::from(h.health));
                if let Some(chk) = &h.last_check {
                    r.s("check_status", chk.status);
                    if let Some(code) = chk.code {
                        r.u("check_code", u64::from(code));
                    }
                    r.u("check_duration", chk.duration.as_millis() as u64);
                    r.s("check_desc", chk.desc.clone());
                    r.s("last_chk", chk.desc.clone());
                } else {
                    r.s("check_status", "INI");
                    r.s("check_desc", "Initializing");
                }
            }
            r.u("lastchg", h.last_change.elapsed().as_secs());
            r.u("downtime", h.downtime_now().as_secs());
            r.u("lbtot", load(&c.lbtot));
            r.u("hanafail", 0);
            r.u("cli_abrt", load(&c.cli_abrt));
            r.u("srv_abrt", load(&c.srv_abrt));
            r.times(c);
            r.s("addr", s.config.address.to_string());
            r.s("mode", b.config.mode.as_str());
            r.u("srv_icur", 0);
            r.u("idle_conn_cur", 0);
            r.u("used_conn_cur", load(&c.scur));
            r.u("eint", 0);
            r.u("agg_server_status", if up { 0 } else { 2 });
            drop(h);
            if up {
                if s.config.backup {
                    bck += 1;
                    any_backup_up = true;
                } else {
                    act += 1;
                    weight += u64::from(s.config.weight);
                }
            }
            out.push(r);
        }
        let mut r = Row::new(Kind::Backend, &b.config.name, "BACKEND", b.shared.id, 0);
        r.traffic(bc);
        r.u("qcur", load(&bc.qcur));
        r.u("qmax", load(&bc.qmax));
        r.u("slim", b.servers.iter().map(|s| u64::from(s.config.maxconn)).sum::<u64>().max(10));
        r.u("dreq", 0);
        r.u("dresp", 0);
        r.u("econ", load(&bc.econ));
        r.u("eresp", load(&bc.eresp));
        r.u("wretr", load(&bc.wretr));
        r.u("wredis", load(&bc.wredis));
        r.s("status", if act > 0 || any_backup_up { "UP" } else { "DOWN" });
        r.u("weight", weight);
        r.u("uweight", weight);
        r.u("act", act);
        r.u("bck", bck);
        r.u("chkdown", 0);
        r.u("lastchg", b.shared.created.elapsed().as_secs());
        r.u("downtime", 0);
        r.u("lbtot", load(&bc.lbtot));
        r.u("req_tot", load(&bc.stot));
        r.u("cli_abrt", load(&bc.cli_abrt));
        r.u("srv_abrt", load(&bc.srv_abrt));
        for name in ["comp_in", "comp_out", "comp_byp", "comp_rsp", "wrew", "eint"] {
            r.u(name, 0);
        }
        r.times(bc);
        r.s("mode", b.config.mode.as_str());
        r.s("algo", b.config.balance.as_str());
        out.push(r);
    }
    let mut f = frontend_row("stats", 0, stats, 0, ProxyMode::Http);
    f.u("iid", 0);
    out.push(f);
    let mut b = Row::new(Kind::Backend, "stats", "BACKEND", 0, 0);
    b.traffic(&Counters::default());
    b.u("qcur", 0);
    b.u("qmax", 0);
    b.u("slim", 10);
    b.u("econ", 0);
    b.u("eresp", 0);
    b.u("wretr", 0);
    b.u("wredis", 0);
    b.s("status", "UP");
    b.u("weight", 0);
    b.u("act", 0);
    b.u("bck", 0);
    b.u("lbtot", 0);
    b.u("cli_abrt", 0);
    b.u("srv_abrt", 0);
    b.s("mode", "http");
    out.push(b);
    out
}

pub fn csv(rows: &[Row]) -> String {
    let mut out = String::with_capacity(512 * (rows.len() + 1));
    out.push_str("# ");
    out.push_str(CSV_HEADER);
    out.push_str(",\n");
    for r in rows {
        for v in &r.fields {
            match v {
                Some(Val::S(s)) => out.push_str(&s.replace([',', '\n'], " ")),
                Some(Val::U(u)) => {
                    let _ = write!(out, "{u}");
                }
                None => {}
            }
            out.push(',');
        }
        out.push('\n');
    }
    out
}

/// `tags` of HAProxy's typed output, from the column's role.
fn tags(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "pxname" | "svname" => ("Key", "Name", "Service"),
        "pid" => ("Key", "Gauge", "Process"),
        "iid" | "sid" => ("Key", "Gauge", "Service"),
        "status" | "check_status" | "check_desc" | "last_chk" => ("Status", "Gauge", "Process"),
        "slim" | "rate_lim" | "weight" | "uweight" | "check_rise" | "check_fall" => {
            ("Config", "Limit", "Process")
        }
        "type" | "mode" | "algo" | "addr" | "act" | "bck" => ("Config", "Gauge", "Service"),
        n if n.ends_with("max") || n.ends_with("_max") => ("Metric", "Max", "Process"),
        n if n.contains("rate") => ("Metric", "Rate", "Process"),
        "qcur" | "scur" | "check_health" | "lastchg" | "lastsess" | "check_code" | "check_duration"
        | "qtime" | "ctime" | "rtime" | "ttime" | "srv_icur" | "idle_conn_cur" | "used_conn_cur" => {
            ("Metric", "Gauge", "Process")
        }
        _ => ("Metric", "Counter", "Process"),
    }
}

pub fn json(rows: &[Row]) -> serde_json::Value {
    let cols = columns();
    let out: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let obj_type = match r.kind {
                Kind::Frontend => "Frontend",
                Kind::Backend => "Backend",
                Kind::Server => "Server",
            };
            let fields: Vec<serde_json::Value> = r
                .fields
                .iter()
                .enumerate()
                .filter_map(|(pos, v)| {
                    let v = v.as_ref()?;
                    let name = cols.get(pos)?;
                    let (origin, nature, scope) = tags(name);
                    let value = match v {
                        Val::S(s) => serde_json::json!({"type": "str", "value": s}),
                        Val::U(u) => serde_json::json!({"type": "u64", "value": u}),
                    };
                    Some(serde_json::json!({
                        "objType": obj_type,
                        "proxyId": r.iid,
                        "id": r.sid,
                        "field": {"pos": pos, "name": name},
                        "processNum": 1,
                        "tags": {"origin": origin, "nature": nature, "scope": scope},
                        "value": value,
                    }))
                })
                .collect();
            serde_json::Value::Array(fields)
        })
        .collect();
    serde_json::Value::Array(out)
}

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
// HTML

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

pub fn html(
    balancer: &Balancer,
    rows: &[Row],
    admin: bool,
    refresh: Option<u64>,
    message: Option<&str>,
) -> String {
    let inner = balancer.inner();
    let generation = inner.current();
    let uri = &generation.config.stats_uri;
    let mut o = String::with_capacity(16 * 1024);
    o.push_str(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Statistics Report for obsd</title>\n",
    );
    if let Some(r) = refresh {
        let _ = writeln!(o, "<meta http-equiv=\"refresh\" content=\"{r}\">");
    }
    o.push_str(
        "<style>body{font-family:arial,helvetica,sans-serif;font-size:12px}table.tbl{border-collapse:collapse;margin-bottom:12px}\
table.tbl td,table.tbl th{border:1px solid #999;padding:1px 4px;text-align:right}th.pxname{background:#b00040;color:#fff;text-align:left}\
tr.titre th{background:#20a0ff}tr.frontend td{background:#e8e8d0}tr.backend td{background:#e8e8d0;font-weight:bold}\
tr.active_up td{background:#c0ffc0}tr.active_down td{background:#ff9090}tr.active_going_down td{background:#ffffa0}\
tr.active_going_up td{background:#ffd020}tr.maintain td{background:#c07820}tr.draining td{background:#20a0ff}\
tr.backup_up td{background:#b0d0ff}td.ac{text-align:left}</style></head><body>\n",
    );
    let _ = writeln!(
        o,
        "<h1>obsd balancer {} — HAProxy-compatible statistics</h1><p>uptime {}; {} frontends, {} backends. \
<a href=\"{u};csv\">CSV export</a> · <a href=\"{u};json\">JSON export</a> · <a href=\"{u};norefresh\">Disable refresh</a></p>",
        crate::self_metrics::VERSION,
        human_duration(inner.started.elapsed().as_secs()),
        generation.frontends.len(),
        generation.backends.len(),
        u = esc(uri)
    );
    if let Some(msg) = message {
        let text = match msg {
            "DONE" => "Action processed successfully.",
            "DENY" => "Action denied.",
            "ERRP" => "Action not processed: invalid parameters.",
            "NONE" => "Nothing has changed.",
            _ => "Action not processed.",
        };
        let _ = writeln!(o, "<p class=\"msg\"><b>{}</b></p>", esc(text));
    }
    let mut px = String::new();
    let mut in_table = false;
    for r in rows {
        let name = r.text("pxname");
        if name != px {
            if in_table {
                o.push_str("</table>");
                if admin && px != "stats" {
                    admin_form_end(&mut o, &px);
                }
            }
            px = name.clone();
            in_table = true;
            if admin && px != "stats" && rows.iter().any(|x| x.kind == Kind::Server && x.text("pxname") == px)
            {
                let _ = write!(o, "<form method=\"post\" action=\"{}\">", esc(uri));
            }
            let _ = write!(
                o,
                "<table class=\"tbl\"><tr><th class=\"pxname\" colspan=\"29\">{}</th></tr>\
<tr class=\"titre\"><th rowspan=\"2\"></th><th colspan=\"3\">Queue</th><th colspan=\"3\">Session rate</th><th colspan=\"5\">Sessions</th>\
<th colspan=\"2\">Bytes</th><th colspan=\"2\">Denied</th><th colspan=\"3\">Errors</th><th colspan=\"2\">Warnings</th><th colspan=\"9\">Server</th></tr>\
<tr class=\"titre\"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th>\
<th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th>\
<th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th><th>Thrtle</th></tr>",
                esc(&px)
            );
        }
        let status = r.text("status");
        let class = match r.kind {
            Kind::Frontend => "frontend".to_string(),
            Kind::Backend => "backend".to_string(),
            Kind::Server => {
                let backup = r.text("bck") == "1";
                let base = if status.starts_with("MAINT") {
                    "maintain"
                } else if status == "DRAIN" {
                    "draining"
                } else if status.starts_with("DOWN ") {
                    "active_going_up"
                } else if status.starts_with("DOWN") {
                    "active_down"
                } else if status.starts_with("UP ") {
                    "active_going_down"
                } else if backup {
                    "backup_up"
                } else {
                    "active_up"
                };
                base.to_string()
            }
        };
        let label = match r.kind {
            Kind::Frontend => "Frontend".to_string(),
            Kind::Backend => "Backend".to_string(),
            Kind::Server => {
                let sv = esc(&r.text("svname"));
                if admin { format!("<input type=\"checkbox\" name=\"s\" value=\"{sv}\"> {sv}") } else { sv }
            }
        };
        let last_chk = if r.kind == Kind::Server && r.get("check_status").is_some() {
            let code = r.text("check_code");
            format!(
                "{}{} in {}ms",
                esc(&r.text("check_status")),
                if code.is_empty() { String::new() } else { format!("/{code}") },
                r.text("check_duration")
            )
        } else {
            String::new()
        };
        let dwn = if r.kind == Kind::Frontend {
            String::new()
        } else {
            human_duration(r.text("downtime").parse().unwrap_or(0))
        };
        let lastchg = if r.kind == Kind::Frontend {
            String::new()
        } else {
            format!("{} ", human_duration(r.text("lastchg").parse().unwrap_or(0)))
        };
        let cells = [
            r.text("qcur"),
            r.text("qmax"),
            String::new(),
            r.text("rate"),
            r.text("rate_max"),
            r.text("rate_lim"),
            r.text("scur"),
            r.text("smax"),
            r.text("slim"),
            r.text("stot"),
            r.text("lbtot"),
            r.text("bin"),
            r.text("bout"),
            r.text("dreq"),
            r.text("dresp"),
            r.text("ereq"),
            r.text("econ"),
            r.text("eresp"),
            r.text("wretr"),
            r.text("wredis"),
            format!("{lastchg}{}", status),
            last_chk,
            r.text("weight"),
            if r.kind == Kind::Server {
                if r.text("act") == "1" { "Y".into() } else { "-".into() }
            } else {
                r.text("act")
            },
            if r.kind == Kind::Server {
                if r.text("bck") == "1" { "Y".into() } else { "-".into() }
            } else {
                r.text("bck")
            },
            r.text("chkfail"),
            r.text("chkdown"),
            dwn,
            String::new(),
        ];
        let _ = write!(o, "<tr class=\"{class}\"><td class=\"ac\">{label}</td>");
        for c in cells {
            let _ = write!(o, "<td>{}</td>", esc(&c));
        }
        o.push_str("</tr>\n");
    }
    if in_table {
        o.push_str("</table>");
        if admin && px != "stats" {
            admin_form_end(&mut o, &px);
        }
    }
    o.push_str("</body></html>\n");
    o
}

fn admin_form_end(o: &mut String, backend: &str) {
    let _ = write!(
        o,
        "Choose the action to perform on the checked servers: <select name=\"action\">\
<option value=\"\"></option><option value=\"ready\">Set state to READY</option>\
<option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option></select>\
<input type=\"hidden\" name=\"b\" value=\"{}\"><input type=\"submit\" value=\"Apply\"></form>",
        esc(backend)
    );
}

// ---------------------------------------------------------------------------------------------
// Router

pub fn router(balancer: Balancer) -> Router {
    Router::new().fallback(dispatch).with_state(balancer)
}

fn text_response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn dispatch(
    State(balancer): State<Balancer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    match path {
        "/metrics" => {
            return text_response(StatusCode::OK, crate::self_metrics::TEXT_FORMAT, metrics_text(&balancer));
        }
        "/-/healthy" => return text_response(StatusCode::OK, "text/plain; charset=utf-8", "Healthy.\n"),
        "/-/ready" => return text_response(StatusCode::OK, "text/plain; charset=utf-8", "Ready.\n"),
        _ => {}
    }
    let inner = balancer.inner().clone();
    let generation = inner.current();
    let config = generation.config.clone();
    // The web UI's balancer page, behind the same `stats auth` as the page it reads.
    if path == "/ui" || path.starts_with("/ui/") {
        if let Some(denied) = stats_auth_denied(&generation, &headers).await {
            return denied;
        }
        return match path.strip_prefix("/ui/").filter(|p| !p.is_empty()) {
            Some(asset) => crate::webui::asset(asset, &headers),
            None => crate::webui::Shell::new(&crate::webui::Features {
                balancer: Some(crate::webui::BalancerUi {
                    stats_uri: config.stats_uri.clone(),
                    admin: config.stats_admin,
                }),
                ..Default::default()
            })
            .response(&headers),
        };
    }
    // HAProxy matches the stats URI as a prefix and reads options after it (`;csv`, `;up`…),
    // in the path or the query.
    let Some(rest) = path.strip_prefix(config.stats_uri.as_str()) else {
        return super::error::error_page(StatusCode::NOT_FOUND)
            .map(|_| Body::from("<html><body><h1>404 Not Found</h1>\n</body></html>\n"))
            .into_response();
    };
    let options = format!("{rest};{}", uri.query().unwrap_or(""));
    let stats = &inner.stats_counters;
    counters::inc(&stats.req_tot);
    stats.enter();
    let response = stats_page(&balancer, &generation, &options, method, &headers, body).await;
    stats.leave();
    stats.response(response.status().as_u16());
    response
}

async fn stats_page(
    balancer: &Balancer,
    generation: &Arc<Generation>,
    options: &str,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let config = &generation.config;
    if let Some(denied) = stats_auth_denied(generation, headers).await {
        return denied;
    }
    if method == Method::POST {
        return admin_action(balancer, config, body);
    }
    let opts: Vec<&str> = options.split(';').filter(|o| !o.is_empty()).collect();
    let mut rows = rows(generation, &balancer.inner().stats_counters);
    if opts.contains(&"up") {
        rows.retain(|r| {
            r.kind != Kind::Server
                || r.get("status").is_some_and(
                    |s| matches!(s, Val::S(s) if !s.starts_with("DOWN") && !s.starts_with("MAINT")),
                )
        });
    }
    if opts.contains(&"csv") {
        return text_response(StatusCode::OK, "text/plain", csv(&rows));
    }
    if opts.contains(&"json") {
        return text_response(StatusCode::OK, "application/json", json(&rows).to_string());
    }
    let refresh = (!opts.contains(&"norefresh")).then(|| config.stats_refresh.as_secs().max(1));
    let message = opts.iter().find_map(|o| o.strip_prefix("st="));
    text_response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        html(balancer, &rows, config.stats_admin, refresh, message),
    )
}

/// The 401 (with HAProxy's realm) when `stats auth` is set and the request lacks its credentials.
async fn stats_auth_denied(generation: &Arc<Generation>, headers: &HeaderMap) -> Option<Response> {
    let config = &generation.config;
    if config.stats_auth.is_empty() {
        return None;
    }
    let auth = generation.stats_auth.clone();
    let header_value = headers.get(header::AUTHORIZATION).cloned();
    let allowed =
        tokio::task::spawn_blocking(move || auth.allows(header_value.as_ref())).await.unwrap_or(false);
    if allowed {
        return None;
    }
    let mut r = super::error::error_page(StatusCode::UNAUTHORIZED).map(Body::from);
    let realm = format!("Basic realm=\"{}\"", config.stats_realm.replace('"', ""));
    if let Ok(v) = HeaderValue::from_str(&realm) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Some(r)
}

/// HAProxy's stats admin POST: `b=<backend>&s=<server>…&action=ready|drain|maint`, answered
/// with a 303 to `<stats uri>;st=<result>`.
fn admin_action(balancer: &Balancer, config: &crate::config::BalancerConfig, body: Bytes) -> Response {
    let result = if !config.stats_admin {
        "DENY"
    } else {
        let mut backend = None;
        let mut servers = Vec::new();
        let mut action = None;
        for (k, v) in form_pairs(&body) {
            match k.as_str() {
                "b" => backend = Some(v.trim_start_matches('#').to_string()),
                "s" => servers.push(v),
                "action" => action = Some(v),
                _ => {}
            }
        }
        let admin = match action.as_deref() {
            Some("ready") => Some(Admin::Ready),
            Some("drain") => Some(Admin::Drain),
            Some("maint") => Some(Admin::Maint),
            _ => None,
        };
        match (backend, admin) {
            (Some(b), Some(a)) if !servers.is_empty() => {
                let mut changed = 0;
                for s in &servers {
                    if balancer.set_admin(&b, s, a) {
                        changed += 1;
                    }
                }
                if changed > 0 { "DONE" } else { "ERRP" }
            }
            (Some(_), None) if action.is_some() => "ERRP",
            (_, _) if servers.is_empty() => "NONE",
            _ => "ERRP",
        }
    };
    let location = format!("{};st={result}", config.stats_uri);
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 3 <= bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_haproxy_columns_in_order() {
        let cols = columns();
        assert_eq!(&cols[..4], &["pxname", "svname", "qcur", "qmax"]);
        assert_eq!(col("status"), 17);
        assert_eq!(col("hrsp_1xx"), 39);
        assert_eq!(col("check_duration"), 38);
        assert_eq!(col("req_tot"), 48);
        assert_eq!(col("ttime"), 61);
        assert_eq!(col("conn_tot"), 79);
    }

    #[test]
    fn form_decoding() {
        let pairs = form_pairs(b"s=web%201&s=b+2&action=drain&b=%23be");
        assert_eq!(pairs[0], ("s".into(), "web 1".into()));
        assert_eq!(pairs[1], ("s".into(), "b 2".into()));
        assert_eq!(pairs[3], ("b".into(), "#be".into()));
        assert_eq!(form_pairs(b"a=%4"), vec![("a".into(), "%4".into())]);
    }
}

//! Differential suite: the same data remote-written into Prometheus 2.42 (the oracle) and into
//! the real obsd binary (replica role, sled store), every expression of tests/promql/corpus.txt
//! run over HTTP as instant queries at several times and as range queries (POST forms, as
//! Grafana sends them), answers compared with a float tolerance, errors by errorType and HTTP
//! status. The same data also goes into an in-memory `MemoryQueryable` evaluated in-process:
//! when obsd's HTTP answer differs but the in-memory one agrees, the fault is in the store path
//! rather than the engine, which the failure message says.
//!
//! Data reaches Prometheus by remote write rather than `promtool tsdb create-blocks-from
//! openmetrics`, because stale markers are a NaN bit pattern that no text format can carry.
//! Skips (with a message) when /usr/bin/prometheus is absent.

mod common;
#[path = "promql/dataset.rs"]
mod dataset;

use dataset::Dataset;
use obsd::promql::{Engine, EngineOptions, MemoryQueryable, QueryError, QueryValue};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start() -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, "global:\n  evaluation_interval: 1m\n").expect("config");
        let port = common::free_port();
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--enable-feature=exemplar-storage")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let p = Prometheus { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::blocking::get(format!("{}/-/ready", p.base))
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

// ---- remote write: hand-rolled protobuf, snappy from the snap crate ----

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn bytes_field(buf: &mut Vec<u8>, field: u64, data: &[u8]) {
    varint(buf, (field << 3) | 2);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

fn write_request(series: &[(&dataset::Labels, &[(i64, f64)])]) -> Vec<u8> {
    let mut req = Vec::new();
    for (labels, samples) in series {
        let mut ts = Vec::new();
        for (n, v) in labels.iter() {
            let mut l = Vec::new();
            bytes_field(&mut l, 1, n.as_bytes());
            bytes_field(&mut l, 2, v.as_bytes());
            bytes_field(&mut ts, 1, &l);
        }
        for (t, v) in samples.iter() {
            let mut s = Vec::new();
            s.push(0x09);
            s.extend_from_slice(&v.to_bits().to_le_bytes());
            s.push(0x10);
            varint(&mut s, *t as u64);
            bytes_field(&mut ts, 2, &s);
        }
        bytes_field(&mut req, 1, &ts);
    }
    req
}

/// Sends the data set in ten-minute slices, every series in time order across and within
/// requests: both Prometheus and obsd refuse a sample older than a series' newest.
fn remote_write_dataset(base: &str, data: &Dataset) {
    let client = reqwest::blocking::Client::new();
    let slice = 10 * 60 * 1000;
    let mut from = data.start_ms - 1000;
    while from <= data.end_ms + 1000 {
        let to = from + slice;
        let parts: Vec<(&dataset::Labels, &[(i64, f64)])> = data
            .series
            .iter()
            .filter_map(|(l, s)| {
                let lo = s.partition_point(|x| x.0 < from);
                let hi = s.partition_point(|x| x.0 < to);
                (lo < hi).then(|| (l, &s[lo..hi]))
            })
            .collect();
        let body = snap::raw::Encoder::new().compress_vec(&write_request(&parts)).expect("snappy");
        let r = client
            .post(format!("{base}/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .expect("remote write");
        let status = r.status();
        assert!(status.is_success(), "remote write to {base}: {status} {}", r.text().unwrap_or_default());
        from = to;
    }
}

/// Exemplars for a few series of the data set, in time order per series. They go in their
/// own request with no samples: both Prometheus and obsd attach them to the existing series.
/// (trace id, value, time in ms)
type TestExemplar = (String, f64, i64);

fn exemplars_for(data: &Dataset) -> Vec<(dataset::Labels, Vec<TestExemplar>)> {
    let pick = |name: &str| {
        data.series
            .iter()
            .find(|(l, _)| l.iter().any(|(n, v)| n == "__name__" && v == name))
            .map(|(l, _)| l.clone())
            .unwrap_or_else(|| panic!("no {name} in the data set"))
    };
    let s = data.start_ms;
    vec![
        (
            pick("request_duration_seconds_count"),
            (1..=4).map(|i| (format!("trace{i:02}"), 0.25 * i as f64, s + i * 10 * 60_000 + 123)).collect(),
        ),
        (
            pick("up"),
            vec![("abc".to_string(), 1.0, s + 15 * 60_000), ("def".to_string(), 1e-7, s + 90 * 60_000)],
        ),
    ]
}

fn write_exemplars(base: &str, data: &Dataset) {
    let mut req = Vec::new();
    for (labels, ex) in exemplars_for(data) {
        let mut ts = Vec::new();
        for (n, v) in labels.iter() {
            let mut l = Vec::new();
            bytes_field(&mut l, 1, n.as_bytes());
            bytes_field(&mut l, 2, v.as_bytes());
            bytes_field(&mut ts, 1, &l);
        }
        for (trace, value, t) in ex {
            let mut e = Vec::new();
            let mut l = Vec::new();
            bytes_field(&mut l, 1, b"trace_id");
            bytes_field(&mut l, 2, trace.as_bytes());
            bytes_field(&mut e, 1, &l);
            e.push(0x11);
            e.extend_from_slice(&value.to_bits().to_le_bytes());
            e.push(0x18);
            varint(&mut e, t as u64);
            bytes_field(&mut ts, 3, &e);
        }
        bytes_field(&mut req, 1, &ts);
    }
    let body = snap::raw::Encoder::new().compress_vec(&req).expect("snappy");
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .expect("remote write exemplars");
    let status = r.status();
    assert!(status.is_success(), "exemplars to {base}: {status} {}", r.text().unwrap_or_default());
}

/// `/api/v1/series`, `/labels`, `/label/<name>/values` and `/query_exemplars` on both
/// servers: `data` compared exactly (series as a set), errors by errorType and status.
/// Returns the number of cases and the differences.
fn metadata_differences(
    client: &reqwest::blocking::Client,
    prom: &str,
    obsd: &str,
    data: &Dataset,
) -> (usize, Vec<String>) {
    let (s, e) = (data.start_ms, data.end_ms);
    let secs = |t: i64| format!("{:.3}", t as f64 / 1000.0);
    let (ss, es) = (secs(s), secs(e));
    let (before_a, before_b) = (secs(s - 3 * 3_600_000), secs(s - 2 * 3_600_000));
    let (after_a, after_b) = (secs(e + 2 * 3_600_000), secs(e + 3 * 3_600_000));
    let (mid_a, mid_b) = (secs(s + 12 * 60_000), secs(s + 35 * 60_000));
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("series", vec![("match[]", "up")]),
        (
            "series",
            vec![("match[]", "{job=\"api\"}"), ("match[]", "stale_metric"), ("start", &ss), ("end", &es)],
        ),
        ("series", vec![("match[]", "{__name__=~\"request_.*\",instance!=\"a:9090\"}"), ("limit", "40000")]),
        ("series", vec![("match[]", "up"), ("start", &after_a), ("end", &after_b)]),
        ("series", vec![("match[]", "up"), ("start", &before_a), ("end", &before_b)]),
        ("series", vec![("start", &ss)]),
        ("series", vec![("match[]", "rate(up[5m])")]),
        ("series", vec![("match[]", "up"), ("start", "yesterday")]),
        ("labels", vec![]),
        ("labels", vec![("start", &ss), ("end", &es)]),
        ("labels", vec![("match[]", "up"), ("start", &ss), ("end", &es)]),
        ("labels", vec![("match[]", "special_values"), ("match[]", "{x=\"1\"}")]),
        ("labels", vec![("start", &before_a), ("end", &before_b)]),
        ("label/job/values", vec![]),
        ("label/__name__/values", vec![("start", &ss), ("end", &es)]),
        (
            "label/instance/values",
            vec![("match[]", "{__name__=~\"request.*\"}"), ("start", &ss), ("end", &es)],
        ),
        ("label/kind/values", vec![("match[]", "special_values")]),
        ("label/job/values", vec![("start", &after_a), ("end", &after_b)]),
        ("label/job/values", vec![("match[]", "{job=~\"\"}")]),
        ("query_exemplars", vec![("query", "request_duration_seconds_count"), ("start", &ss), ("end", &es)]),
        (
            "query_exemplars",
            vec![
                ("query", "sum(rate(request_duration_seconds_count[5m])) + on() group_left count(up)"),
                ("start", &mid_a),
                ("end", &mid_b),
            ],
        ),
        ("query_exemplars", vec![("query", "up or up{job=\"api\"}"), ("start", &ss), ("end", &es)]),
        ("query_exemplars", vec![("query", "1 + 1"), ("start", &ss), ("end", &es)]),
        ("query_exemplars", vec![("query", "up"), ("start", &after_a), ("end", &after_b)]),
        ("query_exemplars", vec![("query", "sum(up"), ("start", &ss), ("end", &es)]),
        ("query_exemplars", vec![("query", "up"), ("start", &es), ("end", &ss)]),
    ];
    let mut failures = Vec::new();
    for (endpoint, params) in &cases {
        // Grafana POSTs forms to the endpoints that take POST and GETs the label values.
        let call = |base: &str| -> (u16, serde_json::Value) {
            let url = format!("{base}/api/v1/{endpoint}");
            let req = if endpoint.starts_with("label/") {
                client.get(url).query(params)
            } else {
                client.post(url).form(params)
            };
            let r = req.send().unwrap_or_else(|e| panic!("{endpoint} on {base}: {e}"));
            let status = r.status().as_u16();
            let text = r.text().unwrap_or_default();
            if status == 204 && text.is_empty() {
                return (status, serde_json::Value::Null);
            }
            (
                status,
                serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{endpoint} {params:?}: {base} answered {status} {text}")),
            )
        };
        let (ps, pj) = call(prom);
        let (os, oj) = call(obsd);
        let norm = |j: &serde_json::Value| -> serde_json::Value {
            if j.is_null() {
                return j.clone();
            }
            if j["status"] != "success" {
                return serde_json::json!({"errorType": j["errorType"]});
            }
            let mut d = j["data"].clone();
            if *endpoint == "series"
                && let Some(a) = d.as_array_mut()
            {
                a.sort_by_key(|v| v.to_string());
            }
            d
        };
        let (pn, on) = (norm(&pj), norm(&oj));
        if ps != os || pn != on {
            failures.push(format!("{endpoint} {params:?}:\n  prometheus {ps} {pn}\n  obsd       {os} {on}"));
        }
        if ps == 200 && pn.as_array().is_some_and(|a| a.is_empty()) && !endpoint.ends_with("values") {
            // Guards against a suite that compares nothing: note empties for the reader.
            eprintln!("metadata case answers empty on both: {endpoint} {params:?}");
        }
    }
    (cases.len(), failures)
}

// ---- normalized answers ----

#[derive(Debug, Clone)]
enum Answer {
    Error(String),
    Scalar(f64),
    Str(String),
    Vector(Vec<(String, f64)>),
    Matrix(BTreeMap<String, Vec<(i64, f64)>>),
}

fn labels_key(pairs: &[(String, String)]) -> String {
    let mut p = pairs.to_vec();
    p.sort();
    p.iter().map(|(n, v)| format!("{n}={v:?}")).collect::<Vec<_>>().join(",")
}

fn parse_value(v: &serde_json::Value) -> f64 {
    match v.as_str().unwrap_or("") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or(f64::NAN),
    }
}

fn json_labels(m: &serde_json::Value) -> String {
    let pairs: Vec<(String, String)> = m
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default();
    labels_key(&pairs)
}

fn from_prometheus(body: &serde_json::Value) -> Answer {
    if body["status"] != "success" {
        return Answer::Error(body["errorType"].as_str().unwrap_or("?").to_string());
    }
    let data = &body["data"];
    let result = &data["result"];
    match data["resultType"].as_str().unwrap_or("") {
        "scalar" => Answer::Scalar(parse_value(&result[1])),
        "string" => Answer::Str(result[1].as_str().unwrap_or("").to_string()),
        "vector" => Answer::Vector(
            result
                .as_array()
                .map(|a| a.iter().map(|s| (json_labels(&s["metric"]), parse_value(&s["value"][1]))).collect())
                .unwrap_or_default(),
        ),
        _ => Answer::Matrix(
            result
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            let pts = s["values"]
                                .as_array()
                                .map(|p| {
                                    p.iter()
                                        .map(|x| {
                                            (
                                                ((x[0].as_f64().unwrap_or(0.0)) * 1000.0).round() as i64,
                                                parse_value(&x[1]),
                                            )
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            (json_labels(&s["metric"]), pts)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
    }
}

fn error_type(e: &QueryError) -> &'static str {
    obsd::api::error::error_type(e)
}

fn from_obsd(r: Result<QueryValue, QueryError>) -> Answer {
    match r {
        Err(e) => {
            let t = error_type(&e);
            Answer::Error(format!("{t}/{}", obsd::api::error::ApiError::from(e).status().as_u16()))
        }
        Ok(QueryValue::Scalar { v, .. }) => Answer::Scalar(v),
        Ok(QueryValue::String { v, .. }) => Answer::Str(v),
        Ok(QueryValue::Vector(v)) => {
            Answer::Vector(v.iter().map(|s| (labels_key(s.labels.as_slice()), s.v)).collect())
        }
        Ok(QueryValue::Matrix(m)) => {
            Answer::Matrix(m.iter().map(|s| (labels_key(s.labels.as_slice()), s.points.clone())).collect())
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= 1e-9f64.max(1e-7 * a.abs().max(b.abs()))
}

fn compare(expr: &str, want: &Answer, got: &Answer) -> Result<(), String> {
    let ordered = expr.starts_with("sort(") || expr.starts_with("sort_desc(");
    match (want, got) {
        (Answer::Error(a), Answer::Error(b)) if a == b => Ok(()),
        (Answer::Scalar(a), Answer::Scalar(b)) if close(*a, *b) => Ok(()),
        (Answer::Str(a), Answer::Str(b)) if a == b => Ok(()),
        (Answer::Vector(a), Answer::Vector(b)) => {
            if a.len() != b.len() {
                return Err(format!("vector length {} vs {}\n  want {a:?}\n  got  {b:?}", a.len(), b.len()));
            }
            if ordered {
                for (x, y) in a.iter().zip(b) {
                    if !close(x.1, y.1) {
                        return Err(format!("order/value differs\n  want {a:?}\n  got  {b:?}"));
                    }
                }
            }
            let am: BTreeMap<_, _> = a.iter().cloned().collect();
            let bm: BTreeMap<_, _> = b.iter().cloned().collect();
            if am.len() != a.len() || bm.len() != b.len() {
                return Err("duplicate label sets".into());
            }
            for (k, v) in &am {
                match bm.get(k) {
                    Some(w) if close(*v, *w) => {}
                    other => return Err(format!("{k}: want {v}, got {other:?}\n  want {a:?}\n  got  {b:?}")),
                }
            }
            Ok(())
        }
        (Answer::Matrix(a), Answer::Matrix(b)) => {
            if a.len() != b.len() {
                return Err(format!(
                    "matrix series {} vs {}: want {:?} got {:?}",
                    a.len(),
                    b.len(),
                    a.keys().collect::<Vec<_>>(),
                    b.keys().collect::<Vec<_>>()
                ));
            }
            for (k, pa) in a {
                let Some(pb) = b.get(k) else { return Err(format!("missing series {k}")) };
                if pa.len() != pb.len() {
                    return Err(format!(
                        "{k}: {} points vs {}\n  want {pa:?}\n  got  {pb:?}",
                        pa.len(),
                        pb.len()
                    ));
                }
                for (x, y) in pa.iter().zip(pb) {
                    if x.0 != y.0 || !close(x.1, y.1) {
                        return Err(format!("{k}: point {x:?} vs {y:?}"));
                    }
                }
            }
            Ok(())
        }
        _ => Err(format!("want {want:?}\n  got  {got:?}")),
    }
}

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/promql/corpus.txt"))
        .expect("corpus");
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

/// The replica config the suite runs obsd with: remote write in, Prometheus's lookback.
pub const OBSD_CONFIG: &str = "[replica]\nremote_write_receiver = true\nlookback_delta = \"5m\"\n[replica.listen]\naddress = \"127.0.0.1:0\"\n";

#[test]
fn promql_matches_prometheus_2_42() {
    if !std::path::Path::new(PROMETHEUS).exists() {
        eprintln!("skipping: {PROMETHEUS} not installed");
        return;
    }
    let started = Instant::now();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64;
    let end = (now - 20 * 60 * 1000) / 60_000 * 60_000;
    let data = Dataset::generate(end);
    let prom = Prometheus::start();
    let obsd = common::Obsd::start("replica", OBSD_CONFIG);
    let obsd_base = obsd.url("replica", "");
    remote_write_dataset(&prom.base, &data);
    remote_write_dataset(&obsd_base, &data);
    write_exemplars(&prom.base, &data);
    write_exemplars(&obsd_base, &data);
    let mut mem = MemoryQueryable::new();
    for (labels, samples) in &data.series {
        for (t, v) in samples {
            mem.add_sample_labels(labels.clone(), *t, *v);
        }
    }
    let engine = Engine::new(EngineOptions::default());
    let client =
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    let (s, e) = (data.start_ms, data.end_ms);
    let instants = [
        e,
        e - 437_000,
        s + 180_000,
        s + 55 * 60_000,
        s + 61 * 60_000 + 500,
        s + 31 * 60_000,
        e + 240_000,
        e + 3_600_000,
    ];
    let ranges = [(s, e, 60_000), (e - 30 * 60_000, e, 17_000), (s + 25 * 60_000, s + 75 * 60_000, 30_000)];
    let exprs = corpus();
    let only = std::env::var("PROMQL_DIFF_ONLY").ok();
    let mut failures = Vec::new();
    let mut compared = 0usize;
    let mut check = |what: String, expr: &str, want: Answer, got_http: Answer, got_mem: Answer| {
        compared += 1;
        if let Err(msg) = compare(expr, &want, &got_http) {
            let engine_too = if compare(expr, &want, &got_mem).is_err() {
                "in-memory engine differs too"
            } else {
                "in-memory engine agrees: store path"
            };
            failures.push(format!("{what} [obsd over HTTP; {engine_too}]: {msg}"));
        } else if let Err(msg) = compare(expr, &want, &got_mem) {
            failures.push(format!("{what} [in-memory engine only]: {msg}"));
        }
    };
    for expr in &exprs {
        if only.as_deref().is_some_and(|o| !expr.contains(o)) {
            continue;
        }
        for &t in &instants {
            let secs = format!("{:.3}", t as f64 / 1000.0);
            let params = [("query", expr.as_str()), ("time", secs.as_str())];
            let want = query(&client, &prom.base, "query", &params);
            let got = query(&client, &obsd_base, "query", &params);
            let mem_got = from_obsd(engine.instant_query(&mem, expr, t));
            check(format!("instant {expr} @ {t} (start+{}s)", (t - s) / 1000), expr, want, got, mem_got);
        }
        for &(a, b, step) in &ranges {
            let (sa, sb, ss) = (
                format!("{:.3}", a as f64 / 1000.0),
                format!("{:.3}", b as f64 / 1000.0),
                format!("{}", step as f64 / 1000.0),
            );
            let params = [("query", expr.as_str()), ("start", &sa), ("end", &sb), ("step", &ss)];
            let want = query(&client, &prom.base, "query_range", &params);
            let got = query(&client, &obsd_base, "query_range", &params);
            let mem_got = from_obsd(engine.range_query(&mem, expr, a, b, step));
            check(format!("range {expr} [{a}..{b} step {step}]"), expr, want, got, mem_got);
        }
    }
    let (cases, metadata) = metadata_differences(&client, &prom.base, &obsd_base, &data);
    compared += cases;
    failures.extend(metadata);
    eprintln!(
        "promql differential: {} expressions, {compared} comparisons, {} failures, {:.1}s",
        exprs.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    for f in failures.iter().take(40) {
        eprintln!("FAIL {f}\n");
    }
    assert!(failures.is_empty(), "{} of {compared} comparisons differ from Prometheus 2.42", failures.len());
}

/// POSTs a form, as Grafana does, and normalizes the answer; errors keep their HTTP status.
fn query(client: &reqwest::blocking::Client, base: &str, endpoint: &str, params: &[(&str, &str)]) -> Answer {
    let mut r = client
        .post(format!("{base}/api/v1/{endpoint}"))
        .form(params)
        .send()
        .unwrap_or_else(|e| panic!("query {base}: {e}"));
    let status = r.status().as_u16();
    let mut body = String::new();
    let _ = r.read_to_string(&mut body);
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{base} answered {status} {body}"));
    match from_prometheus(&json) {
        Answer::Error(t) => Answer::Error(format!("{t}/{status}")),
        a => a,
    }
}

//! The collector role against real peers: the OpenTelemetry Python SDK (OTLP gRPC and HTTP,
//! with Flask instrumentation) and the Jaeger thrift exporter (UDP compact and HTTP binary),
//! checked through the Jaeger query API. Needs the venvs of `tests/peers/setup_python.sh`.

mod common;

use common::Obsd;
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ROLE: &[&str] = &["--role", "collector"];

fn venv_python(name: &str) -> PathBuf {
    let root = std::env::var("OBSD_VENV_DIR").unwrap_or_else(|_| "/var/tmp/obsd-venvs".into());
    let python = PathBuf::from(root).join(name).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/peers/setup_python.sh (creates the OpenTelemetry Python venvs; .ci/run calls it), \
         or point OBSD_VENV_DIR at an existing venv directory",
        python.display()
    );
    python
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Runs a peer script, fails the test on a non-zero exit or after 60 s, returns its JSON stdout.
fn run_python(venv: &str, script: &str, args: &[String]) -> Value {
    let mut child = Command::new(venv_python(venv))
        .arg(peers_dir().join(script))
        .args(args)
        .env("PYTHONWARNINGS", "ignore")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait python") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{script} {args:?} failed: {status}\n{err}");
    serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} output {out:?}: {e}"))
}

fn config(collector_extra: &str, otlp_http_max_body: usize) -> String {
    format!(
        r#"
[collector]
jaeger_compact_udp = "127.0.0.1:0"
jaeger_binary_udp = "127.0.0.1:0"
{collector_extra}
[collector.listen]
address = "127.0.0.1:0"
[collector.otlp_grpc]
address = "127.0.0.1:0"
max_body_bytes = {otlp_http_max_body}
[collector.otlp_http]
address = "127.0.0.1:0"
max_body_bytes = {otlp_http_max_body}
[collector.jaeger_thrift_http]
address = "127.0.0.1:0"
"#
    )
}

fn api(obsd: &Obsd, path: &str) -> (u16, Value) {
    let (status, body) = common::get(&obsd.url("collector", path));
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}")))
}

fn data(obsd: &Obsd, path: &str) -> Value {
    let (status, v) = api(obsd, path);
    assert_eq!(status, 200, "GET {path}: {v}");
    assert_eq!(v["errors"], Value::Null, "GET {path}: {v}");
    v["data"].clone()
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// Polls until `f` holds: spans reach the store asynchronously from UDP and batch exporters.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no tag {key} in {span}"))
}

fn span_named<'a>(trace: &'a Value, op: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == op)
        .unwrap_or_else(|| panic!("no span {op}"))
}

fn service_of(trace: &Value, span: &Value) -> String {
    trace["processes"][span["processID"].as_str().unwrap()]["serviceName"].as_str().unwrap().to_string()
}

fn trace_ids(traces: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        traces.as_array().unwrap().iter().map(|t| t["traceID"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

/// What every protocol must deliver for one run of `otel_app.py`.
fn check_sent(obsd: &Obsd, sent: &Value, jaeger_exporter: bool) {
    let service = sent["service"].as_str().unwrap();
    let inventory = format!("{service}-inventory");
    let checkout: Vec<(String, String)> = sent["checkout"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(order, id)| (order.clone(), id.as_str().unwrap().to_string()))
        .collect();
    eventually(&format!("every trace of {service}"), || {
        let found = data(obsd, &format!("/api/traces?service={service}"));
        found.as_array().unwrap().len() == 5
            && found.as_array().unwrap().iter().map(|t| t["spans"].as_array().unwrap().len()).sum::<usize>()
                == 3 * 3 + 2 + 1
    });
    for (order, id) in &checkout {
        let traces = data(obsd, &format!("/api/traces/{id}"));
        let trace = &traces[0];
        assert_eq!(trace["traceID"], id.as_str());
        assert_eq!(trace["spans"].as_array().unwrap().len(), 3, "{trace}");
        let root = span_named(trace, "GET /checkout/<order>");
        let reserve = span_named(trace, "reserve-stock");
        let inv = span_named(trace, "inventory.reserve");
        assert_eq!(root["references"], json!([]));
        assert_eq!(service_of(trace, root), service);
        assert_eq!(tag(root, "span.kind")["value"], "server");
        assert_eq!(tag(root, "http.route")["value"], "/checkout/<order>");
        assert_eq!(
            reserve["references"],
            json!([{ "refType": "CHILD_OF", "traceID": id, "spanID": root["spanID"] }])
        );
        assert_eq!(service_of(trace, reserve), service);
        assert_eq!(tag(reserve, "span.kind")["value"], "client");
        assert_eq!(tag(reserve, "order.id")["value"], order.as_str());
        assert_eq!(tag(reserve, "order.id")["type"], "string");
        assert_eq!(tag(reserve, "items")["value"], 3);
        assert_eq!(tag(reserve, "items")["type"], "int64");
        assert_eq!(tag(reserve, "price")["value"], 9.5);
        assert_eq!(tag(reserve, "price")["type"], "float64");
        assert_eq!(tag(reserve, "gift")["value"], true);
        assert_eq!(tag(reserve, "gift")["type"], "bool");
        assert_eq!(tag(reserve, "otel.scope.name")["value"], "checkout-logic");
        let fields = &reserve["logs"][0]["fields"];
        let event_key = if jaeger_exporter { "message" } else { "event" };
        assert!(
            fields
                .as_array()
                .unwrap()
                .contains(&json!({"key": event_key, "type": "string", "value": "cache miss"})),
            "{fields}"
        );
        assert!(
            fields
                .as_array()
                .unwrap()
                .contains(&json!({"key": "cache.key", "type": "string", "value": format!("stock:{order}")}))
        );
        assert!(reserve["logs"][0]["timestamp"].as_u64().unwrap() >= reserve["startTime"].as_u64().unwrap());
        assert_eq!(inv["references"][0]["spanID"], reserve["spanID"]);
        assert_eq!(inv["references"][0]["refType"], "CHILD_OF");
        assert_eq!(service_of(trace, inv), inventory);
        let dur = |s: &Value| s["duration"].as_u64().unwrap();
        assert!(dur(inv) >= 300_000, "inventory.reserve slept 300 ms: {}", dur(inv));
        assert!(dur(root) >= dur(reserve) && dur(reserve) >= dur(inv));
        assert!(root["startTime"].as_u64().unwrap() > now_us() - 600_000_000);
        assert!(trace["processes"].as_object().unwrap().len() == 2);
    }
    let fail = &data(obsd, &format!("/api/traces/{}", sent["fail"].as_str().unwrap()))[0];
    let charge = span_named(fail, "charge-card");
    assert_eq!(tag(charge, "otel.status_code")["value"], "ERROR");
    assert_eq!(tag(charge, "error")["value"], true);
    assert_eq!(tag(charge, "otel.status_description")["value"], "card declined");
    let replay = &data(obsd, &format!("/api/traces/{}", sent["replay"].as_str().unwrap()))[0];
    assert_eq!(
        span_named(replay, "replay")["references"],
        json!([{ "refType": "FOLLOWS_FROM", "traceID": checkout[0].1, "spanID": "0000000000001234" }])
    );

    // Search by service, operation, tag, duration, time and limit.
    let search = |q: &str| trace_ids(&data(obsd, &format!("/api/traces?service={service}&{q}")));
    let mut checkouts: Vec<String> = checkout.iter().map(|(_, id)| id.clone()).collect();
    checkouts.sort();
    assert_eq!(search("operation=reserve-stock"), checkouts);
    assert_eq!(search("tag=order.id:1"), vec![sent["checkout"]["1"].as_str().unwrap().to_string()]);
    assert_eq!(
        search("tags=%7B%22order.id%22%3A%222%22%7D"),
        vec![sent["checkout"]["2"].as_str().unwrap().to_string()]
    );
    assert_eq!(search("tag=error:true"), vec![sent["fail"].as_str().unwrap().to_string()]);
    assert_eq!(search("minDuration=250ms"), checkouts);
    let mut short =
        vec![sent["fail"].as_str().unwrap().to_string(), sent["replay"].as_str().unwrap().to_string()];
    short.sort();
    assert_eq!(search("maxDuration=200ms"), short);
    assert_eq!(search("minDuration=250ms&operation=GET%20%2Fcheckout%2F%3Corder%3E"), checkouts);
    assert_eq!(search("limit=2").len(), 2);
    assert_eq!(
        search(&format!("start={}&end={}&lookback=custom", now_us() - 3_600_000_000, now_us())).len(),
        5
    );
    assert!(search(&format!("start={}", now_us() + 3_600_000_000)).is_empty());
    assert_eq!(
        trace_ids(&data(obsd, &format!("/api/traces?service={inventory}&minDuration=250ms"))),
        checkouts
    );
    let ops = data(obsd, &format!("/api/services/{service}/operations"));
    for op in ["GET /checkout/<order>", "GET /fail", "charge-card", "replay", "reserve-stock"] {
        assert!(ops.as_array().unwrap().contains(&json!(op)), "{op} not in {ops}");
    }
    assert_eq!(
        data(obsd, &format!("/api/operations?service={service}&spanKind=client")),
        json!([{ "name": "reserve-stock", "spanKind": "client" }])
    );
    let deps = data(obsd, &format!("/api/dependencies?endTs={}&lookback=3600000", now_us() / 1000 + 1000));
    assert!(
        deps.as_array().unwrap().contains(&json!({ "parent": service, "child": inventory, "callCount": 3 })),
        "{deps}"
    );
}

#[test]
fn python_sdk_and_jaeger_exporter_traces_are_queryable() {
    let obsd = Obsd::start_with_args(ROLE, &config("", 32 << 20));
    let grpc = obsd.address("collector-otlp-grpc").to_string();
    let runs = [
        ("otlp", "otlp-grpc", grpc, "shop-grpc", false),
        ("otlp", "otlp-http", obsd.url("collector-otlp-http", ""), "shop-http", false),
        ("jaeger", "jaeger-udp", obsd.address("collector-jaeger-compact").to_string(), "shop-udp", true),
        ("jaeger", "jaeger-http", obsd.url("collector-jaeger-http", ""), "shop-thrift-http", true),
    ];
    let sent: Vec<(Value, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(venv, exporter, endpoint, service, jaeger)| {
                s.spawn(move || {
                    let args = ["--exporter", exporter, "--endpoint", endpoint, "--service", service]
                        .map(String::from)
                        .to_vec();
                    (run_python(venv, "otel_app.py", &args), *jaeger)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (sent, jaeger) in &sent {
        check_sent(&obsd, sent, *jaeger);
    }

    let services = api(&obsd, "/api/services").1;
    assert_eq!(services["total"], 8, "{services}");
    assert_eq!(services["limit"], 0);
    assert_eq!(services["offset"], 0);
    assert!(services["data"].as_array().unwrap().contains(&json!("shop-udp-inventory")));

    // Jaeger's exact not-found and bad-request answers.
    let (status, body) = common::get(&obsd.url("collector", "/api/traces/00000000000000000000000000abcdef"));
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"data": null, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]})
    );
    let (status, v) = api(&obsd, "/api/traces?operation=x");
    assert_eq!(status, 400);
    assert_eq!(v["errors"][0]["msg"], "parameter 'service' is required");
    assert_eq!(api(&obsd, "/api/traces?service=shop-grpc&minDuration=5parsecs").0, 400);
    // traceID search ignores the other parameters.
    let id = sent[0].0["fail"].as_str().unwrap();
    assert_eq!(trace_ids(&data(&obsd, &format!("/api/traces?traceID={id}"))), vec![id.to_string()]);

    // RED metrics, as spanmetrics names them; exemplars only in OpenMetrics.
    let (_, text) = common::get(&obsd.url("collector", "/metrics"));
    assert!(text.contains("traces_span_metrics_calls_total{service_name=\"shop-grpc\",span_name=\"reserve-stock\",span_kind=\"SPAN_KIND_CLIENT\",status_code=\"STATUS_CODE_UNSET\"} 3"), "{text}");
    assert!(text.contains("traces_span_metrics_calls_total{service_name=\"shop-grpc\",span_name=\"charge-card\",span_kind=\"SPAN_KIND_INTERNAL\",status_code=\"STATUS_CODE_ERROR\"} 1"), "{text}");
    assert!(text.contains("traces_span_metrics_duration_milliseconds_bucket{service_name=\"shop-udp-inventory\",span_name=\"inventory.reserve\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\",le=\"10\"} 0"), "{text}");
    assert!(text.contains("traces_span_metrics_duration_milliseconds_bucket{service_name=\"shop-udp-inventory\",span_name=\"inventory.reserve\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\",le=\"+Inf\"} 3"), "{text}");
    assert!(
        text.contains("obsd_collector_spans_received_total{protocol=\"jaeger_thrift_compact_udp\"} 12"),
        "{text}"
    );
    assert!(!text.contains(" # {trace_id"));
    let client = reqwest::blocking::Client::new();
    let om = client
        .get(obsd.url("collector", "/metrics"))
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .unwrap();
    assert!(om.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let om = om.text().unwrap();
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE traces_span_metrics_calls counter"));
    let exemplar = om
        .lines()
        .find(|l| {
            l.contains("span_name=\"inventory.reserve\"")
                && l.contains(" # {trace_id=")
                && l.contains("shop-grpc-inventory")
        })
        .unwrap();
    let checkout_ids: Vec<&str> =
        sent[0].0["checkout"].as_object().unwrap().values().map(|v| v.as_str().unwrap()).collect();
    assert!(checkout_ids.iter().any(|id| exemplar.contains(&format!("# {{trace_id=\"{id}\""))), "{exemplar}");
}

mod otlp {
    pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    /// `n` spans of one trace, each a child of the first, starting `age_us` ago.
    pub fn request(service: &str, trace: u8, n: usize, age_us: u64) -> ExportTraceServiceRequest {
        let start_ns = (super::now_us() - age_us) * 1000;
        let spans = (0..n)
            .map(|i| Span {
                trace_id: vec![trace; 16],
                span_id: ((i as u64 + 1) << 8 | u64::from(trace)).to_be_bytes().to_vec(),
                parent_span_id: if i == 0 {
                    vec![]
                } else {
                    (1u64 << 8 | u64::from(trace)).to_be_bytes().to_vec()
                },
                name: format!("op-{}", i % 3),
                kind: 2,
                start_time_unix_nano: start_ns + i as u64 * 1000,
                end_time_unix_nano: start_ns + i as u64 * 1000 + 500_000,
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }
}

fn post(url: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut req = client.post(url).header("Content-Type", content_type).body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    req.send().unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

fn post_json(obsd: &Obsd, body: &str) -> (u16, Value) {
    let r = post(
        &obsd.url("collector-otlp-http", "/v1/traces"),
        "application/json",
        None,
        body.as_bytes().to_vec(),
    );
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().unwrap()).unwrap_or(Value::Null))
}

fn json_span(trace: &str, span: &str, name: &str) -> Value {
    let start = now_us() * 1000;
    json!({ "traceId": trace, "spanId": span, "name": name, "kind": 2,
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 2_000_000).to_string(),
            "attributes": [{ "key": "http.status_code", "value": { "intValue": "200" } }] })
}

fn json_request(service: &str, spans: Vec<Value>) -> String {
    json!({ "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
        "scopeSpans": [{ "scope": { "name": "test" }, "spans": spans }]
    }]})
    .to_string()
}

fn metric(obsd: &Obsd, line_start: &str) -> f64 {
    let (_, text) = common::get(&obsd.url("collector", "/metrics"));
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";
const TRACE_B: &str = "1af7651916cd43dd8448eb211c80319c";

#[test]
fn malformed_input_is_rejected_counted_and_nothing_else_lost() {
    use prost::Message;
    let obsd = Obsd::start_with_args(ROLE, &config("max_batch_spans = 100", 64 * 1024));
    let url = obsd.url("collector-otlp-http", "/v1/traces");

    let (status, _) =
        post_json(&obsd, &json_request("good", vec![json_span(TRACE_A, "b7ad6b7169203331", "first")]));
    assert_eq!(status, 200);

    // Undecodable protobuf: 400 with a google.rpc.Status (code 3 INVALID_ARGUMENT).
    let r = post(&url, "application/x-protobuf", None, b"\xff\xff\xff\xff".to_vec());
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let body = r.bytes().unwrap();
    assert_eq!(body.first(), Some(&0x08), "google.rpc.Status starts with its code field");
    assert_eq!(body.get(1), Some(&3));
    // Bad JSON: 400 with a JSON Status.
    let (status, v) = post_json(&obsd, r#"{"resourceSpans": ["#);
    assert_eq!(status, 400);
    assert_eq!(v["code"], 3);
    // Bad gzip, unknown media type, oversized body, too many spans.
    assert_eq!(
        post(&url, "application/x-protobuf", Some("gzip"), b"not gzip".to_vec()).status().as_u16(),
        400
    );
    assert_eq!(post(&url, "text/plain", None, b"hello".to_vec()).status().as_u16(), 415);
    assert_eq!(post(&url, "application/x-protobuf", None, vec![0u8; 100 * 1024]).status().as_u16(), 413);
    let many: Vec<Value> = (0..101).map(|i| json_span(TRACE_B, &format!("{:016x}", i + 1), "many")).collect();
    assert_eq!(post_json(&obsd, &json_request("good", many)).0, 400);

    // Invalid ids: those spans refused, the valid one in the same batch stored (partial success).
    let (status, v) = post_json(
        &obsd,
        &json_request(
            "good",
            vec![
                json_span(TRACE_B, "00f067aa0ba902b7", "valid"),
                json_span("abcd", "00f067aa0ba902b8", "short trace id"),
                json_span(TRACE_B, "0000000000000000", "zero span id"),
            ],
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 2, "{v}");

    // Valid gzip protobuf is fine.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &otlp::request("good", 0xc1, 2, 0).encode_to_vec()).unwrap();
    let r = post(&url, "application/x-protobuf", Some("gzip"), gz.finish().unwrap());
    assert_eq!(r.status().as_u16(), 200);

    // Jaeger thrift over HTTP: garbage and a wrong content type.
    let jurl = obsd.url("collector-jaeger-http", "/api/traces");
    let r = post(&jurl, "application/x-thrift", None, b"\x0c\x00\x01garbage".to_vec());
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().starts_with("Unable to process request body"));
    assert_eq!(post(&jurl, "application/json", None, b"{}".to_vec()).status().as_u16(), 400);

    // gRPC and UDP from Python: garbage protobuf, an oversized message, garbage datagrams.
    let out = run_python(
        "otlp",
        "malformed.py",
        &[
            "--grpc".into(),
            obsd.address("collector-otlp-grpc").to_string(),
            "--compact".into(),
            obsd.address("collector-jaeger-compact").to_string(),
            "--binary".into(),
            obsd.address("collector-jaeger-binary").to_string(),
            "--oversize".into(),
            (100 * 1024).to_string(),
        ],
    );
    assert!(["INTERNAL", "INVALID_ARGUMENT"].contains(&out["grpc_garbage"].as_str().unwrap()), "{out}");
    // tonic answers OUT_OF_RANGE for a message over max_decoding_message_size.
    assert!(
        ["OUT_OF_RANGE", "RESOURCE_EXHAUSTED"].contains(&out["grpc_oversize"].as_str().unwrap()),
        "{out}"
    );
    assert_eq!(out["grpc_empty"], "OK", "{out}");

    // Nothing valid was lost.
    assert_eq!(data(&obsd, &format!("/api/traces/{TRACE_A}"))[0]["spans"].as_array().unwrap().len(), 1);
    let b = data(&obsd, &format!("/api/traces/{TRACE_B}"));
    assert_eq!(b[0]["spans"].as_array().unwrap().len(), 1);
    assert_eq!(b[0]["spans"][0]["operationName"], "valid");
    assert_eq!(
        data(&obsd, &format!("/api/traces/{}", "c1".repeat(16)))[0]["spans"].as_array().unwrap().len(),
        2
    );

    // Every rejection counted by protocol and reason.
    let batches = |p: &str, r: &str| {
        metric(&obsd, &format!("obsd_collector_batches_rejected_total{{protocol=\"{p}\",reason=\"{r}\"}}"))
    };
    assert_eq!(batches("otlp_http", "malformed"), 3.0);
    assert_eq!(batches("otlp_http", "unsupported"), 1.0);
    assert_eq!(batches("otlp_http", "oversized"), 2.0);
    assert_eq!(batches("jaeger_thrift_http", "malformed"), 1.0);
    assert_eq!(batches("jaeger_thrift_http", "unsupported"), 1.0);
    assert_eq!(batches("otlp_grpc", "malformed"), 1.0);
    assert_eq!(batches("otlp_grpc", "oversized"), 1.0);
    eventually("UDP garbage counted", || {
        batches("jaeger_thrift_compact_udp", "malformed") == 2.0
            && batches("jaeger_thrift_binary_udp", "malformed") == 2.0
    });
    assert_eq!(
        metric(&obsd, "obsd_collector_spans_rejected_total{protocol=\"otlp_http\",reason=\"invalid_id\"}"),
        2.0
    );
    assert_eq!(metric(&obsd, "obsd_collector_spans_received_total{protocol=\"otlp_http\"}"), 4.0);
}

#[test]
fn restart_keeps_traces_even_after_kill() {
    let mut obsd = Obsd::start_with_args(ROLE, &config("", 32 << 20));
    assert_eq!(
        post_json(&obsd, &json_request("durable", vec![json_span(TRACE_A, "b7ad6b7169203331", "one")])).0,
        200
    );
    let before = data(&obsd, &format!("/api/traces/{TRACE_A}"));
    obsd = obsd.restart(ROLE, false);
    assert_eq!(data(&obsd, &format!("/api/traces/{TRACE_A}")), before);
    assert_eq!(data(&obsd, "/api/services"), json!(["durable"]));
    // Past the documented window (flush_interval, 1 s) even kill -9 keeps acknowledged spans.
    assert_eq!(
        post_json(&obsd, &json_request("durable", vec![json_span(TRACE_B, "b7ad6b7169203332", "two")])).0,
        200
    );
    // Three windows, not one and a half: sled's flusher can run late on a loaded machine.
    std::thread::sleep(Duration::from_millis(3000));
    obsd = obsd.restart(ROLE, true);
    assert_eq!(data(&obsd, &format!("/api/traces/{TRACE_B}"))[0]["spans"][0]["operationName"], "two");
    assert_eq!(data(&obsd, &format!("/api/traces/{TRACE_A}")), before);
    assert_eq!(trace_ids(&data(&obsd, "/api/traces?service=durable")).len(), 2);
    // The index postings survive with the spans: tag, operation and duration searches.
    assert_eq!(trace_ids(&data(&obsd, "/api/traces?service=durable&tag=http.status_code:200")).len(), 2);
    assert!(trace_ids(&data(&obsd, "/api/traces?service=durable&tag=http.status_code:500")).is_empty());
    assert_eq!(
        trace_ids(&data(&obsd, "/api/traces?service=durable&operation=two")),
        vec![TRACE_B.to_string()]
    );
    assert_eq!(trace_ids(&data(&obsd, "/api/traces?service=durable&minDuration=1ms")).len(), 2);
    assert!(trace_ids(&data(&obsd, "/api/traces?service=durable&minDuration=3ms")).is_empty());
}

#[test]
fn retention_removes_old_traces() {
    let obsd = Obsd::start_with_args(ROLE, &config("retention = \"3s\"", 32 << 20));
    assert_eq!(
        post_json(&obsd, &json_request("brief", vec![json_span(TRACE_A, "b7ad6b7169203331", "now")])).0,
        200
    );
    assert_eq!(data(&obsd, &format!("/api/traces/{TRACE_A}"))[0]["spans"].as_array().unwrap().len(), 1);
    // A span that started before the retention window is refused as a partial success.
    let mut old = json_span(TRACE_B, "b7ad6b7169203332", "old");
    let old_start = (now_us() - 3_600_000_000) * 1000;
    old["startTimeUnixNano"] = json!(old_start.to_string());
    old["endTimeUnixNano"] = json!((old_start + 1000).to_string());
    let (status, v) = post_json(&obsd, &json_request("brief", vec![old]));
    assert_eq!(status, 200);
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 1, "{v}");
    assert_eq!(api(&obsd, &format!("/api/traces/{TRACE_B}")).0, 404);
    eventually("the trace to expire", || api(&obsd, &format!("/api/traces/{TRACE_A}")).0 == 404);
    eventually("the service to expire", || data(&obsd, "/api/services") == json!([]));
    // Queries stop showing expired spans at once; the retention pass that deletes their
    // bucket runs on its own period, so under load it can come a little later.
    eventually("an expired bucket to be deleted", || {
        metric(&obsd, "obsd_collector_retention_buckets_dropped_total") >= 1.0
    });
}

#[test]
fn full_queue_answers_429_with_retry_after_and_loses_nothing_accepted() {
    use prost::Message;
    let obsd = Obsd::start_with_args(ROLE, &config("queue_spans = 100\nmax_batch_spans = 100", 32 << 20));
    let url = obsd.url("collector-otlp-http", "/v1/traces");
    let results: Vec<(u8, u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|t| {
                let url = url.clone();
                s.spawn(move || {
                    (0..25u8)
                        .map(|i| {
                            let trace = t * 25 + i + 1;
                            let body = otlp::request("busy", trace, 100, 0).encode_to_vec();
                            let r = post(&url, "application/x-protobuf", None, body);
                            let retry =
                                r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                            (trace, r.status().as_u16(), retry)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let accepted: Vec<u8> = results.iter().filter(|r| r.1 == 200).map(|r| r.0).collect();
    let refused: Vec<_> = results.iter().filter(|r| r.1 == 429).collect();
    assert_eq!(accepted.len() + refused.len(), results.len(), "only 200 or 429: {results:?}");
    assert!(!refused.is_empty(), "8 senders on a 100-span queue never saw 429");
    assert!(refused.iter().all(|r| r.2.as_deref() == Some("1")));
    for trace in accepted.iter().step_by(7) {
        let spans = data(&obsd, &format!("/api/traces/{}", format!("{trace:02x}").repeat(16)));
        assert_eq!(spans[0]["spans"].as_array().unwrap().len(), 100);
    }
    let found = data(&obsd, "/api/traces?service=busy&limit=1000");
    assert_eq!(found.as_array().unwrap().len(), accepted.len());
    assert_eq!(
        metric(&obsd, "obsd_collector_spans_rejected_total{protocol=\"otlp_http\",reason=\"queue_full\"}"),
        (refused.len() * 100) as f64
    );
}

#[test]
fn grpc_spans_keep_the_sdk_attribute_limit_and_count_what_was_dropped() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use prost::Message;
    let obsd = Obsd::start_with_args(ROLE, &config("", 4 << 20));
    let mut request = otlp::request("wide", 0xd1, 1, 0);
    request.resource_spans[0].scope_spans[0].spans[0].attributes = (0..1000)
        .map(|i| KeyValue {
            key: format!("attr-{i}"),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(i)) }),
            ..Default::default()
        })
        .collect();
    // gzip-compressed: tonic inflates the message before the pruning codec sees it.
    let (status, message, _) =
        common::otlp_grpc_export(obsd.address("collector-otlp-grpc"), &request.encode_to_vec(), true);
    assert_eq!(status, 0, "{message}");
    assert_eq!(metric(&obsd, "obsd_collector_dropped_attributes_total{protocol=\"otlp_grpc\"}"), 872.0);
    let trace = data(&obsd, &format!("/api/traces/{}", "d1".repeat(16)));
    let span = &trace[0]["spans"][0];
    assert_eq!(span["warnings"], json!(["872 attributes dropped"]), "{span}");
    let kept: Vec<&str> = span["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["key"].as_str().filter(|k| k.starts_with("attr-")))
        .collect();
    // The SDK keeps the first ones.
    assert_eq!(kept, (0..128).map(|i| format!("attr-{i}")).collect::<Vec<_>>());
}

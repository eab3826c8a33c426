//! Small requests that used to cost far more than their size: a scraped series with 100k
//! labels, remote-write bodies of huge or many label sets, OTLP spans with huge attribute
//! lists. Each must be refused or bounded with a count of what was dropped, and obsd must
//! answer the next request.

mod common;

use common::{Obsd, get, wait_until};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A target that answers every scrape with `body`.
fn fixed_target(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    port
}

fn wide_series(labels: usize) -> Vec<u8> {
    let mut body = String::from("wide{");
    for i in 0..labels {
        body.push_str(&format!("l{i}=\"v\","));
    }
    body.push_str("} 1\n");
    body.into_bytes()
}

fn scrape_job(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[replica.scrape_configs]]\njob_name = \"{name}\"\nscrape_timeout = \"1s\"\n{extra}static_configs = [{{ targets = [\"127.0.0.1:{port}\"] }}]\n"
    )
}

/// A replica with `extra` keys in `[replica]` and the given scrape jobs.
fn replica(extra: &str, jobs: &str) -> Obsd {
    Obsd::start(
        "replica",
        &format!(
            "[replica]\nremote_write_receiver = true\n{extra}[replica.listen]\naddress = \"127.0.0.1:0\"\n[replica.global]\nscrape_interval = \"1s\"\n{jobs}"
        ),
    )
}

/// The targets' (health, lastError) by job, once every job in `jobs` has been scraped.
fn target_states(obsd: &Obsd, jobs: &[&str]) -> Vec<(String, String)> {
    let mut states = Vec::new();
    wait_until("every target scraped", Duration::from_secs(60), || {
        let (_, body) = get(&obsd.url("replica", "/api/v1/targets"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        states = jobs
            .iter()
            .filter_map(|job| {
                let t = active.iter().find(|t| t["scrapePool"] == *job)?;
                (t["health"] != "unknown").then(|| {
                    (
                        t["health"].as_str().unwrap_or("").to_string(),
                        t["lastError"].as_str().unwrap_or("").to_string(),
                    )
                })
            })
            .collect();
        states.len() == jobs.len()
    });
    states
}

#[test]
fn a_series_with_100k_labels_fails_at_the_label_limit_without_being_parsed() {
    let wide = fixed_target(wide_series(100_000));
    let obsd = replica(
        "",
        &[
            scrape_job("limited", wide, "label_limit = 64\n"),
            scrape_job("name_length", wide, "label_name_length_limit = 4\n"),
        ]
        .concat(),
    );
    let states = target_states(&obsd, &["limited", "name_length"]);
    // The count is the limit plus one: the scrape stopped at the first label over it instead
    // of parsing all 100,003 first (and the old parser's pairwise duplicate check cost ~35 s
    // of CPU per scrape for this body, past any scrape_timeout).
    assert_eq!(
        states[0],
        ("down".into(), "label_limit exceeded (metric: wide, number of labels: 65, limit: 64)".into())
    );
    assert_eq!(
        states[1],
        (
            "down".into(),
            "label_name_length_limit exceeded (metric: wide, label name: l1000, length: 5, limit: 4)".into()
        )
    );
}

#[test]
fn a_type_line_after_its_samples_keeps_the_target_up_and_an_overflowing_value_fails_it() {
    let late_type = fixed_target(b"m 1\n# TYPE m counter\n# HELP m once\n# HELP m twice\nother 2\n".to_vec());
    let overflow = fixed_target(b"ok 1\nbig 1e309\n".to_vec());
    let obsd =
        replica("", &[scrape_job("late_type", late_type, ""), scrape_job("overflow", overflow, "")].concat());
    let states = target_states(&obsd, &["late_type", "overflow"]);
    assert_eq!(states[0], ("up".into(), String::new()), "Prometheus 2.42 keeps this target up");
    assert_eq!(states[1].0, "down");
    assert!(
        states[1].1.contains("strconv.ParseFloat: parsing \"1e309\": value out of range"),
        "Prometheus's error: {:?}",
        states[1].1
    );
}

/// Peak resident memory of a process, in bytes.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn label(name: &str, value: &str) -> obsd::remote_write::proto::Label {
    obsd::remote_write::proto::Label { name: name.into(), value: value.into() }
}

fn write_request(series: Vec<Vec<obsd::remote_write::proto::Label>>) -> Vec<u8> {
    use obsd::remote_write::proto::{Sample, TimeSeries, WriteRequest};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    obsd::remote_write::encode(&WriteRequest {
        timeseries: series
            .into_iter()
            .map(|labels| TimeSeries {
                labels,
                samples: vec![Sample { value: 1.0, timestamp: now }],
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    })
}

fn post_write(obsd: &Obsd, body: Vec<u8>) -> (u16, String) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let r = client
        .post(obsd.url("replica", "/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn remote_write_refuses_wide_and_numerous_series_before_decoding_them() {
    let obsd = replica("remote_write_max_labels_per_series = 300\n", "");
    let before = vm_hwm(obsd.pid());
    // The 757 KB request: one series with 100k labels (it added 440-860 MB of RSS).
    let mut wide = vec![label("__name__", "wide")];
    wide.extend((0..100_000).map(|i| label(&format!("l{i}"), "v")));
    let (status, body) = post_write(&obsd, write_request(vec![wide]));
    assert_eq!((status, body.trim()), (400, "series 0 has more than 300 labels"));
    // The 1.6 MB body of empty series (it peaked at about 2 GB): ~17M of them.
    let empty = snap::raw::Encoder::new().compress_vec(&[0x0a, 0x00].repeat(17_000_000)).unwrap();
    assert!(empty.len() < 2 << 20, "{} bytes", empty.len());
    let (status, body) = post_write(&obsd, empty);
    assert_eq!((status, body.trim()), (400, "request has more than 100000 series"));
    // Many labels per series over many series: refused on their estimated decoded size.
    let many: Vec<_> = (0..6_000)
        .map(|s| {
            let mut l = vec![label("__name__", &format!("m{s}"))];
            l.extend((0..250).map(|i| label(&format!("l{i}"), "")));
            l
        })
        .collect();
    let (status, body) = post_write(&obsd, write_request(many));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("decoded, over the limit of 67108864 bytes"), "{body}");
    let grown = vm_hwm(obsd.pid()).saturating_sub(before);
    // The decompressed body of empty series is 34 MB; decoding any of these took 440 MB+.
    assert!(grown < 128 << 20, "peak RSS grew by {} MiB", grown >> 20);
    // Still taking ordinary writes.
    let (status, body) =
        post_write(&obsd, write_request(vec![vec![label("__name__", "ok"), label("a", "1")]]));
    assert_eq!(status, 204, "{body}");
}

#[test]
fn remote_write_refuses_duplicate_and_invalid_label_names() {
    let obsd = replica("", "");
    for (labels, message) in [
        (
            vec![label("__name__", "m"), label("a", "1"), label("a", "2")],
            "label name \"a\" is not unique: invalid sample",
        ),
        (vec![label("__name__", "m"), label("bad-name", "1")], "invalid label name \"bad-name\""),
        (vec![label("__name__", "m"), label("", "1")], "invalid label name \"\""),
        (vec![label("__name__", "not a metric{")], "invalid metric name \"not a metric{\""),
    ] {
        let (status, body) = post_write(&obsd, write_request(vec![labels]));
        assert_eq!((status, body.trim()), (400, message));
    }
    let (status, _) =
        post_write(&obsd, write_request(vec![vec![label("__name__", "fine"), label("a", "1")]]));
    assert_eq!(status, 204);
    // /federate stays parseable.
    let (status, body) = get(&obsd.url("replica", "/federate?match[]=%7B__name__%3D~%22.%2B%22%7D"));
    assert_eq!(status, 200);
    let families = obsd::exposition::parse_text(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(families.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), vec!["fine"]);
}

fn collector() -> Obsd {
    Obsd::start_with_args(
        &["--role", "collector"],
        "[collector]\njaeger_compact_udp = \"\"\njaeger_binary_udp = \"\"\n[collector.listen]\naddress = \"127.0.0.1:0\"\n\
         [collector.otlp_grpc]\naddress = \"127.0.0.1:0\"\n[collector.otlp_http]\naddress = \"127.0.0.1:0\"\n\
         [collector.jaeger_thrift_http]\naddress = \"127.0.0.1:0\"\n",
    )
}

/// `field` with a length-delimited payload, in protobuf's encoding.
fn pb_field(out: &mut Vec<u8>, field: u64, payload: &[u8]) {
    let mut put = |mut v: u64| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    put(field << 3 | 2);
    put(payload.len() as u64);
    out.extend_from_slice(payload);
}

/// One span (trace id 1…, span id 2…) whose attributes are `attributes`, encoded, in one
/// ExportTraceServiceRequest.
fn otlp_request(attributes: &[u8]) -> Vec<u8> {
    let mut span = Vec::new();
    pb_field(&mut span, 1, &[1; 16]);
    pb_field(&mut span, 2, &[2; 8]);
    pb_field(&mut span, 5, b"op");
    span.extend_from_slice(attributes);
    let mut scope = Vec::new();
    pb_field(&mut scope, 2, &span);
    let mut service = Vec::new();
    pb_field(&mut service, 1, b"service.name");
    let mut value = Vec::new();
    pb_field(&mut value, 1, b"svc");
    pb_field(&mut service, 2, &value);
    let mut resource = Vec::new();
    pb_field(&mut resource, 1, &service);
    let mut rs = Vec::new();
    pb_field(&mut rs, 1, &resource);
    pb_field(&mut rs, 2, &scope);
    let mut req = Vec::new();
    pb_field(&mut req, 1, &rs);
    req
}

fn metric(obsd: &Obsd, name_and_labels: &str) -> f64 {
    let (_, body) = get(&obsd.url("collector", "/metrics"));
    body.lines()
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn otlp_attributes_are_limited_as_the_sdk_limits_them_and_counted() {
    let obsd = collector();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let url = obsd.url("collector-otlp-http", "/v1/traces");
    let before = vm_hwm(obsd.pid());
    // The request: 4 MiB of empty attributes (it added about 275 MB each).
    let empty_attributes = [0x4a, 0x00].repeat((4 << 20) / 2 - 64);
    for _ in 0..4 {
        let r = client
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .body(otlp_request(&empty_attributes))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{:?}", r.text());
    }
    let grown = vm_hwm(obsd.pid()).saturating_sub(before);
    assert!(grown < 96 << 20, "peak RSS grew by {} MiB", grown >> 20);
    let per_request = ((4 << 20) / 2 - 64 - 128) as f64;
    assert_eq!(
        metric(&obsd, "obsd_collector_dropped_attributes_total{protocol=\"otlp_http\"}"),
        4.0 * per_request
    );

    // JSON: 300 attributes, one of them long; the span keeps 128 and says what it lost.
    let mut attributes: Vec<serde_json::Value> = (0..300)
        .map(|i| serde_json::json!({"key": format!("k{i}"), "value": {"stringValue": "v"}}))
        .collect();
    attributes[0] = serde_json::json!({"key": "long", "value": {"stringValue": "x".repeat(10_000)}});
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "000000000000000000000000000000aa", "spanId": "00000000000000bb", "name": "json-op",
            "startTimeUnixNano": now_ns.to_string(), "endTimeUnixNano": (now_ns + 1_000_000).to_string(),
            "attributes": attributes,
        }]}],
    }]});
    let r =
        client.post(&url).header("Content-Type", "application/json").body(body.to_string()).send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text());
    assert_eq!(
        metric(&obsd, "obsd_collector_dropped_attributes_total{protocol=\"otlp_http\"}"),
        4.0 * per_request + 172.0
    );
    assert_eq!(metric(&obsd, "obsd_collector_truncated_attribute_values_total{protocol=\"otlp_http\"}"), 1.0);
    let mut trace = serde_json::Value::Null;
    wait_until("the JSON span stored", Duration::from_secs(10), || {
        let (status, body) = get(&obsd.url("collector", "/api/traces/000000000000000000000000000000aa"));
        trace = serde_json::from_str(&body).unwrap_or_default();
        status == 200
    });
    let span = &trace["data"][0]["spans"][0];
    assert_eq!(span["warnings"], serde_json::json!(["172 attributes dropped"]));
    let tags = span["tags"].as_array().unwrap();
    let long = tags.iter().find(|t| t["key"] == "long").unwrap();
    assert_eq!(long["value"].as_str().unwrap().len(), 4096);
    assert_eq!(tags.iter().filter(|t| t["key"].as_str().unwrap().starts_with('k')).count(), 127);
}

#[test]
fn otlp_grpc_attributes_are_limited_before_decoding() {
    let obsd = collector();
    let address = obsd.address("collector-otlp-grpc");
    let before = vm_hwm(obsd.pid());
    // The HTTP test's request over gRPC: tonic decoded all of it before the limits applied,
    // about 275 MB for each.
    let empty_attributes = [0x4a, 0x00].repeat((4 << 20) / 2 - 64);
    let request = otlp_request(&empty_attributes);
    for _ in 0..4 {
        let (status, message, _) = common::otlp_grpc_export(address, &request, false);
        assert_eq!(status, 0, "{message}");
    }
    let grown = vm_hwm(obsd.pid()).saturating_sub(before);
    eprintln!("peak RSS grew by {} KiB over 4 gRPC requests of 4 MiB", grown >> 10);
    assert!(grown < 96 << 20, "peak RSS grew by {} MiB", grown >> 20);
    let per_request = ((4 << 20) / 2 - 64 - 128) as f64;
    assert_eq!(
        metric(&obsd, "obsd_collector_dropped_attributes_total{protocol=\"otlp_grpc\"}"),
        4.0 * per_request
    );
    // 2^20 empty spans: all within the limits, but past the decoded-size bound (8 × the 4 MiB
    // message limit), so refused undecoded and counted as oversized.
    let mut rs = Vec::new();
    pb_field(&mut rs, 2, &[0x12, 0x00].repeat(1 << 20));
    let mut request = Vec::new();
    pb_field(&mut request, 1, &rs);
    let (status, message, _) = common::otlp_grpc_export(address, &request, false);
    assert_eq!(status, 3, "{message}");
    assert!(message.contains("over the limit of 33554432 bytes"), "{message}");
    assert_eq!(
        metric(&obsd, "obsd_collector_batches_rejected_total{protocol=\"otlp_grpc\",reason=\"oversized\"}"),
        1.0
    );
    assert_eq!(
        metric(&obsd, "obsd_collector_batches_rejected_total{protocol=\"otlp_grpc\",reason=\"malformed\"}"),
        0.0
    );
}

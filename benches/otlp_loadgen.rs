//! OTLP/gRPC load generator and Jaeger-API latency timer.
//!
//!     otlp_loadgen load  --endpoint http://127.0.0.1:4317 [--spans 1000000] [--batch 512]
//!                        [--concurrency 4] [--services 10] [--spans-per-trace 8]
//!     otlp_loadgen query --query http://127.0.0.1:16686 [--spans N --spans-per-trace 8] [--samples 200]
//!
//! `load` sends synthetic traces (deterministic ids: trace k is 16 bytes of k's big-endian
//! form, so `query` can pick stored ids without asking) and prints spans sent and the rate.
//! `query` times trace-by-id and searches and prints p50/p99 in milliseconds.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn args() -> (String, HashMap<String, String>) {
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    let mode = it.next().unwrap_or_default();
    let mut map = HashMap::new();
    while let Some(k) = it.next() {
        if let Some(k) = k.strip_prefix("--") {
            map.insert(k.to_string(), it.next().unwrap_or_default());
        }
    }
    (mode, map)
}

fn num(map: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    map.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn trace_id(k: u64) -> Vec<u8> {
    let mut id = vec![0u8; 8];
    id.extend_from_slice(&(k + 1).to_be_bytes());
    id[0] = 0x5a;
    id
}

/// One request of `batch` spans: whole traces of `per_trace` spans, one service per request.
fn request(
    first_span: u64,
    batch: u64,
    per_trace: u64,
    services: u64,
    now_ns: u64,
) -> ExportTraceServiceRequest {
    let service = format!("svc-{}", (first_span / batch) % services);
    let spans = (first_span..first_span + batch)
        .map(|n| {
            let t = n / per_trace;
            let i = n % per_trace;
            let start = now_ns - 60_000_000_000 + (n % 50_000) * 1_000_000 + i * 100_000;
            let dur = 50_000 + (n * 7919 % 200) * 1_000_000 / (i + 1);
            Span {
                trace_id: trace_id(t),
                span_id: (n + 1).to_be_bytes().to_vec(),
                parent_span_id: if i == 0 { vec![] } else { (t * per_trace + 1).to_be_bytes().to_vec() },
                name: format!("op-{}", (n * 31) % 20),
                kind: if i == 0 { 2 } else { 3 },
                start_time_unix_nano: start,
                end_time_unix_nano: start + dur,
                attributes: vec![
                    kv("http.method", any_value::Value::StringValue("GET".into())),
                    kv("http.route", any_value::Value::StringValue(format!("/api/item/{}", n % 100))),
                    kv("http.status_code", any_value::Value::IntValue(if n % 50 == 0 { 500 } else { 200 })),
                    kv("customer.id", any_value::Value::IntValue((n % 1000) as i64)),
                ],
                status: Some(Status { code: if n % 50 == 0 { 2 } else { 0 }, message: String::new() }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue(service)),
                    kv("host.name", any_value::Value::StringValue("bench-host".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "loadgen".into(), ..Default::default() }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn load(map: HashMap<String, String>) {
    let endpoint = map.get("endpoint").cloned().unwrap_or_else(|| "http://127.0.0.1:4317".into());
    let total = num(&map, "spans", 1_000_000);
    let batch = num(&map, "batch", 512);
    let concurrency = num(&map, "concurrency", 4);
    let services = num(&map, "services", 10);
    let per_trace = num(&map, "spans-per-trace", 8);
    let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let batches = total.div_ceil(batch);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let endpoint = endpoint.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = match TraceServiceClient::connect(endpoint.clone()).await {
                Ok(c) => c.max_encoding_message_size(64 << 20),
                Err(e) => {
                    eprintln!("connect {endpoint}: {e}");
                    return (0u64, 1u64);
                }
            };
            let (mut sent, mut errors) = (0, 0);
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    return (sent, errors);
                }
                let req = request(b * batch, batch, per_trace, services, now_ns);
                // Retry with backoff on back-pressure, as OTLP exporters do.
                let mut delay = Duration::from_millis(5);
                loop {
                    match client.export(req.clone()).await {
                        Ok(_) => {
                            sent += batch;
                            break;
                        }
                        Err(s) if s.code() == tonic::Code::Unavailable && delay < Duration::from_secs(5) => {
                            tokio::time::sleep(delay).await;
                            delay *= 2;
                        }
                        Err(s) => {
                            errors += 1;
                            eprintln!("export: {s}");
                            break;
                        }
                    }
                }
            }
        }));
    }
    let (mut sent, mut errors) = (0, 0);
    for t in tasks {
        if let Ok((s, e)) = t.await {
            sent += s;
            errors += e;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("spans_sent {sent}");
    println!("export_errors {errors}");
    println!("wall_seconds {secs:.3}");
    println!("spans_per_wall_second {:.0}", sent as f64 / secs);
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

fn time_get(client: &reqwest::blocking::Client, url: &str) -> f64 {
    let t = Instant::now();
    match client.get(url).send() {
        Ok(r) if r.status().is_success() => {
            let _ = r.bytes();
        }
        Ok(r) => eprintln!("GET {url}: {}", r.status()),
        Err(e) => eprintln!("GET {url}: {e}"),
    }
    t.elapsed().as_secs_f64() * 1000.0
}

fn query(map: HashMap<String, String>) {
    let base = map.get("query").cloned().unwrap_or_else(|| "http://127.0.0.1:16686".into());
    let total = num(&map, "spans", 1_000_000);
    let per_trace = num(&map, "spans-per-trace", 8);
    let samples = num(&map, "samples", 200);
    let traces = (total / per_trace).max(1);
    let client =
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    let mut by_id: Vec<f64> = (0..samples)
        .map(|i| {
            let t = (i * 2_654_435_761) % traces;
            let id: String = trace_id(t).iter().map(|b| format!("{b:02x}")).collect();
            time_get(&client, &format!("{base}/api/traces/{id}"))
        })
        .collect();
    println!("trace_by_id_ms p50 {:.2} p99 {:.2}", percentile(&mut by_id, 0.5), percentile(&mut by_id, 0.99));
    for (name, q) in [
        ("search_service_limit20", "service=svc-3&limit=20"),
        ("search_operation_limit20", "service=svc-3&operation=op-7&limit=20"),
        ("search_tag_limit20", "service=svc-3&tag=http.status_code:500&limit=20"),
        ("search_min_duration_limit20", "service=svc-3&minDuration=150ms&limit=20"),
    ] {
        let n = (samples / 10).max(5);
        let mut v: Vec<f64> = (0..n).map(|_| time_get(&client, &format!("{base}/api/traces?{q}"))).collect();
        println!("{name}_ms p50 {:.2} p99 {:.2}", percentile(&mut v, 0.5), percentile(&mut v, 0.99));
    }
}

fn main() {
    let (mode, map) = args();
    match mode.as_str() {
        "load" => match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(rt) => rt.block_on(load(map)),
            Err(e) => eprintln!("runtime: {e}"),
        },
        "query" => query(map),
        // `cargo test --all-targets` runs benches with no arguments: nothing to do.
        _ => eprintln!("usage: otlp_loadgen load|query [--options]; see the file header"),
    }
}

//! The built-in web UI in a real browser: Debian's headless Chromium, driven through Debian's
//! chromedriver by selenium (tests/peers/webui_driver.py, venv from tests/peers/setup_python.sh),
//! against one obsd running the exporter, a replica scraping it and the seed-like Flask app, and
//! a collector fed by the OpenTelemetry Python SDK. What the pages show is compared with what
//! the APIs answer. Screenshots land in $CARGO_TARGET_DIR/webui-screenshots.

mod common;

use common::{Obsd, url_encode};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const USER: &str = "viewer";
const PASSWORD: &str = "look-but-do-not-touch";
const SEED_EXPR: &str = "rate(python_app_requests_total[1m])";
const MANY_EXPR: &str = "webui_load_series";
const EXEMPLAR_EXPR: &str =
    "histogram_quantile(0.95, sum by (le) (rate(traces_span_metrics_duration_milliseconds_bucket[1m])))";
const BAD_EXPR: &str = "sum(rate(python_app_requests_total[1m])";

fn venv_python(name: &str) -> PathBuf {
    let root = std::env::var("OBSD_VENV_DIR").unwrap_or_else(|_| "/var/tmp/obsd-venvs".into());
    let python = PathBuf::from(root).join(name).join("bin/python");
    assert!(python.exists(), "{} is missing: run tests/peers/setup_python.sh", python.display());
    python
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

fn screenshot_dir() -> PathBuf {
    let base = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().map(PathBuf::from).unwrap_or_default()
    });
    base.join("webui-screenshots")
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// GET with or without the listener's credentials: (status, content type, body).
fn fetch(url: &str, auth: bool) -> (u16, String, String) {
    let mut req = client().get(url);
    if auth {
        req = req.basic_auth(USER, Some(PASSWORD));
    }
    let resp = req.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, resp.text().unwrap_or_default())
}

fn api(obsd: &Obsd, listener: &str, path: &str) -> Value {
    let (status, _, body) = fetch(&obsd.url(listener, path), true);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))["data"].clone()
}

fn query_count(obsd: &Obsd, expr: &str) -> usize {
    api(obsd, "replica", &format!("/api/v1/query?query={}", url_encode(expr)))["result"]
        .as_array()
        .map_or(0, |a| a.len())
}

/// Points of the seed query's series over the last minute: enough for the graph to draw lines.
fn seed_points(obsd: &Obsd) -> usize {
    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let path =
        format!("/api/v1/query_range?query={}&start={}&end={end}&step=1", url_encode(SEED_EXPR), end - 60);
    api(obsd, "replica", &path)["result"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|s| s["values"].as_array())
        .map_or(0, |v| v.len())
}

/// 1,000 series with ten minutes of history at 2 s (300 points each), through remote write so
/// the graph has a realistic number of points without waiting for scrapes.
fn push_many_series(obsd: &Obsd) {
    use obsd::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let timeseries = (0..1000)
        .map(|i| TimeSeries {
            labels: vec![
                Label { name: "__name__".into(), value: MANY_EXPR.into() },
                Label { name: "i".into(), value: format!("{i:04}") },
            ],
            samples: (0..300)
                .map(|k| {
                    let t = now - (300 - k) * 2000;
                    let phase = k as f64 / 20.0 + i as f64 * 0.05;
                    Sample { value: (i % 50) as f64 + 10.0 * phase.sin(), timestamp: t }
                })
                .collect(),
            exemplars: vec![],
        })
        .collect();
    let body = obsd::remote_write::encode(&WriteRequest { timeseries, metadata: vec![] });
    let status = client()
        .post(obsd.url("replica", "/api/v1/write"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .unwrap()
        .status();
    assert!(status.is_success(), "remote write: {status}");
}

#[test]
fn web_ui_in_headless_chromium() {
    let app = common::metrics_app(Some(5));
    let exporter_port = common::free_port();
    let replica_port = common::free_port();
    let collector_port = common::free_port();
    let alertmanager_port = common::free_port();
    let auth = format!("[replica.listen.basic_auth_users]\n{USER} = \"plain:{PASSWORD}\"\n");
    let rules_dir = tempfile::tempdir().unwrap();
    let rules_file = rules_dir.path().join("ui-rules.yml");
    std::fs::write(
        &rules_file,
        "groups:\n  - name: ui\n    interval: 1s\n    rules:\n      - record: ui:up:count\n        expr: count(up)\n      - alert: UiAlwaysFiring\n        expr: vector(1) > 0\n        labels: {severity: page}\n        annotations: {summary: 'always {{ $value }}'}\n      - alert: UiNeverFires\n        expr: vector(0) > 1\n",
    )
    .unwrap();
    let rules_file = rules_file.display().to_string();
    let config = format!(
        r#"
[exporter.listen]
address = "127.0.0.1:{exporter_port}"
[replica]
remote_write_receiver = true
rule_files = ["{rules_file}"]
[replica.listen]
address = "127.0.0.1:{replica_port}"
{auth}
[replica.global]
scrape_interval = "1s"
external_labels = {{ prometheus_instance = "replica-1" }}
[[replica.alerting.alertmanagers]]
static_configs = [{{ targets = ["127.0.0.1:{alertmanager_port}"] }}]
[[replica.scrape_configs]]
job_name = "app"
static_configs = [{{ targets = ["127.0.0.1:{app}"] }}]
[[replica.scrape_configs]]
job_name = "node"
static_configs = [{{ targets = ["127.0.0.1:{exporter_port}"] }}]
[[replica.scrape_configs]]
job_name = "collector"
basic_auth = {{ username = "{USER}", password = "{PASSWORD}" }}
static_configs = [{{ targets = ["127.0.0.1:{collector_port}"] }}]
[[replica.scrape_configs]]
job_name = "missing"
static_configs = [{{ targets = ["127.0.0.1:{closed}"] }}]
[federation]
[federation.listen]
address = "127.0.0.1:0"
[federation.listen.basic_auth_users]
{USER} = "plain:{PASSWORD}"
[federation.dedup]
enabled = true
[federation.global]
scrape_interval = "1s"
[[federation.scrape_configs]]
job_name = "federate"
honor_labels = true
metrics_path = "/federate"
params = {{ "match[]" = ['{{job="app"}}'] }}
basic_auth = {{ username = "{USER}", password = "{PASSWORD}" }}
static_configs = [{{ targets = ["127.0.0.1:{replica_port}"] }}]
[balancer]
stats_uri = "/stats"
stats_auth = ["{USER}:{PASSWORD}"]
stats_admin = true
[balancer.listen]
address = "127.0.0.1:0"
[[balancer.frontends]]
name = "prometheus_frontend"
bind = "127.0.0.1:0"
default_backend = "prometheus_backends"
[[balancer.backends]]
name = "prometheus_backends"
default_server = {{ inter = "200ms" }}
[[balancer.backends.servers]]
name = "app"
address = "127.0.0.1:{app}"
[[balancer.backends.servers]]
name = "dead"
address = "127.0.0.1:{closed}"
[collector]
[collector.listen]
address = "127.0.0.1:{collector_port}"
[collector.listen.basic_auth_users]
{USER} = "plain:{PASSWORD}"
[collector.otlp_grpc]
address = "127.0.0.1:0"
[collector.otlp_http]
address = "127.0.0.1:0"
[collector.jaeger_thrift_http]
address = "127.0.0.1:0"
[alertmanager]
route = {{ receiver = "nowhere", group_by = ["alertname"] }}
receivers = [{{ name = "nowhere" }}]
[alertmanager.listen]
address = "127.0.0.1:{alertmanager_port}"
"#,
        app = app.port,
        closed = common::free_port(),
    );
    let obsd = Obsd::start("exporter,replica,federation,collector,balancer,alertmanager", &config);
    push_many_series(&obsd);

    // Two services per checkout trace, sent by the OpenTelemetry SDK over OTLP/HTTP.
    let service = "webui-shop";
    let sent = Command::new(venv_python("otlp"))
        .arg(peers_dir().join("otel_app.py"))
        .args([
            "--exporter",
            "otlp-http",
            "--endpoint",
            &obsd.url("collector-otlp-http", ""),
            "--service",
            service,
        ])
        .env("PYTHONWARNINGS", "ignore")
        .stderr(Stdio::inherit())
        .output()
        .expect("run otel_app.py");
    assert!(sent.status.success(), "otel_app.py failed");
    let sent: Value =
        serde_json::from_str(String::from_utf8_lossy(&sent.stdout).lines().last().unwrap_or("")).unwrap();
    let trace_id = sent["checkout"]["0"].as_str().unwrap().to_string();

    common::wait_until("two scrapes of every target and the stored trace", Duration::from_secs(60), || {
        query_count(&obsd, SEED_EXPR) > 0
            && seed_points(&obsd) >= 3
            && fetch(&obsd.url("federation", "/metrics"), true)
                .2
                .contains("obsd_federation_dedup_series_by_replica{")
            && query_count(&obsd, "rate(node_cpu_seconds_total[1m])") > 0
            && api(&obsd, "replica", &format!("/api/v1/query_exemplars?query={}", url_encode(EXEMPLAR_EXPR)))
                .as_array()
                .is_some_and(|a| !a.is_empty())
            && api(&obsd, "collector", &format!("/api/traces/{trace_id}"))[0]["spans"]
                .as_array()
                .map_or(0, |s| s.len())
                == 3
    });

    // Without credentials every page, asset and API answers 401; with them, the shell and its
    // assets come from the binary with their content types and validators.
    for (listener, path) in [
        ("replica", "/"),
        ("replica", "/ui/app.js"),
        ("replica", "/api/v1/query?query=up"),
        ("collector", "/"),
        ("collector", "/ui/traces.js"),
        ("collector", "/api/services"),
        ("balancer", "/ui/"),
        ("balancer", "/ui/balancer.js"),
    ] {
        assert_eq!(fetch(&obsd.url(listener, path), false).0, 401, "{listener} {path} without credentials");
    }
    let (status, ct, body) = fetch(&obsd.url("replica", "/"), true);
    assert_eq!((status, ct.as_str()), (200, "text/html; charset=utf-8"));
    assert!(body.contains(r#"content="metrics""#), "{body}");
    assert!(fetch(&obsd.url("collector", "/"), true).2.contains(r#"content="traces""#));
    let (status, ct, _) = fetch(&obsd.url("replica", "/ui/vendor/uPlot.esm.js"), true);
    assert_eq!((status, ct.as_str()), (200, "text/javascript; charset=utf-8"));
    let resp =
        client().get(obsd.url("replica", "/ui/chart.js")).basic_auth(USER, Some(PASSWORD)).send().unwrap();
    let etag = resp.headers().get("etag").expect("etag").clone();
    let again = client()
        .get(obsd.url("replica", "/ui/chart.js"))
        .basic_auth(USER, Some(PASSWORD))
        .header("if-none-match", etag)
        .send()
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(fetch(&obsd.url("replica", "/ui/nope.js"), true).0, 404);

    assert_eq!(query_count(&obsd, MANY_EXPR), 1000);
    let shots = screenshot_dir();
    let metrics_base = obsd.url("replica", "");
    let traces_base = obsd.url("collector", "");
    let balancer_base = obsd.url("balancer", "");
    let federation_base = obsd.url("federation", "");
    let alertmanager_base = obsd.url("alertmanager", "");
    let driver = Command::new(venv_python("webui"))
        .arg(peers_dir().join("webui_driver.py"))
        .args([
            "--metrics",
            metrics_base.trim_end_matches('/'),
            "--traces",
            traces_base.trim_end_matches('/'),
            "--balancer",
            balancer_base.trim_end_matches('/'),
            "--federation",
            federation_base.trim_end_matches('/'),
            "--alertmanager",
            alertmanager_base.trim_end_matches('/'),
        ])
        .args(["--user", USER, "--password", PASSWORD, "--shots", &shots.display().to_string()])
        .args(["--seed-expr", SEED_EXPR, "--many-expr", MANY_EXPR, "--bad-expr", BAD_EXPR])
        .args(["--exemplar-expr", EXEMPLAR_EXPR])
        .args(["--service", service, "--trace-id", &trace_id])
        .env("PYTHONWARNINGS", "ignore")
        .stderr(Stdio::inherit())
        .output()
        .expect("run webui_driver.py");
    let stdout = String::from_utf8_lossy(&driver.stdout);
    assert!(driver.status.success(), "webui_driver.py failed: {stdout}");
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("driver JSON");
    eprintln!("webui figures: first paint {} · 1,000 series {}", seen["first_paint_ms"], seen["many"]);

    // The browser itself was refused without credentials.
    assert_eq!(seen["unauthenticated_status"], 401);
    assert_eq!(seen["unauthenticated_status_traces"], 401);

    // The seed panel's graph: one legend entry and drawn line per series the API returns.
    let expected = api(&obsd, "replica", &format!("/api/v1/query?query={}", url_encode(SEED_EXPR)))["result"]
        .as_array()
        .unwrap()
        .len();
    let q = &seen["query"];
    assert!(expected > 0);
    assert!(q["series"].as_u64().unwrap() as usize >= expected, "{q}");
    let legend: Vec<&str> = q["legend"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(legend.len(), q["series"].as_u64().unwrap() as usize, "{q}");
    assert!(legend.iter().all(|l| l.contains("job=\"app\"") && l.contains("endpoint=")), "{legend:?}");
    assert!(q["painted_pixels"].as_u64().unwrap() > 200, "the chart canvas has no drawn series: {q}");
    assert!(
        q["hover_values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().is_some_and(|v| v.parse::<f64>().is_ok())),
        "{q}"
    );
    assert!(q["url"].as_str().unwrap().contains("expr=rate%28python_app_requests_total"), "{q}");
    assert!(q["stacked_url"].as_str().unwrap().contains("stacked=1"), "{q}");
    assert!(q["stacked_painted_pixels"].as_u64().unwrap() > 200, "the stacked chart is empty: {q}");
    assert!(q["table_rows"].as_u64().unwrap() as usize >= expected, "{q}");

    // Completion from the label API.
    assert!(
        seen["completion_metric"].as_array().unwrap().iter().any(|m| m == "python_app_requests_total"),
        "{seen}"
    );
    let values: BTreeSet<&str> =
        seen["completion_value"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(["app", "node", "missing"].iter().all(|j| values.contains(j)), "{values:?}");

    let labels: BTreeSet<&str> =
        seen["completion_label"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        labels.contains("job") && labels.contains("instance") && !labels.contains("__name__"),
        "{labels:?}"
    );

    // The invalid query shows the API's own error and its position.
    let (_, _, bad) =
        fetch(&obsd.url("replica", &format!("/api/v1/query?query={}", url_encode(BAD_EXPR))), true);
    let bad: Value = serde_json::from_str(&bad).unwrap();
    let message = bad["error"].as_str().unwrap();
    let position = regex::Regex::new(r"(\d+):(\d+): parse error").unwrap();
    let at = position.captures(message).unwrap_or_else(|| panic!("no position in {message}"));
    let invalid = &seen["invalid"];
    assert!(invalid["text"].as_str().unwrap().contains(message), "{invalid} vs {message}");
    assert_eq!(invalid["line"].as_str(), Some(&at[1]), "{invalid}");
    assert_eq!(invalid["column"].as_str(), Some(&at[2]), "{invalid}");

    // 1,000 series drawn and zoomable.
    let m = &seen["many"];
    assert_eq!(m["series"], 1000, "{m}");
    assert!(m["painted_pixels"].as_u64().unwrap() > 1000, "{m}");
    assert_ne!(m["zoom"]["before"], m["zoom"]["after"], "dragging did not zoom: {m}");
    assert!(m["tooltip"].as_str().unwrap().contains(MANY_EXPR), "hovering shows the nearest series: {m}");

    // An exemplar on the metrics side links to its trace in the collector's UI, which shows it.
    let sent_ids: BTreeSet<String> = sent["checkout"]
        .as_object()
        .unwrap()
        .values()
        .chain([&sent["fail"], &sent["replay"]])
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let ex = &seen["exemplars"];
    let linked = ex["trace_id"].as_str().unwrap_or("");
    assert!(sent_ids.contains(linked), "exemplar link {ex} is not one of the sent traces {sent_ids:?}");
    assert!(ex["href"].as_str().unwrap().starts_with(traces_base.trim_end_matches('/')), "{ex}");
    let linked_spans =
        api(&obsd, "collector", &format!("/api/traces/{linked}"))[0]["spans"].as_array().unwrap().len();
    assert_eq!(ex["waterfall_spans"].as_u64(), Some(linked_spans as u64), "{ex}");

    // Targets by job with the health the API reports.
    let targets = api(&obsd, "replica", "/api/v1/targets");
    let want: BTreeSet<(String, String, String)> = targets["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["scrapePool"].as_str().unwrap().to_string(),
                t["scrapeUrl"].as_str().unwrap().to_string(),
                t["health"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let shown: BTreeSet<(String, String, String)> = seen["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["job"].as_str().unwrap().to_string(),
                t["endpoint"].as_str().unwrap().to_string(),
                t["health"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The same targets; health is compared where it cannot flip between the browser's
    // snapshot and this API read (a scrape of the loaded exporter may time out in between).
    let endpoints = |set: &BTreeSet<(String, String, String)>| -> BTreeSet<(String, String)> {
        set.iter().map(|(job, url, _)| (job.clone(), url.clone())).collect()
    };
    assert_eq!(endpoints(&shown), endpoints(&want), "{shown:?} vs {want:?}");
    assert!(shown.iter().any(|(job, _, h)| job == "missing" && h == "down"), "{shown:?}");
    assert!(shown.iter().any(|(job, _, h)| job == "app" && h == "up"), "{shown:?}");
    assert!(seen["store_status"].as_str().unwrap().contains("Series"), "{seen}");

    // Alerts and rules: the always-firing alert with its annotation, the quiet rule inactive,
    // every rule of the group healthy.
    let rules = &seen["rules"];
    assert_eq!(
        rules["alert_rules"],
        serde_json::json!({"UiAlwaysFiring": "firing", "UiNeverFires": "inactive"}),
        "{rules}"
    );
    assert!(rules["firing_text"].as_str().unwrap_or("").contains("always 1"), "{rules}");
    assert_eq!(rules["health"], serde_json::json!(["ok", "ok", "ok"]), "{rules}");

    // The dashboard: the seed panels with data where this test has it, node panels, the added panel.
    let dash = &seen["dashboard"];
    for title in [
        "Request rate",
        "App latency p95",
        "Node CPU (busy share by mode)",
        "Node memory used (bytes)",
        "Added from query page",
    ] {
        let n: usize = dash[title].as_str().unwrap_or("0").parse().unwrap_or(0);
        assert!(n > 0, "dashboard panel {title} has no series: {dash}");
    }
    assert_eq!(dash["Replica health"], "0", "no balancer here, so no haproxy series: {dash}");

    // Trace search finds the sent trace; its waterfall shows every span of it.
    let search = &seen["trace_search"];
    assert!(search["ids"].as_array().unwrap().iter().any(|id| id == trace_id.as_str()), "{search}");
    assert_eq!(search["scatter_dots"], search["ids"].as_array().unwrap().len(), "{search}");
    let trace = &api(&obsd, "collector", &format!("/api/traces/{trace_id}"))[0];
    let want_spans: BTreeSet<&str> =
        trace["spans"].as_array().unwrap().iter().filter_map(|s| s["spanID"].as_str()).collect();
    let shown_spans: BTreeSet<&str> =
        seen["waterfall"].as_array().unwrap().iter().filter_map(|s| s["span_id"].as_str()).collect();
    assert_eq!(shown_spans, want_spans);
    let services: BTreeSet<&str> =
        seen["waterfall"].as_array().unwrap().iter().filter_map(|s| s["service"].as_str()).collect();
    assert_eq!(services, BTreeSet::from([service, "webui-shop-inventory"]));
    assert!(seen["span_detail"].as_str().unwrap().contains("Process"), "{seen}");

    let events = seen["event_detail"].as_array().unwrap();
    assert!(events.iter().any(|d| d.as_str().unwrap().contains("Logs / events")), "{events:?}");
    let ids = |key: &str| -> BTreeSet<String> {
        seen[key].as_array().unwrap().iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
    };
    assert_eq!(ids("search_error_tag"), BTreeSet::from([sent["fail"].as_str().unwrap().to_string()]));
    assert!(seen["search_past_range"].as_str().unwrap().contains("lookback=custom"), "{seen}");
    let checkouts: BTreeSet<String> = sent["checkout"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(ids("search_min_duration"), checkouts, "only the checkouts wait 300 ms for the inventory");

    // The service map has the edge of the two-service trace.
    let edges = seen["service_map"].as_array().unwrap();
    assert!(
        edges.iter().any(|e| e["parent"] == service
            && e["child"] == "webui-shop-inventory"
            && e["calls"].as_u64() > Some(0)),
        "{edges:?}"
    );
    // The federation's replica view: the one replica leads the series it federates.
    let leaders = seen["federation_leaders"].as_array().unwrap();
    assert!(
        leaders.iter().any(|l| l["replica"] == "replica-1" && l["series"].as_str().is_some_and(|n| n != "0")),
        "{leaders:?}"
    );

    let per_series = seen["federation_series"].as_array().unwrap();
    assert!(!per_series.is_empty());
    assert!(
        per_series.iter().all(|r| r[0].as_str().unwrap().contains("job=\"app\"") && r[1] == "replica-1"),
        "{per_series:?}"
    );

    // The balancer page: the stats page's servers with their health, and an admin action.
    let servers: BTreeSet<(String, String)> = seen["balancer"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
        .collect();
    assert!(servers.iter().any(|(n, st)| n == "app" && st.starts_with("UP")), "{servers:?}");
    assert!(servers.iter().any(|(n, st)| n == "dead" && st.starts_with("DOWN")), "{servers:?}");
    assert_eq!(seen["balancer"]["admin_result"], "result: DONE", "{seen}");
    assert_eq!(seen["balancer"]["after_drain"], "DRAIN", "{seen}");
    let (_, _, csv) = fetch(&obsd.url("balancer", "/stats;csv"), true);
    assert!(csv.lines().any(|l| l.starts_with("prometheus_backends,app,") && l.contains(",DRAIN,")), "{csv}");

    // Alertmanager: the replica's firing alert in its group; a silence made from its row
    // suppresses it, and expiring the silence from the list ends it.
    let am = &seen["alertmanager"];
    assert_eq!(am["group_receiver"], "nowhere", "{am}");
    assert!(am["created"].as_str().unwrap_or("").starts_with("created "), "{am}");
    assert_eq!(am["suppressed"], "suppressed", "{am}");
    assert_eq!(am["expired"], "expired", "{am}");
    assert!(am["config"].as_str().unwrap_or("").contains("nowhere"), "{am}");

    assert_eq!(seen["console_errors"], Value::Array(vec![]), "browser console errors");
    for page in [
        "query-graph",
        "query-error",
        "query-1000-series",
        "targets",
        "alerts",
        "dashboard",
        "trace-search",
        "trace-waterfall",
        "service-map",
        "alertmanager",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "no screenshot of {page}");
    }
}

/// The UI comes with its listener's TLS and (bcrypt) basic auth, like every other route there.
#[test]
fn web_ui_over_tls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path());
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let obsd = Obsd::start(
        "replica",
        &format!(
            "[replica.listen]\naddress = \"127.0.0.1:0\"\n[replica.listen.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\
             [replica.listen.basic_auth_users]\n{USER} = {hash:?}\n"
        ),
    );
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("https://{}", obsd.address("replica"));
    for path in ["/", "/ui/query.js", "/ui/vendor/uPlot.min.css"] {
        let anonymous = client.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(anonymous.status().as_u16(), 401, "{path}");
        assert!(anonymous.headers().contains_key("www-authenticate"), "{path}: the browser must be asked");
        let ok = client.get(format!("{base}{path}")).basic_auth(USER, Some(PASSWORD)).send().unwrap();
        assert_eq!(ok.status().as_u16(), 200, "{path}");
        assert!(!ok.text().unwrap().is_empty());
    }
    let plain = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(
        plain.get(format!("http://{}/", obsd.address("replica"))).send().is_err(),
        "no plain HTTP on a TLS listener"
    );
}

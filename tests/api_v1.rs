//! Prometheus HTTP API v1 over a real HTTP server (axum on 127.0.0.1:0), with the request
//! shapes Grafana's Prometheus data source sends.

use obsd::api::{ApiInfo, BuildInfo, router};
use obsd::promql::{Engine, EngineOptions, MemoryQueryable};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_700_000_000_000;

struct Server {
    base: String,
    _rt: tokio::runtime::Runtime,
}

fn data() -> MemoryQueryable {
    let mut m = MemoryQueryable::new();
    for i in 0..=40 {
        let t = T0 + i * 15_000;
        m.add_sample(&[("__name__", "up"), ("job", "api"), ("instance", "a:1")], t, 1.0);
        m.add_sample(&[("__name__", "up"), ("job", "db"), ("instance", "b:1")], t, 0.0);
        m.add_sample(&[("__name__", "reqs_total"), ("job", "api"), ("instance", "a:1")], t, (i * 10) as f64);
        m.add_sample(&[("__name__", "tiny"), ("job", "api")], t, 1e-7);
        m.add_sample(&[("__name__", "huge"), ("job", "api")], t, 1e21);
        m.add_sample(&[("__name__", "million"), ("job", "api")], t, 1e6);
    }
    m
}

fn start_with(options: EngineOptions) -> Server {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let info = ApiInfo {
        build: BuildInfo {
            version: "0.1.0".into(),
            revision: "abc".into(),
            branch: "main".into(),
            ..Default::default()
        },
        flags: [("query.lookback-delta".to_string(), "5m".to_string())].into_iter().collect(),
        config_yaml: "global: {}\n".into(),
        ..Default::default()
    };
    let app = router(Arc::new(Engine::new(options)), Arc::new(data()), info);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { base: format!("http://{addr}"), _rt: rt }
}

fn start() -> Server {
    start_with(EngineOptions::default())
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

fn post_form(s: &Server, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(format!("{}{path}", s.base)).form(form).send().expect("post");
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null))
}

fn get(s: &Server, path_and_query: &str) -> (u16, String) {
    let r = client().get(format!("{}{path_and_query}", s.base)).send().expect("get");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn get_json(s: &Server, path_and_query: &str) -> (u16, Value) {
    let (code, body) = get(s, path_and_query);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn grafana_save_and_test() {
    let s = start();
    let (code, body) = post_form(&s, "/api/v1/query", &[("query", "1+1"), ("time", "4")]);
    assert_eq!(code, 200);
    assert_eq!(body, json!({"status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}}));
    let (code, body) = get_json(&s, "/api/v1/status/buildinfo");
    assert_eq!(code, 200);
    assert_eq!(body["data"]["version"], "0.1.0");
    assert!(body["data"].get("features").is_none(), "features would make Grafana think Mimir: {body}");
}

#[test]
fn instant_query_json_is_byte_exact() {
    let s = start();
    let (code, body) = get(&s, "/api/v1/query?query=up%7Bjob%3D%22api%22%7D&time=1700000300.5");
    assert_eq!(code, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a:1","job":"api"},"value":[1700000300.500,"1"]}]}}"#
    );
    // Values as Prometheus writes them.
    for (q, want) in [
        ("tiny", "1e-07"),
        ("huge", "1e+21"),
        ("million", "1000000"),
        ("0/0", "NaN"),
        ("1/0", "+Inf"),
        ("-1/0", "-Inf"),
    ] {
        let (_, body) = post_form(&s, "/api/v1/query", &[("query", q), ("time", "1700000300")]);
        let result = &body["data"]["result"];
        let v = if result[0].is_object() { &result[0]["value"][1] } else { &result[1] };
        assert_eq!(v, want, "{q}: {body}");
    }
    // RFC 3339 time, unknown parameters accepted.
    let (code, body) = get_json(&s, "/api/v1/query?query=up&time=2023-11-14T22:18:20Z&stats=all&foo=bar");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(2));
}

#[test]
fn range_query_as_grafana_posts_it() {
    let s = start();
    let (code, body) = post_form(
        &s,
        "/api/v1/query_range",
        &[
            ("query", "rate(reqs_total[1m])"),
            ("start", "1700000120"),
            ("end", "1700000240.5"),
            ("step", "60"),
            ("timeout", "30s"),
        ],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let series = &body["data"]["result"][0];
    assert_eq!(series["metric"], json!({"instance": "a:1", "job": "api"}));
    assert_eq!(
        series["values"],
        json!([
            [1700000120, "0.6666666666666666"],
            [1700000180, "0.6666666666666666"],
            [1700000240, "0.6666666666666666"]
        ])
    );
    // Scalars become one series without labels; a duration string works as step over GET.
    let (code, body) =
        get_json(&s, "/api/v1/query_range?query=time()&start=1700000000&end=1700000001&step=500ms");
    assert_eq!(code, 200);
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {}, "values": [[1700000000, "1700000000"], [1700000000.5, "1700000000.5"], [1700000001, "1700000001"]]}])
    );
}

#[test]
fn bad_input_gets_prometheus_errors() {
    let s = start();
    let check = |path: &str, form: &[(&str, &str)], code: u16, etype: &str, contains: &str| {
        let (got, body) = post_form(&s, path, form);
        assert_eq!(got, code, "{path} {form:?}: {body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], etype, "{body}");
        let msg = body["error"].as_str().unwrap_or("");
        assert!(msg.contains(contains), "{path} {form:?}: error {msg:?} lacks {contains:?}");
    };
    check("/api/v1/query", &[("query", "sum(up")], 400, "bad_data", "invalid parameter \"query\": ");
    check("/api/v1/query", &[("query", "sum(up")], 400, "bad_data", "parse error");
    check(
        "/api/v1/query",
        &[("query", "up"), ("time", "yesterday")],
        400,
        "bad_data",
        "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp",
    );
    check(
        "/api/v1/query_range",
        &[("query", "up"), ("start", "x"), ("end", "2"), ("step", "1")],
        400,
        "bad_data",
        "invalid parameter \"start\"",
    );
    check(
        "/api/v1/query_range",
        &[("query", "up"), ("start", "1"), ("end", "2"), ("step", "abc")],
        400,
        "bad_data",
        "invalid parameter \"step\": cannot parse \"abc\" to a valid duration",
    );
    check(
        "/api/v1/query_range",
        &[("query", "up"), ("start", "1"), ("end", "2"), ("step", "0")],
        400,
        "bad_data",
        "zero or negative query resolution step widths are not accepted",
    );
    check(
        "/api/v1/query_range",
        &[("query", "up"), ("start", "3"), ("end", "2"), ("step", "1")],
        400,
        "bad_data",
        "end timestamp must not be before start time",
    );
    check(
        "/api/v1/query_range",
        &[("query", "up"), ("start", "0"), ("end", "11001"), ("step", "1")],
        400,
        "bad_data",
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    );
    check(
        "/api/v1/query_range",
        &[("query", "up[5m]"), ("start", "0"), ("end", "10"), ("step", "1")],
        400,
        "bad_data",
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
    );
}

#[test]
fn execution_errors_and_limits() {
    let s = start();
    let (code, body) = post_form(&s, "/api/v1/query", &[("query", "up * on() up"), ("time", "1700000300")]);
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["errorType"], "execution");
    assert!(body["error"].as_str().unwrap_or("").contains("many-to-many matching not allowed"), "{body}");
    let (code, body) = post_form(
        &s,
        "/api/v1/query",
        &[
            (
                "query",
                "label_replace(label_replace(up, \"instance\", \"\", \"instance\", \".*\"), \"job\", \"x\", \"job\", \".*\")",
            ),
            ("time", "1700000300"),
        ],
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("vector cannot contain metrics with the same labelset"),
        "{body}"
    );

    let limited = start_with(EngineOptions { max_samples: 10, ..Default::default() });
    let (code, body) = post_form(&limited, "/api/v1/query", &[("query", "up[10m]"), ("time", "1700000300")]);
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"], "query processing would load too many samples into memory in query execution");

    // A subquery of 3e12 steps is refused by the sample limit before anything is evaluated
    // (it used to abort the process asking for 25 TB), and the server keeps answering.
    let (code, body) = post_form(
        &s,
        "/api/v1/query",
        &[("query", "count_over_time(vector(1)[100y:1ms])"), ("time", "1700000300")],
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"], "query processing would load too many samples into memory in query execution");
    let (code, body) = post_form(
        &s,
        "/api/v1/query_range",
        &[("query", "up"), ("start", "-1e30"), ("end", "1e30"), ("step", "1")],
    );
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap_or("").contains("exceeded maximum resolution"), "{body}");
    assert_eq!(post_form(&s, "/api/v1/query", &[("query", "1"), ("time", "1700000300")]).0, 200);

    let slow = start_with(EngineOptions { timeout: Duration::ZERO, ..Default::default() });
    let (code, body) = post_form(
        &slow,
        "/api/v1/query_range",
        &[("query", "sum(up)"), ("start", "1700000000"), ("end", "1700010000"), ("step", "1")],
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["errorType"], "timeout");
}

#[test]
fn series_labels_and_values() {
    let s = start();
    let (code, body) = post_form(
        &s,
        "/api/v1/series",
        &[
            ("match[]", "up{job=\"api\"}"),
            ("match[]", "reqs_total"),
            ("start", "1700000000"),
            ("end", "1700000600"),
            ("limit", "40000"),
        ],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([
            {"__name__": "reqs_total", "instance": "a:1", "job": "api"},
            {"__name__": "up", "instance": "a:1", "job": "api"},
        ])
    );
    let (code, body) = post_form(&s, "/api/v1/series", &[("start", "1700000000")]);
    assert_eq!((code, body["error"].clone()), (400, json!("no match[] parameter provided")));
    let (code, body) = post_form(&s, "/api/v1/series", &[("match[]", "up{")]);
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap_or("").starts_with("invalid parameter \"match[]\""), "{body}");

    let (code, body) = get_json(&s, "/api/v1/labels");
    assert_eq!((code, body["data"].clone()), (200, json!(["__name__", "instance", "job"])));
    let (_, body) = post_form(
        &s,
        "/api/v1/labels",
        &[("match[]", "tiny"), ("start", "1700000000"), ("end", "1700000600")],
    );
    assert_eq!(body["data"], json!(["__name__", "job"]));
    // Outside the data's time range there is nothing.
    let (_, body) = get_json(&s, "/api/v1/labels?start=1600000000&end=1600000600");
    assert_eq!(body["data"], json!([]));

    let (code, body) = get_json(&s, "/api/v1/label/__name__/values?start=1700000000&end=1700000600");
    assert_eq!((code, body["data"].clone()), (200, json!(["huge", "million", "reqs_total", "tiny", "up"])));
    let (_, body) = get_json(&s, "/api/v1/label/job/values?match[]=up&match[]=tiny");
    assert_eq!(body["data"], json!(["api", "db"]));
    let (_, body) = get_json(&s, "/api/v1/label/U__job/values?match%5B%5D=up%7Bjob%3D%22db%22%7D");
    assert_eq!(body["data"], json!(["db"]));
    let (code, body) = get_json(&s, "/api/v1/label/bad-name/values");
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"], "invalid label name: \"bad-name\"");
}

#[test]
fn other_endpoints() {
    let s = start();
    let expect = |path: &str, data: Value| {
        let (code, body) = get_json(&s, path);
        assert_eq!(code, 200, "{path}: {body}");
        assert_eq!(body, json!({"status": "success", "data": data}), "{path}");
    };
    expect("/api/v1/metadata", json!({}));
    expect("/api/v1/metadata?limit=5&metric=up", json!({}));
    expect("/api/v1/query_exemplars?query=up&start=1&end=2", json!([]));
    expect("/api/v1/rules", json!({"groups": []}));
    expect("/api/v1/alerts", json!({"alerts": []}));
    expect("/api/v1/targets", json!({"activeTargets": [], "droppedTargets": []}));
    expect("/api/v1/status/config", json!({"yaml": "global: {}\n"}));
    expect("/api/v1/status/flags", json!({"query.lookback-delta": "5m"}));
    expect(
        "/api/v1/format_query?query=sum(rate(foo%5B5m%5D))%20by%20(job)",
        json!("sum by (job) (rate(foo[5m]))"),
    );
    let (code, body) =
        post_form(&s, "/api/v1/query_exemplars", &[("query", "up"), ("start", "1"), ("end", "2")]);
    assert_eq!((code, body["data"].clone()), (200, json!([])));
    let (code, body) = get_json(&s, "/api/v1/status/runtimeinfo");
    assert_eq!(code, 200);
    assert!(body["data"].get("storageRetention").is_some(), "{body}");
    let (code, body) = get_json(&s, "/api/v1/status/tsdb");
    assert_eq!(code, 200);
    assert_eq!(body["data"]["headStats"]["numSeries"], 6);
    assert_eq!(body["data"]["seriesCountByMetricName"][0], json!({"name": "up", "value": 2}));
    let (code, body) = get_json(&s, "/api/v1/format_query?query=sum(");
    assert_eq!((code, body["errorType"].clone()), (400, json!("bad_data")));
    // GET-only endpoints refuse POST.
    for path in [
        "/api/v1/label/job/values",
        "/api/v1/metadata",
        "/api/v1/rules",
        "/api/v1/status/buildinfo",
        "/api/v1/targets",
    ] {
        let (code, _) = post_form(&s, path, &[]);
        assert_eq!(code, 405, "POST {path}");
    }
}

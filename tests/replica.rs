//! The replica role against real peers: Prometheus 2.42 federates from it, remote-writes into
//! it and serves as the relabelling oracle; node_exporter and a prometheus_client Flask app are
//! its targets; small servers in the test play broken targets.

mod common;

use common::{Obsd, Peer, free_port, get, metrics_app, peer, url_encode, wait_port, wait_until};
use obsd::exposition::parse_text;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

type LabelSet = BTreeMap<String, String>;

/// Debian's Prometheus 2.42 with the given config (`PORT` placeholders already filled).
fn prometheus(config: &str, extra_flags: &[&str]) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = free_port();
    #[allow(clippy::zombie_processes)] // reaped in Peer's Drop
    let child = Command::new(peer("prometheus", "prometheus"))
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra_flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    wait_port(port, "prometheus");
    // The port opens before the TSDB is ready; the API answers 503 until then.
    wait_until("prometheus /-/ready", Duration::from_secs(60), || {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/-/ready"))
            .is_ok_and(|r| r.status().is_success())
    });
    Peer { child, port, _dir: dir }
}

fn prom_json(port: u16, path: &str) -> serde_json::Value {
    let (status, body) = get(&format!("http://127.0.0.1:{port}{path}"));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Prometheus's series for a selector, as label maps.
fn prom_series(port: u16, selector: &str) -> BTreeSet<LabelSet> {
    let v = prom_json(port, &format!("/api/v1/series?match[]={}", url_encode(selector)));
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()
        })
        .collect()
}

/// obsd's /federate answer for a selector: label maps (with `__name__`) → value.
fn federate(obsd: &Obsd, selector: &str) -> BTreeMap<LabelSet, f64> {
    let (status, body) = get(&obsd.url("replica", &format!("/federate?match[]={}", url_encode(selector))));
    assert_eq!(status, 200, "{body}");
    let mut out = BTreeMap::new();
    for f in parse_text(&body).unwrap() {
        for s in f.samples {
            let mut l: LabelSet = s.labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            l.insert("__name__".into(), s.name);
            out.insert(l, s.value);
        }
    }
    out
}

fn replica_config(scrape_yaml_jobs: &str, extra: &str) -> String {
    format!(
        "[replica]\nremote_write_receiver = true\n{extra}[replica.listen]\naddress = \"127.0.0.1:0\"\n{scrape_yaml_jobs}"
    )
}

#[test]
fn prometheus_federates_from_an_obsd_replica() {
    let config = format!("[exporter.listen]\naddress = \"127.0.0.1:0\"\n{}", replica_config("", ""));
    // The exporter's port is only known after start, so the replica scrapes it via file_sd.
    let sd = tempfile::tempdir().unwrap();
    let sd_file = sd.path().join("node.json");
    let config = config.replace(
        "[replica.listen]",
        &format!(
            "[replica.global]\nscrape_interval = \"1s\"\nexternal_labels = {{ prometheus_instance = \"replica-1\" }}\n[[replica.scrape_configs]]\njob_name = \"node\"\nfile_sd_configs = [{{ files = [{:?}] }}]\n[replica.listen]",
            sd_file.display().to_string()
        ),
    );
    std::fs::write(&sd_file, "[]").unwrap();
    let obsd = Obsd::start("exporter,replica", &config);
    std::fs::write(&sd_file, format!(r#"[{{"targets":["{}"]}}]"#, obsd.address("exporter"))).unwrap();
    wait_until("the replica to scrape its exporter via file_sd", Duration::from_secs(30), || {
        federate(&obsd, "up{job=\"node\"}").values().any(|v| *v == 1.0)
    });
    let prom = prometheus(
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{job=\"node\"}}']\n    static_configs:\n      - targets: ['{}']\n",
            obsd.address("replica")
        ),
        &[],
    );
    let selector = "{job=\"node\",__name__=~\"node_cpu_seconds_total|node_memory_MemTotal_bytes|node_uname_info|node_network_up|node_filesystem_size_bytes|up\"}";
    wait_until("Prometheus to federate from obsd", Duration::from_secs(40), || {
        !prom_series(prom.port, selector).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    let ours = federate(&obsd, selector);
    let theirs = prom_series(prom.port, selector);
    let our_sets: BTreeSet<LabelSet> = ours.keys().cloned().collect();
    assert_eq!(our_sets, theirs, "series obsd serves vs series Prometheus stored from its /federate");
    assert!(our_sets.iter().all(|l| l.get("prometheus_instance").map(String::as_str) == Some("replica-1")));
    // Constant values arrive unchanged.
    let q =
        prom_json(prom.port, &format!("/api/v1/query?query={}", url_encode("node_memory_MemTotal_bytes")));
    let theirs: f64 = q["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    let ours =
        ours.iter().find(|(l, _)| l["__name__"] == "node_memory_MemTotal_bytes").map(|(_, v)| *v).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn scrapes_node_exporter_and_a_python_app_as_they_expose() {
    let app = metrics_app(None);
    let ne_port = free_port();
    #[allow(clippy::zombie_processes)]
    let mut ne = Command::new(peer("prometheus-node-exporter", "prometheus-node-exporter"))
        .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(ne_port, "node_exporter");
    let obsd = Obsd::start(
        "replica",
        &replica_config(
            &format!(
                "[replica.global]\nscrape_interval = \"1s\"\n[[replica.scrape_configs]]\njob_name = \"app\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{}\"] }}]\n[[replica.scrape_configs]]\njob_name = \"node\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{ne_port}\"] }}]\n",
                app.port
            ),
            "",
        ),
    );
    wait_until("both targets up", Duration::from_secs(30), || {
        federate(&obsd, "up").values().filter(|v| **v == 1.0).count() == 2
    });
    // The app is idle, so its text exposition now equals what obsd stored.
    let (_, exposed) = get(&format!("http://127.0.0.1:{}/metrics", app.port));
    let stored = federate(&obsd, "{job=\"app\"}");
    let mut compared = 0;
    for f in parse_text(&exposed).unwrap() {
        for s in f.samples {
            let mut l: LabelSet = s.labels.into_iter().collect();
            l.insert("__name__".into(), s.name.clone());
            l.insert("job".into(), "app".into());
            l.insert("instance".into(), format!("127.0.0.1:{}", app.port));
            if s.name.starts_with("process_") || s.name.starts_with("python_gc") {
                continue; // move by themselves between the two reads
            }
            let got = stored.get(&l).unwrap_or_else(|| panic!("obsd lacks {l:?}"));
            assert_eq!(*got, s.value, "{l:?}");
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} app samples compared");
    let node =
        federate(&obsd, "{job=\"node\",__name__=~\"node_cpu_seconds_total|node_memory_MemTotal_bytes\"}");
    let (_, ne_text) = get(&format!("http://127.0.0.1:{ne_port}/metrics"));
    let ne_cpu = ne_text.lines().filter(|l| l.starts_with("node_cpu_seconds_total{")).count();
    assert_eq!(node.keys().filter(|l| l["__name__"] == "node_cpu_seconds_total").count(), ne_cpu);
    let _ = ne.kill();
    let _ = ne.wait();
}

#[test]
fn relabelling_matches_prometheus() {
    let app = metrics_app(None);
    let job = format!(
        r#"  - job_name: relabel
    static_configs:
      - targets: ['127.0.0.1:{port}']
        labels: {{expected_host: '127.0.0.1', team: Payments}}
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):(\d+)'
        target_label: host
        replacement: '${{1}}'
      - source_labels: [__address__]
        modulus: 4
        target_label: shard
        action: hashmod
      - source_labels: [team]
        target_label: team_lc
        action: lowercase
      - source_labels: [job]
        target_label: job_uc
        action: uppercase
      - regex: 'host'
        replacement: 'hostname'
        action: labelmap
      - source_labels: [host]
        target_label: expected_host
        action: keepequal
      - source_labels: [team]
        target_label: team_lc
        action: dropequal
      - source_labels: [job]
        regex: relabel
        action: keep
      - regex: 'expected_host|team'
        action: labeldrop
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'python_gc_.*|python_info'
        action: drop
      - source_labels: [__name__]
        regex: 'python_app_.*|process_.*'
        action: keep
      - source_labels: [endpoint, method]
        separator: '|'
        regex: '(.*)\|(.*)'
        target_label: route
        replacement: '$2 $1'
      - source_labels: [method]
        target_label: method_lc
        action: lowercase
      - regex: '__name__|job|instance|host|hostname|shard|team_lc|job_uc|route|method_lc|le|endpoint'
        action: labelkeep
"#,
        port = app.port
    );
    let yaml = format!("global:\n  scrape_interval: 1s\nscrape_configs:\n{job}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), &yaml).unwrap();
    let obsd = Obsd::start(
        "replica",
        &format!(
            "[replica]\nprometheus_config = {:?}\n[replica.listen]\naddress = \"127.0.0.1:0\"\n",
            dir.path().join("prometheus.yml").display().to_string()
        ),
    );
    let prom = prometheus(&yaml, &[]);
    let selector = "{job=\"relabel\"}";
    wait_until("both to scrape twice", Duration::from_secs(40), || {
        prom_series(prom.port, "up{job=\"relabel\"}").len() == 1
            && federate(&obsd, "up{job=\"relabel\"}").len() == 1
    });
    std::thread::sleep(Duration::from_secs(3));
    let ours: BTreeSet<LabelSet> = federate(&obsd, selector).into_keys().collect();
    let theirs = prom_series(prom.port, selector);
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only obsd: {only_ours:#?}\nonly Prometheus: {only_theirs:#?}"
    );
    assert!(ours.len() > 10, "{ours:?}");
    let sample =
        ours.iter().find(|l| l["__name__"] == "python_app_requests_total").expect("a relabelled app series");
    assert_eq!(sample["route"], "GET /");
    assert_eq!(sample["hostname"], "127.0.0.1");
    assert_eq!(sample["job_uc"], "RELABEL");
}

/// A target that answers what `respond` says for the n-th request.
fn fake_target(respond: impl Fn(usize) -> Option<Vec<u8>> + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            match respond(n) {
                Some(body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                }
                None => {
                    // Hang: keep the connection open without answering.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(30));
                        drop(stream);
                    });
                }
            }
        }
    });
    port
}

#[test]
fn broken_targets_are_down_with_their_error_and_go_stale() {
    let refused = free_port();
    let hanging = fake_target(|_| None);
    let garbage = fake_target(|_| Some(b"this is { not metrics\n".to_vec()));
    let huge = fake_target(|_| Some(format!("big 1\n# {}\n", "x".repeat(64 * 1024)).into_bytes()));
    let many = fake_target(|_| Some(b"a 1\nb 2\nc 3\n".to_vec()));
    // Healthy for the first scrapes, then serving garbage: its series must go stale.
    let flaky = fake_target(|n| Some(if n < 2 { b"flaky_metric 42\n".to_vec() } else { b"{{{\n".to_vec() }));
    let job = |name: &str, port: u16, extra: &str| {
        format!(
            "[[replica.scrape_configs]]\njob_name = \"{name}\"\nscrape_timeout = \"1s\"\n{extra}static_configs = [{{ targets = [\"127.0.0.1:{port}\"] }}]\n"
        )
    };
    let jobs = [
        job("refused", refused, ""),
        job("hanging", hanging, ""),
        job("garbage", garbage, ""),
        job("huge", huge, "body_size_limit = \"1KB\"\n"),
        job("many", many, "sample_limit = 2\n"),
        job("flaky", flaky, ""),
    ]
    .concat();
    let obsd = Obsd::start(
        "replica",
        &replica_config(&format!("[replica.global]\nscrape_interval = \"1s\"\n{jobs}"), ""),
    );
    let expected = [
        ("refused", "connect"),
        ("hanging", "deadline exceeded"),
        ("garbage", "line 1"),
        ("huge", "body size limit exceeded"),
        ("many", "sample limit exceeded"),
        ("flaky", "line 1"),
    ];
    let mut last = serde_json::Value::Null;
    wait_until("every broken target to be down", Duration::from_secs(30), || {
        let (_, body) = get(&obsd.url("replica", "/api/v1/targets"));
        last = serde_json::from_str(&body).unwrap();
        let active = last["data"]["activeTargets"].as_array().unwrap();
        expected
            .iter()
            .all(|(job, _)| active.iter().any(|t| t["scrapePool"] == *job && t["health"] == "down"))
    });
    for (job, needle) in expected {
        let t = last["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["scrapePool"] == job)
            .unwrap();
        let err = t["lastError"].as_str().unwrap();
        assert!(err.contains(needle), "{job}: lastError {err:?} lacks {needle:?}");
    }
    let ups = federate(&obsd, "up");
    assert_eq!(ups.len(), 6);
    assert!(ups.values().all(|v| *v == 0.0), "{ups:?}");
    // The flaky target's series was scraped, then ended with a staleness marker.
    assert!(federate(&obsd, "flaky_metric").is_empty(), "a stale series is not federated");
    assert!(
        federate(&obsd, "{job=\"many\"}").keys().all(|l| l["__name__"] != "a"),
        "nothing from a scrape over sample_limit"
    );
    // The marker itself is in the store, bit for bit.
    let mut obsd = obsd;
    obsd.signal(libc::SIGTERM);
    assert!(obsd.wait_exit(Duration::from_secs(20)).is_some());
    let store = obsd::store::Store::open(
        obsd.data_dir().join("replica/tsdb"),
        obsd::store::StoreOptions { background: false, ..Default::default() },
    )
    .unwrap();
    let q = store.querier(0, i64::MAX);
    let series = q.select_all(&[obsd::model::Matcher::equal("__name__", "flaky_metric")]).unwrap();
    let samples = &series[0].1;
    assert_eq!(samples[0].1, 42.0);
    assert!(obsd::model::is_stale_nan(samples.last().unwrap().1), "{samples:?}");
}

/// A target that redirects `/metrics` to `/moved`, which serves one series.
fn redirecting_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let _ = if head.starts_with("GET /moved ") {
                let body = "redirected_metric 1\n";
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                write!(
                    stream,
                    "HTTP/1.1 302 Found\r\nLocation: /moved\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            };
        }
    });
    port
}

/// A scrape job's `tls_config` and `follow_redirects` mean what they mean in Prometheus: a
/// certificate valid only for `exporter.test` is accepted with `server_name: exporter.test`
/// and refused without it; a 302 is followed by default and is the target's error with
/// `follow_redirects: false`.
#[test]
fn scrape_tls_server_name_and_redirects_are_honoured() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate_for(certs.path(), "exporter.test");
    let exporter = Obsd::start(
        "exporter",
        &format!(
            "[exporter.listen]\naddress = \"127.0.0.1:0\"\n[exporter.listen.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n"
        ),
    );
    let tls_target = exporter.address("exporter").to_string();
    let redirecting = format!("127.0.0.1:{}", redirecting_target());
    let job = |name: &str, target: &str, extra: &str| {
        format!(
            "[[replica.scrape_configs]]\njob_name = \"{name}\"\n{extra}static_configs = [{{ targets = [\"{target}\"] }}]\n"
        )
    };
    let jobs = [
        job(
            "named",
            &tls_target,
            &format!(
                "scheme = \"https\"\ntls_config = {{ ca_file = {cert:?}, server_name = \"exporter.test\" }}\n"
            ),
        ),
        job("unnamed", &tls_target, &format!("scheme = \"https\"\ntls_config = {{ ca_file = {cert:?} }}\n")),
        job("follow", &redirecting, ""),
        job("no_follow", &redirecting, "follow_redirects = false\n"),
    ]
    .concat();
    let obsd = Obsd::start(
        "replica",
        &replica_config(&format!("[replica.global]\nscrape_interval = \"1s\"\n{jobs}"), ""),
    );
    let health = |pool: &str| -> (String, String) {
        let (_, body) = get(&obsd.url("replica", "/api/v1/targets"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["scrapePool"] == pool)
            .map(|t| {
                (t["health"].as_str().unwrap().to_string(), t["lastError"].as_str().unwrap().to_string())
            })
            .unwrap_or_default()
    };
    wait_until("every target scraped", Duration::from_secs(30), || {
        ["named", "unnamed", "follow", "no_follow"]
            .iter()
            .all(|p| health(p).0 != "unknown" && !health(p).0.is_empty())
    });
    assert_eq!(health("named"), ("up".to_string(), String::new()));
    let (state, error) = health("unnamed");
    assert_eq!(state, "down");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(health("follow"), ("up".to_string(), String::new()));
    assert_eq!(federate(&obsd, "redirected_metric").len(), 1);
    let (state, error) = health("no_follow");
    assert_eq!(state, "down");
    assert!(error.contains("302"), "{error}");
}

#[test]
fn prometheus_remote_writes_into_obsd() {
    let obsd = Obsd::start("replica", &replica_config("", ""));
    let prom = prometheus(
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prom\n    static_configs:\n      - targets: ['localhost:PROMPORT']\nremote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n",
            obsd.address("replica")
        )
        .replace("PROMPORT", "9"),
        &[],
    );
    // Prometheus scrapes its own job (pointing at a closed port gives `up 0` series too).
    wait_until("remote-written samples in obsd", Duration::from_secs(60), || {
        !federate(&obsd, "{job=\"prom\"}").is_empty()
    });
    let ours = federate(&obsd, "up{job=\"prom\"}");
    assert_eq!(ours.len(), 1);
    assert_eq!(*ours.values().next().unwrap(), 0.0);
    let _ = prom;

    // Bad payloads get Prometheus's status codes.
    let client = reqwest::blocking::Client::new();
    let url = obsd.url("replica", "/api/v1/write");
    let status = client.post(&url).body("not snappy").send().unwrap().status().as_u16();
    assert_eq!(status, 400);
    let req = obsd::remote_write::proto::WriteRequest {
        timeseries: vec![obsd::remote_write::proto::TimeSeries {
            labels: vec![obsd::remote_write::proto::Label {
                name: "__name__".into(),
                value: "rw_test".into(),
            }],
            samples: vec![
                obsd::remote_write::proto::Sample { value: 1.0, timestamp: 2_000 },
                obsd::remote_write::proto::Sample { value: 2.0, timestamp: 1_000 },
            ],
            exemplars: vec![],
        }],
        metadata: vec![],
    };
    let status = client.post(&url).body(obsd::remote_write::encode(&req)).send().unwrap().status().as_u16();
    assert_eq!(status, 400, "an out-of-order sample is a 400 so the sender does not retry");
    let disabled = Obsd::start("replica", "[replica.listen]\naddress = \"127.0.0.1:0\"\n");
    let status = client
        .post(disabled.url("replica", "/api/v1/write"))
        .body(obsd::remote_write::encode(&req))
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404);
}

#[test]
fn replica_answers_grafana_shaped_promql_over_its_scraped_data() {
    let app = metrics_app(None);
    let obsd = Obsd::start(
        "replica",
        &replica_config(
            &format!(
                "[replica.global]\nscrape_interval = \"1s\"\n[[replica.scrape_configs]]\njob_name = \"app\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{}\"] }}]\n",
                app.port
            ),
            "",
        ),
    );
    wait_until("the app scraped", Duration::from_secs(30), || {
        federate(&obsd, "up").values().any(|v| *v == 1.0)
    });
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, form: &[(&str, String)]| -> serde_json::Value {
        let resp = client.post(obsd.url("replica", path)).form(form).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        serde_json::from_str(&resp.text().unwrap()).unwrap()
    };
    // Grafana's "Save & test".
    let v = post("/api/v1/query", &[("query", "1+1".into()), ("time", "4".into())]);
    assert_eq!(v["data"]["result"][1], "2");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let v =
        post("/api/v1/query", &[("query", "python_app_requests_total".into()), ("time", format!("{now}"))]);
    assert_eq!(v["data"]["result"][0]["metric"]["job"], "app");
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
    let v = post(
        "/api/v1/query_range",
        &[
            ("query", "up{job=\"app\"}".into()),
            ("start", format!("{}", now - 30.0)),
            ("end", format!("{now}")),
            ("step", "1".into()),
        ],
    );
    assert!(!v["data"]["result"][0]["values"].as_array().unwrap().is_empty());
    let v = post("/api/v1/labels", &[("match[]", "up".into())]);
    assert!(v["data"].as_array().unwrap().iter().any(|l| l == "job"));
    let (_, body) = get(&obsd.url("replica", "/api/v1/label/__name__/values"));
    assert!(body.contains("python_app_request_latency_seconds_bucket"));
    let (_, body) = get(&obsd.url("replica", "/api/v1/metadata?metric=python_app_request_latency_seconds"));
    assert!(body.contains("\"histogram\""), "{body}");
    let (status, body) = get(&obsd.url("replica", "/api/v1/query?query=sum(up"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad_data"));
}

/// Shutdown while a scrape hangs: the scrape is cancelled and the loop's staleness markers
/// reach the store before it closes, instead of being lost (or written after its sync) when
/// the slow target finally answers.
#[test]
fn shutdown_during_a_slow_scrape_keeps_the_staleness_markers() {
    let asked = Arc::new(AtomicUsize::new(0));
    let seen = asked.clone();
    // Answers the first scrape, then hangs (within the scrape timeout) on every later one.
    let slow = fake_target(move |n| {
        seen.store(n + 1, Ordering::SeqCst);
        (n == 0).then(|| b"slow_metric 7\n".to_vec())
    });
    let jobs = format!(
        "[replica.global]\nscrape_interval = \"4s\"\nscrape_timeout = \"4s\"\n[[replica.scrape_configs]]\njob_name = \"slow\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{slow}\"] }}]\n"
    );
    let mut obsd = Obsd::start("replica", &replica_config(&jobs, ""));
    wait_until("the first scrape stored", Duration::from_secs(30), || {
        federate(&obsd, "slow_metric").values().any(|v| *v == 7.0)
    });
    wait_until("the second scrape in flight", Duration::from_secs(30), || asked.load(Ordering::SeqCst) >= 2);
    obsd.signal(libc::SIGTERM);
    assert!(obsd.wait_exit(Duration::from_secs(20)).is_some(), "{}", obsd.log());
    let store = obsd::store::Store::open(
        obsd.data_dir().join("replica/tsdb"),
        obsd::store::StoreOptions { background: false, ..Default::default() },
    )
    .unwrap();
    let q = store.querier(0, i64::MAX);
    for name in ["slow_metric", "up"] {
        let series = q.select_all(&[obsd::model::Matcher::equal("__name__", name)]).unwrap();
        assert_eq!(series.len(), 1, "{name}: {series:?}");
        let samples = &series[0].1;
        assert!(obsd::model::is_stale_nan(samples.last().unwrap().1), "{name} not ended: {samples:?}");
    }
}

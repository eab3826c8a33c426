//! The federation role end to end on loopback, with real processes: obsd replicas scraping an
//! obsd exporter, a prometheus_client Flask app under load and balancer#2's own metrics; obsd
//! balancers in front of the replicas and of the federation; Debian's victoria-metrics and a
//! second obsd as remote-write receivers.

mod common;

use common::{Obsd, Peer, free_port, get, metrics_app, peer, url_encode, wait_port, wait_until};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const INTERVAL_S: f64 = 1.0;

fn victoria_metrics(port: u16, dir: tempfile::TempDir) -> Peer {
    #[allow(clippy::zombie_processes)] // reaped in Peer's Drop
    let child = Command::new(peer("victoria-metrics", "victoria-metrics"))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", dir.path().join("vm").display()))
        // Keep every raw sample so its answer can equal obsd's sample for sample.
        .arg("-dedup.minScrapeInterval=0s")
        .arg("-search.latencyOffset=0s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start victoria-metrics");
    wait_port(port, "victoria-metrics");
    Peer { child, port, _dir: dir }
}

/// `GET {base}/api/v1/query?query=…[&time=…]`, the `data.result` array.
fn query(base: &str, promql: &str, time: Option<f64>) -> Vec<Value> {
    let mut url = format!("{base}/api/v1/query?query={}", url_encode(promql));
    if let Some(t) = time {
        url.push_str(&format!("&time={t:.3}"));
    }
    let (status, body) = get(&url);
    assert_eq!(status, 200, "{url}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Raw samples of a range selector as (t seconds, value) per series, keyed by labels.
fn raw_samples(base: &str, selector: &str, time: f64) -> Vec<(Value, Vec<(f64, f64)>)> {
    query(base, selector, Some(time))
        .into_iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().parse::<f64>().unwrap()))
                .collect();
            (s["metric"].clone(), points)
        })
        .collect()
}

fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn exporter() -> Obsd {
    Obsd::start("exporter", "[exporter.listen]\naddress = \"127.0.0.1:0\"\n")
}

/// A replica on a fixed port (so a restart keeps its balancer entry), scraping the exporter,
/// the app and, when given, balancer#2's own /metrics — as the seed's replicas do.
fn replica_config(port: u16, name: &str, exporter: &str, app: u16, balancer_metrics: Option<u16>) -> String {
    let mut c = format!(
        "[replica]\n[replica.listen]\naddress = \"127.0.0.1:{port}\"\n[replica.global]\nscrape_interval = \"1s\"\nexternal_labels = {{ prometheus_instance = \"{name}\" }}\n\
         [[replica.scrape_configs]]\njob_name = \"node\"\nstatic_configs = [{{ targets = [\"{exporter}\"] }}]\n\
         [[replica.scrape_configs]]\njob_name = \"app\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{app}\"] }}]\n"
    );
    if let Some(b) = balancer_metrics {
        c.push_str(&format!(
            "[[replica.scrape_configs]]\njob_name = \"haproxy\"\nstatic_configs = [{{ targets = [\"127.0.0.1:{b}\"] }}]\n"
        ));
    }
    c
}

/// An obsd balancer: one HTTP frontend on a free port, leastconn, HTTP checks on `check`.
fn balancer_config(stats_port: u16, backend: &str, check: &str, servers: &[(&str, String)]) -> String {
    let mut c = format!(
        "[balancer]\n[balancer.listen]\naddress = \"127.0.0.1:{stats_port}\"\n[balancer.defaults]\nretries = 3\nredispatch = true\ntimeout_connect = \"1s\"\n\
         [[balancer.frontends]]\nname = \"frontend\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"{backend}\"\n\
         [[balancer.backends]]\nname = \"{backend}\"\nbalance = \"leastconn\"\nhttpchk = {{ method = \"GET\", path = \"{check}\" }}\n\
         default_server = {{ inter = \"500ms\", fall = 2, rise = 3 }}\n"
    );
    for (name, addr) in servers {
        c.push_str(&format!("[[balancer.backends.servers]]\nname = \"{name}\"\naddress = \"{addr}\"\n"));
    }
    c
}

fn federation_config(scrape: &str, extra: &str) -> String {
    format!(
        "[federation]\n{extra}[federation.listen]\naddress = \"127.0.0.1:0\"\n[federation.global]\nscrape_interval = \"1s\"\n{scrape}"
    )
}

fn federate_job(target: &str) -> String {
    format!(
        "[[federation.scrape_configs]]\njob_name = \"federate\"\nhonor_labels = true\nmetrics_path = \"/federate\"\n\
         params = {{ \"match[]\" = ['{{__name__=~\".+\"}}'] }}\nstatic_configs = [{{ targets = [\"{target}\"] }}]\n"
    )
}

const REQUESTS: &str = "python_app_requests_total";

/// The request counter's raw samples in the federation: exactly one series, no replica
/// label, no gap longer than three scrape intervals (plus scheduling slack), never decreasing,
/// and a rate over every 10 s window near the average: no spike or dip from two replicas.
fn check_request_series(base: &str, from: f64, to: f64, what: &str) {
    let window = (to - from).ceil() as u64;
    let series = raw_samples(base, &format!("{REQUESTS}[{window}s]"), to);
    assert_eq!(series.len(), 1, "{what}: one series per identity: {series:?}");
    let (labels, points) = &series[0];
    assert!(labels.get("prometheus_instance").is_none(), "{what}: replica label dropped: {labels}");
    assert!(
        points.len() as f64 >= (to - from) / INTERVAL_S / 2.0,
        "{what}: too few samples: {}",
        points.len()
    );
    let mut max_gap: f64 = 0.0;
    for w in points.windows(2) {
        max_gap = max_gap.max(w[1].0 - w[0].0);
        assert!(w[1].1 >= w[0].1, "{what}: counter went backwards at {:?} -> {:?}", w[0], w[1]);
    }
    // Dedup switches leader only when the other replica is ahead by failover_timeout, so two
    // intervals between kept samples are normal; one more, plus a second, is slack for a
    // loaded CI machine. A lost replica that left a hole would show several seconds.
    assert!(max_gap <= 3.0 * INTERVAL_S + 1.0, "{what}: gap of {max_gap:.3}s in {points:?}");
    let (first, last) = (points[0], points[points.len() - 1]);
    let average = (last.1 - first.1) / (last.0 - first.0);
    assert!(average > 5.0, "{what}: the app's load is visible ({average:.1}/s)");
    let mut start = 0;
    for end in 0..points.len() {
        if points[end].0 - points[start].0 >= 10.0 {
            let rate = (points[end].1 - points[start].1) / (points[end].0 - points[start].0);
            assert!(
                rate > average * 0.5 && rate < average * 1.6,
                "{what}: rate {rate:.1}/s over [{}, {}] vs average {average:.1}/s",
                points[start].0,
                points[end].0
            );
            start = end;
        }
    }
}

#[test]
fn seed_chain_with_ha_failover() {
    let app = metrics_app(Some(20));
    let exp = exporter();
    let (r1_port, r2_port, b2_stats) = (free_port(), free_port(), free_port());
    let exporter_addr = exp.address("exporter").to_string();
    let r1_config = replica_config(r1_port, "replica-1", &exporter_addr, app.port, Some(b2_stats));
    let r1 = Obsd::start("replica", &r1_config);
    let _r2 = Obsd::start(
        "replica",
        &replica_config(r2_port, "replica-2", &exporter_addr, app.port, Some(b2_stats)),
    );
    let b2 = Obsd::start(
        "balancer",
        &balancer_config(
            b2_stats,
            "prometheus_backends",
            "/-/ready",
            &[("replica1", format!("127.0.0.1:{r1_port}")), ("replica2", format!("127.0.0.1:{r2_port}"))],
        ),
    );
    let fed = Obsd::start(
        "federation",
        &federation_config(&federate_job(&b2.address("frontend.frontend").to_string()), ""),
    );
    let b1 = Obsd::start(
        "balancer",
        &balancer_config(
            free_port(),
            "federation_backends",
            "/",
            &[("federation", fed.address("federation").to_string())],
        ),
    );
    let grafana = format!("http://{}", b1.address("frontend.frontend"));
    let fed_base = fed.url("federation", "");

    // The seed's five panels, through balancer#1.
    let panels = [
        "histogram_quantile(0.95, rate(python_app_request_latency_seconds_bucket[1m]))",
        "rate(python_app_requests_total[1m])",
        "haproxy_backend_sessions_total{backend=\"prometheus_backends\"}",
        "haproxy_server_up{backend=\"prometheus_backends\"}",
        "sum by (server) (rate(haproxy_server_sessions_total[5m]))",
    ];
    wait_until("every seed panel to have data through balancer#1", Duration::from_secs(60), || {
        panels.iter().all(|p| !query(&grafana, p, None).is_empty())
    });
    let up = query(&grafana, "haproxy_server_up{backend=\"prometheus_backends\"}", None);
    assert_eq!(up.len(), 2, "one series per server, replica label dropped: {up:?}");
    assert!(up.iter().all(|s| s["metric"].get("prometheus_instance").is_none()));
    let p95 = query(&grafana, panels[0], None);
    assert!(
        p95.iter().any(|s| s["value"][1].as_str().unwrap().parse::<f64>().is_ok_and(|v| v > 0.0 && v < 1.0)),
        "{p95:?}"
    );
    let load = query(&grafana, "sum by (server) (rate(haproxy_server_sessions_total[5m]))", None);
    assert_eq!(load.len(), 2, "load spread over both replicas: {load:?}");

    // Steady state, then SIGKILL replica-1 mid-run and bring it back on the same data dir.
    let started = now_s();
    std::thread::sleep(Duration::from_secs(12));
    r1.signal(libc::SIGKILL);
    std::thread::sleep(Duration::from_secs(12));
    let _r1 = r1.restart(&["--role", "replica"], true);
    std::thread::sleep(Duration::from_secs(15));
    let end = now_s() - 2.0;
    check_request_series(&fed_base, started, end, "through balancer#2 with a replica killed and restarted");
    // Every federated series is there once: no series keeps a replica label, so no identity
    // has two copies, and the federation has as many app series as one replica.
    let labelled = query(&fed_base, "{prometheus_instance!=\"\"}", None);
    assert!(labelled.is_empty(), "series with a replica label: {labelled:?}");
    let app_series = query(&fed_base, "{job=\"app\"}", None).len();
    let replica_series = query(&format!("http://127.0.0.1:{r2_port}"), "{job=\"app\"}", None).len();
    assert_eq!(app_series, replica_series, "as many app series as one replica has");
    let (_, metrics) = get(&fed.url("federation", "/metrics"));
    assert!(metrics.contains("obsd_federation_dedup_samples_accepted_total"), "{metrics}");
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn fan_out_and_remote_write_through_an_outage() {
    let app = metrics_app(Some(20));
    let exp = exporter();
    let exporter_addr = exp.address("exporter").to_string();
    let (r1_port, r2_port) = (free_port(), free_port());
    let _r1 = Obsd::start("replica", &replica_config(r1_port, "replica-1", &exporter_addr, app.port, None));
    let r2 = Obsd::start("replica", &replica_config(r2_port, "replica-2", &exporter_addr, app.port, None));
    let vm_port = free_port();
    let vm = victoria_metrics(vm_port, tempfile::tempdir().unwrap());
    let receiver_port = free_port();
    let receiver_config = format!(
        "[replica]\nremote_write_receiver = true\n[replica.listen]\naddress = \"127.0.0.1:{receiver_port}\"\n"
    );
    let receiver = Obsd::start("replica", &receiver_config);
    let fed = Obsd::start(
        "federation",
        &federation_config(
            "",
            &format!(
                "fan_out = {{ replicas = [\"127.0.0.1:{r1_port}\", \"127.0.0.1:{r2_port}\"], match_selectors = ['{{job=~\"app|node\"}}'] }}\n\
                 [[federation.remote_write]]\nname = \"vm\"\nurl = \"http://127.0.0.1:{vm_port}/api/v1/write\"\nshards = 2\nmax_backoff = \"1s\"\n\
                 [[federation.remote_write]]\nname = \"obsd\"\nurl = \"http://127.0.0.1:{receiver_port}/api/v1/write\"\nmax_backoff = \"1s\"\n"
            ),
        ),
    );
    let fed_base = fed.url("federation", "");
    let receiver_base = format!("http://127.0.0.1:{receiver_port}");
    wait_until("the receiver to get federated samples", Duration::from_secs(40), || {
        !query(&receiver_base, REQUESTS, None).is_empty()
    });
    let started = now_s();
    std::thread::sleep(Duration::from_secs(6));

    // Fan-out: one replica down leaves no gap.
    drop(r2);
    // Outage of both receivers (stopped cleanly: a receiver's own crash window is not the
    // sender's loss); the federation queues on disk.
    let vm_dir = {
        let mut vm = vm;
        unsafe { libc::kill(vm.child.id() as i32, libc::SIGTERM) };
        let _ = vm.child.wait();
        std::mem::replace(&mut vm._dir, tempfile::tempdir().unwrap())
    };
    receiver.signal(libc::SIGTERM);
    let outage_start = now_s();
    std::thread::sleep(Duration::from_secs(10));
    let (_, metrics) = get(&fed.url("federation", "/metrics"));
    assert!(metric_value(&metrics, "obsd_remote_write_pending_samples") > 0.0, "{metrics}");
    assert!(metric_value(&metrics, "obsd_remote_write_samples_failed_total") > 0.0, "{metrics}");
    let outage_end = now_s();
    let _vm = victoria_metrics(vm_port, vm_dir);
    let _receiver = receiver.restart(&["--role", "replica"], false);
    std::thread::sleep(Duration::from_secs(4));
    wait_until("the queues to drain", Duration::from_secs(40), || {
        let (_, m) = get(&fed.url("federation", "/metrics"));
        metric_value(&m, "obsd_remote_write_pending_samples") == 0.0
    });
    let end = now_s() - 3.0;
    check_request_series(&fed_base, started, end, "fan-out with one replica stopped");
    let (_, metrics) = get(&fed.url("federation", "/metrics"));
    assert_eq!(metric_value(&metrics, "obsd_remote_write_samples_dropped_total"), 0.0, "{metrics}");
    assert!(metric_value(&metrics, "obsd_remote_write_highest_sent_timestamp_seconds") > outage_end);

    // What was written during the outage arrived; the receivers answer as the federation does.
    let window = (end - started).ceil() as u64;
    let selector = format!("{REQUESTS}[{window}s]");
    let ours = raw_samples(&fed_base, &selector, end);
    let during: Vec<(f64, f64)> =
        ours[0].1.iter().copied().filter(|(t, _)| *t > outage_start && *t < outage_end).collect();
    assert!(during.len() >= 5, "samples federated during the outage: {during:?}");
    let theirs = raw_samples(&receiver_base, &selector, end);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(ours[0].1, theirs[0].1, "obsd receiver's samples equal the federation's");
    assert_eq!(ours[0].0, theirs[0].0);
    let vm_base = format!("http://127.0.0.1:{vm_port}");
    wait_until("victoria-metrics to show the samples", Duration::from_secs(20), || {
        raw_samples(&vm_base, &selector, end).first().is_some_and(|s| s.1.len() == ours[0].1.len())
    });
    let vm_answer = raw_samples(&vm_base, &selector, end);
    assert_eq!(vm_answer[0].1, ours[0].1, "victoria-metrics' samples equal the federation's");
    let instant = |base: &str| {
        query(base, &format!("sum(increase({REQUESTS}[30s]))"), Some(end))[0]["value"][1].clone()
    };
    assert_eq!(instant(&fed_base), instant(&receiver_base));
}

/// The federation's rule results go to its remote-write queues too, as Prometheus remote-writes
/// rule output: the receiver holds the recorded series sample for sample.
#[test]
fn federation_rule_results_are_remote_written() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: fed\n    interval: 1s\n    rules:\n      - record: fed:answer\n        expr: vector(42)\n        labels:\n          source: federation\n",
    )
    .unwrap();
    let receiver_port = free_port();
    let _receiver = Obsd::start(
        "replica",
        &format!(
            "[replica]\nremote_write_receiver = true\n[replica.listen]\naddress = \"127.0.0.1:{receiver_port}\"\n"
        ),
    );
    let fed = Obsd::start(
        "federation",
        &federation_config(
            "",
            &format!(
                "rule_files = [{:?}]\n[[federation.remote_write]]\nname = \"receiver\"\nurl = \"http://127.0.0.1:{receiver_port}/api/v1/write\"\nmax_backoff = \"1s\"\n",
                rules.display().to_string()
            ),
        ),
    );
    let receiver_base = format!("http://127.0.0.1:{receiver_port}");
    let fed_base = fed.url("federation", "");
    wait_until("the recorded series at the receiver", Duration::from_secs(30), || {
        raw_samples(&receiver_base, "fed:answer[1m]", now_s()).first().is_some_and(|s| s.1.len() >= 3)
    });
    wait_until("the queue drained", Duration::from_secs(30), || {
        let (_, m) = get(&fed.url("federation", "/metrics"));
        metric_value(&m, "obsd_remote_write_pending_samples") == 0.0
    });
    let end = now_s() - 2.0;
    let ours = raw_samples(&fed_base, "fed:answer[1m]", end);
    let theirs = raw_samples(&receiver_base, "fed:answer[1m]", end);
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].0["source"], "federation");
    assert_eq!(theirs, ours, "the receiver's recorded samples equal the federation's");
}

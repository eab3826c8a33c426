//! The notifier against the real Alertmanager 0.25 (Debian's prometheus-alertmanager): alerts
//! arrive with their labels, annotations and times, the webhook gets one notification per
//! group, a resolved alert resolves, HA replicas that drop their replica label make one alert,
//! failing Alertmanagers cost errors but not delivery to the others, and TLS with
//! `server_name` and basic auth work against Alertmanager's own web config; two obsd replicas
//! evaluating one rule file make one alert and one notification.
//!
//! Every wait polls up to a generous deadline; nothing asserts how fast anything is.

mod common;

use common::{Recorder as Listener, free_port, peer, wait_port, wait_until};
use obsd::config::alerting::AlertingSettings;
use obsd::config::prometheus::{PrometheusFile, parse_prometheus_yaml};
use obsd::model::Labels;
use obsd::rules::notifier::{Alert, Notifier};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DEADLINE: Duration = Duration::from_secs(60);

fn settings(yaml: &str) -> AlertingSettings {
    let file: PrometheusFile = parse_prometheus_yaml(yaml).unwrap();
    obsd::config::alerting::resolve(file.alerting.as_ref()).unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn rfc3339(ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn alert(pairs: &[(&str, &str)], annotations: &[(&str, &str)], starts_at_ms: i64, ends_at_ms: i64) -> Alert {
    Alert {
        labels: Labels::from_pairs(pairs.iter().copied()),
        annotations: Labels::from_pairs(annotations.iter().copied()),
        starts_at_ms,
        ends_at_ms: Some(ends_at_ms),
        generator_url: "http://obsd:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1".into(),
    }
}

/// A real Alertmanager on a free port with the clustering off, routing everything to a
/// webhook grouped by alertname (group_wait 1s), killed on drop.
struct Alertmanager {
    child: Child,
    port: u16,
    scheme: &'static str,
    webhook: Listener,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    fn start() -> Alertmanager {
        Self::start_with(None, |_| None)
    }

    /// `web_config` writes Alertmanager's `--web.config.file` (TLS, basic auth) into the dir.
    fn start_with(
        client: Option<reqwest::blocking::Client>,
        web_config: impl FnOnce(&Path) -> Option<String>,
    ) -> Self {
        let binary = peer("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::tempdir().unwrap();
        let webhook = Listener::start(Some(200));
        let config = format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            webhook.port
        );
        std::fs::write(dir.path().join("am.yml"), config).unwrap();
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--config.file={}", dir.path().join("am.yml").display()));
        let scheme = match web_config(dir.path()) {
            Some(text) => {
                let path = dir.path().join("web.yml");
                std::fs::write(&path, text).unwrap();
                command.arg(format!("--web.config.file={}", path.display()));
                "https"
            }
            None => "http",
        };
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start alertmanager");
        let am = Alertmanager { child, port, scheme, webhook, _dir: dir };
        wait_port(port, "alertmanager");
        let client = client.unwrap_or_else(http);
        wait_until("alertmanager ready", DEADLINE, || {
            client
                .get(format!("{scheme}://127.0.0.1:{port}/-/ready"))
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        am
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/api/v2/alerts", self.scheme, self.port)
    }

    /// `GET /api/v2/alerts`: the active alerts.
    fn alerts(&self) -> Vec<Value> {
        let body = http()
            .get(format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .send()
            .unwrap()
            .text()
            .unwrap();
        serde_json::from_str::<Vec<Value>>(&body).unwrap()
    }

    fn alert_named(&self, name: &str) -> Vec<Value> {
        self.alerts().into_iter().filter(|a| a["labels"]["alertname"] == name).collect()
    }

    /// The webhook's notifications for one group (`groupLabels.alertname`).
    fn notifications(&self, alertname: &str) -> Vec<Value> {
        self.webhook.json().into_iter().filter(|n| n["groupLabels"]["alertname"] == alertname).collect()
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A notifier running on its own runtime until dropped.
struct Running {
    notifier: Arc<Notifier>,
    stop: tokio::sync::watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Running {
    fn start(settings: &AlertingSettings, external: &[(&str, &str)], drop_labels: &[&str]) -> Running {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let external: Vec<(String, String)> =
            external.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let drop_labels: Vec<String> = drop_labels.iter().map(|s| s.to_string()).collect();
        let notifier = runtime.block_on(async { Notifier::new(settings, &external, &drop_labels) });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        runtime.spawn(notifier.clone().run(stopped));
        Running { notifier, stop, runtime: Some(runtime) }
    }

    fn metric(&self, line_start: &str) -> f64 {
        let mut out = String::new();
        self.notifier.render_metrics(&mut out);
        out.lines()
            .find_map(|l| l.strip_prefix(line_start).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in:\n{out}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn static_set(targets: &[String], extra: &str) -> String {
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!("    - static_configs: [{{targets: [{}]}}]\n{extra}", quoted.join(", "))
}

#[test]
fn alerts_reach_alertmanager_and_the_webhook_once_per_group_and_resolve() {
    let am = Alertmanager::start();
    let s = settings(&format!("alerting:\n  alertmanagers:\n{}", static_set(&[am.address()], "")));
    let running = Running::start(&s, &[("prometheus_instance", "replica-1")], &[]);
    // A fresh start: Alertmanager flushes a group at once for an alert that started more than
    // group_wait ago, which could split one POST's alerts over two notifications.
    let start = now_ms();
    let end = now_ms() + 240_000;
    running.notifier.send(vec![
        alert(
            &[("alertname", "DiskFull"), ("instance", "a")],
            &[("summary", "disk a <full> & \"hot\"")],
            start,
            end,
        ),
        alert(&[("alertname", "DiskFull"), ("instance", "b")], &[], start, end),
        alert(&[("alertname", "CpuHot"), ("instance", "a")], &[("summary", "cpu")], start, end),
    ]);
    wait_until("three alerts in Alertmanager", DEADLINE, || am.alerts().len() == 3);
    let disk_a = am
        .alert_named("DiskFull")
        .into_iter()
        .find(|a| a["labels"]["instance"] == "a")
        .expect("DiskFull on a");
    assert_eq!(disk_a["labels"]["prometheus_instance"], "replica-1", "{disk_a}");
    assert_eq!(disk_a["annotations"]["summary"], "disk a <full> & \"hot\"");
    assert_eq!(disk_a["startsAt"], rfc3339(start));
    assert_eq!(disk_a["endsAt"], rfc3339(end));
    assert_eq!(disk_a["generatorURL"], "http://obsd:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    assert_eq!(disk_a["status"]["state"], "active");

    // One notification per group, holding that group's alerts.
    wait_until("both groups notified", DEADLINE, || {
        !am.notifications("DiskFull").is_empty() && !am.notifications("CpuHot").is_empty()
    });
    let disk = am.notifications("DiskFull");
    assert_eq!(disk[0]["status"], "firing");
    assert_eq!(disk[0]["alerts"].as_array().unwrap().len(), 2, "{disk:?}");
    // Two group_intervals later nothing more has come: nothing changed, repeat_interval is 1h.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!((am.notifications("DiskFull").len(), am.notifications("CpuHot").len()), (1, 1));

    // Resolved: endsAt in the past.
    running.notifier.send(vec![alert(
        &[("alertname", "CpuHot"), ("instance", "a")],
        &[],
        start,
        now_ms() - 1000,
    )]);
    wait_until("CpuHot resolved in Alertmanager", DEADLINE, || am.alert_named("CpuHot").is_empty());
    wait_until("the resolved notification", DEADLINE, || {
        am.notifications("CpuHot").iter().any(|n| n["status"] == "resolved")
    });
    assert_eq!(am.alert_named("DiskFull").len(), 2);

    let sent = format!("prometheus_notifications_sent_total{{alertmanager=\"{}\"}}", am.url());
    wait_until("4 alerts counted as sent", DEADLINE, || running.metric(&sent) == 4.0);
    assert_eq!(
        running.metric(&format!("prometheus_notifications_errors_total{{alertmanager=\"{}\"}}", am.url())),
        0.0
    );
    assert_eq!(running.metric("prometheus_notifications_dropped_total"), 0.0);
    assert_eq!(running.metric("prometheus_notifications_alertmanagers_discovered"), 1.0);
}

#[test]
fn ha_replicas_dropping_their_replica_label_make_one_alert() {
    let am = Alertmanager::start();
    let s = settings(&format!("alerting:\n  alertmanagers:\n{}", static_set(&[am.address()], "")));
    let r1 =
        Running::start(&s, &[("prometheus_instance", "replica-1"), ("dc", "eu")], &["prometheus_instance"]);
    let r2 =
        Running::start(&s, &[("prometheus_instance", "replica-2"), ("dc", "eu")], &["prometheus_instance"]);
    let start = now_ms() - 30_000;
    let end = now_ms() + 240_000;
    // The replicas evaluated a moment apart: their times differ slightly.
    r1.notifier.send(vec![alert(&[("alertname", "Deduped")], &[], start, end)]);
    r2.notifier.send(vec![alert(&[("alertname", "Deduped")], &[], start + 15, end + 15)]);
    // Without drop_labels the same alert from both replicas stays two alerts.
    let plain1 = Running::start(&s, &[("prometheus_instance", "replica-1")], &[]);
    let plain2 = Running::start(&s, &[("prometheus_instance", "replica-2")], &[]);
    plain1.notifier.send(vec![alert(&[("alertname", "Twice")], &[], start, end)]);
    plain2.notifier.send(vec![alert(&[("alertname", "Twice")], &[], start, end)]);
    wait_until("both sent", DEADLINE, || {
        !am.alert_named("Twice").is_empty() && !am.alert_named("Deduped").is_empty()
    });
    let sent = |r: &Running| {
        r.metric(&format!("prometheus_notifications_sent_total{{alertmanager=\"{}\"}}", am.url()))
    };
    wait_until("every notifier sent", DEADLINE, || {
        [&r1, &r2, &plain1, &plain2].iter().all(|r| sent(r) == 1.0)
    });
    let deduped = am.alert_named("Deduped");
    assert_eq!(deduped.len(), 1, "{deduped:?}");
    assert_eq!(deduped[0]["labels"], serde_json::json!({"alertname": "Deduped", "dc": "eu"}));
    assert_eq!(am.alert_named("Twice").len(), 2);
}

#[test]
fn failing_alertmanagers_count_errors_and_the_others_still_receive() {
    let am = Alertmanager::start();
    let broken = Listener::start(Some(500));
    let silent = Listener::start(None);
    let s = settings(&format!(
        "alerting:\n  alertmanagers:\n{}{}",
        static_set(
            &[format!("127.0.0.1:{}", broken.port), format!("127.0.0.1:{}", silent.port)],
            "      timeout: 1s\n"
        ),
        static_set(&[am.address()], "")
    ));
    let running = Running::start(&s, &[], &[]);
    let (active, dropped) = running.notifier.alertmanagers();
    assert_eq!(active, vec![broken.alerts_url(), silent.alerts_url(), am.url()]);
    assert!(dropped.is_empty());
    let end = now_ms() + 240_000;
    running.notifier.send(vec![alert(&[("alertname", "First")], &[], now_ms(), end)]);
    wait_until("First in Alertmanager", DEADLINE, || am.alert_named("First").len() == 1);
    let errors = |url: &str| {
        running.metric(&format!("prometheus_notifications_errors_total{{alertmanager=\"{url}\"}}"))
    };
    wait_until("both failures counted", DEADLINE, || {
        errors(&broken.alerts_url()) == 1.0 && errors(&silent.alerts_url()) == 1.0
    });
    assert_eq!(broken.json().len(), 1, "the 500 one got the batch too");
    // The next batch goes out although one Alertmanager never answered the first.
    running.notifier.send(vec![alert(&[("alertname", "Second")], &[], now_ms(), end)]);
    wait_until("Second in Alertmanager", DEADLINE, || am.alert_named("Second").len() == 1);
    wait_until("second failures counted", DEADLINE, || errors(&silent.alerts_url()) == 2.0);
    assert_eq!(errors(&am.url()), 0.0);
    assert_eq!(running.metric("prometheus_notifications_dropped_total"), 0.0);
    let count =
        format!("prometheus_notifications_latency_seconds_count{{alertmanager=\"{}\"}}", silent.alerts_url());
    assert_eq!(running.metric(&count), 2.0);
}

#[test]
fn tls_server_name_and_basic_auth_against_alertmanager_web_config() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate_for(certs.path(), "alertmanager.test");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let probe = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .danger_accept_invalid_certs(true)
        .default_headers({
            let mut h = reqwest::header::HeaderMap::new();
            let token = base64_basic("obsd", "s3cret");
            h.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse().unwrap());
            h
        })
        .build()
        .unwrap();
    let web = format!(
        "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  obsd: '{hash}'\n"
    );
    let am = Alertmanager::start_with(Some(probe.clone()), |_| Some(web));
    let set = |server_name: &str, password: &str| {
        static_set(
            &[am.address()],
            &format!(
                "      scheme: https\n      basic_auth: {{username: obsd, password: {password}}}\n      tls_config: {{ca_file: {cert}{server_name}}}\n"
            ),
        )
    };
    let good = Running::start(
        &settings(&format!(
            "alerting:\n  alertmanagers:\n{}",
            set(", server_name: alertmanager.test", "s3cret")
        )),
        &[],
        &[],
    );
    let wrong_name =
        Running::start(&settings(&format!("alerting:\n  alertmanagers:\n{}", set("", "s3cret"))), &[], &[]);
    let wrong_password = Running::start(
        &settings(&format!(
            "alerting:\n  alertmanagers:\n{}",
            set(", server_name: alertmanager.test", "nope")
        )),
        &[],
        &[],
    );
    let end = now_ms() + 240_000;
    for (r, name) in [(&good, "OverTls"), (&wrong_name, "WrongName"), (&wrong_password, "WrongPassword")] {
        r.notifier.send(vec![alert(&[("alertname", name)], &[], now_ms(), end)]);
    }
    let alerts = || -> Vec<Value> {
        let body = probe.get(am.url()).send().unwrap().text().unwrap();
        serde_json::from_str(&body).unwrap()
    };
    wait_until("the alert over TLS", DEADLINE, || {
        alerts().iter().any(|a| a["labels"]["alertname"] == "OverTls")
    });
    let errors = format!("prometheus_notifications_errors_total{{alertmanager=\"{}\"}}", am.url());
    wait_until("the certificate refused without server_name", DEADLINE, || wrong_name.metric(&errors) == 1.0);
    wait_until("the wrong password refused", DEADLINE, || wrong_password.metric(&errors) == 1.0);
    assert_eq!(good.metric(&errors), 0.0);
    let names: Vec<Value> = alerts().iter().map(|a| a["labels"]["alertname"].clone()).collect();
    assert_eq!(names, vec![Value::from("OverTls")]);
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Two obsd replicas evaluating the same rule file, as the seed's HA pair, fed the same data:
/// Alertmanager shows one alert per rule with the templated annotation, and the webhook is
/// notified once per group when it fires and once when it resolves. `PairFirst` resolves with
/// both replicas up; then one replica is killed, which neither resolves nor repeats
/// `PairSecond`, and when its condition clears on the survivor one resolved notification follows.
#[test]
fn two_obsd_replicas_make_one_alert_and_one_notification() {
    let am = Alertmanager::start();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: ha\n    interval: 1s\n    rules:\n      - alert: PairFirst\n        expr: pair_first > 0\n        labels:\n          severity: page\n        annotations:\n          summary: 'value {{ $value }} from {{ $externalLabels.dc }}'\n      - alert: PairSecond\n        expr: pair_second > 0\n",
    )
    .unwrap();
    let start = |name: &str| {
        let yml = dir.path().join(format!("{name}.yml"));
        std::fs::write(
            &yml,
            format!(
                "global:\n  evaluation_interval: 1s\n  external_labels: {{prometheus_instance: {name}, dc: eu}}\nrule_files: [{:?}]\nalerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{}']}}]\n",
                rules.display().to_string(),
                am.address()
            ),
        )
        .unwrap();
        common::Obsd::start(
            "replica",
            &format!(
                "[replica]\nremote_write_receiver = true\nprometheus_config = {:?}\n[replica.listen]\naddress = \"127.0.0.1:0\"\n",
                yml.display().to_string()
            ),
        )
    };
    let r1 = start("replica-1");
    let r2 = start("replica-2");
    // Both conditions hold from now on; each later `set` writes a newer sample to every
    // replica still up, as a scrape of the same target would.
    let set = |replicas: &[&common::Obsd], metric: &'static str, value: f64| {
        let data: Vec<common::Series> =
            vec![(vec![("__name__", metric), ("job", "pair")], vec![(now_ms(), value)])];
        for r in replicas {
            common::remote_write(&r.url("replica", "/api/v1/write"), &data);
        }
    };
    set(&[&r1, &r2], "pair_first", 1.0);
    set(&[&r1, &r2], "pair_second", 1.0);
    let notified =
        |alert: &str, status: &str| am.notifications(alert).iter().filter(|n| n["status"] == status).count();
    wait_until("both alerts in Alertmanager", DEADLINE, || {
        !am.alert_named("PairFirst").is_empty() && !am.alert_named("PairSecond").is_empty()
    });
    wait_until("the webhook notified", DEADLINE, || {
        notified("PairFirst", "firing") > 0 && notified("PairSecond", "firing") > 0
    });
    let both_sent = |o: &common::Obsd| {
        let (_, body) = common::get(&o.url("replica", "/metrics"));
        body.lines().any(|l| l.starts_with("prometheus_notifications_sent_total{") && !l.ends_with(" 0"))
    };
    wait_until("both replicas sent", DEADLINE, || both_sent(&r1) && both_sent(&r2));
    let alerts = am.alert_named("PairFirst");
    assert_eq!(alerts.len(), 1, "one alert for the pair: {alerts:?}");
    assert_eq!(
        alerts[0]["labels"],
        serde_json::json!({"alertname": "PairFirst", "dc": "eu", "job": "pair", "severity": "page"})
    );
    assert_eq!(alerts[0]["annotations"]["summary"], "value 1 from eu");
    let generator = alerts[0]["generatorURL"].as_str().unwrap_or_default();
    assert!(generator.ends_with("/graph?g0.expr=pair_first+%3E+0&g0.tab=1"), "{generator}");
    // /api/v1/alertmanagers names the Alertmanager; /api/v1/alerts the firing alert.
    let (_, ams) = common::get(&r1.url("replica", "/api/v1/alertmanagers"));
    assert!(ams.contains(&am.url()), "{ams}");
    let (_, firing) = common::get(&r1.url("replica", "/api/v1/alerts"));
    assert!(firing.contains("\"state\":\"firing\""), "{firing}");

    // PairFirst clears on both replicas: one resolved notification, not two.
    set(&[&r1, &r2], "pair_first", 0.0);
    wait_until("PairFirst resolved", DEADLINE, || notified("PairFirst", "resolved") > 0);

    // One replica dies: the other keeps PairSecond alive, nothing resolves or repeats.
    drop(r1);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(notified("PairSecond", "firing"), 1, "{:?}", am.notifications("PairSecond"));
    assert_eq!(notified("PairSecond", "resolved"), 0, "{:?}", am.notifications("PairSecond"));
    assert_eq!(am.alert_named("PairSecond").len(), 1);
    assert!(both_sent(&r2));
    // It clears on the survivor: one resolved notification.
    set(&[&r2], "pair_second", 0.0);
    wait_until("PairSecond resolved", DEADLINE, || notified("PairSecond", "resolved") > 0);
    // Alertmanager's group interval is 2 s: anything repeated would show within a few.
    std::thread::sleep(Duration::from_secs(5));
    for alert in ["PairFirst", "PairSecond"] {
        let notes = am.notifications(alert);
        let shape: Vec<&str> = notes.iter().map(|n| n["status"].as_str().unwrap_or_default()).collect();
        assert_eq!(shape, ["firing", "resolved"], "{alert}: {notes:?}");
    }
}

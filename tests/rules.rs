//! Recording and alerting rules against Prometheus 2.42 (Debian's), the same rule file and the
//! same remote-written data in both: recorded series and `ALERTS`/`ALERTS_FOR_STATE` equal
//! sample by sample at the same timestamps, and alert state restored alike after a restart of
//! each; `obsd rules check` and `promtool check rules`
//! agree on a corpus of good and bad files; a broken rule file is refused with file:line and
//! the running rules kept.

mod common;

use common::{Obsd, Peer, Series, free_port, get, peer, remote_write as write, wait_port, wait_until};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn prometheus(dir: &Path, config: &str) -> Peer {
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    prometheus_in(dir, tempfile::tempdir().unwrap(), free_port(), &[])
}

/// Prometheus reading `dir`/prometheus.yml, its TSDB in `data` (kept across a restart).
fn prometheus_in(dir: &Path, data: tempfile::TempDir, port: u16, extra: &[&str]) -> Peer {
    #[allow(clippy::zombie_processes)] // reaped in Peer's Drop
    let child = Command::new(peer("prometheus", "prometheus"))
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", data.path().display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    wait_port(port, "prometheus");
    wait_until("prometheus /-/ready", Duration::from_secs(60), || {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/-/ready"))
            .is_ok_and(|r| r.status().is_success())
    });
    Peer { child, port, _dir: data }
}

/// SIGTERM, a clean exit, and the same Prometheus again on its port and data.
fn restart_prometheus(mut prom: Peer, dir: &Path, extra: &[&str]) -> Peer {
    unsafe {
        libc::kill(prom.child.id() as i32, libc::SIGTERM);
    }
    let status = prom.child.wait().unwrap();
    assert!(status.success(), "prometheus exited with {status}");
    let data = std::mem::replace(&mut prom._dir, tempfile::tempdir().unwrap());
    prometheus_in(dir, data, prom.port, extra)
}

/// Samples by series (the label set's JSON), each `(ms, value as the API prints it)`.
type Samples = BTreeMap<String, Vec<(i64, String)>>;

/// Raw samples of every series `selector` matches over the last `range` before `at_ms`, keyed
/// by label set, from an instant query of a range selector (stale markers are not returned).
fn raw(base: &str, selector: &str, range: &str, at_ms: i64) -> Samples {
    let q = common::url_encode(&format!("{selector}[{range}]"));
    let (status, body) = get(&format!("{base}/api/v1/query?query={q}&time={}", at_ms as f64 / 1000.0));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let points = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().to_string()))
            .collect();
        out.insert(s["metric"].to_string(), points);
    }
    out
}

/// Keeps the samples both sides could have written: from the later of the two first
/// timestamps on (the two processes start a slot or two apart).
fn common_window(a: &Samples, b: &Samples) -> (Samples, Samples) {
    let first = |m: &Samples| m.values().filter_map(|v| v.first().map(|p| p.0)).min();
    let from = first(a).max(first(b)).unwrap_or(i64::MAX);
    let cut = |m: &Samples| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.iter().filter(|p| p.0 >= from).cloned().collect::<Vec<_>>()))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    (cut(a), cut(b))
}

const RULES: &str = r#"groups:
  - name: differential
    interval: 2s
    rules:
      - record: instance:svc_latency:scaled
        expr: svc_latency * 2 + 0.1
      - record: job:svc_up:sum
        expr: sum by (job) (svc_up)
        labels:
          team: sre
      - record: job:svc_up_scaled:sum
        expr: job:svc_up:sum * 10
      - alert: SvcDown
        expr: svc_up == 0
        for: 6s
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }}, {{ $externalLabels.site }})'
      - alert: SvcDownKeep
        expr: svc_up == 0
        keep_firing_for: 5s
"#;

#[test]
fn rules_evaluate_as_prometheus_does_on_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let yml = format!(
        "global:\n  evaluation_interval: 2s\n  scrape_interval: 1h\n  external_labels: {{site: lab}}\nrule_files: [{:?}]\n",
        rules.display().to_string()
    );
    let prom = prometheus(dir.path(), &yml);
    std::fs::write(dir.path().join("obsd-prometheus.yml"), &yml).unwrap();
    let obsd = Obsd::start(
        "replica",
        &format!(
            "[replica]\nremote_write_receiver = true\nprometheus_config = {:?}\n[replica.listen]\naddress = \"127.0.0.1:0\"\n",
            dir.path().join("obsd-prometheus.yml").display().to_string()
        ),
    );
    // Second-aligned data from a minute ago to 70 s ahead: a flapping instance, one that goes
    // stale, one that recovers, and a float gauge. Rules only see samples at or before their
    // evaluation time, so future samples change nothing until their time comes.
    let t0 = now_ms() / 1000 * 1000;
    let secs = |from: i64, to: i64| (from..to).map(move |s| t0 + s * 1000);
    let a: Vec<(i64, f64)> =
        secs(-60, 70).map(|t| (t, if (t0 + 12_000..t0 + 26_000).contains(&t) { 0.0 } else { 1.0 })).collect();
    let mut b: Vec<(i64, f64)> = secs(-60, 30).map(|t| (t, 0.0)).collect();
    b.push((t0 + 30_000, f64::from_bits(STALE_NAN)));
    let c: Vec<(i64, f64)> = secs(-60, 70).map(|t| (t, if t < t0 + 16_000 { 0.0 } else { 1.0 })).collect();
    let d: Vec<(i64, f64)> = secs(-60, 70).map(|t| (t, 0.0)).collect();
    let lat: Vec<(i64, f64)> = secs(-60, 70).map(|t| (t, ((t - t0) / 1000) as f64 * 0.37 + 1e-3)).collect();
    let data: Vec<Series> = vec![
        (vec![("__name__", "svc_up"), ("instance", "a"), ("job", "svc")], a),
        (vec![("__name__", "svc_up"), ("instance", "b"), ("job", "svc")], b),
        (vec![("__name__", "svc_up"), ("instance", "c"), ("job", "svc")], c),
        (vec![("__name__", "svc_up"), ("instance", "d"), ("job", "svc")], d),
        (vec![("__name__", "svc_latency"), ("instance", "a"), ("job", "svc")], lat),
    ];
    let prom_url = format!("http://127.0.0.1:{}", prom.port);
    let obsd_url = obsd.url("replica", "");
    write(&format!("{prom_url}/api/v1/write"), &data);
    write(&format!("{obsd_url}/api/v1/write"), &data);

    let end = t0 + 60_000;
    let wait = Duration::from_millis(u64::try_from(end - now_ms()).unwrap_or(0) + 3_000);
    std::thread::sleep(wait);
    for selector in [
        "instance:svc_latency:scaled",
        "job:svc_up:sum",
        "job:svc_up_scaled:sum",
        "ALERTS",
        "ALERTS_FOR_STATE",
    ] {
        let (p, o) =
            common_window(&raw(&prom_url, selector, "2m", end), &raw(&obsd_url, selector, "2m", end));
        assert!(!p.is_empty(), "Prometheus wrote no {selector}");
        assert_eq!(o, p, "{selector}: obsd (left) and Prometheus (right) differ");
    }
    // The API's view of the rules agrees on health and alert states.
    let states = |url: &str| -> Vec<(String, String, String)> {
        let (_, body) = get(&format!("{url}/api/v1/rules"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["health"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    assert_eq!(states(&obsd_url), states(&prom_url));
    // The alerts with their templated annotations and values agree too.
    let alerts = |url: &str| -> Vec<String> {
        let (_, body) = get(&format!("{url}/api/v1/alerts"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut out: Vec<String> = v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{} {} {} {}", a["labels"], a["annotations"], a["state"], a["value"]))
            .collect();
        out.sort();
        out
    };
    let shown = alerts(&prom_url);
    assert!(shown.iter().any(|a| a.contains("d of svc is down (0, lab)")), "{shown:?}");
    assert_eq!(alerts(&obsd_url), shown);
    let (status, _) = get(&format!("{obsd_url}/api/v1/rules?type=bogus"));
    assert_eq!(status, 400);
}

/// The files under tests/rules/: promtool's verdict (exit status) and obsd's agree on each.
#[test]
fn rules_check_agrees_with_promtool() {
    let promtool = peer("promtool", "prometheus");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut files: Vec<_> = std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 10, "corpus too small: {files:?}");
    for file in files {
        let run = |bin: &Path, args: &[&str]| {
            let out = Command::new(bin).args(args).arg(&file).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        };
        let p = run(&promtool, &["check", "rules"]);
        let o = run(Path::new(common::obsd_binary()), &["rules", "check"]);
        assert_eq!(
            o.0,
            p.0,
            "{}: exit status obsd {:?} promtool {:?}\nobsd: {}\npromtool: {}",
            file.display(),
            o.0,
            p.0,
            o.2,
            p.2
        );
        assert_eq!(o.1, p.1, "{}: stdout", file.display());
        // Every problem promtool places by line:column, obsd places at the same spot.
        let places = |text: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| {
                    l.split(": ")
                        .nth(1)
                        .filter(|p| p.contains(':') && p.chars().all(|c| c.is_ascii_digit() || c == ':'))
                        .map(String::from)
                })
                .collect()
        };
        assert_eq!(
            places(&o.2),
            places(&p.2),
            "{}: positions\nobsd: {}\npromtool: {}",
            file.display(),
            o.2,
            p.2
        );
        let p_fatal = run(&promtool, &["check", "rules", "--lint-fatal"]);
        let o_fatal = run(Path::new(common::obsd_binary()), &["rules", "check", "--lint-fatal"]);
        assert_eq!(o_fatal.0, p_fatal.0, "{}: --lint-fatal exit status", file.display());
    }
}

#[test]
fn a_broken_rule_file_is_refused_and_the_running_rules_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: one\n        expr: vector(1)\n",
    )
    .unwrap();
    let config = format!(
        "[replica]\nrule_files = [{:?}]\n[replica.listen]\naddress = \"127.0.0.1:0\"\n",
        rules.display().to_string()
    );
    let obsd = Obsd::start("replica", &config);
    let base = obsd.url("replica", "");
    let value = |q: &str| -> Option<String> {
        let (_, body) = get(&format!("{base}/api/v1/query?query={}", common::url_encode(q)));
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str().map(String::from)
    };
    wait_until("the recording rule to write", Duration::from_secs(30), || {
        value("one").as_deref() == Some("1")
    });

    std::fs::write(&rules, "groups:\n  - name: g\n    rules:\n      - record: two\n        expr: sum(\n")
        .unwrap();
    let (status, out, err) = {
        let o = Command::new(common::obsd_binary())
            .args(["check-config", "--role", "replica"])
            .arg(&obsd.config_path)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    assert_eq!(status, Some(1), "check-config must refuse a broken rule file: {out}{err}");
    assert!(
        err.contains(&format!(
            "{}: 5:15: group \"g\", rule 1, \"two\": could not parse expression",
            rules.display()
        )),
        "{err}"
    );
    obsd.signal(libc::SIGHUP);
    wait_until("the reload to be refused", Duration::from_secs(30), || obsd.log().contains("reload failed"));
    let (_, metrics) = get(&format!("{base}/metrics"));
    assert!(metrics.contains("prometheus_config_last_reload_successful 0"), "{metrics}");
    let (_, rules_json) = get(&format!("{base}/api/v1/rules"));
    assert!(rules_json.contains("\"one\"") && !rules_json.contains("\"two\""), "{rules_json}");

    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: two\n        expr: vector(2)\n",
    )
    .unwrap();
    obsd.signal(libc::SIGHUP);
    wait_until("the fixed rule file to load", Duration::from_secs(30), || {
        value("two").as_deref() == Some("2")
    });
    // The removed rule's series is marked stale: an instant query no longer finds it.
    wait_until("the removed rule's series to go stale", Duration::from_secs(30), || value("one").is_none());
}

/// The unit-test files under tests/rule_tests/: `promtool test rules` and `obsd rules test`
/// give the same verdict and print the same report, failing tests included.
#[test]
fn rules_test_agrees_with_promtool() {
    let promtool = peer("promtool", "prometheus");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rule_tests");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(['p', 'f'])))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "corpus too small: {files:?}");
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        // Run from the corpus directory with a relative name, so both print the same path.
        let name = file.file_name().unwrap().to_owned();
        let run = |bin: &Path, args: &[&str]| {
            let out = Command::new(bin).args(args).arg(&name).current_dir(&corpus).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        };
        let p = run(&promtool, &["test", "rules"]);
        let o = run(Path::new(common::obsd_binary()), &["rules", "test"]);
        assert_eq!(o, p, "{}: obsd (left) and promtool (right) differ", file.display());
        if p.0 == Some(0) { passed += 1 } else { failed += 1 }
    }
    assert!(
        passed >= 2 && failed >= 4,
        "the corpus must hold passing and failing tests: {passed} passed, {failed} failed"
    );
}

const RESTART_RULES: &str = r#"groups:
  - name: restart
    interval: 1s
    rules:
      - alert: WasFiring
        expr: flag_b > 0
        for: 5s
      - alert: LongFor
        expr: flag_a > 0
        for: 16s
      - alert: LongForLate
        expr: flag_a > 0
        for: 8s
      - alert: ShortFor
        expr: flag_a > 0
        for: 2s
"#;

/// One process's view of a restart scenario: per alert, its states before and after the
/// restart (consecutive repeats merged) and its `ALERTS_FOR_STATE` samples.
struct RestartView {
    states: BTreeMap<String, String>,
    for_state: BTreeMap<String, Vec<(i64, f64)>>,
}

fn restart_view(url: &str, end: i64, stopped_at: i64) -> RestartView {
    let name = |labels: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(labels).unwrap();
        v["alertname"].as_str().unwrap().to_string()
    };
    let mut timeline: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (labels, points) in raw(url, "ALERTS", "2m", end) {
        let v: serde_json::Value = serde_json::from_str(&labels).unwrap();
        let state = v["alertstate"].as_str().unwrap().to_string();
        timeline.entry(name(&labels)).or_default().extend(points.iter().map(|p| (p.0, state.clone())));
    }
    let states = timeline
        .into_iter()
        .map(|(alert, mut points)| {
            points.sort();
            let mut shown: Vec<&str> = Vec::new();
            let mut restarted = false;
            for (t, state) in &points {
                if !restarted && *t > stopped_at {
                    restarted = true;
                    shown.push("|");
                }
                if shown.last() != Some(&state.as_str()) {
                    shown.push(state);
                }
            }
            (alert, shown.join(" "))
        })
        .collect();
    let for_state = raw(url, "ALERTS_FOR_STATE", "2m", end)
        .into_iter()
        .map(|(labels, points)| {
            (name(&labels), points.into_iter().map(|(t, v)| (t, v.parse::<f64>().unwrap())).collect())
        })
        .collect();
    RestartView { states, for_state }
}

/// Both Prometheus and obsd are restarted (SIGTERM) while alerts are pending and firing, with
/// `--rules.alert.for-grace-period=4s` / `alert_for_grace_period = "4s"`: the alert state
/// sequences agree, a firing alert keeps its original activeAt, a long `for` keeps the time
/// it had spent pending (shifted by the downtime), one with less than the grace period left
/// gets the grace period, and a `for` shorter than the grace period starts afresh. The two
/// evaluations before the restore write no alert series, in both.
#[test]
fn alert_state_survives_a_restart_as_prometheus_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RESTART_RULES).unwrap();
    let yml = format!(
        "global:\n  evaluation_interval: 1s\n  scrape_interval: 1h\nrule_files: [{:?}]\n",
        rules.display().to_string()
    );
    let grace = ["--rules.alert.for-grace-period=4s"];
    let prom = prometheus(dir.path(), &yml);
    let prom_url = format!("http://127.0.0.1:{}", prom.port);
    std::fs::write(dir.path().join("obsd-prometheus.yml"), &yml).unwrap();
    let mut obsd = Obsd::start(
        "replica",
        &format!(
            "[replica]\nremote_write_receiver = true\nalert_for_grace_period = \"4s\"\nprometheus_config = {:?}\n[replica.listen]\naddress = \"127.0.0.1:0\"\n",
            dir.path().join("obsd-prometheus.yml").display().to_string()
        ),
    );
    // flag_b rises at +4 s (WasFiring fires at +9 s), flag_a at +10 s; both stay up.
    let t0 = now_ms() / 1000 * 1000;
    let flag = |rise: i64| -> Vec<(i64, f64)> {
        (-30..120).map(|s| (t0 + s * 1000, if s >= rise { 1.0 } else { 0.0 })).collect()
    };
    let data: Vec<Series> = vec![
        (vec![("__name__", "flag_a"), ("job", "x")], flag(10)),
        (vec![("__name__", "flag_b"), ("job", "x")], flag(4)),
    ];
    write(&format!("{prom_url}/api/v1/write"), &data);
    write(&format!("{}/api/v1/write", obsd.url("replica", "")), &data);

    // Restart each 6 s into LongFor's pending time.
    std::thread::sleep(Duration::from_millis(u64::try_from(t0 + 16_000 - now_ms()).unwrap_or(0)));
    let prom_stopped = now_ms();
    let _prom = restart_prometheus(prom, dir.path(), &grace);
    let obsd_stopped = now_ms();
    obsd = obsd.restart(&["--role", "replica"], false);
    let obsd_url = obsd.url("replica", "");
    // The data written before the restart survives it; LongFor fires 16 s after its restored
    // activeAt, that is about 16 s plus the downtime after flag_a rose.
    let firing = |url: &str| {
        let (_, body) = get(&format!("{url}/api/v1/alerts"));
        body.contains("\"alertname\":\"LongFor\"") && {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["labels"]["alertname"] == "LongFor" && a["state"] == "firing")
        }
    };
    wait_until("LongFor firing after the restarts", Duration::from_secs(90), || {
        firing(&prom_url) && firing(&obsd_url)
    });
    std::thread::sleep(Duration::from_secs(2));
    let end = now_ms();
    let p = restart_view(&prom_url, end, prom_stopped);
    let o = restart_view(&obsd_url, end, obsd_stopped);
    assert_eq!(p.states.len(), 4, "Prometheus's alerts: {:?}", p.states);
    assert_eq!(o.states, p.states, "alert states around the restart: obsd (left), Prometheus (right)");

    for (who, view, stopped) in [("prometheus", &p, prom_stopped), ("obsd", &o, obsd_stopped)] {
        let points = |alert: &str| view.for_state.get(alert).unwrap_or_else(|| panic!("{who}: no {alert}"));
        let before = |alert: &str| points(alert).iter().rfind(|p| p.0 <= stopped).copied().unwrap();
        let first_after = |alert: &str| points(alert).iter().find(|p| p.0 > stopped).copied().unwrap();
        let last = |alert: &str| *points(alert).last().unwrap();
        let secs = |ms: i64| (ms / 1000) as f64;
        // Firing when stopped: the original activeAt comes back.
        assert_eq!(last("WasFiring").1, before("WasFiring").1, "{who}: WasFiring {:?}", points("WasFiring"));
        // Pending with more than the grace period left: activeAt moves by the downtime.
        let (down_at, active) = before("LongFor");
        let (up_at, _) = first_after("LongFor");
        let shift = last("LongFor").1 - active;
        let downtime = secs(up_at) - secs(down_at);
        assert!(
            shift >= downtime - 1.0 && shift <= downtime + 4.0,
            "{who}: LongFor moved {shift} s for a {downtime} s outage: {:?}",
            points("LongFor")
        );
        // Less than the grace period left: restored so that 4 s of pending remain.
        let late = last("LongForLate").1;
        let first = secs(first_after("LongForLate").0);
        assert!(
            late >= first - 4.0 - 1.0 && late <= first + 3.0 - 4.0 + 1.0,
            "{who}: LongForLate {:?}",
            points("LongForLate")
        );
        // A `for` shorter than the grace period is not restored: activeAt is the first
        // evaluation after the restart (the two before the restore write no alert series).
        let fresh = last("ShortFor").1;
        assert!(
            fresh >= secs(stopped) && fresh <= secs(first_after("ShortFor").0),
            "{who}: ShortFor {:?}",
            points("ShortFor")
        );
    }
    // What the data decides alone is equal: activeAt before the restart and of WasFiring.
    for alert in ["WasFiring", "LongFor", "ShortFor"] {
        let at =
            |v: &RestartView, stopped: i64| v.for_state[alert].iter().rfind(|p| p.0 <= stopped).unwrap().1;
        assert_eq!(at(&o, obsd_stopped), at(&p, prom_stopped), "{alert}'s activeAt before the restart");
    }
    assert_eq!(o.for_state["WasFiring"].last().unwrap().1, p.for_state["WasFiring"].last().unwrap().1);
}

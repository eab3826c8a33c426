//! The alertmanager role against Debian's Alertmanager 0.25: the same alertmanager.yml and the
//! same alert stream into both make the same webhook notifications; `amtool check-config` and
//! `obsd alertmanager check` agree on a corpus, and `amtool config routes test` and `obsd
//! alertmanager routes-test` on routing; amtool works against obsd; two obsd alertmanagers
//! notify once and share silences; silences survive `kill -9`; bad input is refused and a
//! hanging receiver holds up nothing else.
//!
//! Every wait polls up to a generous deadline; nothing asserts how fast anything is.

mod common;

use common::{Obsd, RealAlertmanager, Recorder, free_port, obsd_binary, peer, url_encode, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn now_rfc3339(offset_ms: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms);
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// obsd's alertmanager reading `am_yml`, kept beside its config in the directory it owns.
fn start_obsd(am_yml: &str, extra: &str) -> Obsd {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("am.yml"), am_yml).unwrap();
    common::start_obsd_alertmanager(dir, extra)
}

fn post(base: &str, path: &str, body: &Value) -> (u16, String) {
    let r = http()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// The JSON at `url`, or null when there is none (a 404 while polling for a silence).
fn get_json(url: &str) -> Value {
    serde_json::from_str(&http().get(url).send().unwrap().text().unwrap()).unwrap_or(Value::Null)
}

fn alert(labels: Value, starts_at: &str, ends_at: Option<&str>) -> Value {
    let mut a = json!({"labels": labels, "annotations": {"summary": "s"}, "startsAt": starts_at, "generatorURL": "http://prom/graph"});
    if let Some(e) = ends_at {
        a["endsAt"] = json!(e);
    }
    a
}

const DIFF_CONFIG: &str = r#"route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['team="db"']
      receiver: db
      group_by: [alertname, cluster]
      continue: true
    - matchers: ['severity=~"page|critical"']
      receiver: pager
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
receivers:
  - name: default
    webhook_configs: [{url: 'HOOK/default'}]
  - name: db
    webhook_configs: [{url: 'HOOK/db', send_resolved: false}]
  - name: pager
    webhook_configs: [{url: 'HOOK/pager', max_alerts: 1}]
"#;

/// Each group's notifications in order: what a receiver can see, minus the external URL.
fn by_group(hook: &Recorder) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for mut n in hook.json() {
        let key = format!("{} {}", n["receiver"], n["groupKey"]);
        n.as_object_mut().unwrap().remove("externalURL");
        out.entry(key).or_default().push(n);
    }
    out
}

#[test]
fn notifications_match_alertmanager_on_the_same_stream() {
    let (hook_real, hook_obsd) = (Recorder::start(Some(200)), Recorder::start(Some(200)));
    let real = RealAlertmanager::start(
        &DIFF_CONFIG.replace("HOOK", &format!("http://127.0.0.1:{}", hook_real.port)),
    );
    let obsd = start_obsd(&DIFF_CONFIG.replace("HOOK", &format!("http://127.0.0.1:{}", hook_obsd.port)), "");
    let bases = [real.url(), obsd.url("alertmanager", "")];
    let send = |alerts: Value| {
        for b in &bases {
            let (status, body) = post(b, "/api/v2/alerts", &alerts);
            assert_eq!(status, 200, "{b}: {body}");
        }
    };
    let t0 = now_rfc3339(0);
    let a1 = json!({"alertname": "DiskFull", "team": "db", "cluster": "c1", "severity": "warning"});
    let a4 = json!({"alertname": "HighLoad", "severity": "warning", "cluster": "c3"});
    send(json!([
        alert(a1.clone(), &t0, None),
        alert(
            json!({"alertname": "DiskFull", "team": "db", "cluster": "c2", "severity": "critical"}),
            &t0,
            None
        ),
        alert(json!({"alertname": "HighLoad", "severity": "warning", "cluster": "c2"}), &t0, None),
        alert(a4.clone(), &t0, None),
        alert(json!({"alertname": "Pager1", "severity": "page", "instance": "a"}), &t0, None),
        alert(json!({"alertname": "Pager1", "severity": "page", "instance": "b"}), &t0, None),
    ]));
    wait_until("the first notifications", DEADLINE, || {
        hook_real.json().len() >= 4 && hook_obsd.json().len() >= 4
    });
    std::thread::sleep(Duration::from_secs(3));
    // A4 resolves (the default receiver sends resolved); A1 resolves where send_resolved is off.
    let t1 = now_rfc3339(0);
    send(json!([alert(a4, &t0, Some(&t1)), alert(a1, &t0, Some(&t1))]));
    std::thread::sleep(Duration::from_secs(4));
    // A silence on Pager1, then a new Pager1 alert: nothing more for that group.
    let silence = json!({"matchers": [{"name": "alertname", "value": "Pager1", "isRegex": false, "isEqual": true}],
        "startsAt": now_rfc3339(0), "endsAt": now_rfc3339(3_600_000), "createdBy": "test", "comment": "diff"});
    for b in &bases {
        let (status, body) = post(b, "/api/v2/silences", &silence);
        assert_eq!(status, 200, "{b}: {body}");
    }
    send(json!([alert(
        json!({"alertname": "Pager1", "severity": "page", "instance": "c"}),
        &now_rfc3339(0),
        None
    )]));
    std::thread::sleep(Duration::from_secs(5));

    let (r, o) = (by_group(&hook_real), by_group(&hook_obsd));
    assert!(r.len() >= 4, "Alertmanager's notifications: {r:#?}");
    assert_eq!(o, r, "notifications by group: obsd (left), Alertmanager (right)");
    // The API's view agrees too: the same alerts, states, receivers and muting.
    let shown = |base: &str| -> Vec<Value> {
        get_json(&format!("{base}/api/v2/alerts"))
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                json!({
                    "fingerprint": a["fingerprint"], "labels": a["labels"], "receivers": a["receivers"],
                    "state": a["status"]["state"], "inhibitedBy": a["status"]["inhibitedBy"],
                    "silenced": a["status"]["silencedBy"].as_array().map(Vec::len),
                    "startsAt": a["startsAt"],
                })
            })
            .collect()
    };
    assert_eq!(shown(&bases[1]), shown(&bases[0]));
    let groups = |base: &str| -> Vec<Value> {
        get_json(&format!("{base}/api/v2/alerts/groups"))
            .as_array()
            .unwrap()
            .iter()
            .map(|g| json!({"labels": g["labels"], "receiver": g["receiver"], "alerts": g["alerts"].as_array().map(Vec::len)}))
            .collect()
    };
    assert_eq!(groups(&bases[1]), groups(&bases[0]));
}

/// A JSON value's shape: object keys with their shapes, the first element of an array, the
/// type of anything else. What a client decoding the response relies on.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => json!([a.first().map(shape)]),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

/// Grafana's Alertmanager data source (Prometheus flavour) makes these requests (its
/// `alerting/unified/api/alertmanager.ts`, proxied to the data source's URL): the status (whose
/// `config.original` it parses as YAML), alerts with its `silenced/active/inhibited` flags and
/// `filter` matchers, alert groups, silences, a silence created and expired. Grafana is not
/// packaged in Debian, so its requests are replayed against Alertmanager 0.25 and obsd: every
/// response has the same shape and the same content.
#[test]
fn grafanas_requests_get_what_alertmanager_gives() {
    let hook = Recorder::start(Some(200));
    let config = DIFF_CONFIG.replace("HOOK", &format!("http://127.0.0.1:{}", hook.port));
    let real = RealAlertmanager::start(&config);
    let obsd = start_obsd(&config, "");
    let bases = [real.url(), obsd.url("alertmanager", "").trim_end_matches('/').to_string()];
    let t0 = now_rfc3339(-60_000);
    let alerts = json!([
        alert(json!({"alertname": "Disk", "severity": "critical", "cluster": "c1", "team": "db"}), &t0, None),
        alert(json!({"alertname": "Disk", "severity": "warning", "cluster": "c1"}), &t0, None),
        alert(json!({"alertname": "Load", "severity": "page", "cluster": "c2"}), &t0, None),
    ]);
    for b in &bases {
        assert_eq!(post(b, "/api/v2/alerts", &alerts).0, 200);
    }
    // Grafana's silence form: matchers with isEqual, a comment and who made it.
    let silence = json!({"matchers": [{"name": "alertname", "value": "Lo.*", "isRegex": true, "isEqual": true}],
        "startsAt": now_rfc3339(0), "endsAt": now_rfc3339(7_200_000), "createdBy": "grafana-admin", "comment": "from Grafana"});
    let mut ids = Vec::new();
    for b in &bases {
        let (status, body) = post(b, "/api/v2/silences", &silence);
        assert_eq!(status, 200, "{b}: {body}");
        let created: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(shape(&created), json!({"silenceID": "string"}), "{b}: {body}");
        ids.push(created["silenceID"].as_str().unwrap().to_string());
    }
    std::thread::sleep(Duration::from_secs(2));
    let filter = url_encode("alertname=~\"Disk|Load\"");
    let requests = [
        "/api/v2/status".to_string(),
        "/api/v2/alerts/groups".to_string(),
        "/api/v2/silences".to_string(),
        "/api/v2/alerts?silenced=true&active=true&inhibited=true".to_string(),
        format!("/api/v2/alerts?silenced=false&active=true&inhibited=false&filter={filter}"),
    ];
    for path in &requests {
        let [real_body, obsd_body] = [0, 1].map(|i| get_json(&format!("{}{path}", bases[i])));
        assert!(!real_body.is_null() && !obsd_body.is_null(), "{path}");
        let (mut want, mut got) = (shape(&real_body), shape(&obsd_body));
        if path.ends_with("/status") {
            // obsd's cluster status has no memberlist peers' addresses when clustering is off;
            // both say what Grafana shows: a status, a version, the config text.
            for s in [&mut want, &mut got] {
                s["cluster"] = Value::Null;
                s["versionInfo"] = Value::Null;
            }
            let parsed = |b: &Value| {
                serde_norway::from_str::<Value>(b["config"]["original"].as_str().unwrap()).unwrap()
            };
            // Alertmanager shows its re-marshalled config (defaults filled in), obsd the file
            // with its secrets masked; both parse and route the same way. obsd also masks a
            // webhook's URL (it often carries a token), which Alertmanager 0.25 still shows.
            let (theirs, ours) = (parsed(&real_body), parsed(&obsd_body));
            assert_eq!(ours["route"]["receiver"], theirs["route"]["receiver"]);
            assert_eq!(ours["route"]["routes"][0]["matchers"], theirs["route"]["routes"][0]["matchers"]);
            assert_eq!(ours["receivers"][0]["webhook_configs"][0]["url"], "<secret>");
            assert!(obsd_body["cluster"]["status"].as_str().is_some());
        }
        assert_eq!(got, want, "the shape of {path}: obsd (left), Alertmanager (right)");
        // And the content, without ids and times.
        let content = |v: &Value| -> Value {
            let mut v = v.clone();
            fn scrub(v: &mut Value) {
                match v {
                    Value::Object(m) => {
                        for k in [
                            "id",
                            "updatedAt",
                            "startsAt",
                            "endsAt",
                            "uptime",
                            "original",
                            "silencedBy",
                            "versionInfo",
                            "cluster",
                            "generatorURL",
                        ] {
                            m.remove(k);
                        }
                        m.values_mut().for_each(scrub);
                    }
                    Value::Array(a) => a.iter_mut().for_each(scrub),
                    _ => {}
                }
            }
            scrub(&mut v);
            v
        };
        assert_eq!(content(&obsd_body), content(&real_body), "{path}: obsd (left), Alertmanager (right)");
    }
    for (b, id) in bases.iter().zip(&ids) {
        let r = http().delete(format!("{b}/api/v2/silence/{id}")).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{b}");
        let silences = get_json(&format!("{b}/api/v2/silences"));
        assert_eq!(silences[0]["status"]["state"], "expired", "{b}: {silences}");
    }
}

fn run(program: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(program).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under tests/alertmanager/check/: amtool's verdict and obsd's agree.
#[test]
fn check_agrees_with_amtool() {
    let amtool = peer("amtool", "prometheus-alertmanager");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/alertmanager/check");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() > 50);
    let mut disagree = Vec::new();
    for f in &files {
        let path = f.to_str().unwrap();
        let (theirs, out, err) = run(amtool.to_str().unwrap(), &["check-config", path]);
        let (ours, our_out, _) = run(obsd_binary(), &["alertmanager", "check", path]);
        if (theirs == 0) != (ours == 0) {
            disagree.push(format!(
                "{path}: amtool {theirs} ({}{}) obsd {ours} ({our_out})",
                out.trim(),
                err.trim()
            ));
        }
    }
    assert!(disagree.is_empty(), "verdicts differ:\n{}", disagree.join("\n"));
}

const ROUTING: &str = r#"route:
  receiver: fallback
  group_by: [alertname]
  routes:
    - matchers: ['service=~"db|cache"']
      receiver: storage
      routes:
        - matchers: [severity=critical]
          receiver: storage-pager
        - match_re: {env: 'prod|staging'}
          receiver: storage-env
          continue: true
        - matchers: ['team!="x"']
          receiver: storage-team
    - match: {team: frontend}
      receiver: frontend
      continue: true
    - matchers: ['env="prod"', 'team=~"front.*"']
      receiver: prod-frontend
    - matchers: ['severity!~"info|debug"']
      receiver: loud
receivers:
  - name: fallback
  - name: storage
  - name: storage-pager
  - name: storage-env
  - name: storage-team
  - name: frontend
  - name: prod-frontend
  - name: loud
"#;

#[test]
fn routes_test_agrees_with_amtool() {
    let amtool = peer("amtool", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("am.yml");
    std::fs::write(&file, ROUTING).unwrap();
    let file = file.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["alertname=A"],
        &["service=db"],
        &["service=db", "severity=critical"],
        &["service=cache", "env=prod"],
        &["service=cache", "env=prod", "team=x"],
        &["service=cache", "team=x"],
        &["team=frontend"],
        &["team=frontend", "env=prod"],
        &["team=frontend", "env=prod", "severity=info"],
        &["severity=info"],
        &["severity=warning"],
        &["service=dbx", "severity=debug"],
    ];
    for labels in cases {
        let mut theirs_args = vec!["config", "routes", "test", "--config.file", file];
        theirs_args.extend_from_slice(labels);
        let (code, theirs, err) = run(amtool.to_str().unwrap(), &theirs_args);
        assert_eq!(code, 0, "{err}");
        let mut our_args = vec!["alertmanager", "routes-test", "--config.file", file];
        our_args.extend_from_slice(labels);
        let (code, ours, err) = run(obsd_binary(), &our_args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(ours.trim(), theirs.trim(), "{labels:?}");
    }
}

const SIMPLE: &str = "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 6s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs: [{url: 'HOOK'}]\n";

#[test]
fn amtool_queries_silences_and_expires_against_obsd() {
    let amtool = peer("amtool", "prometheus-alertmanager");
    let amtool = amtool.to_str().unwrap();
    let hook = Recorder::start(Some(200));
    let obsd = start_obsd(&SIMPLE.replace("HOOK", &format!("http://127.0.0.1:{}/", hook.port)), "");
    let url = format!("--alertmanager.url={}", obsd.url("alertmanager", ""));
    let (status, body) = post(
        &obsd.url("alertmanager", ""),
        "/api/v2/alerts",
        &json!([alert(json!({"alertname": "Amtool", "job": "x"}), &now_rfc3339(0), None)]),
    );
    assert_eq!(status, 200, "{body}");
    let (code, out, err) = run(amtool, &[&url, "alert", "query"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Amtool") && out.contains("active"), "{out}");
    let (code, id, err) =
        run(amtool, &[&url, "silence", "add", "alertname=Amtool", "-c", "maintenance", "-d", "1h"]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let (_, out, _) = run(amtool, &[&url, "silence", "query"]);
    assert!(out.contains(&id) && out.contains("alertname=\"Amtool\""), "{out}");
    let (_, out, _) = run(amtool, &[&url, "alert", "query", "-s"]);
    assert!(out.contains("suppressed"), "{out}");
    let (code, _, err) = run(amtool, &[&url, "silence", "expire", &id]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(amtool, &[&url, "silence", "query"]);
    assert!(!out.contains(&id), "an expired silence is not listed by default: {out}");
    let (_, out, _) = run(amtool, &[&url, "silence", "query", "--expired"]);
    assert!(out.contains(&id), "{out}");
    let (code, _, err) = run(amtool, &[&url, "silence", "expire", &id]);
    assert_ne!(code, 0, "expiring twice is an error: {err}");
}

#[test]
fn two_obsd_alertmanagers_notify_once_and_share_silences() {
    let hook = Recorder::start(Some(200));
    let config = SIMPLE.replace("HOOK", &format!("http://127.0.0.1:{}/", hook.port));
    let (pa, pb) = (free_port(), free_port());
    let start = |own: u16, other: u16| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("am.yml"), &config).unwrap();
        let toml = format!(
            "[alertmanager]\nconfig = \"am.yml\"\npeers = [\"http://127.0.0.1:{other}\"]\ncluster_token = \"s3cret\"\npeer_timeout = \"3s\"\ncluster_advertise = \"http://127.0.0.1:{own}\"\n[alertmanager.listen]\naddress = \"127.0.0.1:{own}\"\n"
        );
        Obsd::start_in_dir(dir, &["--role", "alertmanager"], &toml)
    };
    let a = start(pa, pb);
    let b = start(pb, pa);
    let both = [format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}")];
    wait_until("the peers to see each other", DEADLINE, || {
        both.iter().all(|u| {
            get_json(&format!("{u}/api/v2/status"))["cluster"]["peers"].as_array().map_or(0, Vec::len) == 2
        })
    });
    let notes =
        |name: &str| hook.json().into_iter().filter(|n| n["groupLabels"]["alertname"] == name).count();
    // Both receive every alert, as from two Prometheus replicas.
    let fire = |name: &str, targets: &[String]| {
        let body = json!([alert(json!({"alertname": name}), &now_rfc3339(0), None)]);
        for u in targets {
            assert_eq!(post(u, "/api/v2/alerts", &body).0, 200);
        }
    };
    fire("Together", &both);
    wait_until("the pair's notification", DEADLINE, || notes("Together") >= 1);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(notes("Together"), 1, "one notification from the pair: {:?}", hook.json());

    // A silence made on one holds on the other.
    let silence = json!({"matchers": [{"name": "alertname", "value": "Quiet", "isRegex": false}],
        "startsAt": now_rfc3339(0), "endsAt": now_rfc3339(3_600_000), "createdBy": "test", "comment": "ha"});
    let (status, body) = post(&both[0], "/api/v2/silences", &silence);
    assert_eq!(status, 200, "{body}");
    let id: Value = serde_json::from_str(&body).unwrap();
    let id = id["silenceID"].as_str().unwrap().to_string();
    wait_until("the silence on the other", Duration::from_secs(20), || {
        get_json(&format!("{}/api/v2/silence/{id}", both[1]))["status"]["state"] == "active"
    });
    fire("Quiet", &both);

    // The first in order dies mid-group: the other delivers, once.
    let (first, survivor, survivor_url) =
        if both[0] < both[1] { (a, b, both[1].clone()) } else { (b, a, both[0].clone()) };
    let mut first = first;
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    fire("Alone", std::slice::from_ref(&survivor_url));
    wait_until("the survivor's notification", DEADLINE, || notes("Alone") >= 1);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(notes("Alone"), 1);
    assert_eq!(notes("Quiet"), 0, "silenced on both");
    assert_eq!(notes("Together"), 1);
    drop(survivor);
}

#[test]
fn silences_survive_kill_9() {
    let hook = Recorder::start(Some(200));
    let obsd = start_obsd(&SIMPLE.replace("HOOK", &format!("http://127.0.0.1:{}/", hook.port)), "");
    let silence = json!({"matchers": [{"name": "job", "value": "db.*", "isRegex": true}],
        "startsAt": now_rfc3339(0), "endsAt": now_rfc3339(3_600_000), "createdBy": "test", "comment": "kept"});
    let (status, body) = post(&obsd.url("alertmanager", ""), "/api/v2/silences", &silence);
    assert_eq!(status, 200, "{body}");
    let id: Value = serde_json::from_str(&body).unwrap();
    let id = id["silenceID"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(500));
    let obsd = obsd.restart(&["--role", "alertmanager"], true);
    let s = get_json(&obsd.url("alertmanager", &format!("/api/v2/silence/{id}")));
    assert_eq!(s["comment"], "kept");
    assert_eq!(s["matchers"][0]["isRegex"], true);
}

#[test]
fn bad_input_is_refused_and_a_hanging_receiver_holds_up_nothing_else() {
    let (ok, hang) = (Recorder::start(Some(200)), Recorder::start(None));
    let config = format!(
        "route:\n  receiver: ok\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  routes:\n    - matchers: [alertname=Hang]\n      receiver: hang\nreceivers:\n  - name: ok\n    webhook_configs: [{{url: 'http://127.0.0.1:{}/'}}]\n  - name: hang\n    webhook_configs: [{{url: 'http://127.0.0.1:{}/'}}]\n",
        ok.port, hang.port
    );
    let obsd = start_obsd(&config, "");
    let base = obsd.url("alertmanager", "");
    let raw = |body: &str| {
        let r = http()
            .post(format!("{base}/api/v2/alerts"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(raw("{not json"), 400);
    assert_eq!(raw("[{\"annotations\": {}}]"), 422, "labels are required");
    assert_eq!(raw("[{\"labels\": {\"0bad\": \"x\"}}]"), 400);
    let (status, _) = post(
        &base,
        "/api/v2/silences",
        &json!({"matchers": [], "startsAt": now_rfc3339(0), "endsAt": now_rfc3339(1000), "createdBy": "t", "comment": "c"}),
    );
    assert_eq!(status, 400);
    let wide: serde_json::Map<String, Value> = (0..10_000)
        .map(|i| (format!("l{i}"), json!("v")))
        .chain([("alertname".to_string(), json!("Wide"))])
        .collect();
    assert_eq!(
        post(&base, "/api/v2/alerts", &json!([alert(Value::Object(wide), &now_rfc3339(0), None)])).0,
        200
    );
    assert_eq!(
        post(&base, "/api/v2/alerts", &json!([alert(json!({"alertname": "Hang"}), &now_rfc3339(0), None)])).0,
        200
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        post(&base, "/api/v2/alerts", &json!([alert(json!({"alertname": "Fine"}), &now_rfc3339(0), None)])).0,
        200
    );
    wait_until("the other group delivered while one receiver hangs", DEADLINE, || {
        ok.json().iter().any(|n| n["groupLabels"]["alertname"] == "Fine")
    });
    assert!(ok.json().iter().any(|n| n["groupLabels"]["alertname"] == "Wide"));
    let (_, metrics) = common::get(&obsd.url("alertmanager", "/metrics"));
    assert!(metrics.contains("alertmanager_alerts_invalid_total{version=\"v2\"} 1"), "{metrics}");

    // A broken alertmanager.yml: check-config names the file and line, the start refuses.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("am.yml"), "route:\n  receiver: nobody\nreceivers:\n  - name: team\n")
        .unwrap();
    std::fs::write(dir.path().join("obsd.toml"), "[alertmanager]\nconfig = \"am.yml\"\n").unwrap();
    let (code, out, err) =
        run(obsd_binary(), &["check-config", dir.path().join("obsd.toml").to_str().unwrap()]);
    assert_ne!(code, 0);
    let text = format!("{out}{err}");
    assert!(text.contains("am.yml:2: undefined receiver \"nobody\" used in route"), "{text}");
}

/// SIGHUP reloads the alertmanager.yml: a new receiver shows in the API; a broken file is
/// refused with the running configuration kept.
#[test]
fn sighup_reloads_the_alertmanager_yml_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let yml = dir.path().join("am.yml");
    std::fs::write(&yml, "route:\n  receiver: first\nreceivers:\n  - name: first\n").unwrap();
    let obsd = Obsd::start(
        "alertmanager",
        &format!(
            "[alertmanager]\nconfig = {:?}\n[alertmanager.listen]\naddress = \"127.0.0.1:0\"\n",
            yml.display().to_string()
        ),
    );
    let receivers = || -> Vec<Value> {
        get_json(&obsd.url("alertmanager", "/api/v2/receivers")).as_array().cloned().unwrap_or_default()
    };
    assert_eq!(receivers(), vec![json!({"name": "first"})]);
    std::fs::write(&yml, "route:\n  receiver: second\nreceivers:\n  - name: first\n  - name: second\n")
        .unwrap();
    obsd.signal(libc::SIGHUP);
    wait_until("the new receiver", DEADLINE, || receivers().len() == 2);
    let status = get_json(&obsd.url("alertmanager", "/api/v2/status"));
    assert!(status["config"]["original"].as_str().unwrap_or("").contains("receiver: second"), "{status}");
    std::fs::write(&yml, "route:\n  receiver: third\nreceivers:\n  - name: first\n").unwrap();
    obsd.signal(libc::SIGHUP);
    wait_until("the refusal in the log", DEADLINE, || {
        obsd.log().contains("undefined receiver \\\"third\\\"")
            || obsd.log().contains("undefined receiver \"third\"")
    });
    assert_eq!(receivers().len(), 2, "the running configuration is kept");
}

//! The alertmanager role's Slack, PagerDuty, OpsGenie and email receivers against Debian's
//! Alertmanager 0.25: the same alertmanager.yml (default templates, a `templates:` file read
//! relative to the config's directory) and the same alerts into both, each with its own local
//! HTTP recorders and SMTP server (aiosmtpd); the requests must be the same byte for byte
//! (email: the envelope, the Subject/To/From headers and the text part; the HTML part is
//! obsd's own page). Then email over STARTTLS with AUTH, and failures that are counted,
//! not silent.
//!
//! Every wait polls up to a generous deadline; nothing asserts how fast anything is.

mod common;

use common::{Obsd, RealAlertmanager, RecordedRequest, Recorder, free_port, wait_port, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);
const EXTERNAL_URL: &str = "http://am.example:9093";

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn now_rfc3339(offset_ms: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms);
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tests/peers/smtp_sink.py on a free port, writing one JSON line per message.
struct SmtpSink {
    port: u16,
    out: PathBuf,
    _proc: Proc,
}

impl SmtpSink {
    fn start(dir: &Path, extra: &[&str]) -> SmtpSink {
        let port = free_port();
        let out = dir.join(format!("smtp-{port}.jsonl"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/smtp_sink.py");
        // Debian's python3, where python3-aiosmtpd is installed.
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&out)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("start smtp_sink.py (apt-get install python3-aiosmtpd)");
        wait_port(port, "smtp sink");
        SmtpSink { port, out, _proc: Proc(child) }
    }

    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// One side's receivers: its recorders and SMTP server.
struct Sinks {
    slack: Recorder,
    pagerduty: Recorder,
    opsgenie: Recorder,
    smtp: SmtpSink,
}

impl Sinks {
    fn start(dir: &Path) -> Sinks {
        Sinks {
            slack: Recorder::start(Some(200)),
            pagerduty: Recorder::start(Some(202)),
            opsgenie: Recorder::start(Some(202)),
            smtp: SmtpSink::start(dir, &[]),
        }
    }

    fn config(&self) -> String {
        format!(
            r#"global:
  smtp_from: 'Alert Manager <am@example.com>'
  smtp_require_tls: false
templates: ['tmpl/*.tmpl']
route:
  receiver: team.all
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
receivers:
  - name: team.all
    slack_configs:
      - api_url: '{slack}/services/T0/B0/X'
        channel: '#alerts'
        send_resolved: true
      - api_url: '{slack}/custom'
        send_resolved: true
        title: '{{{{ template "custom.title" . }}}}'
        text: '{{{{ template "custom.text" . }}}}'
        fields:
          - title: Severity
            value: '{{{{ .CommonLabels.severity }}}}'
            short: true
        actions:
          - type: button
            text: 'Runbook {{{{ .GroupLabels.alertname }}}}'
            url: 'http://runbook.example/{{{{ .GroupLabels.alertname }}}}'
    pagerduty_configs:
      - routing_key: '0123456789abcdef'
        url: '{pagerduty}/v2/enqueue'
        severity: '{{{{ .CommonLabels.severity }}}}'
        details:
          extra: 'x={{{{ .CommonLabels.severity }}}}'
    opsgenie_configs:
      - api_key: og-secret
        api_url: '{opsgenie}/og'
        tags: 'a, b ,,c '
        priority: P1
        responders:
          - name: 'TeamA, TeamB'
            type: teams
          - username: u@example.com
            type: user
    email_configs:
      - to: 'ops@example.com, Second Person <second@example.com>'
        smarthost: '127.0.0.1:{smtp}'
        send_resolved: true
        text: '{{{{ template "custom.text" . }}}}'
        headers:
          X-Severity: '{{{{ .CommonLabels.severity }}}}'
"#,
            slack = self.slack.url(),
            pagerduty = self.pagerduty.url(),
            opsgenie = self.opsgenie.url(),
            smtp = self.smtp.port,
        )
    }
}

const CUSTOM_TEMPLATES: &str = r#"{{ define "custom.title" }}Custom: {{ .GroupLabels.alertname }} [{{ .Status | toUpper }}] firing={{ len .Alerts.Firing }} resolved={{ len .Alerts.Resolved }}{{ end }}
{{ define "custom.text" }}{{ range .Alerts }}* {{ .Annotations.summary }} ({{ .Labels.instance }}) <{{ .GeneratorURL }}> since {{ .StartsAt.Format "2006-01-02" }}
{{ end }}receiver={{ .Receiver }} group={{ .GroupLabels.SortedPairs.Values | join "," }} & more{{ end }}
"#;

fn write_config(dir: &Path, sinks: &Sinks) {
    std::fs::create_dir_all(dir.join("tmpl")).unwrap();
    std::fs::write(dir.join("tmpl/custom.tmpl"), CUSTOM_TEMPLATES).unwrap();
    std::fs::write(dir.join("am.yml"), sinks.config()).unwrap();
}

fn start_obsd(dir: tempfile::TempDir) -> Obsd {
    common::start_obsd_alertmanager(dir, &format!("external_url = \"{EXTERNAL_URL}\"\n"))
}

fn alerts(ends_at: Option<&str>, starts_at: &str) -> Value {
    let one = |host: &str| {
        let mut a = json!({
            "labels": {"alertname": "TestAlert", "severity": "critical", "instance": format!("{host}:9100")},
            "annotations": {"summary": format!("Instance {host} down"), "description": format!("{host} has been down for 5m")},
            "startsAt": starts_at,
            "generatorURL": "http://prom.example:9090/graph?g0.expr=up%3D%3D0",
        });
        if let Some(e) = ends_at {
            a["endsAt"] = json!(e);
        }
        a
    };
    json!([one("host1"), one("host2")])
}

fn post_alerts(base: &str, body: &Value) {
    let r = http()
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
}

/// What a request is compared on: method, path, the headers that carry meaning, and the body.
fn shape(r: &RecordedRequest) -> (String, String, Option<String>, Option<String>, String) {
    let header = |name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    (
        r.method.clone(),
        r.path.clone(),
        header("content-type"),
        header("authorization"),
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

/// Name and value pairs: a message's headers, or its parts (content type, QP body).
type Pairs = Vec<(String, String)>;

/// A MIME message's headers and its parts.
fn parse_mail(raw: &str) -> (Pairs, Pairs) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let headers: Vec<(String, String)> = head
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let content_type =
        headers.iter().find(|(k, _)| k == "Content-Type").map(|(_, v)| v.clone()).unwrap_or_default();
    let boundary = content_type.split("boundary=").nth(1).unwrap_or("").trim().to_string();
    let mut parts = Vec::new();
    for part in body.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches('\n');
        let (part_head, part_body) = part.split_once("\n\n").unwrap_or((part, ""));
        let ct = part_head.lines().find_map(|l| l.strip_prefix("Content-Type: ")).unwrap_or("").to_string();
        parts.push((ct, part_body.trim_end_matches('\n').to_string()));
    }
    (headers, parts)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn slack_pagerduty_opsgenie_and_email_match_alertmanager() {
    let real_dir = tempfile::tempdir().unwrap();
    let obsd_dir = tempfile::tempdir().unwrap();
    let real_sinks = Sinks::start(real_dir.path());
    let obsd_sinks = Sinks::start(obsd_dir.path());
    write_config(real_dir.path(), &real_sinks);
    write_config(obsd_dir.path(), &obsd_sinks);
    let real = RealAlertmanager::start_in(real_dir.path(), Some(EXTERNAL_URL));
    let real_url = real.url();
    let obsd = start_obsd(obsd_dir);
    let obsd_url = obsd.url("alertmanager", "");

    let starts_at = now_rfc3339(-60_000);
    let firing = alerts(None, &starts_at);
    post_alerts(&real_url, &firing);
    post_alerts(obsd_url.trim_end_matches('/'), &firing);
    let sides = [&real_sinks, &obsd_sinks];
    let all_sent = |n: usize| {
        sides.iter().all(|s| {
            s.slack.requests().len() >= 2 * n
                && s.pagerduty.requests().len() >= n
                && s.opsgenie.requests().len() >= n
                && s.smtp.messages().len() >= n
        })
    };
    wait_until("firing notifications on every receiver of both", DEADLINE, || all_sent(1));

    let resolved = alerts(Some(&now_rfc3339(-1_000)), &starts_at);
    post_alerts(&real_url, &resolved);
    post_alerts(obsd_url.trim_end_matches('/'), &resolved);
    wait_until("resolved notifications on every receiver of both", DEADLINE, || all_sent(2));
    std::thread::sleep(Duration::from_secs(3));

    // Slack's two configs are notified concurrently; compare each URL's sequence.
    for path in ["/services/T0/B0/X", "/custom"] {
        let of = |s: &Sinks| -> Vec<_> {
            s.slack.requests().iter().filter(|r| r.path == path).map(shape).collect()
        };
        let (want, got) = (of(&real_sinks), of(&obsd_sinks));
        assert_eq!(want.len(), 2, "Alertmanager's slack {path} requests: {want:#?}");
        assert_eq!(got, want, "slack {path}");
    }
    let custom = obsd_sinks.slack.requests().iter().find(|r| r.path == "/custom").map(shape).unwrap();
    assert!(custom.4.contains("Custom: TestAlert [FIRING] firing=2"), "{}", custom.4);
    assert!(custom.4.contains(r"receiver=team\\.all"), "{}", custom.4);

    let pd: Vec<_> = real_sinks.pagerduty.requests().iter().map(shape).collect();
    assert_eq!(pd.len(), 2, "{pd:#?}");
    assert_eq!(obsd_sinks.pagerduty.requests().iter().map(shape).collect::<Vec<_>>(), pd, "pagerduty");
    assert!(pd[1].4.contains("\"event_action\":\"resolve\""), "{}", pd[1].4);

    let og: Vec<_> = real_sinks.opsgenie.requests().iter().map(shape).collect();
    assert_eq!(og.len(), 2, "{og:#?}");
    assert_eq!(obsd_sinks.opsgenie.requests().iter().map(shape).collect::<Vec<_>>(), og, "opsgenie");
    assert!(og[1].1.ends_with("/close?identifierType=alias"), "{}", og[1].1);

    let real_mail = real_sinks.smtp.messages();
    let obsd_mail = obsd_sinks.smtp.messages();
    assert_eq!(real_mail.len(), 2, "{real_mail:#?}");
    assert_eq!(obsd_mail.len(), 2, "{obsd_mail:#?}");
    for (want, got) in real_mail.iter().zip(&obsd_mail) {
        assert_eq!(got["mail_from"], want["mail_from"]);
        assert_eq!(got["rcpt_tos"], want["rcpt_tos"]);
        let (want_headers, want_parts) = parse_mail(want["raw"].as_str().unwrap());
        let (got_headers, got_parts) = parse_mail(got["raw"].as_str().unwrap());
        for name in ["Subject", "To", "From", "X-Severity", "MIME-Version"] {
            assert_eq!(header(&got_headers, name), header(&want_headers, name), "header {name}");
        }
        assert!(header(&got_headers, "Message-Id").is_some() && header(&got_headers, "Date").is_some());
        assert_eq!(want_parts.len(), 2, "{want_parts:#?}");
        assert_eq!(got_parts.len(), 2, "{got_parts:#?}");
        assert_eq!(got_parts[0], want_parts[0], "the text part");
        assert_eq!(got_parts[1].0, "text/html; charset=UTF-8");
        // obsd's own HTML page carries the alerts' labels and the link back.
        let html = got_parts[1].1.replace("=\n", "");
        assert!(
            html.contains("host2:9100") && html.contains("am.example:9093/#/alerts?receiver=3Dteam"),
            "{html}"
        );
    }
    let subject =
        |m: &Value| header(&parse_mail(m["raw"].as_str().unwrap()).0, "Subject").map(str::to_string);
    assert_eq!(subject(&obsd_mail[0]).as_deref(), Some("[FIRING:2] TestAlert (critical)"));
    assert_eq!(subject(&obsd_mail[1]).as_deref(), Some("[RESOLVED] TestAlert (critical)"));
}

/// `alertmanager_notifications_failed_total{integration}` from obsd's /metrics.
fn failed(obsd: &Obsd, integration: &str) -> f64 {
    let text = http().get(obsd.url("alertmanager", "/metrics")).send().unwrap().text().unwrap();
    let prefix = format!("alertmanager_notifications_failed_total{{integration=\"{integration}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(-1.0)
}

#[test]
fn email_over_starttls_with_auth_and_failures_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate_for(dir.path(), "smtp.test");
    let secure = SmtpSink::start(dir.path(), &["--tls", &cert, &key, "--auth", "alice", "s3cret"]);
    // A server without STARTTLS: with require_tls (the default) nothing may go out in clear.
    let plain = SmtpSink::start(dir.path(), &[]);
    let slack_400 = Recorder::start(Some(400));
    std::fs::write(dir.path().join("password"), "s3cret").unwrap();
    let am_yml = format!(
        r#"route:
  receiver: mail
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
receivers:
  - name: mail
    email_configs:
      - to: ops@example.com
        from: am@example.com
        smarthost: '127.0.0.1:{secure}'
        auth_username: alice
        auth_password_file: password
        tls_config:
          ca_file: '{cert}'
          server_name: smtp.test
      - to: ops@example.com
        from: am@example.com
        smarthost: '127.0.0.1:{plain}'
    slack_configs:
      - api_url: '{slack}/hook'
"#,
        secure = secure.port,
        plain = plain.port,
        slack = slack_400.url(),
    );
    std::fs::write(dir.path().join("am.yml"), am_yml).unwrap();
    let obsd = start_obsd(dir);
    post_alerts(obsd.url("alertmanager", "").trim_end_matches('/'), &alerts(None, &now_rfc3339(-1_000)));

    wait_until("the mail over STARTTLS", DEADLINE, || !secure.messages().is_empty());
    let mail = &secure.messages()[0];
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["authenticated"], true);
    assert_eq!(mail["rcpt_tos"], json!(["ops@example.com"]));

    wait_until("the refused email and slack notifications counted", DEADLINE, || {
        failed(&obsd, "email") >= 1.0 && failed(&obsd, "slack") >= 1.0
    });
    assert!(plain.messages().is_empty(), "mail went out without STARTTLS");
    // A 400 from Slack is not retried (Alertmanager retries only 5xx for Slack): one request
    // per flush, each flush a failed notification (a flush may be between the two).
    let failures = failed(&obsd, "slack");
    let requests = slack_400.requests().len() as f64;
    assert!(requests <= failures + 1.0, "{requests} requests for {failures} failed notifications");
    assert_eq!(secure.messages().len(), 1, "a delivered mail is not sent again");
    let log = obsd.log();
    assert!(log.contains("does not advertise the STARTTLS extension"), "{log}");
    assert!(log.contains("unexpected status code 400"), "{log}");
}

#[test]
fn a_template_that_fails_is_refused_at_load_or_counted_at_send() {
    let dir = tempfile::tempdir().unwrap();
    // Parses, but fails when run: the field's error is logged and counted, the other
    // integration of the receiver still delivers.
    let hook = Recorder::start(Some(200));
    let slack = Recorder::start(Some(200));
    let am_yml = format!(
        r#"route:
  receiver: r
  group_wait: 1s
receivers:
  - name: r
    webhook_configs:
      - url: '{hook}/hook'
    slack_configs:
      - api_url: '{slack}/hook'
        title: '{{{{ template "nope" . }}}}'
"#,
        hook = hook.url(),
        slack = slack.url(),
    );
    std::fs::write(dir.path().join("am.yml"), &am_yml).unwrap();
    let status = Command::new(common::obsd_binary())
        .args(["alertmanager", "check"])
        .arg(dir.path().join("am.yml"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    let broken = am_yml.replace("template \"nope\" . }}", "template \"nope\" . ");
    std::fs::write(dir.path().join("broken.yml"), &broken).unwrap();
    let out = Command::new(common::obsd_binary())
        .args(["alertmanager", "check"])
        .arg(dir.path().join("broken.yml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("slack_configs[0]: title: template: :1: unclosed action"),
        "{stdout}"
    );

    let obsd = start_obsd(dir);
    post_alerts(obsd.url("alertmanager", "").trim_end_matches('/'), &alerts(None, &now_rfc3339(-1_000)));
    wait_until("the webhook delivered", DEADLINE, || !hook.requests().is_empty());
    wait_until("the slack failure counted", DEADLINE, || failed(&obsd, "slack") >= 1.0);
    assert!(slack.requests().is_empty());
    let log = obsd.log();
    assert!(
        log.contains("template \\\"nope\\\" not defined") || log.contains("template \"nope\" not defined"),
        "{log}"
    );
}

use super::*;
use crate::config::prometheus::{PrometheusFile, parse_prometheus_yaml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn settings(yaml: &str) -> AlertingSettings {
    let file: PrometheusFile = parse_prometheus_yaml(yaml).unwrap();
    crate::config::alerting::resolve(file.alerting.as_ref()).unwrap()
}

fn alert(name: &str, pairs: &[(&str, &str)]) -> Alert {
    Alert {
        labels: Labels::from_pairs(std::iter::once(("alertname", name)).chain(pairs.iter().copied())),
        annotations: Labels::new(),
        starts_at_ms: 1_700_000_000_000,
        ends_at_ms: Some(1_700_000_240_000),
        generator_url: String::new(),
    }
}

fn queued(n: &Notifier) -> Vec<Alert> {
    lock(&n.queue).iter().cloned().collect()
}

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Never,
}

type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A test Alertmanager: records each request's head and body, answers with `answer`.
struct Receiver {
    address: std::net::SocketAddr,
    requests: Requests,
}

impl Receiver {
    async fn start(answer: Answer) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let requests: Requests = Arc::default();
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string)
                            })
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + length {
                            let mut chunk = [0u8; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = buf[head_end..head_end + length].to_vec();
                        buf.drain(..head_end + length);
                        lock(&seen).push((head, body));
                        match answer {
                            Answer::Never => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                            Answer::Status(code) => {
                                let body = if code == 200 { "" } else { "bad alerts" };
                                let response = format!(
                                    "HTTP/1.1 {code} X\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                );
                                if stream.write_all(response.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Receiver { address, requests }
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        lock(&self.requests).iter().map(|(_, b)| serde_json::from_slice(b).unwrap()).collect()
    }

    fn url(&self) -> String {
        format!("http://{}/api/v2/alerts", self.address)
    }
}

async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn queue_overflow_drops_the_oldest_and_counts_them() {
    let n = Notifier::new(&AlertingSettings::default(), &[], &[]);
    let batch = |from: usize, to: usize| (from..to).map(|i| alert(&format!("A{i}"), &[])).collect::<Vec<_>>();
    n.send(batch(0, QUEUE_CAPACITY - 2));
    assert_eq!(n.metrics.dropped_total(), 0);
    n.send(batch(QUEUE_CAPACITY - 2, QUEUE_CAPACITY + 3));
    let q = queued(&n);
    assert_eq!(q.len(), QUEUE_CAPACITY);
    assert_eq!(n.metrics.dropped_total(), 3);
    assert_eq!(q[0].labels.get("alertname"), Some("A3"));
    assert_eq!(
        q[QUEUE_CAPACITY - 1].labels.get("alertname"),
        Some(format!("A{}", QUEUE_CAPACITY + 2).as_str())
    );
    // One call larger than the queue keeps its newest alerts only.
    n.send(batch(0, QUEUE_CAPACITY + 10));
    let q = queued(&n);
    assert_eq!(q[0].labels.get("alertname"), Some("A10"));
    assert_eq!(n.metrics.dropped_total(), 3 + 10 + QUEUE_CAPACITY as u64);
    let mut out = String::new();
    n.render_metrics(&mut out);
    assert!(out.contains("prometheus_notifications_queue_length 10000\n"), "{out}");
    assert!(out.contains("prometheus_notifications_queue_capacity 10000\n"), "{out}");
    assert!(out.contains("prometheus_notifications_alertmanagers_discovered 0\n"), "{out}");
}

#[test]
fn external_labels_then_drop_labels_then_alert_relabelling() {
    let s = settings(
        r#"
alerting:
  alert_relabel_configs:
    - source_labels: [severity]
      target_label: sev_copy
    - source_labels: [replica]
      regex: '(.+)'
      target_label: saw_replica
    - source_labels: [alertname]
      regex: Silenced
      action: drop
"#,
    );
    let external = [("replica".to_string(), "r1".to_string()), ("severity".to_string(), "ext".to_string())];
    // Without drop_labels: external labels only where missing, and relabelling sees them.
    let n = Notifier::new(&s, &external, &[]);
    n.send(vec![alert("A", &[("severity", "page")]), alert("B", &[]), alert("Silenced", &[])]);
    let q = queued(&n);
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(
        q[0].labels,
        Labels::from_pairs([
            ("alertname", "A"),
            ("replica", "r1"),
            ("saw_replica", "r1"),
            ("sev_copy", "page"),
            ("severity", "page")
        ])
    );
    assert_eq!(q[1].labels.get("severity"), Some("ext"));
    assert_eq!(q[1].labels.get("sev_copy"), Some("ext"));
    // drop_labels removes the replica label after the external labels and before
    // relabelling, which no longer sees it; an alert's own label of that name goes too.
    let n = Notifier::new(&s, &external, &["replica".to_string()]);
    n.send(vec![alert("A", &[]), alert("C", &[("replica", "own")])]);
    for a in queued(&n) {
        assert_eq!(a.labels.get("replica"), None, "{a:?}");
        assert_eq!(a.labels.get("saw_replica"), None, "{a:?}");
        assert_eq!(a.labels.get("severity"), Some("ext"));
    }
    // An alert relabelled to no labels at all is not sent.
    let empties =
        settings("alerting:\n  alert_relabel_configs:\n    - regex: '.*'\n      action: labeldrop\n");
    let n = Notifier::new(&empties, &[], &[]);
    n.send(vec![alert("A", &[])]);
    assert!(queued(&n).is_empty());
    assert_eq!(n.metrics.dropped_total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_64_posted_with_prometheus_headers() {
    let am = Receiver::start(Answer::Status(200)).await;
    let s = settings(&format!(
        "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{}']}}]\n      authorization: {{credentials: s3cret}}\n",
        am.address
    ));
    let n = Notifier::new(&s, &[], &[]);
    assert_eq!(n.alertmanagers(), (vec![am.url()], vec![]));
    // Queued before the sender starts, so the batches are cut from 130 waiting alerts.
    n.send((0..130).map(|i| alert(&format!("A{i:03}"), &[])).collect());
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(n.clone().run(stop));
    eventually("three POSTs", || lock(&am.requests).len() >= 3).await;
    let bodies = am.bodies();
    let sizes: Vec<usize> = bodies.iter().map(|b| b.as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![64, 64, 2]);
    assert_eq!(bodies[0][0]["labels"]["alertname"], "A000");
    assert_eq!(bodies[2][1]["labels"]["alertname"], "A129");
    let head = lock(&am.requests)[0].0.to_ascii_lowercase();
    assert!(head.starts_with("post /api/v2/alerts http/1.1\r\n"), "{head}");
    for header in [
        "content-type: application/json",
        "authorization: bearer s3cret",
        &format!("user-agent: {USER_AGENT}"),
    ] {
        assert!(head.contains(&header.to_ascii_lowercase()), "{header} missing: {head}");
    }
    eventually("metrics", || n.metrics.counts(&am.url()) == (130, 0)).await;
    assert_eq!(n.metrics.dropped_total(), 0);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_alertmanagers_count_errors_and_do_not_stop_the_others() {
    let good = Receiver::start(Answer::Status(200)).await;
    let broken = Receiver::start(Answer::Status(500)).await;
    let silent = Receiver::start(Answer::Never).await;
    let s = settings(&format!(
        "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{}', '{}']}}]\n      timeout: 300ms\n    - static_configs: [{{targets: ['{}']}}]\n",
        broken.address, silent.address, good.address
    ));
    let n = Notifier::new(&s, &[], &[]);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(n.clone().run(stop));
    n.send(vec![alert("A", &[])]);
    eventually("the good Alertmanager to get the alert", || good.bodies().len() == 1).await;
    eventually("errors counted", || {
        n.metrics.counts(&broken.url()) == (1, 1) && n.metrics.counts(&silent.url()) == (1, 1)
    })
    .await;
    assert_eq!(n.metrics.counts(&good.url()), (1, 0));
    // The silent one did not hold up the next batch beyond its timeout.
    n.send(vec![alert("B", &[])]);
    eventually("the second batch", || good.bodies().len() == 2).await;
    assert_eq!(n.metrics.dropped_total(), 0);
    // With only failing Alertmanagers the batch is dropped.
    n.apply(
        &settings(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{}']}}]\n",
            broken.address
        )),
        &[],
        &[],
    );
    n.send(vec![alert("C", &[]), alert("D", &[])]);
    eventually("the batch dropped", || n.metrics.dropped_total() == 2).await;
    let mut out = String::new();
    n.render_metrics(&mut out);
    assert!(
        out.contains(&format!(
            "prometheus_notifications_errors_total{{alertmanager=\"{}\"}} 3\n",
            broken.url()
        )),
        "{out}"
    );
    assert!(out.contains("prometheus_notifications_alertmanagers_discovered 1\n"), "{out}");
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn without_alertmanagers_every_batch_is_dropped() {
    let n = Notifier::new(&AlertingSettings::default(), &[], &[]);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(n.clone().run(stop));
    n.send(vec![alert("A", &[]), alert("B", &[])]);
    eventually("the batch dropped", || n.metrics.dropped_total() == 2).await;
    drop(stop_tx);
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
}

/// Plain `#[test]`: a notifier with Alertmanagers is built outside any runtime.
#[test]
fn file_sd_changes_are_picked_up_and_dropped_ones_listed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("am.yml");
    std::fs::write(&file, "- targets: ['a:9093']\n").unwrap();
    let s = settings(&format!(
        "alerting:\n  alertmanagers:\n    - file_sd_configs: [{{files: ['{}']}}]\n      relabel_configs:\n        - source_labels: [__address__]\n          regex: 'drop.*'\n          action: drop\n",
        file.display()
    ));
    let n = Notifier::new(&s, &[], &[]);
    assert_eq!(n.alertmanagers(), (vec!["http://a:9093/api/v2/alerts".to_string()], vec![]));
    std::fs::write(&file, "- targets: ['b:9093', 'drop:1']\n").unwrap();
    n.rediscover();
    assert_eq!(
        n.alertmanagers(),
        (vec!["http://b:9093/api/v2/alerts".to_string()], vec!["http://drop:1/api/v2/alerts".to_string()])
    );
    // A reload replaces the sets at once.
    n.apply(&AlertingSettings::default(), &[], &[]);
    assert_eq!(n.alertmanagers(), (vec![], vec![]));
}

#[tokio::test]
async fn bad_tls_files_fail_sends_not_the_notifier() {
    let s = settings(
        "alerting:\n  alertmanagers:\n    - scheme: https\n      tls_config: {ca_file: /nonexistent/ca.pem}\n      static_configs: [{targets: ['127.0.0.1:1']}]\n",
    );
    let n = Notifier::new(&s, &[], &[]);
    assert!(!n.send_all(&[alert("A", &[])]).await);
    assert_eq!(n.metrics.counts("https://127.0.0.1:1/api/v2/alerts"), (1, 1));
}

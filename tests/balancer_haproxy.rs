//! Differential test against the real thing: Debian's HAProxy 2.6 with the seed's settings,
//! scraped by Debian's prometheus-haproxy-exporter, versus obsd's balancer. obsd's
//! `/metrics` must carry every `haproxy_*` family the exporter emits, with the same type and
//! label names; and the exporter pointed at obsd's `;csv` must produce the same families it
//! produces from HAProxy.
//!
//! Needs: apt-get install haproxy prometheus-haproxy-exporter

mod common;
#[path = "balancer_support/mod.rs"]
mod support;

use common::{Obsd, free_port};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{TestServer, client, wait_for};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian installs haproxy in /usr/sbin, the exporter in /usr/bin.
fn peer(binary: &str, package: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| PathBuf::from(d).join(binary))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{binary} is missing: apt-get install {package}"))
}

type Families = BTreeMap<String, (String, BTreeSet<BTreeSet<String>>)>;

/// name → (type, the label-name sets its samples use).
fn families(text: &str) -> Families {
    let mut out: Families = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                out.entry(name.to_string()).or_default().0 = kind.to_string();
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let mut labels = BTreeSet::new();
        if line[name_end..].starts_with('{') {
            let inner = &line[name_end + 1..line.rfind('}').unwrap_or(line.len())];
            for pair in inner.split("\",") {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string());
                }
            }
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| out.contains_key(*b)))
            .unwrap_or(name);
        out.entry(base.to_string()).or_default().1.insert(labels);
    }
    out
}

fn scrape(url: &str) -> String {
    let c = client();
    let mut last = String::new();
    // The exporter (a Go process) and what it scrapes start on a loaded machine: 30 s.
    for _ in 0..300 {
        if let Ok(r) = c.get(url).send()
            && let Ok(t) = r.text()
        {
            if t.contains("haproxy_up 1") {
                return t;
            }
            last = t;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no successful scrape from {url}; last:\n{last}");
}

fn start_exporter(scrape_uri: &str) -> (Killed, String) {
    let port = free_port();
    let child = Command::new(peer("prometheus-haproxy-exporter", "prometheus-haproxy-exporter"))
        .arg(format!("--haproxy.scrape-uri={scrape_uri}"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy_exporter");
    (Killed(child), format!("http://127.0.0.1:{port}/metrics"))
}

#[test]
fn metric_families_match_haproxy_exporter() {
    let a = TestServer::start("a");
    let b = TestServer::start("b");
    let (fe_port, stats_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("haproxy.cfg");
    // The seed's haproxy.cfg plus the `defaults` PEERS.md §7 asks for.
    std::fs::write(
        &cfg_path,
        format!(
            "global\n  maxconn 256\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend prometheus_frontend\n  bind 127.0.0.1:{fe_port}\n  default_backend prometheus_backends\n\
             backend prometheus_backends\n  balance leastconn\n  option httpchk GET /\n  option httpclose\n  timeout check 5s\n\
             \x20 default-server inter 5s fall 2 rise 3\n  server replica1 {} check\n  server replica2 {} check\n\
             listen stats\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /stats\n  stats auth admin:admin\n",
            a.addr, b.addr
        ),
    )
    .unwrap();
    let _haproxy = Killed(
        Command::new(peer("haproxy", "haproxy"))
            .args(["-db", "-f", cfg_path.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let fe_url = format!("http://127.0.0.1:{fe_port}/");
    assert!(wait_for(Duration::from_secs(10), || client()
        .get(&fe_url)
        .send()
        .is_ok_and(|r| r.status().is_success())));
    for _ in 0..10 {
        let _ = client().get(&fe_url).send();
    }
    let (_exp1, exp1_url) = start_exporter(&format!("http://admin:admin@127.0.0.1:{stats_port}/stats;csv"));
    let reference = families(&scrape(&exp1_url));

    let obsd = Obsd::start(
        "balancer",
        &format!(
            "[balancer]\nstats_auth = [\"admin:admin\"]\n[balancer.listen]\naddress = \"127.0.0.1:0\"\n\
             [[balancer.frontends]]\nname = \"prometheus_frontend\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"prometheus_backends\"\n\
             [[balancer.backends]]\nname = \"prometheus_backends\"\nbalance = \"leastconn\"\nhttpchk = {{ method = \"GET\", path = \"/\" }}\n\
             httpclose = true\ntimeout_check = \"5s\"\ndefault_server = {{ inter = \"5s\", fall = 2, rise = 3 }}\n\
             [[balancer.backends.servers]]\nname = \"replica1\"\naddress = \"{}\"\n\
             [[balancer.backends.servers]]\nname = \"replica2\"\naddress = \"{}\"\n",
            a.addr, b.addr
        ),
    );
    // As in HAProxy, check columns stay empty until a server's first check has run.
    let csv = obsd.url("balancer", "/stats;csv");
    assert!(wait_for(Duration::from_secs(5), || {
        support::stats_csv(&csv).iter().filter(|r| r["check_status"] == "L7OK").count() == 2
    }));
    for _ in 0..10 {
        let r = client().get(obsd.url("frontend.prometheus_frontend", "/")).send().unwrap();
        assert!(r.status().is_success());
    }
    let ours_text = common::get(&obsd.url("balancer", "/metrics")).1;
    let ours = families(&ours_text);

    let mut problems = Vec::new();
    for (name, (kind, label_sets)) in &reference {
        if !name.starts_with("haproxy_") || name == "haproxy_exporter_build_info" {
            continue;
        }
        match ours.get(name) {
            None => problems.push(format!("missing family {name}")),
            Some((our_kind, our_sets)) => {
                if our_kind != kind {
                    problems.push(format!("{name}: type {our_kind}, haproxy_exporter says {kind}"));
                }
                if our_sets != label_sets {
                    problems.push(format!(
                        "{name}: label names {our_sets:?}, haproxy_exporter has {label_sets:?}"
                    ));
                }
            }
        }
    }
    assert!(reference.len() > 60, "suspiciously few reference families: {}", reference.len());
    assert!(problems.is_empty(), "{}\n--- obsd /metrics:\n{ours_text}", problems.join("\n"));
    // The seed's panels.
    assert!(
        ours_text.contains("haproxy_backend_sessions_total{backend=\"prometheus_backends\"} 10"),
        "{ours_text}"
    );
    assert!(ours_text.contains("haproxy_server_up{backend=\"prometheus_backends\",server=\"replica1\"}"));

    // haproxy_exporter reading obsd's CSV sees the same families as reading HAProxy's.
    let (_exp2, exp2_url) =
        start_exporter(&format!("http://admin:admin@{}/stats;csv", obsd.address("balancer")));
    let via_exporter = families(&scrape(&exp2_url));
    let names = |f: &Families| -> BTreeSet<String> {
        f.keys()
            .filter(|n| n.starts_with("haproxy_") && !n.starts_with("haproxy_exporter_"))
            .cloned()
            .collect()
    };
    assert_eq!(names(&via_exporter), names(&reference));
    let parse_failures = scrape(&exp2_url);
    assert!(parse_failures.contains("haproxy_exporter_csv_parse_failures_total 0"), "{parse_failures}");
}

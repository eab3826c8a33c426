//! The seed's three VMs as three network namespaces on one bridge: each runs the real obsd,
//! one process per role as its systemd units would (the roles and the address come from the
//! header of its config/seed/hostN.toml, the file Ansible writes), with the committed config
//! unchanged — inside a namespace the seed's 10.0.0.x addresses and fixed ports are the
//! namespace's own. Host 1 also runs the Flask app and sends traces to its collector. Every
//! Prometheus panel of the provisioned Grafana dashboard must answer with data through
//! balancer#1, queried as Grafana's data source does; then host 2 (a replica host) loses its
//! obsd and the panels must keep answering with data that arrived after the loss.
//!
//! Needs root (ip netns); namespaces are named obsdseed-<pid>-*, deleted on exit, and ones
//! left by a killed run are deleted by the next.

mod common;

use common::{Obsd, Peer, require_root};
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PREFIX: &str = "obsdseed-";
/// The test's own address, on the bridge: where Grafana would sit.
const CLIENT: &str = "10.0.0.1/24";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// The namespaces of one run; deleting them also deletes the veths and the bridge.
struct Net {
    prefix: String,
    names: Vec<String>,
}

impl Net {
    fn new() -> Net {
        remove_stale();
        let mut net = Net { prefix: format!("{PREFIX}{}-", std::process::id()), names: Vec::new() };
        let sw = net.add("sw");
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "addr", "add", CLIENT, "dev", "br0"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        net
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    fn add(&mut self, suffix: &str) -> String {
        let name = self.name(suffix);
        ip(&["netns", "add", &name]);
        self.names.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A host namespace with eth0 at `address`, its veth peer on the bridge.
    fn host(&mut self, host: &str, address: &str) -> String {
        let ns = self.add(host);
        let sw = self.name("sw");
        ip(&["-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", host, "netns", &sw]);
        ip(&["-n", &sw, "link", "set", host, "master", "br0", "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ns
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Namespaces of runs whose process is gone (killed before Drop ran).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()) else { continue };
        let mine = pid == std::process::id().to_string();
        if mine || !Path::new("/proc").join(pid).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Runs `f` on a thread inside namespace `ns`; threads it starts (reqwest's) stay there too.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        });
        handle.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

struct Host {
    name: String,
    address: String,
    roles: Vec<String>,
    config: String,
}

/// config/seed/hostN.toml's header: `# obsd on host1 (10.0.0.11): ...` and the
/// `systemctl enable --now obsd@...` line, so the test runs what the file says it is for.
fn seed_host(name: &str) -> Host {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/seed/{name}.toml"));
    let config = std::fs::read_to_string(&path).expect("read seed config");
    let first = config.lines().next().unwrap_or("");
    let address = first
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_else(|| panic!("{}: first line names no (address): {first}", path.display()));
    let roles: Vec<String> = config
        .lines()
        .find_map(|l| l.split_once("systemctl enable --now "))
        .map(|(_, units)| units.split_whitespace().filter_map(|u| u.strip_prefix("obsd@")).map(String::from))
        .unwrap_or_else(|| panic!("{}: no systemctl enable line", path.display()))
        .collect();
    assert!(!roles.is_empty(), "{}: no roles", path.display());
    Host { name: name.to_string(), address, roles, config }
}

fn venv_python(name: &str) -> PathBuf {
    let root = std::env::var("OBSD_VENV_DIR").unwrap_or_else(|_| "/var/tmp/obsd-venvs".into());
    let python = PathBuf::from(root).join(name).join("bin/python");
    assert!(python.exists(), "{} is missing: run tests/peers/setup_python.sh", python.display());
    python
}

fn peer_script(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(script)
}

fn wait_tcp(address: &str, what: &str) {
    let addr: SocketAddr = address.parse().expect("socket address");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open {address}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Grafana's data sources, from the provisioning file the package ships.
fn datasource_url(uid: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/grafana/datasources.yaml");
    let text = std::fs::read_to_string(path).expect("read datasources.yaml");
    let block = text.split("  - name:").find(|b| b.contains(&format!("uid: {uid}"))).expect("data source");
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("url: "))
        .map(|u| u.trim().to_string())
        .expect("data source url")
}

/// (panel title, PromQL) of every Prometheus target of the dashboard.
fn panel_queries() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/grafana/obsd-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).unwrap();
    let mut panels = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        panels.push(p.clone());
        panels.extend(p["panels"].as_array().cloned().unwrap_or_default());
    }
    let mut out = Vec::new();
    for p in panels {
        if p["datasource"]["type"] != "prometheus" {
            continue;
        }
        for t in p["targets"].as_array().cloned().unwrap_or_default() {
            if let Some(expr) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("?").to_string(), expr.to_string()));
            }
        }
    }
    assert!(out.len() >= 20, "only {} Prometheus queries in the dashboard", out.len());
    out
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A query_range as Grafana sends it (POST form, the last 5 minutes at the 15 s step of the
/// data source's timeInterval); the number of finite points, or why there is no answer.
fn panel_points(client: &reqwest::blocking::Client, base: &str, expr: &str) -> Result<usize, String> {
    let end = now_secs();
    let (start, end) = (format!("{:.3}", end - 300.0), format!("{end:.3}"));
    let resp = client
        .post(format!("{base}/api/v1/query_range"))
        .form(&[("query", expr), ("start", &start), ("end", &end), ("step", "15")])
        .send()
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().map_err(|e| format!("{status}: {e}"))?;
    let body: Value = serde_json::from_str(&text).map_err(|e| format!("{status}: {e}: {text}"))?;
    if body["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    let points = body["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter(|v| v[1].as_str().and_then(|x| x.parse::<f64>().ok()).is_some_and(f64::is_finite))
        .count();
    if points == 0 { Err(format!("no data: {body}")) } else { Ok(points) }
}

fn instant(client: &reqwest::blocking::Client, base: &str, expr: &str) -> Vec<f64> {
    let Ok(resp) = client.post(format!("{base}/api/v1/query")).form(&[("query", expr)]).send() else {
        return Vec::new();
    };
    let body: Value = resp.text().ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    body["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()))
        .collect()
}

/// Waits until every panel answers; the panic names the ones that did not.
fn every_panel_answers(client: &reqwest::blocking::Client, base: &str, timeout: Duration, when: &str) {
    let queries = panel_queries();
    let deadline = Instant::now() + timeout;
    loop {
        let missing: Vec<String> = queries
            .iter()
            .filter_map(|(title, expr)| {
                panel_points(client, base, expr).err().map(|e| format!("{title}: {expr}: {e}"))
            })
            .collect();
        if missing.is_empty() {
            for (title, expr) in &queries {
                eprintln!("{when}: {title}: {expr}: {:?} points", panel_points(client, base, expr));
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{when}, panels without data after {timeout:?}:\n{}",
            missing.join("\n")
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn seed_topology_answers_every_panel_through_balancer1_and_survives_a_replica_host() {
    if !require_root("the three-namespace seed topology") {
        return;
    }
    let hosts: Vec<Host> = ["host1", "host2", "host3"].iter().map(|h| seed_host(h)).collect();
    let mut net = Net::new();
    let namespaces: Vec<String> = hosts.iter().map(|h| net.host(&h.name, &h.address)).collect();
    let switch = net.name("sw");
    in_netns(&switch, || run(&hosts, &namespaces));
    drop(net);
}

fn run(hosts: &[Host], namespaces: &[String]) {
    let app_host = &hosts[0];
    let app_ns = &namespaces[0];
    assert!(app_host.roles.contains(&"collector".to_string()), "host1 runs the collector in the seed");

    // The Flask app of the seed on host 1, where the replicas' python-app job scrapes it.
    #[allow(clippy::zombie_processes)] // reaped in Peer's Drop
    let child = Command::new("ip")
        .args(["netns", "exec", app_ns])
        .arg(venv_python("metrics"))
        .arg(peer_script("metrics_app.py"))
        .args(["8000", "--host", "0.0.0.0", "--load", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start metrics app");
    let _app = Peer { child, port: 8000, _dir: tempfile::tempdir().unwrap() };
    wait_tcp(&format!("{}:8000", app_host.address), "metrics app");

    // One process per role, as `systemctl enable --now obsd@<role>` runs them.
    let mut processes: Vec<(usize, String, Obsd)> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        for role in &host.roles {
            let obsd = Obsd::start_wrapped(
                &["ip", "netns", "exec", &namespaces[i]],
                &["--role", role],
                &host.config,
            );
            processes.push((i, role.clone(), obsd));
        }
    }

    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let send_traces = || {
        let out = Command::new("ip")
            .args(["netns", "exec", app_ns])
            .arg(venv_python("otlp"))
            .arg(peer_script("otel_app.py"))
            .args(["--exporter", "otlp-http", "--endpoint", "http://127.0.0.1:4318", "--service", "checkout"])
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .expect("run otel_app.py");
        assert!(out.status.success(), "otel_app.py: {}", String::from_utf8_lossy(&out.stderr));
    };
    send_traces();

    let prometheus = datasource_url("obsd-prometheus");
    let jaeger = datasource_url("obsd-jaeger");
    // A second batch of spans once the replicas hold the first, so the span counters rise
    // inside the panels' rate() windows.
    common::wait_until("span metrics in the replicas", Duration::from_secs(120), || {
        !instant(&client, &prometheus, "traces_span_metrics_calls_total").is_empty()
    });
    send_traces();
    every_panel_answers(&client, &prometheus, Duration::from_secs(180), "before the kill");
    let services = client.get(format!("{jaeger}/api/services")).send().and_then(|r| r.text());
    assert!(services.as_ref().is_ok_and(|s| s.contains("\"checkout\"")), "Jaeger data source: {services:?}");

    let replica2_up = |value: u8| {
        format!(
            "haproxy_server_up{{backend=\"prometheus_backends\",server=\"replica2\",instance=\"{}:8404\"}} == {value}",
            app_host.address
        )
    };
    // balancer#2 may have marked replica2 down while the hosts started under load (fall 2 at
    // inter 5s) and needs rise 3 checks to bring it back: wait for that, as an SRE would
    // before pulling a host.
    let deadline = Instant::now() + Duration::from_secs(90);
    while instant(&client, &prometheus, &replica2_up(1)).is_empty() {
        assert!(
            Instant::now() < deadline,
            "replica2 was not up before the kill: {:?}",
            client
                .post(format!("{prometheus}/api/v1/query"))
                .form(&[("query", "haproxy_server_up{backend=\"prometheus_backends\"}")])
                .send()
                .and_then(|r| r.text())
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Host 2 loses every obsd process (a crashed VM keeps nothing running either).
    let lost = 1;
    for (i, role, obsd) in processes.iter_mut() {
        if *i == lost {
            obsd.signal(libc::SIGKILL);
            assert!(obsd.wait_exit(Duration::from_secs(10)).is_some(), "{role} on host2 did not die");
        }
    }
    // Fresh data after the loss: host 1's balancer#2 saw replica2 go down, and that reached
    // Grafana through the federation and balancer#1.
    let down = replica2_up(0);
    common::wait_until("replica2 down, seen through balancer#1", Duration::from_secs(120), || {
        !instant(&client, &prometheus, &down).is_empty()
    });
    every_panel_answers(&client, &prometheus, Duration::from_secs(60), "after host2's obsd was killed");
    for (i, role, obsd) in processes.iter_mut() {
        if *i != lost {
            assert!(
                obsd.wait_exit(Duration::ZERO).is_none(),
                "{role} on {} exited:\n{}",
                hosts[*i].name,
                obsd.log()
            );
        }
    }
}

//! The packaged Grafana dashboard and data sources: every query parses as PromQL, the seed's
//! five panels are there with the seed's queries (fixed where the seed's was invalid), and
//! every panel names a provisioned data source; and the packaging scripts, run as CI runs them:
//! packaging/test-deb.sh (the .deb in a debootstrap root, lintian, upgrade, purge, the Ansible
//! play against that root), packaging/test-systemd.sh (obsd@exporter under a real systemd booted
//! with systemd-nspawn: notify readiness, reload, restart) and packaging/test-ansible.sh
//! (templates = committed seed configs).

mod common;

use std::path::Path;
use std::process::Command;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

#[test]
fn dashboard_queries_are_valid_promql_and_cover_the_seed_panels() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("packaging/grafana/obsd-dashboard.json")).unwrap();
    let datasources = read("packaging/grafana/datasources.yaml");
    let mut exprs = Vec::new();
    for panel in panels(&dashboard) {
        if panel["type"] == "row" {
            continue;
        }
        let uid = panel["datasource"]["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no data source", panel["title"]));
        assert!(
            datasources.contains(&format!("uid: {uid}")),
            "{}: data source {uid} is not provisioned",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            if let Some(expr) = target["expr"].as_str() {
                if let Err(err) = promql_parser::parser::parse(expr) {
                    panic!("{}: {expr}: {err}", panel["title"]);
                }
                exprs.push((panel["title"].as_str().unwrap().to_string(), expr.to_string()));
            }
        }
    }
    for (title, expr) in [
        ("App latency p95", "histogram_quantile(0.95, rate(python_app_request_latency_seconds_bucket[1m]))"),
        ("Request rate", "rate(python_app_requests_total[1m])"),
        ("Backend sessions", "haproxy_backend_sessions_total{backend=\"prometheus_backends\"}"),
        ("Replica health", "haproxy_server_up{backend=\"prometheus_backends\"}"),
        ("Load distribution", "sum by (server) (rate(haproxy_server_sessions_total[5m]))"),
    ] {
        assert!(exprs.iter().any(|(t, e)| t == title && e == expr), "seed panel {title} missing or changed");
    }
    for family in [
        "node_cpu_seconds_total",
        "node_memory_",
        "node_filesystem_",
        "node_network_",
        "haproxy_frontend_",
        "traces_span_metrics_",
    ] {
        assert!(exprs.iter().any(|(_, e)| e.contains(family)), "no panel uses {family}");
    }
    assert!(
        panels(&dashboard).iter().any(|p| p["datasource"]["type"] == "jaeger" && p["type"] == "traces"),
        "no traces panel"
    );
}

#[test]
fn unit_runs_the_instance_role_hardened_and_notifies() {
    let unit = read("packaging/systemd/obsd@.service");
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/obsd --role %i --config /etc/obsd/obsd.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "User=obsd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/obsd",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "obsd@.service lacks {line}");
    }
}

fn run_script(script: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let started = std::time::Instant::now();
    let out = Command::new("bash")
        .arg(Path::new(root).join(script))
        .current_dir(root)
        // The binary cargo built for this test run, so the scripts never start a build.
        .env("OBSD_BINARY", env!("CARGO_BIN_EXE_obsd"))
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", out.status);
    // The last line is the script's own verdict; anything else means it stopped early.
    assert!(stdout.trim_end().ends_with("OK"), "{script} did not finish:\n{stdout}\n{stderr}");
    eprintln!("{script}: {:.0?}", started.elapsed());
}

#[test]
fn deb_installs_upgrades_and_purges_in_a_debian_root() {
    if common::require_root("packaging/test-deb.sh") {
        run_script("packaging/test-deb.sh");
    }
}

#[test]
fn ansible_templates_render_the_committed_seed_configs() {
    // Root only for apt-get when ansible is missing; .ci/run installs it beforehand.
    run_script("packaging/test-ansible.sh");
}

#[test]
fn unit_starts_notifies_reloads_and_restarts_under_systemd() {
    if common::require_root("packaging/test-systemd.sh") {
        run_script("packaging/test-systemd.sh");
    }
}

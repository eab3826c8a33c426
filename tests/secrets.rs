//! No configured secret leaves obsd: not through `/api/v1/status/config` (directly or through a
//! balancer frontend), `/api/v1/targets`, `obsd check-config`, a config error, or the log.

mod common;

use common::{Obsd, free_port, obsd_binary};
use std::process::Command;
use std::time::Duration;

/// Every secret the config below holds, each a string found nowhere else.
const SECRETS: [&str; 12] = [
    "pw-listener-plain-5591",
    "pw-stats-6620",
    "pw-scrape-basic-7734",
    "tok-authz-3391",
    "tok-bearer-4410",
    "scrape-key-path-8812",
    "pw-rw-basic-2207",
    "tok-rw-bearer-9935",
    "hdr-rw-auth-1187",
    "pw-yaml-basic-6402",
    "tok-yaml-authz-5150",
    "pw-yaml-ignored-rw-3077",
];

fn assert_no_secret(what: &str, text: &str, extra: &[&str]) {
    for secret in SECRETS.iter().chain(extra) {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    config: String,
    replica_port: u16,
    bcrypt_hash: String,
    tls_key_dir: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    // The key's directory name is as secret as the key (Prometheus's <secret> for key paths).
    let tls_key_dir = "tls-key-dir-4471".to_string();
    let (cert, key) = common::self_signed(dir.path());
    let key_dir = dir.path().join(&tls_key_dir);
    std::fs::create_dir(&key_dir).unwrap();
    let key_path = key_dir.join("server.key");
    std::fs::rename(&key, &key_path).unwrap();
    let bcrypt_hash = bcrypt::hash("pw-bcrypt-0042", 4).unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        r"global:
  scrape_interval: 1h
scrape_configs:
- job_name: yaml_basic
  basic_auth: {username: fed, password: pw-yaml-basic-6402}
  static_configs: [{targets: ['127.0.0.1:1']}]
- job_name: yaml_authz
  authorization: {credentials: tok-yaml-authz-5150}
  static_configs: [{targets: ['127.0.0.1:1']}]
remote_write:
- url: http://127.0.0.1:1/push
  basic_auth: {username: u, password: pw-yaml-ignored-rw-3077}
",
    )
    .unwrap();
    let replica_port = free_port();
    let config = format!(
        r#"
[exporter.listen]
address = "127.0.0.1:0"
[exporter.listen.tls]
cert_file = {cert:?}
key_file = {key:?}

[replica.listen]
address = "127.0.0.1:{replica_port}"
[replica.listen.basic_auth_users]
admin = "plain:pw-listener-plain-5591"
ops = {bcrypt_hash:?}

[[replica.scrape_configs]]
job_name = "basic"
scrape_interval = "1s"
basic_auth = {{ username = "scraper", password = "pw-scrape-basic-7734" }}
tls_config = {{ cert_file = "/nonexistent/client.pem", key_file = "/nonexistent/scrape-key-path-8812.pem" }}
scheme = "https"
static_configs = [{{ targets = ["127.0.0.1:1"] }}]

[[replica.scrape_configs]]
job_name = "authz"
scrape_interval = "1h"
authorization = {{ credentials = "tok-authz-3391" }}
static_configs = [{{ targets = ["127.0.0.1:1"] }}]

[[replica.scrape_configs]]
job_name = "bearer"
scrape_interval = "1h"
bearer_token = "tok-bearer-4410"
static_configs = [{{ targets = ["127.0.0.1:1"] }}]

[federation]
prometheus_config = {prom_yml:?}
[federation.listen]
address = "127.0.0.1:0"
[[federation.remote_write]]
url = "http://127.0.0.1:1/push"
basic_auth = {{ username = "rw", password = "pw-rw-basic-2207" }}
[[federation.remote_write]]
url = "http://127.0.0.1:2/push"
bearer_token = "tok-rw-bearer-9935"
headers = {{ Authorization = "Bearer hdr-rw-auth-1187" }}

[balancer]
stats_auth = ["admin:pw-stats-6620"]
[balancer.listen]
address = "127.0.0.1:0"
[[balancer.frontends]]
name = "api"
bind = "127.0.0.1:0"
default_backend = "replica"
[[balancer.backends]]
name = "replica"
[[balancer.backends.servers]]
name = "r1"
address = "127.0.0.1:{replica_port}"
"#,
        key = key_path.display().to_string(),
    );
    Setup { _dir: dir, config, replica_port, bcrypt_hash, tls_key_dir }
}

fn get_auth(url: &str) -> (u16, String) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let resp = client
        .get(url)
        .basic_auth("admin", Some("pw-listener-plain-5591"))
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

#[test]
fn status_config_targets_check_config_and_log_show_no_secret() {
    let s = setup();
    let extra = [s.bcrypt_hash.as_str(), s.tls_key_dir.as_str()];
    let obsd = Obsd::start("exporter,replica,federation,balancer", &s.config);
    assert_eq!(obsd.address("replica").port(), s.replica_port);

    let (code, replica) = get_auth(&obsd.url("replica", "/api/v1/status/config"));
    assert_eq!(code, 200, "{replica}");
    assert_no_secret("replica /api/v1/status/config", &replica, &extra);
    let yaml = serde_json::from_str::<serde_json::Value>(&replica).unwrap()["data"]["yaml"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // What is shown is the scrape configuration, secrets as Prometheus shows them.
    for shown in ["job_name: basic", "username: scraper", "password: <secret>", "credentials: <secret>"] {
        assert!(yaml.contains(shown), "{shown} missing:\n{yaml}");
    }
    assert!(yaml.contains("bearer_token: <secret>") && yaml.contains("key_file: <secret>"), "{yaml}");
    assert!(
        !yaml.contains("stats_auth") && !yaml.contains("basic_auth_users"),
        "the obsd TOML is not shown:\n{yaml}"
    );

    let (code, federation) = common::get(&obsd.url("federation", "/api/v1/status/config"));
    assert_eq!(code, 200, "{federation}");
    assert_no_secret("federation /api/v1/status/config", &federation, &extra);
    assert!(
        federation.contains("job_name: yaml_basic") && federation.contains("password: <secret>"),
        "{federation}"
    );

    // Through the balancer, with the client's credentials passed on.
    let (code, proxied) = get_auth(&obsd.url("frontend.api", "/api/v1/status/config"));
    assert_eq!(code, 200, "{proxied}");
    assert_no_secret("status/config through the balancer", &proxied, &extra);

    // The client key cannot be read: the error is logged, naming the setting, not the path.
    common::wait_until("the https job to be given up", Duration::from_secs(30), || {
        obsd.log().contains("cannot build HTTP client")
    });
    let (_, targets) = get_auth(&obsd.url("replica", "/api/v1/targets"));
    assert_no_secret("/api/v1/targets", &targets, &extra);
    let (_, stats) = common::get(&obsd.url("balancer", "/stats;csv"));
    assert_no_secret("balancer stats", &stats, &extra);

    let out = Command::new(obsd_binary()).arg("check-config").arg(&obsd.config_path).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{printed}");
    assert_no_secret("check-config", &printed, &extra);

    assert_no_secret("obsd's log", &obsd.log(), &extra);
}

#[test]
fn config_errors_do_not_repeat_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        "scrape_configs:\n- job_name: a\n  basic_auth: pw-yaml-misplaced-9004\n  static_configs: [{targets: ['x:1']}]\n",
    )
    .unwrap();
    for (name, config, secret) in [
        (
            "stats_auth not a list",
            "[balancer]\nstats_auth = \"admin:pw-misplaced-1701\"\n".to_string(),
            "pw-misplaced-1701",
        ),
        (
            "basic_auth not a table",
            "[[replica.scrape_configs]]\njob_name = \"a\"\nbasic_auth = \"pw-misplaced-2802\"\n".to_string(),
            "pw-misplaced-2802",
        ),
        (
            "basic_auth_users not a table",
            "[exporter.listen]\nbasic_auth_users = \"admin:pw-misplaced-3903\"\n".to_string(),
            "pw-misplaced-3903",
        ),
        (
            "not a bcrypt hash",
            "[exporter.listen.basic_auth_users]\nadmin = \"pw-misplaced-4004\"\n".to_string(),
            "pw-misplaced-4004",
        ),
        (
            "prometheus.yml basic_auth not a map",
            format!("[replica]\nprometheus_config = {:?}\n", prom_yml.display().to_string()),
            "pw-yaml-misplaced-9004",
        ),
    ] {
        let path = dir.path().join("obsd.toml");
        std::fs::write(&path, &config).unwrap();
        let out = Command::new(obsd_binary()).arg("check-config").arg(&path).output().unwrap();
        let printed =
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted:\n{printed}");
        assert!(printed.contains("obsd.toml:"), "{name}: the error is located:\n{printed}");
        assert!(!printed.contains(secret), "{name}: the error repeats the secret:\n{printed}");
    }
}

//! Configuration: one TOML file (`raw`), checked and resolved (`validate`) into `Config`.
//!
//! Every error names the file, line, column and key, so a systemd journal line is enough to
//! find the mistake. Without a file every role runs on the embedded defaults below.

pub mod acl;
pub mod alerting;
pub mod alertmanager;
mod balancer;
mod check;
pub mod listeners;
mod plugins;
pub mod prometheus;
pub mod prometheus_common;
mod raw;
pub mod relabel;
mod secret;
mod validate;
pub mod yaml_depth;

pub use crate::model::units::{DurationError, parse_duration};
pub use balancer::{
    BackendConfig, Balance, BalancerConfig, FrontendConfig, HttpCheck, Observe, OnError, ProxyMode, RetryOn,
    ServerConfig, UseBackend, parse_status_ranges,
};
pub use plugins::{DEFAULT_PLUGIN_DIRECTORY, GrantedDir, PluginConfig, PluginsConfig, parse_granted_dir};
pub use secret::{REDACTED, Secret, is_secret_name, redact_message, redacted_url};

use regex::Regex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/obsd/obsd.toml";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/obsd";

/// One problem in a config file, located where a user can find it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{}", render_problems(.path, .problems))]
    Invalid { path: String, problems: Vec<ConfigProblem> },
}

fn render_problems(path: &str, problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{path}:{}:{}: key `{}`: {}", p.line, p.column, p.key, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Exporter,
    Replica,
    Federation,
    Balancer,
    Collector,
    Alertmanager,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Exporter,
        Role::Replica,
        Role::Federation,
        Role::Balancer,
        Role::Collector,
        Role::Alertmanager,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Exporter => "exporter",
            Role::Replica => "replica",
            Role::Federation => "federation",
            Role::Balancer => "balancer",
            Role::Collector => "collector",
            Role::Alertmanager => "alertmanager",
        }
    }

    /// Parses `exporter,balancer` or `all`; the error lists the valid names.
    pub fn parse_list(text: &str) -> Result<Vec<Role>, String> {
        let mut roles = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                roles.extend(Role::ALL);
                continue;
            }
            match Role::ALL.iter().find(|r| r.name() == part) {
                Some(r) => roles.push(*r),
                None => {
                    return Err(format!(
                        "unknown role {part:?}; valid roles: exporter, replica, federation, balancer, collector, alertmanager, all"
                    ));
                }
            }
        }
        if roles.is_empty() {
            return Err(
                "no role given; valid roles: exporter, replica, federation, balancer, collector, all".into(),
            );
        }
        roles.sort();
        roles.dedup();
        Ok(roles)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, or None for embedded defaults.
    pub source: Option<PathBuf>,
    pub global: GlobalConfig,
    pub exporter: ExporterConfig,
    pub replica: ReplicaConfig,
    pub federation: FederationConfig,
    pub balancer: BalancerConfig,
    pub collector: CollectorConfig,
    pub alertmanager: AlertmanagerRoleConfig,
    /// Settings obsd accepts but does not act on, located like errors; logged at WARN on
    /// start and reload, printed by `check-config`, counted by `obsd_config_warnings`.
    pub warnings: Vec<ConfigProblem>,
    /// Every socket of every role, located, for the clash checks.
    pub listen_sites: Vec<listeners::ListenSite>,
    /// Roles with their own section in the file.
    pub configured_roles: Vec<Role>,
}

impl Config {
    /// Each warning as `file:line:column: key `k`: message`, the shape errors have.
    pub fn warning_lines(&self) -> Vec<String> {
        let shown =
            self.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<defaults>".into());
        self.warnings.iter().map(|w| render_problems(&shown, std::slice::from_ref(w))).collect()
    }
}

impl Config {
    fn shown_source(&self) -> String {
        self.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<defaults>".into())
    }

    /// Clashes between two of `roles`: they cannot run in one process or on one host.
    pub fn clashes_among(&self, roles: &[Role]) -> Vec<String> {
        listeners::clashes(&self.listen_sites, |a, b| {
            a.role != b.role && roles.contains(&a.role) && roles.contains(&b.role)
        })
        .iter()
        .map(|c| c.describe(&self.shown_source()))
        .collect()
    }

    /// Clashes between one of `running` and a role the file configures that is not running
    /// here: fine when that role runs on another host, a failed start when on this one.
    pub fn clashes_with_others(&self, running: &[Role]) -> Vec<String> {
        let other = |r: &Role| self.configured_roles.contains(r) && !running.contains(r);
        listeners::clashes(&self.listen_sites, |a, b| {
            (running.contains(&a.role) && other(&b.role)) || (running.contains(&b.role) && other(&a.role))
        })
        .iter()
        .map(|c| c.describe(&self.shown_source()))
        .collect()
    }
}

/// `[alertmanager]`: the alertmanager role with its alertmanager.yml loaded.
#[derive(Debug, Clone)]
pub struct AlertmanagerRoleConfig {
    pub listen: ListenerConfig,
    pub alertmanager: alertmanager::AlertmanagerConfig,
    /// Where the configuration came from, as logs name it.
    pub source: String,
    /// Alertmanager's `--web.external-url`; `http://<hostname>:<port>` when unset.
    pub external_url: Option<String>,
    /// Alertmanager's `--data.retention`: how long expired silences and log entries are kept.
    pub data_retention: Duration,
    pub cluster: Option<AlertmanagerCluster>,
}

/// HA between obsd alertmanagers (`peers`, `cluster_token`, `cluster_advertise`, `peer_timeout`).
#[derive(Debug, Clone)]
pub struct AlertmanagerCluster {
    /// This instance's name among the peers (its URL as they reach it).
    pub advertise: String,
    /// Base URLs of the other instances.
    pub peers: Vec<String>,
    pub token: Secret,
    pub peer_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct GlobalConfig {
    pub data_dir: PathBuf,
    pub log_level: String,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: Secret,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PasswordCheck {
    Bcrypt(Secret),
    Plain(Secret),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub tls: Option<TlsConfig>,
    pub basic_auth_users: BTreeMap<String, PasswordCheck>,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// How long a request's body may take to arrive (Prometheus's `--web.read-timeout`).
    pub read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub listen: ListenerConfig,
    pub scrape: crate::config::prometheus::ScrapeSettings,
    /// Where the scrape settings came from, for `check-config` and logs.
    pub scrape_source: String,
    pub lookback_delta: Duration,
    pub retention_time: Duration,
    pub retention_size: Option<u64>,
    pub remote_write_receiver: bool,
    pub remote_write_limits: RemoteWriteLimits,
}

/// The federation role: the replica's scrape, store and API, plus HA dedup and remote write.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    pub listen: ListenerConfig,
    pub scrape: crate::config::prometheus::ScrapeSettings,
    pub scrape_source: String,
    pub lookback_delta: Duration,
    pub retention_time: Duration,
    pub retention_size: Option<u64>,
    pub dedup: DedupConfig,
    pub remote_write: Vec<RemoteWriteConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DedupConfig {
    pub enabled: bool,
    pub replica_label: String,
    pub failover_timeout: Duration,
    pub forget_after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    pub name: String,
    pub url: String,
    pub basic_auth: Option<(String, Secret)>,
    pub bearer_token: Option<Secret>,
    /// Values may carry credentials (`Authorization`, API keys).
    pub headers: Vec<(String, Secret)>,
    pub remote_timeout: Duration,
    pub shards: usize,
    pub max_samples_per_send: usize,
    pub max_backlog: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub max_queue_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ExporterConfig {
    pub listen: ListenerConfig,
    /// Collector name → enabled, for every collector obsd knows.
    pub collectors: BTreeMap<String, bool>,
    pub proc_path: PathBuf,
    pub sys_path: PathBuf,
    pub rootfs_path: PathBuf,
    pub textfile_directory: Option<PathBuf>,
    pub filesystem_mount_points_exclude: Regex,
    pub filesystem_fs_types_exclude: Regex,
    pub diskstats_device_exclude: Regex,
    pub netdev_device_exclude: Option<Regex>,
    pub netstat_fields: Regex,
    pub vmstat_fields: Regex,
    pub filesystem_statfs_timeout: Duration,
    /// node_exporter's `--web.max-requests` (40); 0 means no limit.
    pub max_requests: usize,
    pub plugins: PluginsConfig,
}

/// The collector role (Jaeger all-in-one replacement).
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Query API, `/metrics`, health (:16686).
    pub listen: ListenerConfig,
    pub otlp_grpc: ListenerConfig,
    pub otlp_http: ListenerConfig,
    pub jaeger_thrift_http: ListenerConfig,
    pub jaeger_compact_udp: Option<SocketAddr>,
    pub jaeger_binary_udp: Option<SocketAddr>,
    pub retention: Duration,
    /// 0 = unlimited.
    pub retention_size_bytes: u64,
    pub flush_interval: Duration,
    pub queue_spans: usize,
    pub max_batch_spans: usize,
    pub span_metrics_namespace: String,
    pub span_metrics_buckets_ms: Vec<f64>,
}

/// spanmetrics connector's default histogram buckets, in milliseconds.
pub const DEFAULT_SPAN_METRICS_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10000.0,
    15000.0,
];

/// The configuration `--role all` runs when no config file exists (config/all-in-one.toml).
const ALL_IN_ONE: &str = include_str!("../../config/all-in-one.toml");
/// The `source` of the embedded all-in-one configuration, so a reload re-reads the same one.
pub const ALL_IN_ONE_SOURCE: &str = "<embedded config/all-in-one.toml>";

pub fn all_in_one() -> Result<Config, ConfigError> {
    parse_str(ALL_IN_ONE, Some(Path::new(ALL_IN_ONE_SOURCE)))
}

/// Where the config comes from when `--config` is not given.
pub fn default_path() -> Option<PathBuf> {
    let p = Path::new(DEFAULT_CONFIG_PATH);
    p.exists().then(|| p.to_path_buf())
}

/// Reads and validates a config file, or returns embedded defaults for `None`.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        None => parse_str("", None),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
            parse_str(&text, Some(path))
        }
    }
}

/// Parses config text; `path` is used for messages and as the config's source.
pub fn parse_str(text: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let shown = path.map(|p| p.display().to_string()).unwrap_or_else(|| "<defaults>".into());
    let invalid = |problems| ConfigError::Invalid { path: shown.clone(), problems };
    let deserializer = toml::Deserializer::new(text);
    let raw: raw::RawConfig = match serde_path_to_error::deserialize(deserializer) {
        Ok(raw) => raw,
        Err(err) => {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let (line, column) = inner.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            let key = if key == "." { String::new() } else { key };
            let message = redact_message(&key, inner.message().trim());
            return Err(invalid(vec![ConfigProblem { line, column, key, message }]));
        }
    };
    validate::resolve(raw, text, path.map(Path::to_path_buf)).map_err(invalid)
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, column)
}

/// A human summary of what each role will do with this config, for `obsd check-config`.
pub fn describe(config: &Config) -> String {
    let listener = |l: &ListenerConfig| {
        format!(
            "{}{}{}",
            l.address,
            if l.tls.is_some() { " (TLS)" } else { "" },
            if l.basic_auth_users.is_empty() {
                String::new()
            } else {
                format!(" (basic auth: {} users)", l.basic_auth_users.len())
            }
        )
    };
    let e = &config.exporter;
    let enabled: Vec<&str> = e.collectors.iter().filter(|(_, on)| **on).map(|(n, _)| n.as_str()).collect();
    let disabled: Vec<&str> = e.collectors.iter().filter(|(_, on)| !**on).map(|(n, _)| n.as_str()).collect();
    let mut out = String::new();
    out.push_str(&format!(
        "global: data_dir {}, log_level {}, log_format {}, shutdown_timeout {:?}\n",
        config.global.data_dir.display(),
        config.global.log_level,
        config.global.log_format.name(),
        config.global.shutdown_timeout
    ));
    out.push_str(&format!(
        "exporter: serves /metrics on {}; collectors on: {}; off: {}; reads {} and {}{}\n",
        listener(&e.listen),
        enabled.join(", "),
        if disabled.is_empty() { "none".to_string() } else { disabled.join(", ") },
        e.proc_path.display(),
        e.sys_path.display(),
        e.textfile_directory
            .as_ref()
            .map(|d| format!("; textfile directory {}", d.display()))
            .unwrap_or_default()
    ));
    for p in &e.plugins.plugins {
        out.push_str(&format!(
            "  plugin {}: {}{}{}; memory {} bytes, fuel {}, timeout {:?}\n",
            p.name,
            p.file.display(),
            if p.args.is_empty() { String::new() } else { format!(" args {:?}", p.args) },
            if p.read_only_dirs.is_empty() {
                String::new()
            } else {
                let dirs: Vec<String> =
                    p.read_only_dirs.iter().map(|d| format!("{}:{}", d.host.display(), d.guest)).collect();
                format!(" reads {}", dirs.join(", "))
            },
            p.memory_limit,
            p.fuel,
            p.timeout
        ));
    }
    let r = &config.replica;
    out.push_str(&format!(
        "replica: serves the Prometheus API, /federate{} on {}; scrape settings from {}; {} jobs ({}); external labels {:?}; retention {}{}\n",
        if r.remote_write_receiver { " and remote-write receive" } else { "" },
        listener(&r.listen),
        r.scrape_source,
        r.scrape.jobs.len(),
        r.scrape.jobs.iter().map(|j| format!("{} every {}", j.name, crate::model::units::format_duration(j.interval))).collect::<Vec<_>>().join(", "),
        r.scrape.external_labels,
        crate::model::units::format_duration(r.retention_time),
        r.retention_size.map(|b| format!(" or {b} bytes")).unwrap_or_default(),
    ));
    let c = &config.collector;
    let udp = |a: &Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_else(|| "off".into());
    out.push_str(&format!(
        "collector: query API and /metrics on {}; OTLP gRPC {}, OTLP HTTP {}, Jaeger thrift HTTP {}, compact UDP {}, binary UDP {}; retention {:?}{}; store {}/collector\n",
        listener(&c.listen),
        listener(&c.otlp_grpc),
        listener(&c.otlp_http),
        listener(&c.jaeger_thrift_http),
        udp(&c.jaeger_compact_udp),
        udp(&c.jaeger_binary_udp),
        c.retention,
        if c.retention_size_bytes > 0 { format!(" or {} bytes", c.retention_size_bytes) } else { String::new() },
        config.global.data_dir.display(),
    ));
    out.push_str(&describe_balancer(&config.balancer, &listener));
    let f = &config.federation;
    out.push_str(&format!(
        "federation: serves the Prometheus API and /federate on {}; scrape settings from {}; {} jobs ({}); dedup {}; retention {}\n",
        listener(&f.listen),
        f.scrape_source,
        f.scrape.jobs.len(),
        f.scrape.jobs.iter().map(|j| format!("{} every {} ({} targets)", j.name, crate::model::units::format_duration(j.interval), j.static_configs.iter().map(|s| s.targets.len()).sum::<usize>())).collect::<Vec<_>>().join(", "),
        if f.dedup.enabled {
            format!("on (replica label {:?}, failover after {})", f.dedup.replica_label, crate::model::units::format_duration(f.dedup.failover_timeout))
        } else {
            "off".to_string()
        },
        crate::model::units::format_duration(f.retention_time),
    ));
    for rw in &f.remote_write {
        out.push_str(&format!(
            "  remote_write {} -> {}: {} shards, {} samples per send, backlog up to {}, queue {}/federation/rw-queue/{}\n",
            rw.name,
            redacted_url(&rw.url),
            rw.shards,
            rw.max_samples_per_send,
            crate::model::units::format_duration(rw.max_backlog),
            config.global.data_dir.display(),
            rw.name,
        ));
    }
    let a = &config.alertmanager;
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for i in a.alertmanager.receivers.values().flat_map(|r| &r.integrations) {
        *kinds.entry(i.name()).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out.push_str(&format!(
        "alertmanager: API v2 and /metrics on {}; routing from {}; {} receivers ({}), {} inhibit rules, {} time intervals; state in {}/alertmanager{}\n",
        listener(&a.listen),
        a.source,
        a.alertmanager.receivers.len(),
        if kinds.is_empty() { "no integrations".to_string() } else { kinds.join(", ") },
        a.alertmanager.inhibit_rules.len(),
        a.alertmanager.time_intervals.len(),
        config.global.data_dir.display(),
        match &a.cluster {
            Some(c) => format!("; HA as {} with peers {}", c.advertise, c.peers.join(", ")),
            None => String::new(),
        },
    ));
    out
}

fn describe_balancer(b: &BalancerConfig, listener: &dyn Fn(&ListenerConfig) -> String) -> String {
    let mut out = format!(
        "balancer: stats on {} at {} ({}), /metrics beside it; {} frontends, {} backends\n",
        listener(&b.listen),
        b.stats_uri,
        if b.stats_auth.is_empty() { "no auth".to_string() } else { format!("{} users", b.stats_auth.len()) },
        b.frontends.len(),
        b.backends.len()
    );
    for f in &b.frontends {
        out.push_str(&format!(
            "  frontend {} {} on {}{} -> {}\n",
            f.name,
            f.mode.as_str(),
            f.bind,
            if f.tls.is_some() { " (TLS)" } else { "" },
            f.default_backend.as_deref().unwrap_or("(none)")
        ));
        for rule in &f.use_backend {
            out.push_str(&format!("    use_backend {} {}\n", rule.backend, rule.condition_text));
        }
    }
    for be in &b.backends {
        out.push_str(&format!(
            "  backend {} {} balance {} {} check, {} servers\n",
            be.name,
            be.mode.as_str(),
            be.balance.as_str(),
            match &be.httpchk {
                Some(h) => format!("HTTP {} {}", h.method, h.path),
                None => "TCP".to_string(),
            },
            be.servers.len()
        ));
    }
    out
}

/// `global.log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Bounds on one decoded write request (0: none, as Prometheus's limits). A protobuf message decodes to many times its wire
/// size (a 2-byte empty series becomes a 72-byte struct, a 2-byte empty label 48 bytes), so
/// they are checked on the wire, before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteWriteLimits {
    pub max_series: usize,
    pub max_labels_per_series: usize,
    /// Names and values of one series' labels together.
    pub max_label_bytes_per_series: usize,
    /// The decompressed body, and the memory the decoded request is estimated to take.
    pub max_decoded_bytes: usize,
}

impl Default for RemoteWriteLimits {
    fn default() -> Self {
        // A Prometheus sender's batch is `max_samples_per_send` (500 in 2.42) series at most,
        // and Mimir's defaults are 30 labels and 1 KiB + 2 KiB per label: these leave ample room.
        RemoteWriteLimits {
            max_series: 100_000,
            max_labels_per_series: 256,
            max_label_bytes_per_series: 64 << 10,
            max_decoded_bytes: 64 << 20,
        }
    }
}

/// The exporter's collectors with node_exporter 1.5's default state for each: the names
/// `[exporter.collectors]` accepts. Kept here, as data, so reading a config needs no exporter
/// code; the exporter's registry is tested to hold exactly these names.
pub const EXPORTER_COLLECTORS: &[(&str, bool)] = &[
    ("arp", true),
    ("conntrack", true),
    ("cpu", true),
    ("diskstats", true),
    ("entropy", true),
    ("filefd", true),
    ("filesystem", true),
    ("loadavg", true),
    ("meminfo", true),
    ("netclass", true),
    ("netdev", true),
    ("netstat", true),
    ("os", true),
    ("pressure", true),
    ("selinux", true),
    ("sockstat", true),
    ("softnet", true),
    ("stat", true),
    ("textfile", true),
    ("time", true),
    ("timex", true),
    ("udp_queues", true),
    ("uname", true),
    ("vmstat", true),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<ConfigProblem> {
        match parse_str(text, Some(Path::new("t.toml"))) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    #[test]
    fn empty_config_gives_defaults() {
        let c = parse_str("", None).unwrap();
        assert_eq!(c.exporter.listen.address.to_string(), "0.0.0.0:9100");
        assert_eq!(c.replica.listen.address.port(), 9090);
        assert!(c.exporter.collectors["cpu"]);
        assert!(!c.exporter.collectors.contains_key("bogus"));
    }

    #[test]
    fn listener_limits_default_as_their_peers_do() {
        let c = parse_str("", None).unwrap();
        assert_eq!(c.exporter.listen.max_body_bytes, 32 << 20);
        assert_eq!(c.exporter.listen.read_timeout, std::time::Duration::from_secs(300));
        assert_eq!(c.exporter.max_requests, 40);
        assert_eq!(
            (c.collector.otlp_grpc.max_body_bytes, c.collector.otlp_http.max_body_bytes),
            (4 << 20, 4 << 20)
        );
        let c = parse_str("[collector.otlp_http]\nmax_body_bytes = 100\n", None).unwrap();
        assert_eq!(
            (c.collector.otlp_grpc.max_body_bytes, c.collector.otlp_http.max_body_bytes),
            (4 << 20, 100)
        );
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let p = problems("[exporter]\nlisten = { address = \"127.0.0.1:1\" }\nbogus = 1\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
        assert!(p[0].message.contains("bogus"), "{:?}", p[0]);
        assert_eq!(p[0].key, "exporter.bogus");
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let p = problems("[exporter.listen]\nmax_connections = \"many\"\n");
        assert_eq!(p[0].line, 2);
        assert_eq!(p[0].key, "exporter.listen.max_connections");
    }

    #[test]
    fn syntax_error_names_line() {
        let p = problems("[global]\ndata_dir = \n");
        assert_eq!(p[0].line, 2);
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let p = problems(
            "[exporter]\nfilesystem_fs_types_exclude = \"(\"\n[exporter.listen]\naddress = \"nope\"\n[exporter.collectors]\nwarp = true\n",
        );
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("exporter.filesystem_fs_types_exclude", 2)), "{keys:?}");
        assert!(keys.contains(&("exporter.listen.address", 4)), "{keys:?}");
        assert!(keys.contains(&("exporter.collectors.warp", 6)), "{keys:?}");
    }

    #[test]
    fn alert_timing_defaults_as_prometheus_and_is_located_when_bad() {
        let c = parse_str("", None).unwrap();
        assert_eq!(c.replica.scrape.alert_timing, prometheus::AlertTiming::default());
        assert_eq!(c.replica.scrape.alert_timing.for_grace_period, std::time::Duration::from_secs(600));
        let c = parse_str(
            "[replica]\nalert_resend_delay = \"30s\"\nalert_for_grace_period = \"4s\"\n[federation]\nalert_for_outage_tolerance = \"2h\"\n",
            None,
        )
        .unwrap();
        assert_eq!(c.replica.scrape.alert_timing.resend_delay, std::time::Duration::from_secs(30));
        assert_eq!(c.replica.scrape.alert_timing.for_grace_period, std::time::Duration::from_secs(4));
        assert_eq!(
            c.federation.scrape.alert_timing.for_outage_tolerance,
            std::time::Duration::from_secs(7200)
        );
        let p = problems("[replica]\n\nalert_for_grace_period = \"soon\"\n");
        assert_eq!((p[0].key.as_str(), p[0].line), ("replica.alert_for_grace_period", 3));
    }

    #[test]
    fn an_explicit_enable_http2_is_warned_about() {
        let c = parse_str(
            "[replica]\nscrape_configs = [{ job_name = \"a\", enable_http2 = true }, { job_name = \"b\", enable_http2 = false }]\n",
            None,
        )
        .unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].message.contains("job \"a\"") && c.warnings[0].message.contains("HTTP/1.1"));
    }

    #[test]
    fn collector_defaults_and_checks() {
        let c = parse_str("", None).unwrap().collector;
        assert_eq!(c.listen.address.port(), 16686);
        assert_eq!(c.otlp_grpc.address.port(), 4317);
        assert_eq!(c.otlp_http.address.port(), 4318);
        assert_eq!(c.jaeger_thrift_http.address.port(), 14268);
        assert_eq!(c.jaeger_compact_udp.map(|a| a.port()), Some(6831));
        assert_eq!(c.retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.span_metrics_namespace, "traces_span_metrics");
        assert_eq!(c.span_metrics_buckets_ms.len(), 16);
        let off =
            parse_str("[collector]\njaeger_binary_udp = \"\"\nretention_size = \"1GB\"\n", None).unwrap();
        assert_eq!(off.collector.jaeger_binary_udp, None);
        assert!(off.collector.retention_size_bytes > 0);
        let p = problems(
            "[collector]\nretention = \"soon\"\nspan_metrics_namespace = \"9x\"\n[collector.otlp_grpc.basic_auth_users]\nu = \"plain:p\"\n",
        );
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("collector.retention", 2)), "{keys:?}");
        assert!(keys.contains(&("collector.span_metrics_namespace", 3)), "{keys:?}");
        assert!(keys.contains(&("collector.otlp_grpc.basic_auth_users.u", 5)), "{keys:?}");
    }

    #[test]
    fn federation_defaults_fan_out_and_remote_write() {
        let c = parse_str("", None).unwrap();
        assert_eq!(c.federation.listen.address.to_string(), "0.0.0.0:9090");
        assert_eq!(c.federation.dedup.replica_label, "prometheus_instance");
        assert!(c.federation.dedup.enabled && c.federation.remote_write.is_empty());
        let c = parse_str(
            "[federation]\nreplica_label = \"__replica__\"\n\
             fan_out = { replicas = [\"10.0.0.1:9090\", \"10.0.0.2:9090\"], scrape_interval = \"10s\" }\n\
             [[federation.remote_write]]\nurl = \"http://mimir:9009/api/v1/push\"\nmax_backlog = \"30m\"\n",
            None,
        )
        .unwrap();
        let f = &c.federation;
        assert_eq!(f.dedup.replica_label, "__replica__");
        let job = &f.scrape.jobs[0];
        assert_eq!(
            (job.name.as_str(), job.metrics_path.as_str(), job.honor_labels),
            ("federate", "/federate", true)
        );
        assert_eq!(job.params["match[]"], vec!["{__name__=~\".+\"}".to_string()]);
        assert_eq!(job.static_configs[0].targets.len(), 2);
        assert_eq!(f.dedup.failover_timeout, Duration::from_secs(5), "half the scrape interval");
        let rw = &f.remote_write[0];
        assert_eq!((rw.max_backlog, rw.shards), (Duration::from_secs(1800), 4));
        assert!(rw.name.starts_with("rw-"), "stable generated name: {}", rw.name);
    }

    #[test]
    fn federation_errors_name_keys() {
        let p = problems(
            "[federation]\nreplica_label = \"bad-label\"\nfan_out = { replicas = [\"http://x/\"] }\n[[federation.remote_write]]\nurl = \"ftp://x\"\nmax_backlog = \"soon\"\n",
        );
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("federation.replica_label", 2)), "{keys:?}");
        assert!(keys.contains(&("federation.fan_out.replicas", 3)), "{keys:?}");
        assert!(keys.contains(&("federation.remote_write[0].url", 5)), "{keys:?}");
        assert!(keys.contains(&("federation.remote_write[0].max_backlog", 6)), "{keys:?}");
    }

    #[test]
    fn balancer_content_switching_and_retry_on_errors_are_located() {
        let ok = parse_str(
            "[[balancer.frontends]]\nname = \"fe\"\nbind = \"127.0.0.1:0\"\n\
             acls = { is_api = \"path_beg /api\", host = [\"hdr(host) -i a\", \"hdr(host) -i b\"] }\n\
             [[balancer.frontends.use_backend]]\nbackend = \"api\"\nif = \"is_api || host\"\n\
             [[balancer.backends]]\nname = \"api\"\nretry_on = \"conn-failure 503\"\n\
             [[balancer.backends.servers]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n",
            None,
        )
        .unwrap();
        let fe = &ok.balancer.frontends[0];
        assert_eq!(fe.default_backend, None);
        assert_eq!(fe.use_backend[0].backend, "api");
        let retry = ok.balancer.backends[0].retry_on;
        assert!(retry.conn_failure && retry.status(503) && !retry.empty_response && !retry.status(502));
        let p = problems(
            "[[balancer.frontends]]\nname = \"fe\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"api\"\n\
             acls = { bad = \"path_begin /x\" }\n\
             [[balancer.frontends.use_backend]]\nbackend = \"nope\"\nif = \"{ path /x }\"\n\
             [[balancer.frontends.use_backend]]\nbackend = \"api\"\nif = \"missing\"\n\
             [[balancer.backends]]\nname = \"api\"\nretry_on = \"conn-failure 418\"\n\
             [[balancer.backends.servers]]\nname = \"s\"\naddress = \"127.0.0.1:1\"\n",
        );
        let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert!(keys.contains(&("balancer.frontends[0].acls.bad", 5)), "{keys:?}");
        assert!(keys.contains(&("balancer.frontends[0].use_backend[0].backend", 7)), "{keys:?}");
        assert!(keys.contains(&("balancer.frontends[0].use_backend[1].if", 11)), "{keys:?}");
        assert!(keys.contains(&("balancer.backends[0].retry_on", 14)), "{keys:?}");
        assert!(p.iter().any(|p| p.message.contains("no ACL named \"missing\"")), "{p:?}");
        assert!(p.iter().any(|p| p.message.contains("\"418\"")), "{p:?}");
    }

    #[test]
    fn resolved_config_debug_shows_no_secret() {
        let c = parse_str(
            "[exporter.listen.basic_auth_users]\nadmin = \"plain:sec-1\"\nops = \"$2y$04$sec2sec2sec2sec2sec2se\"\n\
             [balancer]\nstats_auth = [\"admin:sec-3\"]\n\
             [[replica.scrape_configs]]\njob_name = \"a\"\nbasic_auth = { username = \"u\", password = \"sec-4\" }\n\
             [[replica.scrape_configs]]\njob_name = \"b\"\nauthorization = { credentials = \"sec-5\" }\n\
             [[federation.remote_write]]\nurl = \"http://x/\"\nbasic_auth = { username = \"u\", password = \"sec-6\" }\n\
             [[federation.remote_write]]\nurl = \"http://y/\"\nbearer_token = \"sec-7\"\nheaders = { Authorization = \"sec-8\" }\n",
            None,
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(debug.contains("<secret>"));
        for secret in ["sec-1", "sec2sec2", "sec-3", "sec-4", "sec-5", "sec-6", "sec-7", "sec-8"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert_eq!(c.exporter.listen.basic_auth_users["admin"], PasswordCheck::Plain(Secret::new("sec-1")));
    }

    #[test]
    fn role_lists() {
        assert_eq!(Role::parse_list("exporter,balancer").unwrap(), vec![Role::Exporter, Role::Balancer]);
        assert_eq!(Role::parse_list("all").unwrap().len(), 6);
        assert!(Role::parse_list("exporter,nope").unwrap_err().contains("valid roles"));
    }

    #[test]
    fn a_role_whose_own_listeners_clash_is_refused() {
        let p = problems(
            "[balancer.listen]\naddress = \"0.0.0.0:8404\"\n[[balancer.frontends]]\nname = \"f\"\nbind = \"127.0.0.1:8404\"\ndefault_backend = \"b\"\n",
        );
        let clash = p.iter().find(|p| p.message.contains("clashes")).expect("a clash problem");
        assert_eq!((clash.line, clash.key.as_str()), (2, "balancer.listen.address"));
        assert!(clash.message.contains("balancer.frontends[0].bind") && clash.message.contains("t.toml:5:"));
    }

    #[test]
    fn roles_that_clash_load_and_say_so_for_the_roles_asked() {
        let text = "[replica.listen]\naddress = \":9090\"\n[federation]\n";
        let config = parse_str(text, Some(Path::new("t.toml"))).expect("roles may share a port across hosts");
        assert_eq!(config.configured_roles, vec![Role::Replica, Role::Federation]);
        let among = config.clashes_among(&[Role::Replica, Role::Federation]);
        assert_eq!(among.len(), 1, "{among:?}");
        assert!(among[0].starts_with("t.toml:2:11: key `replica.listen.address`"), "{among:?}");
        assert!(config.clashes_among(&[Role::Replica, Role::Exporter]).is_empty());
        assert_eq!(config.clashes_with_others(&[Role::Federation]).len(), 1);
        // The exporter's section is absent: its defaults are no concern of this file.
        assert!(config.clashes_with_others(&[Role::Exporter]).is_empty());
    }
}

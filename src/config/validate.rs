//! Raw TOML → resolved `Config`. Collects every problem instead of stopping at the first,
//! so one edit-and-retry fixes a file.

use super::check::Checker;
use super::listeners;
use super::raw::{RawAlertmanager, RawCollector, RawConfig, RawExporter, RawFederation, RawReplica};
use super::{
    CollectorConfig, Config, ConfigProblem, DEFAULT_SPAN_METRICS_BUCKETS_MS, DedupConfig, ExporterConfig,
    FederationConfig, GlobalConfig, RemoteWriteConfig, ReplicaConfig, Role, Secret, line_col, parse_duration,
};
use crate::config::prometheus::{PrometheusFile, ScrapeSettings};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The default request limit of the OTLP listeners (gRPC and HTTP): the OpenTelemetry
/// Collector's 4 MiB gRPC message limit (an SDK batch of 512 spans is far below it). Decoded
/// protobuf is many times its wire size (an empty span is 2 bytes on the wire, hundreds in
/// memory), so the limit bounds the memory one request can take, not only its bytes.
const OTLP_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// node_exporter 1.5's defaults (collector/filesystem_linux.go, diskstats_linux.go,
/// netstat_linux.go, vmstat_linux.go).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
pub const DEFAULT_DISKSTATS_DEVICE_EXCLUDE: &str = "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";
pub const DEFAULT_NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
pub const DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// The prometheus.yml sections a `[replica]` or `[federation]` may hold inline.
struct Inline<'a> {
    global: &'a Option<crate::config::prometheus::GlobalConfig>,
    scrape_configs: &'a Option<Vec<crate::config::prometheus::ScrapeConfig>>,
    alerting: &'a Option<crate::config::alerting::AlertingConfig>,
}

impl Checker<'_> {
    /// Scrape settings from a prometheus.yml (errors located in that file) or inline TOML.
    fn scrape_settings(
        &mut self,
        section: &str,
        file: &Option<Spanned<String>>,
        inline: Inline<'_>,
        extra_jobs: Vec<crate::config::prometheus::ScrapeConfig>,
        toml_rule_files: &Option<Vec<Spanned<String>>>,
    ) -> (ScrapeSettings, String) {
        let Inline { global, scrape_configs, alerting } = inline;
        let empty = ScrapeSettings {
            external_labels: Vec::new(),
            evaluation_interval: Duration::from_secs(60),
            jobs: Vec::new(),
            alerting: Default::default(),
            status_yaml: String::new(),
            rule_files: Vec::new(),
            alert_drop_labels: Vec::new(),
            alert_timing: Default::default(),
        };
        let (mut parsed, source) = match file {
            Some(path) => {
                if global.is_some() || scrape_configs.is_some() || alerting.is_some() {
                    self.problem(
                        path,
                        &format!("{section}.prometheus_config"),
                        "use either prometheus_config or inline global/scrape_configs/alerting, not both",
                    );
                }
                let text = match std::fs::read_to_string(path.get_ref()) {
                    Ok(t) => t,
                    Err(e) => {
                        self.problem(
                            path,
                            &format!("{section}.prometheus_config"),
                            format!("cannot read {}: {e}", path.get_ref()),
                        );
                        return (empty, String::new());
                    }
                };
                match crate::config::prometheus::parse_prometheus_yaml::<PrometheusFile>(&text) {
                    Ok(mut f) => {
                        if let Err(e) = crate::config::prometheus::load_scrape_config_files(
                            &mut f,
                            std::path::Path::new(path.get_ref()),
                        ) {
                            self.problem(path, &format!("{section}.prometheus_config"), e);
                        }
                        (f, path.get_ref().clone())
                    }
                    Err(e) => {
                        self.problem(
                            path,
                            &format!("{section}.prometheus_config"),
                            format!("{}:{e}", path.get_ref()),
                        );
                        return (empty, String::new());
                    }
                }
            }
            None => {
                let f = PrometheusFile {
                    global: global.clone().unwrap_or_default(),
                    scrape_configs: scrape_configs.clone().unwrap_or_default(),
                    alerting: alerting.clone(),
                    ..Default::default()
                };
                (f, format!("[{section}] in the obsd config"))
            }
        };
        parsed.scrape_configs.extend(extra_jobs);
        // obsd's HTTP clients speak HTTP/1.1 only: an explicit request for HTTP/2 is not honoured.
        let mut http2: Vec<String> = parsed
            .scrape_configs
            .iter()
            .filter(|sc| sc.enable_http2 == Some(true))
            .map(|sc| format!("scrape_configs job {:?}", sc.job_name))
            .collect();
        if let Some(alerting) = &parsed.alerting {
            http2.extend(
                alerting
                    .alertmanagers
                    .iter()
                    .enumerate()
                    .filter(|(_, am)| am.enable_http2 == Some(true))
                    .map(|(i, _)| format!("alerting.alertmanagers[{i}]")),
            );
        }
        for place in http2 {
            let at = file.as_ref().map(|f| f.span().start).unwrap_or(0);
            let (line, column) = line_col(self.text, at);
            let shown = file.as_ref().map(|f| format!("{}: ", f.get_ref())).unwrap_or_default();
            self.warnings.push(ConfigProblem {
                line,
                column,
                key: format!(
                    "{section}.{}",
                    if file.is_some() { "prometheus_config" } else { "scrape_configs" }
                ),
                message: format!(
                    "{shown}{place}: `enable_http2: true` has no effect; obsd's client speaks HTTP/1.1 only"
                ),
            });
        }
        // Only a prometheus.yml can hold sections obsd does not serve; inline TOML refuses them.
        if let Some(path) = file {
            for ignored in parsed.ignored_sections() {
                self.warning(
                    path,
                    &format!("{section}.prometheus_config"),
                    format!(
                        "{}: section `{ignored}` is not used by obsd's {section} and is ignored",
                        path.get_ref()
                    ),
                );
            }
        }
        match crate::config::prometheus::resolve(&parsed) {
            Ok(mut s) => {
                // Prometheus reads rule_files from the prometheus.yml's directory; obsd's own
                // list from the obsd config's.
                let yml_dir =
                    file.as_ref().and_then(|f| Path::new(f.get_ref()).parent().map(Path::to_path_buf));
                let from = |base: &Path, p: &String| base.join(p).display().to_string();
                let yml_base = yml_dir.as_deref().unwrap_or(&self.base_dir).to_path_buf();
                let matches_nothing =
                    |full: &str| crate::config::prometheus::expand_pattern(full).iter().all(|f| !f.is_file());
                let mut patterns = Vec::new();
                for p in &s.rule_files {
                    let full = from(&yml_base, p);
                    if matches_nothing(&full)
                        && let Some(path) = file
                    {
                        self.warning(
                            path,
                            &format!("{section}.prometheus_config"),
                            format!(
                                "{}: `rule_files` entry {p:?} matches no file; no rules are loaded from it",
                                path.get_ref()
                            ),
                        );
                    }
                    patterns.push(full);
                }
                for p in toml_rule_files.iter().flatten() {
                    let full = from(&self.base_dir, p.get_ref());
                    if matches_nothing(&full) {
                        self.warning(
                            p,
                            &format!("{section}.rule_files"),
                            format!("{full:?} matches no file; no rules are loaded from it"),
                        );
                    }
                    patterns.push(full);
                }
                s.rule_files = patterns;
                (s, source)
            }
            Err(errors) => {
                for e in errors {
                    let at = file.as_ref().map(|f| f.span().start).unwrap_or(0);
                    let (line, column) = line_col(self.text, at);
                    // prometheus.yml's `alerting:` errors start with `alerting`.
                    let part = if e.starts_with("alerting") { "alerting" } else { "scrape_configs" };
                    self.problems.push(ConfigProblem {
                        line,
                        column,
                        key: format!("{section}.{part}"),
                        message: e,
                    });
                }
                (empty, source)
            }
        }
    }

    /// `alert_resend_delay`, `alert_for_outage_tolerance`, `alert_for_grace_period` of one
    /// section, Prometheus's defaults where unset.
    fn alert_timing(
        &mut self,
        section: &str,
        [resend, outage, grace]: [&Option<Spanned<String>>; 3],
    ) -> crate::config::prometheus::AlertTiming {
        let defaults = crate::config::prometheus::AlertTiming::default();
        crate::config::prometheus::AlertTiming {
            resend_delay: self.duration(
                resend,
                &format!("{section}.alert_resend_delay"),
                defaults.resend_delay,
            ),
            for_outage_tolerance: self.duration(
                outage,
                &format!("{section}.alert_for_outage_tolerance"),
                defaults.for_outage_tolerance,
            ),
            for_grace_period: self.duration(
                grace,
                &format!("{section}.alert_for_grace_period"),
                defaults.for_grace_period,
            ),
        }
    }

    fn replica(&mut self, raw: &RawReplica) -> ReplicaConfig {
        let (mut scrape, scrape_source) = self.scrape_settings(
            "replica",
            &raw.prometheus_config,
            Inline { global: &raw.global, scrape_configs: &raw.scrape_configs, alerting: &raw.alerting },
            Vec::new(),
            &raw.rule_files,
        );
        scrape.alert_drop_labels =
            raw.alert_drop_labels.clone().unwrap_or_else(|| vec!["prometheus_instance".to_string()]);
        scrape.alert_timing = self.alert_timing(
            "replica",
            [&raw.alert_resend_delay, &raw.alert_for_outage_tolerance, &raw.alert_for_grace_period],
        );
        let retention_size = self.byte_size(&raw.retention_size, "replica.retention_size");
        let defaults = super::RemoteWriteLimits::default();
        let remote_write_limits = super::RemoteWriteLimits {
            max_series: raw.remote_write_max_series.unwrap_or(defaults.max_series),
            max_labels_per_series: raw
                .remote_write_max_labels_per_series
                .unwrap_or(defaults.max_labels_per_series),
            max_label_bytes_per_series: raw
                .remote_write_max_label_bytes_per_series
                .unwrap_or(defaults.max_label_bytes_per_series),
            max_decoded_bytes: self
                .byte_size(&raw.remote_write_max_decoded_size, "replica.remote_write_max_decoded_size")
                .map_or(defaults.max_decoded_bytes, |b| usize::try_from(b).unwrap_or(usize::MAX)),
        };
        ReplicaConfig {
            listen: self.listener(&raw.listen, "replica.listen", "0.0.0.0:9090"),
            scrape,
            scrape_source,
            lookback_delta: self.duration(
                &raw.lookback_delta,
                "replica.lookback_delta",
                Duration::from_secs(300),
            ),
            retention_time: self.duration(
                &raw.retention_time,
                "replica.retention_time",
                Duration::from_secs(15 * 86400),
            ),
            retention_size,
            remote_write_receiver: raw.remote_write_receiver.unwrap_or(false),
            remote_write_limits,
        }
    }

    /// The federate job fan-out mode adds: every replica scraped directly, labels honored.
    fn fan_out_job(&mut self, raw: &RawFederation) -> Vec<crate::config::prometheus::ScrapeConfig> {
        let Some(f) = &raw.fan_out else { return Vec::new() };
        let mut replicas = Vec::new();
        for r in &f.replicas {
            if r.get_ref().contains('/') || !r.get_ref().contains(':') {
                self.problem(r, "federation.fan_out.replicas", "expected host:port");
            } else {
                replicas.push(r.get_ref().clone());
            }
        }
        let selectors = f.match_selectors.clone().unwrap_or_else(|| vec!["{__name__=~\".+\"}".to_string()]);
        let mut job = serde_json::json!({
            "job_name": f.job_name.clone().unwrap_or_else(|| "federate".to_string()),
            "honor_labels": true,
            "metrics_path": "/federate",
            "params": { "match[]": selectors },
            "scheme": f.scheme.clone().unwrap_or_else(|| "http".to_string()),
            "static_configs": [ { "targets": replicas } ],
        });
        for (key, value) in [("scrape_interval", &f.scrape_interval), ("scrape_timeout", &f.scrape_timeout)] {
            if let Some(v) = value {
                match parse_duration(v.get_ref()) {
                    Ok(_) => job[key] = serde_json::Value::String(v.get_ref().clone()),
                    Err(e) => self.problem(v, &format!("federation.fan_out.{key}"), e.to_string()),
                }
            }
        }
        match serde_json::from_value::<crate::config::prometheus::ScrapeConfig>(job) {
            Ok(j) => vec![j],
            Err(e) => {
                if let Some(first) = f.replicas.first() {
                    self.problem(first, "federation.fan_out", e.to_string());
                }
                Vec::new()
            }
        }
    }

    fn federation(&mut self, raw: &RawFederation) -> FederationConfig {
        let extra = self.fan_out_job(raw);
        let (mut scrape, scrape_source) = self.scrape_settings(
            "federation",
            &raw.prometheus_config,
            Inline { global: &raw.global, scrape_configs: &raw.scrape_configs, alerting: &raw.alerting },
            extra,
            &raw.rule_files,
        );
        let retention_size = self.byte_size(&raw.retention_size, "federation.retention_size");
        let replica_label = match &raw.replica_label {
            None => "prometheus_instance".to_string(),
            Some(l) => {
                if !crate::model::labels::is_valid_label_name(l.get_ref()) {
                    self.problem(l, "federation.replica_label", "not a valid label name");
                }
                l.get_ref().clone()
            }
        };
        scrape.alert_drop_labels =
            raw.alert_drop_labels.clone().unwrap_or_else(|| vec![replica_label.clone()]);
        scrape.alert_timing = self.alert_timing(
            "federation",
            [&raw.alert_resend_delay, &raw.alert_for_outage_tolerance, &raw.alert_for_grace_period],
        );
        // Half the shortest interval: a replica that is a full interval behind its peer has
        // missed a scrape, while two healthy replicas are never that far apart.
        let shortest = scrape.jobs.iter().map(|j| j.interval).min().unwrap_or(Duration::from_secs(60));
        let dedup = DedupConfig {
            enabled: raw.dedup.enabled.unwrap_or(true),
            replica_label,
            failover_timeout: self.duration(
                &raw.dedup.failover_timeout,
                "federation.dedup.failover_timeout",
                shortest / 2,
            ),
            forget_after: self.duration(
                &raw.dedup.forget_after,
                "federation.dedup.forget_after",
                Duration::from_secs(600),
            ),
        };
        let mut remote_write = Vec::new();
        for (i, rw) in raw.remote_write.iter().enumerate() {
            let key = |k: &str| format!("federation.remote_write[{i}].{k}");
            let Some(url) = &rw.url else {
                self.problems.push(ConfigProblem {
                    line: 1,
                    column: 1,
                    key: key("url"),
                    message: "every [[federation.remote_write]] needs a url".into(),
                });
                continue;
            };
            if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://")) {
                self.problem(url, &key("url"), "expected an http:// or https:// URL");
            }
            let name = match &rw.name {
                Some(n) => {
                    let ok = !n.get_ref().is_empty()
                        && n.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if !ok {
                        self.problem(n, &key("name"), "use letters, digits, '-' and '_' only");
                    }
                    n.get_ref().clone()
                }
                None => {
                    // A stable name from the URL, so the queue directory survives restarts.
                    let digest = crc32fast::hash(url.get_ref().as_bytes());
                    format!("rw-{digest:08x}")
                }
            };
            if remote_write.iter().any(|r: &RemoteWriteConfig| r.name == name) {
                self.problem(url, &key("name"), format!("two remote_write blocks share the name {name:?}"));
            }
            let basic_auth = rw.basic_auth.as_ref().and_then(|b| {
                let password = match (&b.password, &b.password_file) {
                    (Some(p), None) => Some(p.clone()),
                    (None, Some(f)) => match std::fs::read_to_string(f) {
                        Ok(p) => Some(Secret::new(p.trim())),
                        Err(e) => {
                            self.problem(
                                url,
                                &key("basic_auth.password_file"),
                                format!("cannot read {f}: {e}"),
                            );
                            None
                        }
                    },
                    (None, None) => Some(Secret::default()),
                    (Some(_), Some(_)) => {
                        self.problem(url, &key("basic_auth"), "at most one of password and password_file");
                        None
                    }
                };
                password.map(|p| (b.username.clone(), p))
            });
            let bearer_token = match (&rw.bearer_token, &rw.bearer_token_file) {
                (Some(t), None) => Some(t.clone()),
                (None, Some(f)) => match std::fs::read_to_string(f) {
                    Ok(t) => Some(Secret::new(t.trim())),
                    Err(e) => {
                        self.problem(url, &key("bearer_token_file"), format!("cannot read {f}: {e}"));
                        None
                    }
                },
                (None, None) => None,
                (Some(_), Some(_)) => {
                    self.problem(
                        url,
                        &key("bearer_token"),
                        "at most one of bearer_token and bearer_token_file",
                    );
                    None
                }
            };
            remote_write.push(RemoteWriteConfig {
                name,
                url: url.get_ref().clone(),
                basic_auth,
                bearer_token,
                headers: rw.headers.clone().unwrap_or_default().into_iter().collect(),
                remote_timeout: self.duration(
                    &rw.remote_timeout,
                    &key("remote_timeout"),
                    Duration::from_secs(30),
                ),
                shards: rw.shards.unwrap_or(4).clamp(1, 256),
                max_samples_per_send: rw.max_samples_per_send.unwrap_or(2000).max(1),
                max_backlog: self.duration(
                    &rw.max_backlog,
                    &key("max_backlog"),
                    Duration::from_secs(2 * 3600),
                ),
                min_backoff: self.duration(&rw.min_backoff, &key("min_backoff"), Duration::from_millis(30)),
                max_backoff: self.duration(&rw.max_backoff, &key("max_backoff"), Duration::from_secs(5)),
                max_queue_bytes: self
                    .byte_size(&rw.max_queue_size, &key("max_queue_size"))
                    .unwrap_or(4 << 30),
            });
        }
        FederationConfig {
            listen: self.listener(&raw.listen, "federation.listen", "0.0.0.0:9090"),
            scrape,
            scrape_source,
            lookback_delta: self.duration(
                &raw.lookback_delta,
                "federation.lookback_delta",
                Duration::from_secs(300),
            ),
            retention_time: self.duration(
                &raw.retention_time,
                "federation.retention_time",
                Duration::from_secs(15 * 86400),
            ),
            retention_size,
            dedup,
            remote_write,
        }
    }

    fn exporter(&mut self, raw: &RawExporter) -> ExporterConfig {
        let mut collectors: std::collections::BTreeMap<String, bool> =
            super::EXPORTER_COLLECTORS.iter().map(|(name, on)| (name.to_string(), *on)).collect();
        for (name, enabled) in &raw.collectors {
            if super::EXPORTER_COLLECTORS.iter().any(|(known, _)| known == name) {
                collectors.insert(name.clone(), *enabled.get_ref());
            } else {
                self.problem(
                    enabled,
                    &format!("exporter.collectors.{name}"),
                    format!(
                        "unknown collector; known collectors: {}",
                        super::EXPORTER_COLLECTORS
                            .iter()
                            .map(|(known, _)| *known)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        let path = |v: &Option<Spanned<String>>, d: &str| {
            PathBuf::from(v.as_ref().map(|s| s.get_ref().as_str()).unwrap_or(d))
        };
        ExporterConfig {
            listen: self.listener(&raw.listen, "exporter.listen", "0.0.0.0:9100"),
            collectors,
            proc_path: path(&raw.proc_path, "/proc"),
            sys_path: path(&raw.sys_path, "/sys"),
            rootfs_path: path(&raw.rootfs_path, "/"),
            textfile_directory: raw.textfile_directory.as_ref().map(|s| PathBuf::from(s.get_ref())),
            filesystem_mount_points_exclude: self.regex(
                &raw.filesystem_mount_points_exclude,
                "exporter.filesystem_mount_points_exclude",
                DEFAULT_MOUNT_POINTS_EXCLUDE,
            ),
            filesystem_fs_types_exclude: self.regex(
                &raw.filesystem_fs_types_exclude,
                "exporter.filesystem_fs_types_exclude",
                DEFAULT_FS_TYPES_EXCLUDE,
            ),
            diskstats_device_exclude: self.regex(
                &raw.diskstats_device_exclude,
                "exporter.diskstats_device_exclude",
                DEFAULT_DISKSTATS_DEVICE_EXCLUDE,
            ),
            netdev_device_exclude: raw
                .netdev_device_exclude
                .as_ref()
                .map(|_| self.regex(&raw.netdev_device_exclude, "exporter.netdev_device_exclude", "$^")),
            netstat_fields: self.regex(
                &raw.netstat_fields,
                "exporter.netstat_fields",
                DEFAULT_NETSTAT_FIELDS,
            ),
            vmstat_fields: self.regex(&raw.vmstat_fields, "exporter.vmstat_fields", DEFAULT_VMSTAT_FIELDS),
            filesystem_statfs_timeout: self.duration(
                &raw.filesystem_statfs_timeout,
                "exporter.filesystem_statfs_timeout",
                Duration::from_secs(5),
            ),
            max_requests: raw.max_requests.unwrap_or(40),
            plugins: self.plugins(&raw.plugins, &raw.plugin),
        }
    }
}

impl Checker<'_> {
    fn alertmanager(&mut self, raw: &RawAlertmanager) -> super::AlertmanagerRoleConfig {
        use super::alertmanager as am;
        let listen = self.listener(&raw.listen, "alertmanager.listen", "0.0.0.0:9093");
        let inline: Vec<(&str, &Option<toml::Value>)> = [
            ("global", &raw.global),
            ("route", &raw.route),
            ("receivers", &raw.receivers),
            ("inhibit_rules", &raw.inhibit_rules),
            ("templates", &raw.templates),
            ("time_intervals", &raw.time_intervals),
            ("mute_time_intervals", &raw.mute_time_intervals),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .collect();
        let section_line = self
            .text
            .lines()
            .position(|l| l.trim_start().starts_with("[alertmanager"))
            .map_or((1, 1), |i| (i + 1, 1));
        let fallback = || {
            am::parse("route:\n  receiver: default\nreceivers:\n  - name: default\n")
                .expect("the built-in alertmanager.yml parses")
        };
        let (parsed, source) = match &raw.config {
            Some(path) => {
                if !inline.is_empty() {
                    self.problem(
                        path,
                        "alertmanager.config",
                        "use either config or inline route/receivers, not both",
                    );
                }
                let full = self.base_dir.join(path.get_ref());
                match std::fs::read_to_string(&full) {
                    Err(e) => {
                        self.problem(
                            path,
                            "alertmanager.config",
                            format!("cannot read {}: {e}", full.display()),
                        );
                        (fallback(), full.display().to_string())
                    }
                    Ok(text) => match am::parse_in(&text, full.parent().unwrap_or(&self.base_dir)) {
                        Ok(c) => (c, full.display().to_string()),
                        Err(e) => {
                            let at = e.line.map(|l| format!(":{l}")).unwrap_or_default();
                            self.problem(
                                path,
                                "alertmanager.config",
                                format!("{}{at}: {}", full.display(), e.message),
                            );
                            (fallback(), full.display().to_string())
                        }
                    },
                }
            }
            None if !inline.is_empty() => {
                let mut map = serde_json::Map::new();
                for (key, value) in &inline {
                    match serde_json::to_value(value) {
                        Ok(v) => {
                            map.insert((*key).to_string(), v);
                        }
                        Err(e) => self.problems.push(ConfigProblem {
                            line: section_line.0,
                            column: section_line.1,
                            key: format!("alertmanager.{key}"),
                            message: e.to_string(),
                        }),
                    }
                }
                let value = serde_json::Value::Object(map);
                let text = serde_norway::to_string(&value).unwrap_or_default();
                match serde_json::from_value::<am::File>(value)
                    .map_err(|e| am::ConfigError { line: None, message: e.to_string() })
                    .and_then(|f| am::resolve_in(&f, &self.base_dir))
                {
                    Ok(mut c) => {
                        c.set_original(&text);
                        (c, "[alertmanager] in the obsd config".to_string())
                    }
                    Err(e) => {
                        self.problems.push(ConfigProblem {
                            line: section_line.0,
                            column: section_line.1,
                            key: "alertmanager".to_string(),
                            message: e.message,
                        });
                        (fallback(), "[alertmanager] in the obsd config".to_string())
                    }
                }
            }
            None => (fallback(), "built-in default (one receiver, no integrations)".to_string()),
        };
        for w in &parsed.warnings {
            self.warnings.push(ConfigProblem {
                line: section_line.0,
                column: section_line.1,
                key: "alertmanager.config".to_string(),
                message: format!("{source}: {w}"),
            });
        }
        let external_url = raw.external_url.as_ref().map(|u| u.get_ref().trim_end_matches('/').to_string());
        let data_retention = self.duration(
            &raw.data_retention,
            "alertmanager.data_retention",
            Duration::from_secs(120 * 3600),
        );
        let peer_timeout =
            self.duration(&raw.peer_timeout, "alertmanager.peer_timeout", Duration::from_secs(15));
        let cluster = match &raw.peers {
            None => None,
            Some(peers) if peers.is_empty() => None,
            Some(peers) => {
                for p in peers {
                    let url = p.get_ref();
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        self.problem(
                            p,
                            "alertmanager.peers",
                            "expected a base URL such as http://10.0.0.2:9093",
                        );
                    }
                }
                let token = match &raw.cluster_token {
                    Some(t) if !t.get_ref().is_empty() => t.get_ref().clone(),
                    _ => {
                        self.problem(
                            &peers[0],
                            "alertmanager.cluster_token",
                            "peers need a cluster_token, the secret they authenticate each other with",
                        );
                        crate::config::Secret::new("")
                    }
                };
                let advertise = match &raw.cluster_advertise {
                    Some(a) => a.get_ref().trim_end_matches('/').to_string(),
                    None => {
                        if listen.address.ip().is_unspecified() {
                            self.problem(&peers[0], "alertmanager.cluster_advertise", format!("listening on {} gives this instance no name its peers know; set cluster_advertise to its URL", listen.address));
                        }
                        format!("http://{}", listen.address)
                    }
                };
                Some(super::AlertmanagerCluster {
                    advertise,
                    peers: peers.iter().map(|p| p.get_ref().trim_end_matches('/').to_string()).collect(),
                    token,
                    peer_timeout,
                })
            }
        };
        super::AlertmanagerRoleConfig {
            listen,
            alertmanager: parsed,
            source,
            external_url,
            data_retention,
            cluster,
        }
    }

    fn collector(&mut self, raw: &RawCollector) -> CollectorConfig {
        let retention = self.duration(&raw.retention, "collector.retention", Duration::from_secs(7 * 86400));
        if let Some(r) = &raw.retention
            && retention < Duration::from_secs(1)
        {
            self.problem(r, "collector.retention", "retention must be at least 1s");
        }
        let namespace = match &raw.span_metrics_namespace {
            None => "traces_span_metrics".to_string(),
            Some(ns) => {
                let valid = ns.get_ref().chars().enumerate().all(|(i, ch)| {
                    ch.is_ascii_alphabetic() || ch == '_' || ch == ':' || (i > 0 && ch.is_ascii_digit())
                });
                if !valid {
                    self.problem(
                        ns,
                        "collector.span_metrics_namespace",
                        "not a valid Prometheus metric name prefix",
                    );
                }
                ns.get_ref().clone()
            }
        };
        // tonic serves gRPC on its own HTTP/2 stack, which the shared listener's TLS and basic
        // auth do not wrap; refuse rather than silently serve in the clear.
        if let Some(tls) = &raw.otlp_grpc.tls {
            self.problem(
                &tls.cert_file,
                "collector.otlp_grpc.tls",
                "TLS is not supported on the OTLP gRPC listener yet",
            );
        }
        if let Some((user, secret)) = raw.otlp_grpc.basic_auth_users.iter().flatten().next() {
            self.problem(
                secret,
                &format!("collector.otlp_grpc.basic_auth_users.{user}"),
                "basic auth is not supported on the OTLP gRPC listener yet",
            );
        }
        let mut buckets =
            raw.span_metrics_buckets_ms.clone().unwrap_or_else(|| DEFAULT_SPAN_METRICS_BUCKETS_MS.to_vec());
        buckets.retain(|b| b.is_finite());
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        CollectorConfig {
            listen: self.listener(&raw.listen, "collector.listen", "0.0.0.0:16686"),
            otlp_grpc: self.listener_with_body_limit(
                &raw.otlp_grpc,
                "collector.otlp_grpc",
                "0.0.0.0:4317",
                OTLP_MAX_BODY_BYTES,
            ),
            otlp_http: self.listener_with_body_limit(
                &raw.otlp_http,
                "collector.otlp_http",
                "0.0.0.0:4318",
                OTLP_MAX_BODY_BYTES,
            ),
            jaeger_thrift_http: self.listener(
                &raw.jaeger_thrift_http,
                "collector.jaeger_thrift_http",
                "0.0.0.0:14268",
            ),
            jaeger_compact_udp: self.udp_address(
                &raw.jaeger_compact_udp,
                "collector.jaeger_compact_udp",
                "0.0.0.0:6831",
            ),
            jaeger_binary_udp: self.udp_address(
                &raw.jaeger_binary_udp,
                "collector.jaeger_binary_udp",
                "0.0.0.0:6832",
            ),
            retention,
            retention_size_bytes: self
                .byte_size(&raw.retention_size, "collector.retention_size")
                .unwrap_or(0),
            flush_interval: self.duration(
                &raw.flush_interval,
                "collector.flush_interval",
                Duration::from_secs(1),
            ),
            queue_spans: raw.queue_spans.unwrap_or(200_000).max(1),
            max_batch_spans: raw.max_batch_spans.unwrap_or(50_000).max(1),
            span_metrics_namespace: namespace,
            span_metrics_buckets_ms: buckets,
        }
    }
}

pub fn resolve(raw: RawConfig, text: &str, source: Option<PathBuf>) -> Result<Config, Vec<ConfigProblem>> {
    let base_dir = source
        .as_deref()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut c = Checker { text, problems: Vec::new(), warnings: Vec::new(), sites: Vec::new(), base_dir };
    let log_level = match &raw.global.log_level {
        None => "info".to_string(),
        Some(l) => {
            let level = l.get_ref().to_lowercase();
            if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
                c.problem(l, "global.log_level", "expected one of error, warn, info, debug, trace");
            }
            level
        }
    };
    let log_format = match &raw.global.log_format {
        None => super::LogFormat::Text,
        Some(f) => super::LogFormat::parse(f.get_ref()).unwrap_or_else(|| {
            c.problem(f, "global.log_format", "expected text or json");
            super::LogFormat::Text
        }),
    };
    let global = GlobalConfig {
        data_dir: raw
            .global
            .data_dir
            .as_ref()
            .map(|d| PathBuf::from(d.get_ref()))
            .unwrap_or_else(|| PathBuf::from(super::DEFAULT_DATA_DIR)),
        log_level,
        log_format,
        shutdown_timeout: c.duration(
            &raw.global.shutdown_timeout,
            "global.shutdown_timeout",
            Duration::from_secs(15),
        ),
    };
    let exporter = c.exporter(&raw.exporter);
    let replica = c.replica(&raw.replica);
    let federation = c.federation(&raw.federation);
    let balancer = c.balancer(&raw.balancer);
    let collector = c.collector(&raw.collector);
    let alertmanager = c.alertmanager(&raw.alertmanager);
    let configured_roles = configured_roles(text);
    let shown = source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<defaults>".into());
    // One role's own sockets clashing can never start, wherever it runs.
    for clash in listeners::clashes(&c.sites, |a, b| a.role == b.role) {
        c.problems.push(clash.problem(&shown));
    }
    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| (p.line, p.column));
        return Err(c.problems);
    }
    c.warnings.sort_by_key(|p| (p.line, p.column));
    Ok(Config {
        source,
        global,
        exporter,
        replica,
        federation,
        balancer,
        collector,
        alertmanager,
        warnings: c.warnings,
        listen_sites: c.sites,
        configured_roles,
    })
}

/// Roles with a section of their own in the file: the roles it is meant to run.
fn configured_roles(text: &str) -> Vec<Role> {
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    Role::ALL.into_iter().filter(|r| table.contains_key(r.name())).collect()
}

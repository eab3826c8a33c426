//! Prometheus's scrape configuration (config/config.go in 2.42): the same field names and
//! defaults, read from an existing prometheus.yml or written inline in obsd.toml.

use super::Secret;
use super::prometheus_common::{
    Authorization, BasicAuth, FileSdConfig, PromDuration, StaticConfig, TlsConfig, read_secret,
};
use super::relabel::RelabelConfig;
use crate::model::units::parse_byte_size;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A size written as Prometheus writes it (`10MB`, `512KiB`); Prometheus's units are powers of 1024.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByteSize(pub u64);

impl Serialize for ByteSize {
    /// In the largest power-of-1024 unit that holds it exactly, as Prometheus shows sizes.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let units = [("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
        let shown = units
            .iter()
            .find(|(_, shift)| self.0 != 0 && self.0.is_multiple_of(1u64 << shift))
            .map(|(unit, shift)| format!("{}{unit}", self.0 >> shift))
            .unwrap_or_else(|| format!("{}B", self.0));
        s.serialize_str(&shown)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_byte_size(&s).map(ByteSize).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid size {s:?} (expected e.g. 10MB, 512KB, 1GB)"))
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub evaluation_interval: Option<PromDuration>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    pub query_log_file: Option<String>,
    pub body_size_limit: Option<ByteSize>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default)]
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub metrics_path: Option<String>,
    pub scheme: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub body_size_limit: Option<ByteSize>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
}

/// A whole prometheus.yml. Sections obsd's replica does not use (rules, remote storage) are
/// accepted so an existing file loads unchanged, and reported by `ignored_sections`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusFile {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    pub scrape_config_files: Vec<String>,
    pub alerting: Option<super::alerting::AlertingConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    // obsd does not run these sections: they are not part of the configuration it shows.
    #[serde(skip_serializing)]
    pub remote_write: Option<serde_norway::Value>,
    #[serde(skip_serializing)]
    pub remote_read: Option<serde_norway::Value>,
    #[serde(skip_serializing)]
    pub storage: Option<serde_norway::Value>,
    #[serde(skip_serializing)]
    pub tracing: Option<serde_norway::Value>,
}

impl PrometheusFile {
    pub fn ignored_sections(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (name, present) in [
            ("remote_write", self.remote_write.is_some()),
            ("remote_read", self.remote_read.is_some()),
            ("storage", self.storage.is_some()),
            ("tracing", self.tracing.is_some()),
        ] {
            if present {
                out.push(name);
            }
        }
        out
    }
}

/// A file named by `scrape_config_files` (Prometheus 2.43+): it holds only `scrape_configs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeConfigFile {
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
}

/// Parses Prometheus YAML. The error reads `line:column: message`; serde quotes the value it
/// got, which under a secret-named key (a password where a map belongs) is shown as `<secret>`.
pub fn parse_prometheus_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    // Checked before the YAML scanner, whose time grows with the square of the nesting; the
    // leading space keeps callers' `path:` prefix readable (`path: line N: …`).
    crate::config::yaml_depth::check(text).map_err(|e| format!(" {e}"))?;
    serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(text)).map_err(|err| {
        let key = err.path().to_string();
        let inner = err.into_inner();
        let (line, col) = inner.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        format!("{line}:{col}: {}", crate::config::redact_message(&key, &inner.to_string()))
    })
}

/// Appends the jobs of every file `scrape_config_files` names (globs in the last path element,
/// relative paths from the main file's directory), as Prometheus 2.43 does.
pub fn load_scrape_config_files(
    file: &mut PrometheusFile,
    main_path: &std::path::Path,
) -> Result<(), String> {
    let base = main_path.parent().unwrap_or(std::path::Path::new("."));
    for pattern in file.scrape_config_files.clone() {
        let full = if std::path::Path::new(&pattern).is_absolute() {
            pattern.clone()
        } else {
            base.join(&pattern).display().to_string()
        };
        for path in expand_pattern(&full) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("scrape_config_files: {}: {e}", path.display()))?;
            let extra: ScrapeConfigFile = parse_prometheus_yaml(&text)
                .map_err(|e| format!("scrape_config_files: {}:{e}", path.display()))?;
            file.scrape_configs.extend(extra.scrape_configs);
        }
    }
    Ok(())
}

/// Expands a file_sd or scrape_config_files pattern; like Prometheus, only the last path element may hold `*`.
pub fn expand_pattern(pattern: &str) -> Vec<std::path::PathBuf> {
    let path = std::path::Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains('*') {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let re = regex::Regex::new(&format!("^{}$", regex::escape(name).replace("\\*", ".*"))).ok();
    let mut out: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| re.as_ref().is_some_and(|re| re.is_match(&e.file_name().to_string_lossy())))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// One job's settings with every default applied.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub basic_auth: Option<(String, Secret)>,
    pub bearer_token: Option<Secret>,
    pub authorization_type: String,
    pub tls_config: TlsConfig,
    /// Follow 3xx answers (Prometheus's default); `follow_redirects: false` reports them.
    pub follow_redirects: bool,
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
}

/// How often firing alerts are re-sent and how `for` state survives a restart, with the
/// defaults of Prometheus's `--rules.alert.resend-delay`, `--rules.alert.for-outage-tolerance`
/// and `--rules.alert.for-grace-period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertTiming {
    pub resend_delay: Duration,
    /// How long an outage may last for `for` state to be restored from `ALERTS_FOR_STATE`.
    pub for_outage_tolerance: Duration,
    /// The least time an alert restored at start stays pending before it may fire again.
    pub for_grace_period: Duration,
}

impl Default for AlertTiming {
    fn default() -> Self {
        AlertTiming {
            resend_delay: Duration::from_secs(60),
            for_outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
        }
    }
}

/// The scrape side of a replica, resolved.
#[derive(Debug, Clone)]
pub struct ScrapeSettings {
    pub external_labels: Vec<(String, String)>,
    pub evaluation_interval: Duration,
    pub jobs: Vec<Job>,
    /// `alerting:`: where the rules' alerts go.
    pub alerting: super::alerting::AlertingSettings,
    /// Rule file patterns (a `*` allowed in the last element), as given, relative ones
    /// already joined to the directory they are read from; globbed on every (re)load.
    pub rule_files: Vec<String>,
    /// Labels removed from every alert after the external labels are added (obsd's `[replica]`
    /// / `[federation]` `alert_drop_labels`): the replica label by default, so the alerts of two
    /// HA replicas evaluating the same rules are one alert in Alertmanager.
    pub alert_drop_labels: Vec<String>,
    /// Prometheus's `--rules.alert.*` flags, obsd's `alert_resend_delay`,
    /// `alert_for_outage_tolerance`, `alert_for_grace_period`.
    pub alert_timing: AlertTiming,
    /// The scrape configuration as `/api/v1/status/config` shows it: rendered from the parsed
    /// file (never the text as written), every secret as `<secret>`.
    pub status_yaml: String,
}

/// The YAML `/api/v1/status/config` serves: `file` serialized, unset fields left out. Secrets
/// are `Secret`s, which serialize as `<secret>`; sections obsd ignores are not shown.
pub fn status_yaml(file: &PrometheusFile) -> String {
    fn prune(v: &mut serde_norway::Value) {
        match v {
            serde_norway::Value::Mapping(m) => {
                m.retain(|_, v| !v.is_null());
                m.values_mut().for_each(prune);
            }
            serde_norway::Value::Sequence(s) => s.iter_mut().for_each(prune),
            _ => {}
        }
    }
    match serde_norway::to_value(file) {
        Ok(mut value) => {
            prune(&mut value);
            serde_norway::to_string(&value).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

/// Applies Prometheus's defaults and checks; errors read like Prometheus's own.
pub fn resolve(file: &PrometheusFile) -> Result<ScrapeSettings, Vec<String>> {
    let mut errors = Vec::new();
    let g = &file.global;
    let global_interval = g.scrape_interval.map(|d| d.0).unwrap_or(Duration::from_secs(60));
    let global_timeout =
        g.scrape_timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10).min(global_interval));
    if global_timeout > global_interval {
        errors.push("global scrape timeout greater than scrape interval".to_string());
    }
    for name in g.external_labels.keys() {
        if !crate::model::labels::is_valid_label_name(name) {
            errors.push(format!("{name:?} is not a valid label name"));
        }
    }
    let mut jobs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for sc in &file.scrape_configs {
        if !seen.insert(sc.job_name.clone()) {
            errors.push(format!("found multiple scrape configs with job name {:?}", sc.job_name));
        }
        if sc.job_name.is_empty() {
            errors.push("job_name is empty".into());
        }
        let interval = sc.scrape_interval.map(|d| d.0).unwrap_or(global_interval);
        let timeout = sc.scrape_timeout.map(|d| d.0).unwrap_or(global_timeout.min(interval));
        if timeout > interval {
            errors.push(format!(
                "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                sc.job_name
            ));
        }
        let scheme = sc.scheme.clone().unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            errors.push(format!("unknown scrape scheme {scheme:?} for job {:?}", sc.job_name));
        }
        for rc in sc.relabel_configs.iter().chain(&sc.metric_relabel_configs) {
            if let Err(e) = rc.validate() {
                errors.push(format!("job {:?}: {e}", sc.job_name));
            }
        }
        let basic_auth = match &sc.basic_auth {
            Some(b) => match read_secret(&b.password, &b.password_file, "password") {
                Ok(p) => Some((b.username.clone(), p.unwrap_or_default())),
                Err(e) => {
                    errors.push(format!("job {:?}: {e}", sc.job_name));
                    None
                }
            },
            None => None,
        };
        let (bearer_token, authorization_type) = match (
            &sc.authorization,
            &sc.bearer_token,
            &sc.bearer_token_file,
        ) {
            (Some(a), None, None) => {
                let t = read_secret(&a.credentials, &a.credentials_file, "credentials").unwrap_or_else(|e| {
                    errors.push(format!("job {:?}: {e}", sc.job_name));
                    None
                });
                (t, a.kind.clone().unwrap_or_else(|| "Bearer".into()))
            }
            (Some(_), _, _) => {
                errors.push(format!("job {:?}: at most one of bearer_token, bearer_token_file & authorization must be configured", sc.job_name));
                (None, "Bearer".into())
            }
            (None, t, f) => (
                read_secret(t, f, "bearer_token").unwrap_or_else(|e| {
                    errors.push(format!("job {:?}: {e}", sc.job_name));
                    None
                }),
                "Bearer".into(),
            ),
        };
        if basic_auth.is_some() && bearer_token.is_some() {
            errors.push(format!("job {:?}: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured", sc.job_name));
        }
        jobs.push(Job {
            name: sc.job_name.clone(),
            interval,
            timeout,
            metrics_path: sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into()),
            scheme,
            params: sc.params.clone(),
            honor_labels: sc.honor_labels,
            honor_timestamps: sc.honor_timestamps.unwrap_or(true),
            static_configs: sc.static_configs.clone(),
            file_sd_configs: sc.file_sd_configs.clone(),
            relabel_configs: sc.relabel_configs.clone(),
            metric_relabel_configs: sc.metric_relabel_configs.clone(),
            basic_auth,
            bearer_token,
            authorization_type,
            tls_config: sc.tls_config.clone().unwrap_or_default(),
            follow_redirects: sc.follow_redirects.unwrap_or(true),
            body_size_limit: sc.body_size_limit.or(g.body_size_limit).map(|b| b.0).unwrap_or(0),
            sample_limit: sc.sample_limit.or(g.sample_limit).unwrap_or(0),
            target_limit: sc.target_limit.or(g.target_limit).unwrap_or(0),
            label_limit: sc.label_limit.or(g.label_limit).unwrap_or(0),
            label_name_length_limit: sc.label_name_length_limit.or(g.label_name_length_limit).unwrap_or(0),
            label_value_length_limit: sc.label_value_length_limit.or(g.label_value_length_limit).unwrap_or(0),
        });
    }
    let alerting = super::alerting::resolve(file.alerting.as_ref()).unwrap_or_else(|e| {
        errors.extend(e);
        Default::default()
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ScrapeSettings {
        external_labels: g.external_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        evaluation_interval: g.evaluation_interval.map(|d| d.0).unwrap_or(Duration::from_secs(60)),
        jobs,
        alerting,
        status_yaml: status_yaml(file),
        rule_files: file.rule_files.clone(),
        alert_drop_labels: Vec::new(),
        alert_timing: AlertTiming::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
global:
  scrape_interval: 15s
  external_labels:
    prometheus_instance: replica-1
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['10.0.0.1:9100', '10.0.0.2:9100']
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{__name__=~".+"}']
    scrape_interval: 15s
    static_configs:
      - targets: ['lb:9092']
rule_files: ['rules.yml']
"#;

    #[test]
    fn seed_config_resolves_with_prometheus_defaults() {
        let file: PrometheusFile = serde_norway::from_str(SEED).unwrap();
        assert!(file.ignored_sections().is_empty());
        assert_eq!(file.rule_files, vec!["rules.yml"]);
        let s = resolve(&file).unwrap();
        assert_eq!(s.external_labels, vec![("prometheus_instance".to_string(), "replica-1".to_string())]);
        let node = &s.jobs[0];
        assert_eq!((node.interval, node.timeout), (Duration::from_secs(15), Duration::from_secs(10)));
        assert_eq!((node.metrics_path.as_str(), node.scheme.as_str()), ("/metrics", "http"));
        assert!(node.honor_timestamps && !node.honor_labels);
        assert!(s.jobs[1].honor_labels);
        assert_eq!(s.jobs[1].params["match[]"], vec!["{__name__=~\".+\"}".to_string()]);
    }

    #[test]
    fn prometheus_errors() {
        let dup = "scrape_configs:\n  - job_name: a\n  - job_name: a\n";
        let e = resolve(&serde_norway::from_str(dup).unwrap()).unwrap_err();
        assert!(e[0].contains("multiple scrape configs with job name \"a\""), "{e:?}");
        let slow = "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n";
        let e = resolve(&serde_norway::from_str(slow).unwrap()).unwrap_err();
        assert!(e[0].contains("scrape timeout greater than scrape interval"), "{e:?}");
        assert!(
            serde_norway::from_str::<PrometheusFile>(
                "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n"
            )
            .is_err()
        );
        // A short interval caps the default timeout, as Prometheus does.
        let short = "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n";
        let s = resolve(&serde_norway::from_str(short).unwrap()).unwrap();
        assert_eq!(s.jobs[0].timeout, Duration::from_secs(5));
    }

    #[test]
    fn scrape_config_files_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jobs-a.yml"), "scrape_configs:\n  - job_name: a\n").unwrap();
        std::fs::write(dir.path().join("jobs-b.yml"), "scrape_configs:\n  - job_name: b\n").unwrap();
        let main = dir.path().join("prometheus.yml");
        let mut file: PrometheusFile = serde_norway::from_str(
            "scrape_config_files: ['jobs-*.yml']\nscrape_configs:\n  - job_name: main\n",
        )
        .unwrap();
        load_scrape_config_files(&mut file, &main).unwrap();
        let names: Vec<_> = file.scrape_configs.iter().map(|s| s.job_name.as_str()).collect();
        assert_eq!(names, vec!["main", "a", "b"]);
        std::fs::write(dir.path().join("jobs-c.yml"), "scrape_configs:\n  - job_nam: c\n").unwrap();
        assert!(load_scrape_config_files(&mut file, &main).unwrap_err().contains("jobs-c.yml:"));
    }
}

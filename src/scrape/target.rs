//! Targets: discovery groups (static_configs, file_sd_configs) turned into scrape targets by
//! Prometheus's rules (scrape/target.go PopulateLabels in 2.42): default labels, relabelling,
//! the default port, `instance` from `__address__`, `__param_*` into the URL, `__` labels dropped.

use super::relabel::{self, LabelSet};
use crate::config::prometheus::Job;
use crate::config::prometheus_common::{FileSdConfig, StaticConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A group of targets sharing labels, as discovery yields it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the group came from (file path or `static/N`); not part of the file format.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub job: String,
    /// Labels every scraped series gets (job, instance, and the group's labels).
    pub labels: LabelSet,
    /// Labels before relabelling, as `/api/v1/targets` shows them.
    pub discovered_labels: LabelSet,
    pub url: String,
}

impl Target {
    /// A stable 64-bit identity (FNV-1a over labels and URL) that spreads scrape times.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x100000001b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x100000001b3);
        };
        for (k, v) in &self.labels {
            feed(k.as_bytes());
            feed(v.as_bytes());
        }
        feed(self.url.as_bytes());
        h
    }

    pub fn instance(&self) -> &str {
        self.labels.iter().find(|(k, _)| k == "instance").map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DroppedTarget {
    pub discovered_labels: LabelSet,
}

fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn has_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.contains("]:");
    }
    address.matches(':').count() == 1
}

/// Builds one target from an address and its group, or says why it was dropped/invalid.
pub fn populate(
    job: &Job,
    address: &str,
    group_labels: &BTreeMap<String, String>,
) -> Result<Option<Target>, String> {
    let mut labels: LabelSet = vec![
        ("__address__".into(), address.to_string()),
        ("__metrics_path__".into(), job.metrics_path.clone()),
        ("__scheme__".into(), job.scheme.clone()),
        ("__scrape_interval__".into(), crate::model::units::format_duration(job.interval)),
        ("__scrape_timeout__".into(), crate::model::units::format_duration(job.timeout)),
        ("job".into(), job.name.clone()),
    ];
    for (name, values) in &job.params {
        if let Some(first) = values.first() {
            labels.push((format!("__param_{name}"), first.clone()));
        }
    }
    for (k, v) in group_labels {
        labels.retain(|(n, _)| n != k);
        labels.push((k.clone(), v.clone()));
    }
    labels.sort();
    let discovered = labels.clone();
    let Some(mut labels) = relabel::process(labels, &job.relabel_configs) else {
        return Ok(None);
    };
    let get =
        |ls: &LabelSet, n: &str| ls.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut address = get(&labels, "__address__");
    if address.is_empty() {
        return Err("no address".into());
    }
    let scheme = get(&labels, "__scheme__");
    if !has_port(&address) {
        // Prometheus 2.42 still adds the scheme's default port (removed in 2.43).
        address = format!("{address}:{}", if scheme == "https" { 443 } else { 80 });
        labels.retain(|(k, _)| k != "__address__");
        labels.push(("__address__".into(), address.clone()));
    }
    if address.contains('/') {
        return Err(format!("{address:?} is not a valid hostname"));
    }
    let metrics_path = get(&labels, "__metrics_path__");
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, values) in &job.params {
        let override_value =
            labels.iter().find(|(k, _)| k == &format!("__param_{name}")).map(|(_, v)| v.clone());
        match override_value {
            Some(v) => {
                params.push((name.clone(), v));
                params.extend(values.iter().skip(1).map(|v| (name.clone(), v.clone())));
            }
            None => params.extend(values.iter().map(|v| (name.clone(), v.clone()))),
        }
    }
    for (k, v) in &labels {
        if let Some(name) = k.strip_prefix("__param_")
            && !job.params.contains_key(name)
        {
            params.push((name.to_string(), v.clone()));
        }
    }
    let query = params
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let url = format!(
        "{scheme}://{address}{metrics_path}{}{query}",
        if query.is_empty() {
            ""
        } else if metrics_path.contains('?') {
            "&"
        } else {
            "?"
        }
    );
    labels.retain(|(k, _)| !k.starts_with("__"));
    if !labels.iter().any(|(k, _)| k == "instance") {
        labels.push(("instance".into(), address));
    }
    labels.retain(|(_, v)| !v.is_empty());
    labels.sort();
    Ok(Some(Target { job: job.name.clone(), labels, discovered_labels: discovered, url }))
}

/// Reads the groups of one file_sd file (JSON or YAML, by extension as Prometheus decides).
pub fn read_file_sd(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut groups: Vec<TargetGroup> = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        Some("yml") | Some("yaml") => {
            crate::config::yaml_depth::check(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        _ => return Err(format!("{}: unknown file_sd extension (json, yml, yaml)", path.display())),
    };
    for (i, g) in groups.iter_mut().enumerate() {
        g.source = format!("{}:{i}", path.display());
        g.labels.insert("__meta_filepath".into(), path.display().to_string());
    }
    Ok(groups)
}

/// The groups a file_sd config yields now, with errors for files that could not be read.
pub fn file_sd_groups(config: &FileSdConfig) -> (Vec<TargetGroup>, Vec<String>) {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for pattern in &config.files {
        for path in crate::config::prometheus::expand_pattern(pattern) {
            match read_file_sd(&path) {
                Ok(g) => groups.extend(g),
                Err(e) => errors.push(e),
            }
        }
    }
    (groups, errors)
}

/// All groups of a job: static ones, then file_sd ones.
pub fn job_groups(job: &Job) -> (Vec<TargetGroup>, Vec<String>) {
    discovered_groups(&job.static_configs, &job.file_sd_configs)
}

/// The groups static and file-based discovery give now (static ones first), and the files
/// that failed: what a scrape job and an Alertmanager set both discover from.
pub fn discovered_groups(
    static_configs: &[StaticConfig],
    file_sd_configs: &[FileSdConfig],
) -> (Vec<TargetGroup>, Vec<String>) {
    let mut groups: Vec<TargetGroup> = static_configs
        .iter()
        .enumerate()
        .map(|(i, s)| TargetGroup {
            targets: s.targets.clone(),
            labels: s.labels.clone(),
            source: format!("{i}"),
        })
        .collect();
    let mut errors = Vec::new();
    for fsd in file_sd_configs {
        let (g, e) = file_sd_groups(fsd);
        groups.extend(g);
        errors.extend(e);
    }
    (groups, errors)
}

/// Turns a job's groups into active and dropped targets (duplicates collapse, as in Prometheus).
pub fn build(job: &Job, groups: &[TargetGroup]) -> (Vec<Target>, Vec<DroppedTarget>, Vec<String>) {
    let mut active: Vec<Target> = Vec::new();
    let mut dropped = Vec::new();
    let mut errors = Vec::new();
    for group in groups {
        for address in &group.targets {
            match populate(job, address, &group.labels) {
                Ok(Some(t)) => {
                    if !active.iter().any(|a| a.labels == t.labels && a.url == t.url) {
                        active.push(t);
                    }
                }
                Ok(None) => {
                    let mut discovered = vec![
                        ("__address__".to_string(), address.clone()),
                        ("job".to_string(), job.name.clone()),
                    ];
                    discovered.extend(group.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                    discovered.sort();
                    dropped.push(DroppedTarget { discovered_labels: discovered });
                }
                Err(e) => errors.push(format!("job {:?}, target {address:?}: {e}", job.name)),
            }
        }
    }
    if job.target_limit > 0 && active.len() as u64 > job.target_limit {
        errors.push(format!(
            "job {:?}: target_limit exceeded (number of targets: {}, limit: {})",
            job.name,
            active.len(),
            job.target_limit
        ));
        active.clear();
    }
    (active, dropped, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::prometheus::{PrometheusFile, resolve};

    fn job(yaml: &str) -> Job {
        let file: PrometheusFile = serde_norway::from_str(yaml).unwrap();
        resolve(&file).unwrap().jobs.remove(0)
    }

    #[test]
    fn deeply_nested_file_sd_is_an_error_not_an_abort() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets.yml");
        let deep = format!("- targets: {}\n", "[".repeat(100_000) + &"]".repeat(100_000));
        std::fs::write(&path, deep).unwrap();
        let err = read_file_sd(&path).unwrap_err();
        assert!(err.contains("nested deeper than"), "{err}");
    }

    #[test]
    fn defaults_instance_port_and_params() {
        let j = job(
            "scrape_configs:\n  - job_name: fed\n    metrics_path: /federate\n    params:\n      'match[]': ['{job=\"a\"}', 'up']\n    static_configs:\n      - targets: ['lb:9092', 'plainhost']\n        labels: {dc: eu}\n",
        );
        let (targets, dropped, errors) = build(&j, &job_groups(&j).0);
        assert!(errors.is_empty() && dropped.is_empty());
        assert_eq!(
            targets[0].labels,
            vec![
                ("dc".into(), "eu".into()),
                ("instance".into(), "lb:9092".into()),
                ("job".into(), "fed".into())
            ]
        );
        assert_eq!(targets[0].url, "http://lb:9092/federate?match%5B%5D=%7Bjob%3D%22a%22%7D&match%5B%5D=up");
        assert_eq!(targets[1].instance(), "plainhost:80");
    }

    #[test]
    fn relabel_drops_and_rewrites_targets() {
        let j = job(
            "scrape_configs:\n  - job_name: n\n    static_configs:\n      - targets: ['a:1', 'b:2']\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: 'b:.*'\n        action: drop\n      - source_labels: [__address__]\n        regex: '(.*):1'\n        target_label: instance\n        replacement: '$1'\n",
        );
        let (targets, dropped, _) = build(&j, &job_groups(&j).0);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].instance(), "a");
        assert_eq!(targets[0].url, "http://a:1/metrics");
        assert_eq!(dropped.len(), 1);
    }

    #[test]
    fn file_sd_json_and_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), r#"[{"targets":["x:1"],"labels":{"env":"prod"}}]"#)
            .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['y:2']\n").unwrap();
        std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
        let cfg = FileSdConfig {
            files: vec![
                format!("{}/*.json", dir.path().display()),
                format!("{}/b.yml", dir.path().display()),
            ],
            refresh_interval: None,
        };
        let (groups, errors) = file_sd_groups(&cfg);
        assert_eq!(groups.len(), 2);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(groups[0].labels["env"], "prod");
    }
}

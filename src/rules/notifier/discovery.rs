//! Alertmanagers from a set's discovery groups, as Prometheus 2.42's `AlertmanagerFromGroup`
//! finds them: each target starts as `__address__` plus the set's `__scheme__` and
//! `__alerts_path__`, the group's labels are added where the target lacks them, the set's
//! `relabel_configs` run (a dropped target is a dropped Alertmanager), and the URL is
//! `<__scheme__>://<__address__><__alerts_path__>`. An address with a `/` fails its whole
//! group. Duplicate URLs collapse into one Alertmanager.
//!
//! The groups are scrape's: static_configs, and file_sd_configs files read as scrape reads them.

use crate::config::alerting::AlertmanagerSet;
use crate::scrape::relabel::{self, LabelSet};
use crate::scrape::target::{TargetGroup, discovered_groups};

/// Every group of a set now (static ones, then file_sd ones), and the files that failed.
pub(super) fn groups(set: &AlertmanagerSet) -> (Vec<TargetGroup>, Vec<String>) {
    discovered_groups(&set.static_configs, &set.file_sd_configs)
}

/// The Alertmanagers of a set's groups.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Found {
    /// Active Alertmanager URLs, deduplicated, in discovery order.
    pub active: Vec<String>,
    /// URLs (from the labels before relabelling) of Alertmanagers the relabelling dropped.
    pub dropped: Vec<String>,
    pub errors: Vec<String>,
}

pub(super) fn alertmanagers(set: &AlertmanagerSet, groups: &[TargetGroup]) -> Found {
    let mut found = Found::default();
    let path = set.alerts_path();
    'groups: for group in groups {
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for address in &group.targets {
            let mut labels: LabelSet = vec![
                ("__address__".into(), address.clone()),
                ("__scheme__".into(), set.scheme.clone()),
                ("__alerts_path__".into(), path.clone()),
            ];
            for (name, value) in &group.labels {
                if name != "__address__" {
                    labels.retain(|(n, _)| n != name);
                    labels.push((name.clone(), value.clone()));
                }
            }
            labels.sort();
            let Some(kept) = relabel::process(labels.clone(), &set.relabel_configs) else {
                dropped.push(url(&labels));
                continue;
            };
            let address = get(&kept, "__address__");
            if address.contains('/') {
                found.errors.push(format!("{address:?} is not a valid hostname"));
                continue 'groups;
            }
            active.push(url(&kept));
        }
        for u in active {
            if !found.active.contains(&u) {
                found.active.push(u);
            }
        }
        found.dropped.extend(dropped);
    }
    found
}

fn get<'a>(labels: &'a LabelSet, name: &str) -> &'a str {
    labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// Go's `url.URL{Scheme, Host, Path}.String()` for these labels.
fn url(labels: &LabelSet) -> String {
    let path = get(labels, "__alerts_path__");
    let host = get(labels, "__address__");
    let slash = if !path.is_empty() && !path.starts_with('/') && !host.is_empty() { "/" } else { "" };
    format!("{}://{host}{slash}{path}", get(labels, "__scheme__"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::prometheus::{PrometheusFile, parse_prometheus_yaml};

    fn set(yaml: &str) -> AlertmanagerSet {
        let file: PrometheusFile = parse_prometheus_yaml(yaml).unwrap();
        crate::config::alerting::resolve(file.alerting.as_ref()).unwrap().alertmanagers.remove(0)
    }

    #[test]
    fn static_targets_relabelled_into_urls() {
        let s = set(r#"
alerting:
  alertmanagers:
    - path_prefix: /am
      static_configs:
        - targets: ['a:9093', 'b:9093', 'a:9093', 'skip:1']
          labels: {dc: eu}
      relabel_configs:
        - source_labels: [__address__]
          regex: 'skip:.*'
          action: drop
        - source_labels: [__address__]
          regex: 'b:9093'
          target_label: __scheme__
          replacement: https
        - source_labels: [dc]
          target_label: __alerts_path__
          regex: '(eu)'
          replacement: '/$1/api/v2/alerts'
"#);
        let (groups, errors) = groups(&s);
        assert!(errors.is_empty());
        let found = alertmanagers(&s, &groups);
        assert_eq!(found.active, vec!["http://a:9093/eu/api/v2/alerts", "https://b:9093/eu/api/v2/alerts"]);
        assert_eq!(found.dropped, vec!["http://skip:1/am/api/v2/alerts"]);
        assert!(found.errors.is_empty());
    }

    #[test]
    fn bad_address_fails_its_group_and_file_sd_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("am.json"),
            r#"[{"targets":["f:1"],"labels":{"__scheme__":"https"}}]"#,
        )
        .unwrap();
        let s = set(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['ok:1', 'x/y:2']\n        - targets: ['c:3']\n      file_sd_configs:\n        - files: ['{}/*.json']\n",
            dir.path().display()
        ));
        let (groups, errors) = groups(&s);
        assert!(errors.is_empty(), "{errors:?}");
        let found = alertmanagers(&s, &groups);
        // A group label overrides the set's scheme, as in Prometheus.
        assert_eq!(found.active, vec!["http://c:3/api/v2/alerts", "https://f:1/api/v2/alerts"]);
        assert_eq!(found.errors, vec!["\"x/y:2\" is not a valid hostname"]);
    }
}

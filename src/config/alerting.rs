//! prometheus.yml's `alerting:` section (config/config.go `AlertingConfig` and
//! `AlertmanagerConfig` in Prometheus 2.42): `alert_relabel_configs` and the Alertmanager sets,
//! each with its discovery (static_configs, file_sd_configs), relabelling and HTTP client
//! settings. Unknown keys are refused, as Prometheus refuses them; secrets are `Secret`s.
//!
//! Differences on purpose, each a load error where Prometheus 2.42 would load the file and then
//! fail every send: `api_version: v1` (Alertmanager removed its v1 API in 0.27; obsd speaks
//! only v2, Prometheus 2.42's default), a `scheme` other than http or https, `timeout: 0s`.
//! `basic_auth.password_file`, `authorization.credentials_file` and `bearer_token_file` are
//! read when the configuration is loaded (and on every reload), as scrape's are.

use super::Secret;
use super::prometheus_common::{
    Authorization, BasicAuth, FileSdConfig, PromDuration, StaticConfig, TlsConfig, read_secret,
};
use super::relabel::RelabelConfig;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Prometheus's `DefaultAlertmanagerConfig` timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `alerting:` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One entry of `alerting.alertmanagers` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    pub scheme: Option<String>,
    pub path_prefix: Option<String>,
    pub timeout: Option<PromDuration>,
    pub api_version: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
}

/// The alerting side of a replica or federation, resolved. `Default` is "no Alertmanagers".
#[derive(Debug, Clone, Default)]
pub struct AlertingSettings {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerSet>,
}

/// One Alertmanager set with every default applied: where to find its Alertmanagers and how
/// to send to them.
#[derive(Debug, Clone)]
pub struct AlertmanagerSet {
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    /// `http` or `https`; the initial `__scheme__` of every discovered Alertmanager.
    pub scheme: String,
    pub path_prefix: String,
    pub timeout: Duration,
    pub basic_auth: Option<(String, Secret)>,
    /// `Authorization: <type> <credentials>` (type `Bearer` unless set), from `authorization`,
    /// `bearer_token` or `bearer_token_file`.
    pub authorization: Option<(String, Secret)>,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub relabel_configs: Vec<RelabelConfig>,
}

impl AlertmanagerSet {
    /// The initial `__alerts_path__`: `path.Join("/", path_prefix, "/api/v2/alerts")`.
    pub fn alerts_path(&self) -> String {
        clean_path(&format!("/{}/api/v2/alerts", self.path_prefix))
    }
}

/// Go's `path.Clean` for an absolute path: no empty, `.` or `..` segments, no trailing slash.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Applies Prometheus's defaults and checks. Every error starts with `alerting`, so the caller
/// can place it under its own key.
pub fn resolve(config: Option<&AlertingConfig>) -> Result<AlertingSettings, Vec<String>> {
    let Some(config) = config else { return Ok(AlertingSettings::default()) };
    let mut errors = Vec::new();
    for rc in &config.alert_relabel_configs {
        if let Err(e) = rc.validate() {
            errors.push(format!("alerting.alert_relabel_configs: {e}"));
        }
    }
    let mut sets = Vec::new();
    for (i, am) in config.alertmanagers.iter().enumerate() {
        let mut fail = |e: String| errors.push(format!("alerting.alertmanagers[{i}]: {e}"));
        match am.api_version.as_deref() {
            None | Some("v2") => {}
            Some("v1") => fail(
                "api_version v1 is not supported: obsd speaks only the Alertmanager API v2, the only \
                 one Alertmanager 0.27 and later serve (remove api_version or set it to v2)"
                    .into(),
            ),
            Some(other) => {
                fail(format!("expected Alertmanager api version to be one of [v2] but got {other}"))
            }
        }
        let scheme = am.scheme.clone().unwrap_or_else(|| "http".into());
        if scheme != "http" && scheme != "https" {
            fail(format!("unknown scheme {scheme:?} (expected http or https)"));
        }
        let timeout = am.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            fail("timeout must be greater than 0s".into());
        }
        for rc in &am.relabel_configs {
            if let Err(e) = rc.validate() {
                fail(e);
            }
        }
        let basic_auth = match &am.basic_auth {
            Some(b) => match read_secret(&b.password, &b.password_file, "password") {
                Ok(p) => Some((b.username.clone(), p.unwrap_or_default())),
                Err(e) => {
                    fail(e);
                    None
                }
            },
            None => None,
        };
        let authorization = match (&am.authorization, &am.bearer_token, &am.bearer_token_file) {
            (Some(a), None, None) => {
                let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
                if kind.eq_ignore_ascii_case("basic") {
                    fail(r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into());
                }
                match read_secret(&a.credentials, &a.credentials_file, "credentials") {
                    Ok(c) => Some((kind, c.unwrap_or_default())),
                    Err(e) => {
                        fail(e);
                        None
                    }
                }
            }
            (Some(_), _, _) => {
                fail("authorization is not compatible with bearer_token & bearer_token_file".into());
                None
            }
            (None, token, file) => match read_secret(token, file, "bearer_token") {
                Ok(t) => t.map(|t| ("Bearer".to_string(), t)),
                Err(e) => {
                    fail(e);
                    None
                }
            },
        };
        if basic_auth.is_some() && authorization.is_some() {
            fail(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
                    .into(),
            );
        }
        sets.push(AlertmanagerSet {
            static_configs: am.static_configs.clone(),
            file_sd_configs: am.file_sd_configs.clone(),
            scheme,
            path_prefix: am.path_prefix.clone().unwrap_or_default(),
            timeout,
            basic_auth,
            authorization,
            tls_config: am.tls_config.clone().unwrap_or_default(),
            follow_redirects: am.follow_redirects.unwrap_or(true),
            enable_http2: am.enable_http2.unwrap_or(true),
            relabel_configs: am.relabel_configs.clone(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AlertingSettings { alert_relabel_configs: config.alert_relabel_configs.clone(), alertmanagers: sets })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::prometheus::{PrometheusFile, parse_prometheus_yaml};

    fn settings(yaml: &str) -> Result<AlertingSettings, Vec<String>> {
        let file: PrometheusFile = parse_prometheus_yaml(yaml).map_err(|e| vec![e])?;
        resolve(file.alerting.as_ref())
    }

    #[test]
    fn defaults_as_prometheus() {
        let s = settings(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['am1:9093', 'am2:9093']\n",
        )
        .unwrap();
        let am = &s.alertmanagers[0];
        assert_eq!((am.scheme.as_str(), am.timeout), ("http", Duration::from_secs(10)));
        assert_eq!(am.alerts_path(), "/api/v2/alerts");
        assert!(am.follow_redirects && am.enable_http2);
        assert!(am.basic_auth.is_none() && am.authorization.is_none());
        assert_eq!(am.static_configs[0].targets, vec!["am1:9093", "am2:9093"]);
        assert!(settings("scrape_configs: []\n").unwrap().alertmanagers.is_empty());
        // No longer an ignored section; the replica and federation settings carry it.
        let file: PrometheusFile = parse_prometheus_yaml(
            "rule_files: [r.yml]\nalerting:\n  alertmanagers: [{static_configs: [{targets: ['a:1']}]}]\n",
        )
        .unwrap();
        assert!(file.ignored_sections().is_empty());
        let resolved = crate::config::prometheus::resolve(&file).unwrap();
        assert_eq!(resolved.alerting.alertmanagers[0].static_configs[0].targets, vec!["a:1"]);
    }

    #[test]
    fn every_field_parses() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok3n\n").unwrap();
        let yaml = format!(
            r#"
alerting:
  alert_relabel_configs:
    - regex: replica
      action: labeldrop
  alertmanagers:
    - scheme: https
      path_prefix: /am/
      timeout: 3s
      api_version: v2
      basic_auth: {{username: u, password: p}}
      tls_config: {{ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem, insecure_skip_verify: true, server_name: am.example}}
      follow_redirects: false
      enable_http2: false
      file_sd_configs:
        - files: ['/etc/am/*.json']
      relabel_configs:
        - source_labels: [__address__]
          target_label: __address__
          replacement: '$1:9093'
    - authorization: {{type: Token, credentials_file: {}}}
      static_configs: [{{targets: ['a:1']}}]
    - bearer_token: abc
"#,
            token.display()
        );
        let s = settings(&yaml).unwrap();
        assert_eq!(s.alert_relabel_configs.len(), 1);
        let am = &s.alertmanagers[0];
        assert_eq!((am.scheme.as_str(), am.timeout), ("https", Duration::from_secs(3)));
        assert_eq!(am.alerts_path(), "/am/api/v2/alerts");
        assert_eq!(am.basic_auth.as_ref().map(|(u, p)| (u.as_str(), p.expose())), Some(("u", "p")));
        assert_eq!(am.tls_config.server_name.as_deref(), Some("am.example"));
        assert!(am.tls_config.insecure_skip_verify && !am.follow_redirects && !am.enable_http2);
        assert_eq!(am.file_sd_configs[0].files, vec!["/etc/am/*.json"]);
        assert_eq!(am.relabel_configs.len(), 1);
        let auth = |i: usize| {
            s.alertmanagers[i].authorization.as_ref().map(|(t, c)| (t.clone(), c.expose().to_string()))
        };
        assert_eq!(auth(1), Some(("Token".into(), "tok3n".into())));
        assert_eq!(auth(2), Some(("Bearer".into(), "abc".into())));
        // Shown by /api/v1/status/config without the secrets.
        let file: PrometheusFile = parse_prometheus_yaml(&yaml).unwrap();
        let shown = crate::config::prometheus::status_yaml(&file);
        assert!(shown.contains("alertmanagers:") && shown.contains("path_prefix: /am/"), "{shown}");
        assert!(!shown.contains("abc") && shown.contains("<secret>"), "{shown}");
    }

    #[test]
    fn refusals() {
        let one = |body: &str| {
            let yaml =
                format!("alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['a:1']}}]\n{body}");
            settings(&yaml).unwrap_err().join("\n")
        };
        let e = one("      api_version: v1\n");
        assert!(
            e.starts_with("alerting.alertmanagers[0]: ") && e.contains("only the Alertmanager API v2"),
            "{e}"
        );
        assert!(one("      api_version: v3\n").contains("one of [v2] but got v3"));
        assert!(one("      scheme: ftp\n").contains("unknown scheme"));
        assert!(one("      timeout: 0s\n").contains("greater than 0s"));
        assert!(one("      timeoutt: 1s\n").contains("unknown field `timeoutt`"));
        assert!(one("      oauth2: {client_id: x}\n").contains("unknown field `oauth2`"));
        assert!(
            one("      basic_auth: {username: u, password: p, password_file: /x}\n").contains("at most one")
        );
        assert!(
            one("      bearer_token: t\n      authorization: {credentials: c}\n")
                .contains("authorization is not compatible with bearer_token")
        );
        assert!(one("      authorization: {type: Basic, credentials: c}\n").contains("use \"basic_auth\""));
        assert!(
            one("      bearer_token: t\n      basic_auth: {username: u}\n")
                .contains("at most one of basic_auth, oauth2, bearer_token")
        );
        assert!(one("      relabel_configs: [{action: hashmod, target_label: x}]\n").contains("modulus"));
        let e = settings("alerting:\n  alert_relabel_configs: [{action: replace}]\n").unwrap_err();
        assert!(
            e[0].starts_with("alerting.alert_relabel_configs: ") && e[0].contains("target_label"),
            "{e:?}"
        );
        let e = settings("alerting:\n  alertmanager: []\n").unwrap_err();
        assert!(e[0].contains("unknown field `alertmanager`"), "{e:?}");
    }

    #[test]
    fn alerts_path_joins_like_go() {
        let set = |prefix: &str| AlertmanagerSet {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            scheme: "http".into(),
            path_prefix: prefix.into(),
            timeout: DEFAULT_TIMEOUT,
            basic_auth: None,
            authorization: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            relabel_configs: Vec::new(),
        };
        for (prefix, want) in [
            ("", "/api/v2/alerts"),
            ("/", "/api/v2/alerts"),
            ("am", "/am/api/v2/alerts"),
            ("/a//b/", "/a/b/api/v2/alerts"),
            ("/a/../b", "/b/api/v2/alerts"),
        ] {
            assert_eq!(set(prefix).alerts_path(), want, "{prefix:?}");
        }
    }
}

//! alertmanager.yml as Alertmanager 0.25 reads it (config/config.go): the routing tree with its
//! inheritance, receivers, inhibit rules, time intervals and `global`, with Alertmanager's
//! defaults and validation messages. Unknown keys are refused, as Alertmanager's strict YAML
//! refuses them.
//!
//! Receivers obsd does not deliver to (WeChat, Pushover and the rest, see
//! `UNSUPPORTED_RECEIVERS`) are refused by name, never loaded and left silent.

pub mod matchers;
pub mod receivers;
pub mod time_interval;

use crate::config::Secret;
use crate::config::prometheus_common::{Authorization, BasicAuth, PromDuration, TlsConfig, read_secret};
use crate::model::labels::is_valid_label_name;
use crate::model::{MatchOp, Matcher};
use matchers::{MatcherError, parse_matchers, sort_matchers};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use time_interval::NamedTimeInterval;

pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Receiver kinds Alertmanager 0.25 has and obsd does not deliver to yet.
pub const UNSUPPORTED_RECEIVERS: &[&str] = &[
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "webex_configs",
    "discord_configs",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub global: Option<Global>,
    pub route: Option<RouteFile>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitFile>,
    #[serde(default)]
    pub receivers: Vec<ReceiverFile>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default, deserialize_with = "time_interval::deserialize_mute_time_intervals")]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    #[serde(default, deserialize_with = "time_interval::deserialize_time_intervals")]
    pub time_intervals: Vec<NamedTimeInterval>,
}

/// `global:`. Keys that only configure receivers obsd refuses (WeChat, VictorOps, Telegram,
/// Webex) are accepted here (a file sets them once for many receivers) and do nothing unless
/// such a receiver is configured, which is itself refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    pub resolve_timeout: Option<PromDuration>,
    pub http_config: Option<HttpConfigFile>,
    pub smtp_from: Option<String>,
    pub smtp_hello: Option<String>,
    pub smtp_smarthost: Option<String>,
    pub smtp_auth_username: Option<String>,
    pub smtp_auth_password: Option<Secret>,
    pub smtp_auth_password_file: Option<String>,
    pub smtp_auth_identity: Option<String>,
    pub smtp_auth_secret: Option<Secret>,
    pub smtp_require_tls: Option<bool>,
    pub slack_api_url: Option<Secret>,
    pub slack_api_url_file: Option<String>,
    pub pagerduty_url: Option<String>,
    pub opsgenie_api_url: Option<String>,
    pub opsgenie_api_key: Option<Secret>,
    pub opsgenie_api_key_file: Option<String>,
    pub wechat_api_url: Option<String>,
    pub wechat_api_secret: Option<Secret>,
    pub wechat_api_corp_id: Option<String>,
    pub victorops_api_url: Option<String>,
    pub victorops_api_key: Option<Secret>,
    pub victorops_api_key_file: Option<String>,
    pub telegram_api_url: Option<String>,
    pub webex_api_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub receiver: Option<String>,
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "match")]
    pub match_: Option<BTreeMap<String, String>>,
    pub match_re: Option<BTreeMap<String, String>>,
    pub matchers: Option<Vec<String>>,
    pub mute_time_intervals: Option<Vec<String>>,
    pub active_time_intervals: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    pub group_wait: Option<PromDuration>,
    pub group_interval: Option<PromDuration>,
    pub repeat_interval: Option<PromDuration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitFile {
    pub source_match: Option<BTreeMap<String, String>>,
    pub source_match_re: Option<BTreeMap<String, String>>,
    pub source_matchers: Option<Vec<String>>,
    pub target_match: Option<BTreeMap<String, String>>,
    pub target_match_re: Option<BTreeMap<String, String>>,
    pub target_matchers: Option<Vec<String>>,
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverFile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookFile>,
    #[serde(default)]
    pub email_configs: Vec<receivers::EmailFile>,
    #[serde(default)]
    pub pagerduty_configs: Vec<receivers::PagerdutyFile>,
    #[serde(default)]
    pub slack_configs: Vec<receivers::SlackFile>,
    #[serde(default)]
    pub opsgenie_configs: Vec<receivers::OpsgenieFile>,
    pub wechat_configs: Option<serde_norway::Value>,
    pub pushover_configs: Option<serde_norway::Value>,
    pub victorops_configs: Option<serde_norway::Value>,
    pub sns_configs: Option<serde_norway::Value>,
    pub telegram_configs: Option<serde_norway::Value>,
    pub webex_configs: Option<serde_norway::Value>,
    pub discord_configs: Option<serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfigFile>,
    pub url: Option<Secret>,
    pub url_file: Option<String>,
    #[serde(default)]
    pub max_alerts: u64,
}

/// Prometheus common's `HTTPClientConfig`, the parts obsd's client honours; `oauth2` and the
/// proxy-from-environment switches are refused by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfigFile {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    pub proxy_url: Option<String>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
    pub oauth2: Option<serde_norway::Value>,
    pub proxy_from_environment: Option<bool>,
    pub no_proxy: Option<String>,
    pub proxy_connect_header: Option<serde_norway::Value>,
}

/// An HTTP client's settings, resolved.
#[derive(Debug, Clone, Default)]
pub struct HttpClientSettings {
    pub basic_auth: Option<(String, Secret)>,
    pub authorization: Option<(String, Secret)>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub follow_redirects: bool,
}

/// One node of the routing tree with its inherited options (dispatch/route.go `NewRoute`).
#[derive(Debug, Clone)]
pub struct Route {
    pub receiver: String,
    /// `None`: `group_by: ['...']`, every label.
    pub group_by: Option<Vec<String>>,
    pub matchers: Vec<Matcher>,
    pub continue_: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<Route>,
    /// `Route.Key()`: the parent's key, `/`, this route's sorted matchers (`{}` at the root).
    pub key: String,
    /// `Route.ID()`: the key with each route's index among its siblings, unique in the tree.
    pub id: String,
}

impl Route {
    /// `Route.Match`: depth first; the first matching child ends the search unless it has
    /// `continue`; a matching route whose children all miss is itself the match.
    pub fn matching(&self, labels: &crate::model::Labels) -> Vec<&Route> {
        if !matchers::all_match(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let found = child.matching(labels);
            let matched = !found.is_empty();
            all.extend(found);
            if matched && !child.continue_ {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &crate::model::Labels) -> crate::model::Labels {
        match &self.group_by {
            None => labels.clone(),
            Some(names) => labels.filtered(|n| names.iter().any(|g| g == n)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source_matchers: Vec<Matcher>,
    pub target_matchers: Vec<Matcher>,
    pub equal: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub send_resolved: bool,
    pub http: HttpClientSettings,
    pub url: Secret,
    pub max_alerts: u64,
}

/// One way a receiver notifies.
#[derive(Debug, Clone)]
pub enum Integration {
    Webhook(Webhook),
    Slack(receivers::Slack),
    Pagerduty(receivers::Pagerduty),
    Opsgenie(receivers::Opsgenie),
    Email(receivers::Email),
}

impl Integration {
    /// Alertmanager's integration name (the `integration` label of its metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Integration::Webhook(_) => "webhook",
            Integration::Slack(_) => "slack",
            Integration::Pagerduty(_) => "pagerduty",
            Integration::Opsgenie(_) => "opsgenie",
            Integration::Email(_) => "email",
        }
    }

    pub fn send_resolved(&self) -> bool {
        match self {
            Integration::Webhook(w) => w.send_resolved,
            Integration::Slack(s) => s.send_resolved,
            Integration::Pagerduty(p) => p.send_resolved,
            Integration::Opsgenie(o) => o.send_resolved,
            Integration::Email(e) => e.send_resolved,
        }
    }

    /// The HTTP client settings; email speaks SMTP.
    pub fn http(&self) -> Option<&HttpClientSettings> {
        match self {
            Integration::Webhook(w) => Some(&w.http),
            Integration::Slack(s) => Some(&s.http),
            Integration::Pagerduty(p) => Some(&p.http),
            Integration::Opsgenie(o) => Some(&o.http),
            Integration::Email(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    /// In Alertmanager's order (webhook, email, PagerDuty, OpsGenie, Slack within a receiver
    /// is not significant; each is indexed within its own kind).
    pub integrations: Vec<Integration>,
}

impl Receiver {
    /// Each integration with its index among those of its kind (`webhook[0]`, `slack[1]`).
    pub fn indexed(&self) -> Vec<(usize, &Integration)> {
        let mut seen: HashMap<&'static str, usize> = HashMap::new();
        self.integrations
            .iter()
            .map(|i| {
                let n = seen.entry(i.name()).or_default();
                *n += 1;
                (*n - 1, i)
            })
            .collect()
    }
}

/// A loaded alertmanager.yml.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    pub resolve_timeout: Duration,
    pub route: Route,
    pub receivers: BTreeMap<String, Receiver>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: HashMap<String, NamedTimeInterval>,
    /// The default notification templates and the `templates:` files.
    pub templates: std::sync::Arc<crate::gotemplate::notification::NotificationTemplates>,
    /// The text it was read from (the config hash and reloads compare it).
    pub original: String,
    /// `original` with its secrets masked, as `/api/v2/status` and the web UI show it.
    pub shown: String,
    /// Explicit `enable_http2: true` and the like: settings accepted that change nothing.
    pub warnings: Vec<String>,
}

impl AlertmanagerConfig {
    /// Records the text the config was read from, and the masked form shown of it.
    pub fn set_original(&mut self, text: &str) {
        self.original = text.to_string();
        self.shown = masked(text);
    }
}

/// A refused alertmanager.yml: the message and, when known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError { line: None, message: message.into() }
}

impl From<MatcherError> for ConfigError {
    fn from(e: MatcherError) -> Self {
        err(e.0)
    }
}

/// Parses and validates alertmanager.yml text; relative paths in it (`templates:`, `*_file`)
/// are taken from the working directory.
pub fn parse(text: &str) -> Result<AlertmanagerConfig, ConfigError> {
    parse_in(text, std::path::Path::new("."))
}

/// Parses and validates alertmanager.yml text read from a file in `base`, which relative
/// `templates:` globs and `*_file` paths are taken from, as Alertmanager takes them.
pub fn parse_in(text: &str, base: &std::path::Path) -> Result<AlertmanagerConfig, ConfigError> {
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        crate::config::yaml_depth::check(text).map_err(err)?;
        serde_norway::from_str(text).map_err(|e| ConfigError {
            line: e.location().map(|l| l.line()),
            message: strip_location(&e.to_string()),
        })?
    };
    let mut config = resolve_in(&file, base).map_err(|e| locate(text, e))?;
    config.set_original(text);
    Ok(config)
}

fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Semantic errors name a value (a receiver, an interval, a label): the first line holding it
/// is where the user looks.
fn locate(text: &str, mut e: ConfigError) -> ConfigError {
    if e.line.is_some() {
        return e;
    }
    // A receiver kind names its own key; otherwise the first quoted value.
    let kind =
        e.message.split([' ', ':']).find(|w| w.ends_with("_configs") && w.len() > 8).map(|k| format!("{k}:"));
    let quoted = e.message.split('"').nth(1).filter(|q| !q.is_empty()).map(str::to_string);
    if let Some(needle) = kind.or(quoted) {
        e.line =
            text.lines().position(|l| !l.trim_start().starts_with('#') && l.contains(&needle)).map(|i| i + 1);
    }
    e
}

pub fn resolve(file: &File) -> Result<AlertmanagerConfig, ConfigError> {
    resolve_in(file, std::path::Path::new("."))
}

pub fn resolve_in(file: &File, base: &std::path::Path) -> Result<AlertmanagerConfig, ConfigError> {
    let global = file.global.clone().unwrap_or_default();
    let mut warnings = Vec::new();
    let default_http = match &global.http_config {
        Some(h) => http_settings(h, "global.http_config", base, &mut warnings)?,
        None => HttpClientSettings { follow_redirects: true, ..Default::default() },
    };
    let mut receivers = BTreeMap::new();
    for r in &file.receivers {
        if r.name.is_empty() {
            return Err(err("missing name in receiver"));
        }
        if receivers.contains_key(&r.name) {
            return Err(err(format!("notification config name {:?} is not unique", r.name)));
        }
        let kinds = [
            &r.wechat_configs,
            &r.pushover_configs,
            &r.victorops_configs,
            &r.sns_configs,
            &r.telegram_configs,
            &r.webex_configs,
            &r.discord_configs,
        ];
        for (kind, value) in UNSUPPORTED_RECEIVERS.iter().zip(kinds) {
            let configured = match value {
                None | Some(serde_norway::Value::Null) => false,
                Some(serde_norway::Value::Sequence(s)) => !s.is_empty(),
                Some(_) => true,
            };
            if configured {
                return Err(err(format!(
                    "receiver {:?}: {kind} are not supported by obsd's alertmanager (webhook_configs are); refusing rather than never delivering",
                    r.name
                )));
            }
        }
        let mut integrations = Vec::new();
        for (i, w) in r.webhook_configs.iter().enumerate() {
            let place = format!("receiver {:?} webhook_configs[{i}]", r.name);
            let url = match (&w.url, &w.url_file) {
                (Some(_), Some(_)) => return Err(err("at most one of url & url_file must be configured")),
                (None, None) => return Err(err("one of url or url_file must be configured")),
                (Some(u), None) => u.clone(),
                (None, Some(path)) => std::fs::read_to_string(base.join(path))
                    .map(|s| Secret::new(s.trim()))
                    .map_err(|e| err(format!("{place}: unable to read url_file {path}: {e}")))?,
            };
            check_url(url.expose()).map_err(|m| err(format!("{place}: {m}")))?;
            let http = match &w.http_config {
                Some(h) => http_settings(h, &format!("{place}.http_config"), base, &mut warnings)?,
                None => default_http.clone(),
            };
            integrations.push(Integration::Webhook(Webhook {
                send_resolved: w.send_resolved.unwrap_or(true),
                http,
                url,
                max_alerts: w.max_alerts,
            }));
        }
        for (i, e) in r.email_configs.iter().enumerate() {
            let place = format!("receiver {:?} email_configs[{i}]", r.name);
            integrations.push(Integration::Email(receivers::email(e, &global, &place, base)?));
        }
        for (i, p) in r.pagerduty_configs.iter().enumerate() {
            let place = format!("receiver {:?} pagerduty_configs[{i}]", r.name);
            let p = receivers::pagerduty(p, &global, &default_http, &place, base, &mut warnings)?;
            integrations.push(Integration::Pagerduty(p));
        }
        for (i, o) in r.opsgenie_configs.iter().enumerate() {
            let place = format!("receiver {:?} opsgenie_configs[{i}]", r.name);
            let o = receivers::opsgenie(o, &global, &default_http, &place, base, &mut warnings)?;
            integrations.push(Integration::Opsgenie(o));
        }
        for (i, s) in r.slack_configs.iter().enumerate() {
            let place = format!("receiver {:?} slack_configs[{i}]", r.name);
            let s = receivers::slack(s, &global, &default_http, &place, base, &mut warnings)?;
            integrations.push(Integration::Slack(s));
        }
        receivers.insert(r.name.clone(), Receiver { name: r.name.clone(), integrations });
    }
    let Some(root) = &file.route else { return Err(err("no routes provided")) };
    if root.receiver.as_deref().unwrap_or("").is_empty() {
        return Err(err("root route must specify a default receiver"));
    }
    if root.match_.as_ref().is_some_and(|m| !m.is_empty())
        || root.match_re.as_ref().is_some_and(|m| !m.is_empty())
        || root.matchers.as_ref().is_some_and(|m| !m.is_empty())
    {
        return Err(err("root route must not have any matchers"));
    }
    if root.mute_time_intervals.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(err("root route must not have any mute time intervals"));
    }
    if root.active_time_intervals.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(err("root route must not have any active time intervals"));
    }
    let defaults = Route {
        receiver: String::new(),
        group_by: Some(Vec::new()),
        matchers: Vec::new(),
        continue_: false,
        group_wait: DEFAULT_GROUP_WAIT,
        group_interval: DEFAULT_GROUP_INTERVAL,
        repeat_interval: DEFAULT_REPEAT_INTERVAL,
        mute_time_intervals: Vec::new(),
        active_time_intervals: Vec::new(),
        routes: Vec::new(),
        key: String::new(),
        id: String::new(),
    };
    let route = build_route(root, &defaults, None, None)?;
    check_receivers(&route, &receivers)?;
    time_interval::interval_names(&file.mute_time_intervals, &file.time_intervals)
        .map_err(|e| err(e.to_string()))?;
    let time_intervals: HashMap<String, NamedTimeInterval> = file
        .mute_time_intervals
        .iter()
        .chain(&file.time_intervals)
        .map(|ti| (ti.name.clone(), ti.clone()))
        .collect();
    check_time_intervals(&route, &time_intervals)?;
    let mut inhibit_rules = Vec::new();
    for r in &file.inhibit_rules {
        for name in &r.equal {
            if !is_valid_label_name(name) {
                return Err(err(format!("invalid label name {name:?} in equal list")));
            }
        }
        inhibit_rules.push(InhibitRule {
            source_matchers: matchers_of(&r.source_match, &r.source_match_re, &r.source_matchers)?,
            target_matchers: matchers_of(&r.target_match, &r.target_match_re, &r.target_matchers)?,
            equal: r.equal.clone(),
        });
    }
    let templates = load_templates(&file.templates, base)?;
    Ok(AlertmanagerConfig {
        resolve_timeout: global.resolve_timeout.map_or(DEFAULT_RESOLVE_TIMEOUT, |d| d.0),
        route,
        receivers,
        inhibit_rules,
        time_intervals,
        templates: std::sync::Arc::new(templates),
        original: String::new(),
        shown: String::new(),
        warnings,
    })
}

/// `templates:`: each entry a glob, relative to the config file's directory; a glob matching
/// nothing is not an error (as in Alertmanager), a file that does not parse is.
fn load_templates(
    globs: &[String],
    base: &std::path::Path,
) -> Result<crate::gotemplate::notification::NotificationTemplates, ConfigError> {
    let mut files = Vec::new();
    for pattern in globs {
        let full = base.join(pattern);
        let mut matched = glob_paths(&full).map_err(|e| err(format!("templates {pattern:?}: {e}")))?;
        matched.sort();
        for path in matched {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("templates {pattern:?}: read {}: {e}", path.display())))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            files.push((name, text));
        }
    }
    crate::gotemplate::notification::NotificationTemplates::new(&files)
        .map_err(|e| err(format!("failed to parse templates: {e}")))
}

/// Go's `filepath.Glob` for the patterns template lists use: `*`, `?` and `[...]` in the last
/// path element; earlier elements are taken literally.
fn glob_paths(pattern: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    let name = pattern.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = pattern.parent().unwrap_or(std::path::Path::new("."));
    if !name.contains(['*', '?', '[']) {
        return Ok(if pattern.exists() { vec![pattern.to_path_buf()] } else { Vec::new() });
    }
    let re = glob_regex(&name)?;
    // A directory that does not exist matches nothing, as in Go; one that cannot be read is an
    // error, not a template set that is silently empty.
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("read {}: {e}", dir.display()))?;
        if re.is_match(&entry.file_name().to_string_lossy()) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn glob_regex(name: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("^");
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    re.push('^');
                }
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    if c == '\\' || c == '[' {
                        re.push('\\');
                    }
                    re.push(c);
                }
                if !closed {
                    return Err("syntax error in pattern".to_string());
                }
                re.push(']');
            }
            '\\' => match chars.next() {
                Some(c) => re.push_str(&regex::escape(&c.to_string())),
                None => return Err("syntax error in pattern".to_string()),
            },
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| e.to_string())
}

/// Keys whose values Alertmanager keeps as `Secret` (or `SecretURL`) and shows as `<secret>`,
/// with the list they must sit under (`None`: anywhere).
const SECRET_KEYS: &[(&str, Option<&str>)] = &[
    ("smtp_auth_password", None),
    ("smtp_auth_secret", None),
    ("slack_api_url", None),
    ("opsgenie_api_key", None),
    ("wechat_api_secret", None),
    ("victorops_api_key", None),
    ("password", None),
    ("bearer_token", None),
    ("credentials", None),
    ("client_secret", None),
    ("secret_key", None),
    ("auth_password", None),
    ("auth_secret", None),
    ("routing_key", None),
    ("service_key", None),
    ("api_secret", None),
    ("user_key", None),
    ("token", Some("pushover_configs")),
    ("bot_token", None),
    ("webhook_url", Some("discord_configs")),
    ("api_key", Some("opsgenie_configs")),
    ("api_key", Some("victorops_configs")),
    ("api_url", Some("slack_configs")),
    ("url", Some("webhook_configs")),
];

/// The configuration as `/api/v2/status` and the web UI show it: the YAML with every secret
/// replaced by `<secret>`, as Alertmanager shows its own (which re-marshals the whole file).
/// Empty when the text is not YAML (it parsed when it was loaded, so this does not happen).
pub fn masked(text: &str) -> String {
    fn walk(v: &mut serde_norway::Value, list: Option<&str>) {
        match v {
            serde_norway::Value::Mapping(m) => {
                for (k, value) in m.iter_mut() {
                    let key = k.as_str().unwrap_or("");
                    let secret = SECRET_KEYS
                        .iter()
                        .any(|(name, under)| *name == key && under.is_none_or(|u| Some(u) == list));
                    if secret && !value.is_null() {
                        *value = serde_norway::Value::String("<secret>".to_string());
                    } else if value.is_sequence() {
                        walk(value, Some(key));
                    } else {
                        walk(value, list);
                    }
                }
            }
            serde_norway::Value::Sequence(items) => items.iter_mut().for_each(|i| walk(i, list)),
            _ => {}
        }
    }
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(mut v) => {
            walk(&mut v, None);
            serde_norway::to_string(&v).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| "unsupported scheme \"\" for URL".to_string())?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme:?} for URL"));
    }
    if rest.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
        return Err("missing host for URL".to_string());
    }
    Ok(())
}

/// Relative file paths of an `http_config` taken from `base` (the alertmanager.yml's directory),
/// as Alertmanager's `SetDirectory` takes them.
fn rebased(h: &HttpConfigFile, base: &std::path::Path) -> HttpConfigFile {
    let join = |p: &Option<String>| p.as_ref().map(|p| base.join(p).display().to_string());
    let mut h = h.clone();
    if let Some(b) = &mut h.basic_auth {
        b.password_file = join(&b.password_file);
    }
    if let Some(a) = &mut h.authorization {
        a.credentials_file = join(&a.credentials_file);
    }
    h.bearer_token_file = join(&h.bearer_token_file);
    if let Some(t) = &mut h.tls_config {
        t.ca_file = join(&t.ca_file);
        t.cert_file = join(&t.cert_file);
        t.key_file = t.key_file.as_ref().map(|k| Secret::new(base.join(k.expose()).display().to_string()));
    }
    h
}

fn http_settings(
    h: &HttpConfigFile,
    place: &str,
    base: &std::path::Path,
    warnings: &mut Vec<String>,
) -> Result<HttpClientSettings, ConfigError> {
    let h = &rebased(h, base);
    if h.oauth2.is_some() {
        return Err(err(format!("{place}: oauth2 is not supported by obsd")));
    }
    if h.proxy_from_environment == Some(true) || h.no_proxy.is_some() || h.proxy_connect_header.is_some() {
        return Err(err(format!(
            "{place}: proxy_from_environment, no_proxy and proxy_connect_header are not supported by obsd (proxy_url is)"
        )));
    }
    if h.enable_http2 == Some(true) {
        warnings
            .push(format!("{place}: `enable_http2: true` has no effect; obsd's client speaks HTTP/1.1 only"));
    }
    let basic_auth = match &h.basic_auth {
        Some(b) => {
            let password = read_secret(&b.password, &b.password_file, "password").map_err(err)?;
            Some((b.username.clone(), password.unwrap_or_else(|| Secret::new(""))))
        }
        None => None,
    };
    let bearer = read_secret(&h.bearer_token, &h.bearer_token_file, "bearer_token").map_err(err)?;
    let authorization = match (&h.authorization, bearer) {
        (Some(_), Some(_)) => {
            return Err(err(format!(
                "{place}: at most one of bearer_token & bearer_token_file & authorization must be configured"
            )));
        }
        (Some(a), None) => {
            let credentials = read_secret(&a.credentials, &a.credentials_file, "credentials").map_err(err)?;
            Some((
                a.kind.clone().unwrap_or_else(|| "Bearer".to_string()),
                credentials.unwrap_or_else(|| Secret::new("")),
            ))
        }
        (None, Some(token)) => Some(("Bearer".to_string(), token)),
        (None, None) => None,
    };
    if basic_auth.is_some() && authorization.is_some() {
        return Err(err(format!(
            "{place}: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"
        )));
    }
    if let Some(p) = &h.proxy_url {
        check_url(p).map_err(|m| err(format!("{place}.proxy_url: {m}")))?;
    }
    Ok(HttpClientSettings {
        basic_auth,
        authorization,
        tls_config: h.tls_config.clone().unwrap_or_default(),
        proxy_url: h.proxy_url.clone(),
        follow_redirects: h.follow_redirects.unwrap_or(true),
    })
}

/// `match`, `match_re` and `matchers` as one sorted list, as `NewRoute` and `NewInhibitRule`
/// build it.
fn matchers_of(
    equal: &Option<BTreeMap<String, String>>,
    regex: &Option<BTreeMap<String, String>>,
    lines: &Option<Vec<String>>,
) -> Result<Vec<Matcher>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in equal.iter().flatten() {
        if !is_valid_label_name(name) {
            return Err(err(format!("invalid label name {name:?}")));
        }
        out.push(Matcher::equal(name, value));
    }
    for (name, value) in regex.iter().flatten() {
        if !is_valid_label_name(name) {
            return Err(err(format!("invalid label name {name:?}")));
        }
        out.push(
            Matcher::new(MatchOp::Regex, name, value)
                .map_err(|e| err(format!("error parsing regexp: {}", e.message)))?,
        );
    }
    for line in lines.iter().flatten() {
        out.extend(parse_matchers(line)?);
    }
    sort_matchers(&mut out);
    Ok(out)
}

fn build_route(
    f: &RouteFile,
    parent: &Route,
    parent_key: Option<&str>,
    index: Option<usize>,
) -> Result<Route, ConfigError> {
    let mut group_by = parent.group_by.clone();
    if let Some(list) = &f.group_by {
        let all = list.iter().any(|l| l == "...");
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        for l in list.iter().filter(|l| *l != "...") {
            if !is_valid_label_name(l) {
                return Err(err(format!("invalid label name {l:?} in group_by list")));
            }
            if !seen.insert(l) {
                return Err(err(format!("duplicated label {l:?} in group_by")));
            }
            names.push(l.clone());
        }
        if all && !names.is_empty() {
            return Err(err("cannot have wildcard group_by (`...`) and other labels at the same time"));
        }
        group_by = if all { None } else { Some(names) };
    }
    if f.group_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(err("group_interval cannot be zero"));
    }
    if f.repeat_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(err("repeat_interval cannot be zero"));
    }
    let matchers = matchers_of(&f.match_, &f.match_re, &f.matchers)?;
    let own = matchers::matchers_string(&matchers);
    let key = match parent_key {
        Some(p) => format!("{p}/{own}"),
        None => own.clone(),
    };
    let id = match index {
        Some(i) => format!("{}/{own}/{i}", parent.id),
        None => own,
    };
    let mut route = Route {
        receiver: f.receiver.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| parent.receiver.clone()),
        group_by,
        matchers,
        continue_: f.continue_,
        group_wait: f.group_wait.map_or(parent.group_wait, |d| d.0),
        group_interval: f.group_interval.map_or(parent.group_interval, |d| d.0),
        repeat_interval: f.repeat_interval.map_or(parent.repeat_interval, |d| d.0),
        mute_time_intervals: f.mute_time_intervals.clone().unwrap_or_default(),
        active_time_intervals: f.active_time_intervals.clone().unwrap_or_default(),
        routes: Vec::new(),
        key: key.clone(),
        id,
    };
    let mut children = Vec::with_capacity(f.routes.len());
    for (i, child) in f.routes.iter().enumerate() {
        children.push(build_route(child, &route, Some(&key), Some(i))?);
    }
    route.routes = children;
    Ok(route)
}

fn check_receivers(r: &Route, receivers: &BTreeMap<String, Receiver>) -> Result<(), ConfigError> {
    for child in &r.routes {
        check_receivers(child, receivers)?;
    }
    if !receivers.contains_key(&r.receiver) {
        return Err(err(format!("undefined receiver {:?} used in route", r.receiver)));
    }
    Ok(())
}

fn check_time_intervals(r: &Route, known: &HashMap<String, NamedTimeInterval>) -> Result<(), ConfigError> {
    for child in &r.routes {
        check_time_intervals(child, known)?;
    }
    for name in r.mute_time_intervals.iter().chain(&r.active_time_intervals) {
        if !known.contains_key(name) {
            return Err(err(format!("undefined time interval {name:?} used in route")));
        }
    }
    Ok(())
}

/// Alertmanager's `alertmanager_config_hash`: the first six bytes of the MD5 of the file text,
/// read as a little-endian integer.
pub fn config_hash(text: &str) -> f64 {
    use md5::Digest;
    let sum = md5::Md5::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes[..6].copy_from_slice(&sum[..6]);
    u64::from_le_bytes(bytes) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "route:\n  receiver: team\nreceivers:\n  - name: team\n    webhook_configs: [{url: 'http://127.0.0.1:1/hook'}]\n";

    #[test]
    fn routes_inherit_and_carry_alertmanagers_keys() {
        let text = format!("{BASE}  - name: db\nroute_extra: 0\n");
        assert!(parse(&text).is_err(), "an unknown key is refused");
        let c = parse(
            "route:\n  receiver: team\n  group_by: [alertname]\n  group_wait: 10s\n  routes:\n    - matchers: ['service=~\"db|cache\"', severity=page]\n      receiver: db\n      group_interval: 1m\n      routes:\n        - match: {team: x}\n    - match_re: {env: prod}\n      group_by: ['...']\n      continue: true\nreceivers:\n  - name: team\n  - name: db\n",
        )
        .unwrap();
        assert_eq!(c.route.key, "{}");
        assert_eq!(c.route.group_interval, DEFAULT_GROUP_INTERVAL);
        let db = &c.route.routes[0];
        assert_eq!(db.key, "{}/{service=~\"db|cache\",severity=\"page\"}");
        assert_eq!(
            (db.receiver.as_str(), db.group_wait, db.group_interval),
            ("db", Duration::from_secs(10), Duration::from_secs(60))
        );
        assert_eq!(db.group_by, Some(vec!["alertname".to_string()]));
        let nested = &db.routes[0];
        assert_eq!(nested.key, "{}/{service=~\"db|cache\",severity=\"page\"}/{team=\"x\"}");
        assert_eq!(nested.receiver, "db");
        assert_eq!(c.route.routes[1].group_by, None);
        assert!(c.route.routes[1].continue_);
        assert_eq!(c.route.routes[1].id, "{}/{env=~\"prod\"}/1");
        let names = |pairs: &[(&str, &str)]| -> Vec<String> {
            let l = crate::model::Labels::from_pairs(pairs.iter().copied());
            c.route.matching(&l).iter().map(|r| r.id.clone()).collect()
        };
        assert_eq!(names(&[("service", "db"), ("severity", "page"), ("env", "prod")]), vec![db.id.clone()]);
        assert_eq!(names(&[("env", "prod")]), vec![c.route.routes[1].id.clone()]);
        assert_eq!(names(&[("x", "y")]), vec!["{}".to_string()]);
    }

    #[test]
    fn secrets_are_masked_where_the_configuration_is_shown() {
        let text = "global:\n  smtp_auth_password: hunter2\n  slack_api_url: http://s/T/B/X\nroute: {receiver: a}\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://hook/secret-token\n        http_config: {basic_auth: {username: u, password: pw}, authorization: {credentials: tok}}\n    pagerduty_configs: [{routing_key: rk, url: 'http://pd/v2'}]\n    opsgenie_configs: [{api_key: ok, api_url: 'http://og/'}]\n    slack_configs: [{api_url: 'http://s/x', actions: [{type: button, text: t, url: 'http://runbook'}]}]\n";
        let shown = masked(text);
        for secret in ["hunter2", "http://s/T/B/X", "secret-token", "pw", "tok", "rk", "ok", "http://s/x"] {
            assert!(
                !shown.contains(&format!(" {secret}\n")) && !shown.contains(&format!("'{secret}'")),
                "{secret} shown:\n{shown}"
            );
        }
        for kept in ["http://pd/v2", "http://og/", "http://runbook", "username: u"] {
            assert!(shown.contains(kept), "{kept} hidden:\n{shown}");
        }
        assert_eq!(shown.matches("<secret>").count(), 8, "{shown}");
    }

    #[test]
    fn template_globs_match_in_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/a.tmpl"), "{{ define \"mine\" }}x{{ end }}").unwrap();
        std::fs::write(dir.path().join("t/b.txt"), "{{ end }}").unwrap();
        let text =
            |glob: &str| format!("templates: ['{glob}']\nroute: {{receiver: a}}\nreceivers: [{{name: a}}]\n");
        let c = parse_in(&text("t/*.tmpl"), dir.path()).unwrap();
        assert!(c.templates.defines("mine"));
        // A directory that does not exist matches nothing, as Go's filepath.Glob.
        assert!(!parse_in(&text("missing/*.tmpl"), dir.path()).unwrap().templates.defines("mine"));
        let e = parse_in(&text("t/*"), dir.path()).unwrap_err();
        assert!(e.message.contains("failed to parse templates"), "{e}");
    }

    #[test]
    fn relative_files_are_read_from_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        std::fs::write(dir.path().join("hook"), "http://hook.example/x\n").unwrap();
        let text = "route: {receiver: a}\nreceivers:\n  - name: a\n    webhook_configs:\n      - url_file: hook\n        http_config: {basic_auth: {username: u, password_file: pw}}\n";
        let c = parse_in(text, dir.path()).unwrap();
        let Integration::Webhook(w) = &c.receivers["a"].integrations[0] else { panic!("a webhook") };
        assert_eq!(w.url.expose(), "http://hook.example/x");
        assert_eq!(w.http.basic_auth.as_ref().map(|(u, p)| (u.as_str(), p.expose())), Some(("u", "s3cret")));
        assert!(parse_in(text, std::path::Path::new("/nonexistent")).is_err());
    }

    #[test]
    fn alertmanagers_validation_messages() {
        let cases = [
            ("receivers: [{name: a}]\n", "no routes provided"),
            ("route: {}\nreceivers: [{name: a}]\n", "root route must specify a default receiver"),
            (
                "route: {receiver: a, matchers: [x=y]}\nreceivers: [{name: a}]\n",
                "root route must not have any matchers",
            ),
            ("route: {receiver: b}\nreceivers: [{name: a}]\n", "undefined receiver \"b\" used in route"),
            (
                "route: {receiver: a}\nreceivers: [{name: a}, {name: a}]\n",
                "notification config name \"a\" is not unique",
            ),
            (
                "route: {receiver: a, group_by: ['...', x]}\nreceivers: [{name: a}]\n",
                "cannot have wildcard group_by (`...`) and other labels at the same time",
            ),
            (
                "route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]\n",
                "group_interval cannot be zero",
            ),
            (
                "route: {receiver: a, routes: [{mute_time_intervals: [x]}]}\nreceivers: [{name: a}]\n",
                "undefined time interval \"x\" used in route",
            ),
            (
                "route: {receiver: a, routes: [{matchers: ['x']}]}\nreceivers: [{name: a}]\n",
                "bad matcher format: x",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse(text).map(|_| ()).unwrap_err().message, message, "{text}");
        }
        let e = parse("route: {receiver: a}\nreceivers:\n  - name: a\n    wechat_configs: [{to_user: x}]\n")
            .unwrap_err();
        assert!(e.message.contains("wechat_configs are not supported"), "{e}");
        assert_eq!(e.line, Some(4));
        let receiver_cases = [
            ("slack_configs: [{channel: x}]", "no global Slack API URL set either inline or in a file"),
            (
                "slack_configs: [{api_url: 'ftp://x'}]",
                "receiver \"a\" slack_configs[0]: unsupported scheme \"ftp\" for URL",
            ),
            (
                "slack_configs: [{api_url: 'http://x', title: '{{ .X '}]",
                "receiver \"a\" slack_configs[0]: title: template: :1: unclosed action",
            ),
            ("pagerduty_configs: [{url: 'http://x'}]", "missing service or routing key in PagerDuty config"),
            (
                "opsgenie_configs: [{api_key: k, responders: [{type: team}]}]",
                "opsGenieConfig responder {   team} has to have at least one of id, username or name specified",
            ),
            (
                "opsgenie_configs: [{api_key: k, responders: [{name: n, type: group}]}]",
                "opsGenieConfig responder { n  group} type does not match valid options ^(team|teams|user|escalation|schedule)$",
            ),
            ("email_configs: [{smarthost: 'h:25', from: a@b}]", "missing to address in email config"),
            ("email_configs: [{to: x@y, from: a@b}]", "no global SMTP smarthost set"),
            ("email_configs: [{to: x@y, smarthost: 'h:25'}]", "no global SMTP from set"),
            (
                "email_configs: [{to: x@y, from: a@b, smarthost: 'h:25', headers: {subject: a, Subject: b}}]",
                "duplicate header \"Subject\" in email config",
            ),
        ];
        for (receiver, message) in receiver_cases {
            let text = format!("route: {{receiver: a}}\nreceivers:\n  - name: a\n    {receiver}\n");
            assert_eq!(parse(&text).map(|_| ()).unwrap_err().message, message, "{text}");
        }
        let ok = "route: {receiver: a}\nreceivers:\n  - name: a\n    slack_configs: [{api_url: 'http://s/x'}]\n    opsgenie_configs: [{api_key: k, api_url: 'http://o/api'}]\n    pagerduty_configs: [{routing_key: r}]\n    email_configs: [{to: x@y, from: a@b, smarthost: 'h:25'}]\n";
        let c = parse(ok).unwrap();
        let kinds: Vec<&str> = c.receivers["a"].integrations.iter().map(|i| i.name()).collect();
        assert_eq!(kinds, ["email", "pagerduty", "opsgenie", "slack"]);
        let e = parse("route:\n  receiver: a\n  bogus: 1\nreceivers: [{name: a}]\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn the_config_hash_is_alertmanagers() {
        // md5("") = d41d8cd98f00b204...; its first six bytes little-endian.
        assert_eq!(config_hash(""), u64::from_le_bytes([0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0, 0]) as f64);
    }
}

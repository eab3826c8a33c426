//! The receivers beyond webhooks, as Alertmanager 0.25 reads them (config/notifiers.go and the
//! filling from `global:` in config/config.go): Slack, PagerDuty, OpsGenie and email, with
//! their defaults (the default templates' names), their validation messages, and the
//! templated fields checked for syntax at load.

use super::{ConfigError, Global, HttpClientSettings, HttpConfigFile, check_url, err, http_settings};
use crate::config::Secret;
use crate::config::prometheus_common::TlsConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A secret given inline or as a file read at each notification, as Alertmanager reads its
/// `*_file` settings.
#[derive(Debug, Clone)]
pub enum SecretSource {
    Inline(Secret),
    File(PathBuf),
}

impl SecretSource {
    /// The value; `trim` strips surrounding whitespace from a file's content (Slack's URL,
    /// PagerDuty's keys), as Alertmanager does for those and not for OpsGenie's key.
    pub fn read(&self, trim: bool) -> Result<String, String> {
        match self {
            SecretSource::Inline(s) => Ok(s.expose().to_string()),
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|s| if trim { s.trim().to_string() } else { s })
                .map_err(|e| format!("read {}: {e}", path.display())),
        }
    }
}

fn source(inline: &Option<Secret>, file: &Option<String>, base: &Path) -> Option<SecretSource> {
    match (inline, file) {
        (Some(s), _) => Some(SecretSource::Inline(s.clone())),
        (None, Some(f)) => Some(SecretSource::File(base.join(f))),
        (None, None) => None,
    }
}

// ---- YAML ----

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackFile {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfigFile>,
    pub api_url: Option<Secret>,
    pub api_url_file: Option<String>,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub color: Option<String>,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub pretext: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub fields: Vec<SlackFieldFile>,
    #[serde(default)]
    pub short_fields: bool,
    pub footer: Option<String>,
    pub fallback: Option<String>,
    pub callback_id: Option<String>,
    pub icon_emoji: Option<String>,
    pub icon_url: Option<String>,
    pub image_url: Option<String>,
    pub thumb_url: Option<String>,
    #[serde(default)]
    pub link_names: bool,
    pub mrkdwn_in: Option<Vec<String>>,
    #[serde(default)]
    pub actions: Vec<SlackActionFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackFieldFile {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackActionFile {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub style: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    pub confirm: Option<SlackConfirmFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirmFile {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub ok_text: String,
    #[serde(default)]
    pub dismiss_text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyFile {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfigFile>,
    pub service_key: Option<Secret>,
    pub service_key_file: Option<String>,
    pub routing_key: Option<Secret>,
    pub routing_key_file: Option<String>,
    pub url: Option<String>,
    pub client: Option<String>,
    pub client_url: Option<String>,
    pub description: Option<String>,
    pub details: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub images: Vec<PagerdutyImageFile>,
    #[serde(default)]
    pub links: Vec<PagerdutyLinkFile>,
    pub source: Option<String>,
    pub severity: Option<String>,
    pub class: Option<String>,
    pub component: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImageFile {
    #[serde(default)]
    pub src: String,
    #[serde(default)]
    pub alt: String,
    #[serde(default)]
    pub href: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLinkFile {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieFile {
    pub send_resolved: Option<bool>,
    pub http_config: Option<HttpConfigFile>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<String>,
    pub api_url: Option<String>,
    pub message: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub details: Option<BTreeMap<String, String>>,
    pub entity: Option<String>,
    #[serde(default)]
    pub responders: Vec<OpsgenieResponderFile>,
    pub actions: Option<String>,
    pub tags: Option<String>,
    pub note: Option<String>,
    pub priority: Option<String>,
    #[serde(default)]
    pub update_alerts: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieResponderFile {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub username: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailFile {
    pub send_resolved: Option<bool>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub hello: Option<String>,
    pub smarthost: Option<String>,
    pub auth_username: Option<String>,
    pub auth_password: Option<Secret>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<Secret>,
    pub auth_identity: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub require_tls: Option<bool>,
    pub tls_config: Option<TlsConfig>,
}

// ---- Resolved ----

#[derive(Debug, Clone)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct SlackAction {
    pub kind: String,
    pub text: String,
    pub url: String,
    pub style: String,
    pub name: String,
    pub value: String,
    pub confirm: Option<SlackConfirmFile>,
}

#[derive(Debug, Clone)]
pub struct Slack {
    pub send_resolved: bool,
    pub http: HttpClientSettings,
    pub api_url: SecretSource,
    pub channel: String,
    pub username: String,
    pub color: String,
    pub title: String,
    pub title_link: String,
    pub pretext: String,
    pub text: String,
    pub fields: Vec<SlackField>,
    pub short_fields: bool,
    pub footer: String,
    pub fallback: String,
    pub callback_id: String,
    pub icon_emoji: String,
    pub icon_url: String,
    pub image_url: String,
    pub thumb_url: String,
    pub link_names: bool,
    pub mrkdwn_in: Vec<String>,
    pub actions: Vec<SlackAction>,
}

#[derive(Debug, Clone)]
pub enum PagerdutyKey {
    /// Events API v1 (`service_key`).
    Service(SecretSource),
    /// Events API v2 (`routing_key`).
    Routing(SecretSource),
}

#[derive(Debug, Clone)]
pub struct Pagerduty {
    pub send_resolved: bool,
    pub http: HttpClientSettings,
    pub key: PagerdutyKey,
    pub url: String,
    pub client: String,
    pub client_url: String,
    pub description: String,
    pub details: BTreeMap<String, String>,
    pub images: Vec<PagerdutyImageFile>,
    pub links: Vec<PagerdutyLinkFile>,
    pub source: String,
    pub severity: String,
    pub class: String,
    pub component: String,
    pub group: String,
}

#[derive(Debug, Clone)]
pub struct Opsgenie {
    pub send_resolved: bool,
    pub http: HttpClientSettings,
    pub api_key: SecretSource,
    /// Ends with `/`.
    pub api_url: String,
    pub message: String,
    pub description: String,
    pub source: String,
    pub details: BTreeMap<String, String>,
    pub entity: String,
    pub responders: Vec<OpsgenieResponderFile>,
    pub actions: String,
    pub tags: String,
    pub note: String,
    pub priority: String,
    pub update_alerts: bool,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub send_resolved: bool,
    pub to: String,
    pub from: String,
    pub hello: String,
    /// `host:port`.
    pub smarthost: String,
    pub auth_username: String,
    pub auth_password: Option<SecretSource>,
    pub auth_secret: Option<Secret>,
    pub auth_identity: String,
    /// Canonical header name → template, with Subject, To and From filled in.
    pub headers: BTreeMap<String, String>,
    pub html: String,
    pub text: String,
    pub require_tls: bool,
    pub tls_config: TlsConfig,
}

pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const DEFAULT_OPSGENIE_URL: &str = "https://api.opsgenie.com/";

fn tmpl(v: &Option<String>, default: &str) -> String {
    v.clone().unwrap_or_else(|| default.to_string())
}

/// A templated field must parse, as Alertmanager's first notification would otherwise find out.
fn check_template(place: &str, field: &str, text: &str) -> Result<(), ConfigError> {
    crate::gotemplate::notification::NotificationTemplates::check(text)
        .map_err(|e| err(format!("{place}: {field}: {e}")))
}

fn http_of(
    h: &Option<HttpConfigFile>,
    default: &HttpClientSettings,
    place: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<HttpClientSettings, ConfigError> {
    match h {
        Some(h) => http_settings(h, &format!("{place}.http_config"), base, warnings),
        None => Ok(default.clone()),
    }
}

pub fn slack(
    f: &SlackFile,
    g: &Global,
    default_http: &HttpClientSettings,
    place: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Slack, ConfigError> {
    if f.api_url.is_some() && f.api_url_file.is_some() {
        return Err(err("at most one of api_url & api_url_file must be configured"));
    }
    let api_url = match source(&f.api_url, &f.api_url_file, base) {
        Some(s) => s,
        None => source(&g.slack_api_url, &g.slack_api_url_file, base)
            .ok_or_else(|| err("no global Slack API URL set either inline or in a file"))?,
    };
    if let SecretSource::Inline(u) = &api_url {
        check_url(u.expose()).map_err(|m| err(format!("{place}: {m}")))?;
    }
    let mut fields = Vec::new();
    for field in &f.fields {
        if field.title.is_empty() {
            return Err(err("missing title in Slack field configuration"));
        }
        if field.value.is_empty() {
            return Err(err("missing value in Slack field configuration"));
        }
        fields.push(SlackField {
            title: field.title.clone(),
            value: field.value.clone(),
            short: field.short,
        });
    }
    let mut actions = Vec::new();
    for a in &f.actions {
        if a.kind.is_empty() {
            return Err(err("missing type in Slack action configuration"));
        }
        if a.text.is_empty() {
            return Err(err("missing text in Slack action configuration"));
        }
        let mut action = SlackAction {
            kind: a.kind.clone(),
            text: a.text.clone(),
            url: a.url.clone(),
            style: a.style.clone(),
            name: a.name.clone(),
            value: a.value.clone(),
            confirm: a.confirm.clone(),
        };
        if !a.url.is_empty() {
            action.name.clear();
            action.value.clear();
            action.confirm = None;
        } else if !a.name.is_empty() {
            action.url.clear();
        } else {
            return Err(err("missing name or url in Slack action configuration"));
        }
        if let Some(c) = &action.confirm
            && c.text.is_empty()
        {
            return Err(err("missing text in Slack confirmation configuration"));
        }
        actions.push(action);
    }
    let s = Slack {
        send_resolved: f.send_resolved.unwrap_or(false),
        http: http_of(&f.http_config, default_http, place, base, warnings)?,
        api_url,
        channel: tmpl(&f.channel, ""),
        username: tmpl(&f.username, r#"{{ template "slack.default.username" . }}"#),
        color: tmpl(&f.color, r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#),
        title: tmpl(&f.title, r#"{{ template "slack.default.title" . }}"#),
        title_link: tmpl(&f.title_link, r#"{{ template "slack.default.titlelink" . }}"#),
        pretext: tmpl(&f.pretext, r#"{{ template "slack.default.pretext" . }}"#),
        text: tmpl(&f.text, r#"{{ template "slack.default.text" . }}"#),
        fields,
        short_fields: f.short_fields,
        footer: tmpl(&f.footer, r#"{{ template "slack.default.footer" . }}"#),
        fallback: tmpl(&f.fallback, r#"{{ template "slack.default.fallback" . }}"#),
        callback_id: tmpl(&f.callback_id, r#"{{ template "slack.default.callbackid" . }}"#),
        icon_emoji: tmpl(&f.icon_emoji, r#"{{ template "slack.default.iconemoji" . }}"#),
        icon_url: tmpl(&f.icon_url, r#"{{ template "slack.default.iconurl" . }}"#),
        image_url: tmpl(&f.image_url, ""),
        thumb_url: tmpl(&f.thumb_url, ""),
        link_names: f.link_names,
        mrkdwn_in: f
            .mrkdwn_in
            .clone()
            .unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
        actions,
    };
    for (field, text) in [
        ("channel", &s.channel),
        ("username", &s.username),
        ("color", &s.color),
        ("title", &s.title),
        ("title_link", &s.title_link),
        ("pretext", &s.pretext),
        ("text", &s.text),
        ("footer", &s.footer),
        ("fallback", &s.fallback),
        ("callback_id", &s.callback_id),
        ("icon_emoji", &s.icon_emoji),
        ("icon_url", &s.icon_url),
        ("image_url", &s.image_url),
        ("thumb_url", &s.thumb_url),
    ] {
        check_template(place, field, text)?;
    }
    for field in &s.fields {
        check_template(place, "fields.title", &field.title)?;
        check_template(place, "fields.value", &field.value)?;
    }
    for a in &s.actions {
        for text in [&a.kind, &a.text, &a.url, &a.style, &a.name, &a.value] {
            check_template(place, "actions", text)?;
        }
    }
    Ok(s)
}

pub fn pagerduty(
    f: &PagerdutyFile,
    g: &Global,
    default_http: &HttpClientSettings,
    place: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Pagerduty, ConfigError> {
    if f.routing_key.is_some() && f.routing_key_file.is_some() {
        return Err(err("at most one of routing_key & routing_key_file must be configured"));
    }
    if f.service_key.is_some() && f.service_key_file.is_some() {
        return Err(err("at most one of service_key & service_key_file must be configured"));
    }
    let key = match (
        source(&f.service_key, &f.service_key_file, base),
        source(&f.routing_key, &f.routing_key_file, base),
    ) {
        (Some(s), _) => PagerdutyKey::Service(s),
        (None, Some(r)) => PagerdutyKey::Routing(r),
        (None, None) => return Err(err("missing service or routing key in PagerDuty config")),
    };
    let url = f
        .url
        .clone()
        .or_else(|| g.pagerduty_url.clone())
        .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_string());
    check_url(&url).map_err(|m| err(format!("{place}: {m}")))?;
    let client = tmpl(&f.client, r#"{{ template "pagerduty.default.client" . }}"#);
    let mut details: BTreeMap<String, String> = [
        ("firing", r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#),
        ("resolved", r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    details.extend(f.details.clone().unwrap_or_default());
    let p = Pagerduty {
        send_resolved: f.send_resolved.unwrap_or(true),
        http: http_of(&f.http_config, default_http, place, base, warnings)?,
        key,
        url,
        source: f.source.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| client.clone()),
        client,
        client_url: tmpl(&f.client_url, r#"{{ template "pagerduty.default.clientURL" . }}"#),
        description: tmpl(&f.description, r#"{{ template "pagerduty.default.description" .}}"#),
        details,
        images: f.images.clone(),
        links: f.links.clone(),
        severity: tmpl(&f.severity, ""),
        class: tmpl(&f.class, ""),
        component: tmpl(&f.component, ""),
        group: tmpl(&f.group, ""),
    };
    for (field, text) in [
        ("client", &p.client),
        ("client_url", &p.client_url),
        ("description", &p.description),
        ("source", &p.source),
        ("severity", &p.severity),
        ("class", &p.class),
        ("component", &p.component),
        ("group", &p.group),
    ] {
        check_template(place, field, text)?;
    }
    for text in p.details.values() {
        check_template(place, "details", text)?;
    }
    for i in &p.images {
        for text in [&i.src, &i.alt, &i.href] {
            check_template(place, "images", text)?;
        }
    }
    for l in &p.links {
        for text in [&l.href, &l.text] {
            check_template(place, "links", text)?;
        }
    }
    Ok(p)
}

pub fn opsgenie(
    f: &OpsgenieFile,
    g: &Global,
    default_http: &HttpClientSettings,
    place: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Opsgenie, ConfigError> {
    if f.api_key.is_some() && f.api_key_file.is_some() {
        return Err(err("at most one of api_key & api_key_file must be configured"));
    }
    for r in &f.responders {
        if r.id.is_empty() && r.name.is_empty() && r.username.is_empty() {
            return Err(err(format!(
                "opsGenieConfig responder {{{} {} {} {}}} has to have at least one of id, username or name specified",
                r.id, r.name, r.username, r.kind
            )));
        }
        if r.kind.contains("{{") {
            crate::gotemplate::notification::NotificationTemplates::check(&r.kind).map_err(|e| {
                err(format!(
                    "opsGenieConfig responder {{{} {} {} {}}} type is not a valid template: {e}",
                    r.id, r.name, r.username, r.kind
                ))
            })?;
        } else if !matches!(
            r.kind.to_lowercase().as_str(),
            "team" | "teams" | "user" | "escalation" | "schedule"
        ) {
            return Err(err(format!(
                "opsGenieConfig responder {{{} {} {} {}}} type does not match valid options ^(team|teams|user|escalation|schedule)$",
                r.id, r.name, r.username, r.kind
            )));
        }
    }
    let mut api_url = f
        .api_url
        .clone()
        .or_else(|| g.opsgenie_api_url.clone())
        .unwrap_or_else(|| DEFAULT_OPSGENIE_URL.to_string());
    check_url(&api_url).map_err(|m| err(format!("{place}: {m}")))?;
    // Alertmanager appends `/` to the URL's path (`v2/alerts` is joined to it).
    let path_end = api_url.find(['?', '#']).unwrap_or(api_url.len());
    if !api_url[..path_end].ends_with('/') {
        api_url.insert(path_end, '/');
    }
    let api_key = match source(&f.api_key, &f.api_key_file, base) {
        Some(k) => k,
        None => source(&g.opsgenie_api_key, &g.opsgenie_api_key_file, base)
            .ok_or_else(|| err("no global OpsGenie API Key set either inline or in a file"))?,
    };
    let o = Opsgenie {
        send_resolved: f.send_resolved.unwrap_or(true),
        http: http_of(&f.http_config, default_http, place, base, warnings)?,
        api_key,
        api_url,
        message: tmpl(&f.message, r#"{{ template "opsgenie.default.message" . }}"#),
        description: tmpl(&f.description, r#"{{ template "opsgenie.default.description" . }}"#),
        source: tmpl(&f.source, r#"{{ template "opsgenie.default.source" . }}"#),
        details: f.details.clone().unwrap_or_default(),
        entity: tmpl(&f.entity, ""),
        responders: f.responders.clone(),
        actions: tmpl(&f.actions, ""),
        tags: tmpl(&f.tags, ""),
        note: tmpl(&f.note, ""),
        priority: tmpl(&f.priority, ""),
        update_alerts: f.update_alerts,
    };
    for (field, text) in [
        ("message", &o.message),
        ("description", &o.description),
        ("source", &o.source),
        ("entity", &o.entity),
        ("actions", &o.actions),
        ("tags", &o.tags),
        ("note", &o.note),
        ("priority", &o.priority),
    ] {
        check_template(place, field, text)?;
    }
    for text in o.details.values() {
        check_template(place, "details", text)?;
    }
    for r in &o.responders {
        for text in [&r.id, &r.name, &r.username] {
            check_template(place, "responders", text)?;
        }
    }
    Ok(o)
}

/// The email's `tls_config` files, relative to the alertmanager.yml like every other file obsd
/// reads from it (Alertmanager 0.25 takes these, alone, from its working directory).
fn rebased_tls(mut t: TlsConfig, base: &Path) -> TlsConfig {
    let join = |p: &Option<String>| p.as_ref().map(|p| base.join(p).display().to_string());
    t.ca_file = join(&t.ca_file);
    t.cert_file = join(&t.cert_file);
    t.key_file = t.key_file.as_ref().map(|k| Secret::new(base.join(k.expose()).display().to_string()));
    t
}

/// `textproto.CanonicalMIMEHeaderKey`: each dash-separated word capitalised.
pub fn canonical_header(name: &str) -> String {
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
        upper = c == '-';
    }
    out
}

pub fn email(f: &EmailFile, g: &Global, place: &str, base: &Path) -> Result<Email, ConfigError> {
    let to = f.to.clone().unwrap_or_default();
    if to.is_empty() {
        return Err(err("missing to address in email config"));
    }
    let mut headers = BTreeMap::new();
    for (k, v) in f.headers.iter().flatten() {
        let name = canonical_header(k);
        if headers.insert(name.clone(), v.clone()).is_some() {
            return Err(err(format!("duplicate header {name:?} in email config")));
        }
    }
    let smarthost = f
        .smarthost
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| g.smtp_smarthost.clone().filter(|s| !s.is_empty()))
        .ok_or_else(|| err("no global SMTP smarthost set"))?;
    match smarthost.rsplit_once(':') {
        Some((_, "")) => return Err(err(format!("address {smarthost:?}: port cannot be empty"))),
        None => return Err(err(format!("address {smarthost}: missing port in address"))),
        Some(_) => {}
    }
    let from = f
        .from
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| g.smtp_from.clone().filter(|s| !s.is_empty()))
        .ok_or_else(|| err("no global SMTP from set"))?;
    let (password, password_file) = if f.auth_password.is_none() && f.auth_password_file.is_none() {
        (g.smtp_auth_password.clone(), g.smtp_auth_password_file.clone())
    } else {
        (f.auth_password.clone(), f.auth_password_file.clone())
    };
    // Alertmanager prefers the file when a receiver sets both.
    let auth_password = match (&password, &password_file) {
        (_, Some(file)) => Some(SecretSource::File(base.join(file))),
        (Some(p), None) => Some(SecretSource::Inline(p.clone())),
        (None, None) => None,
    };
    let nonempty = |v: &Option<String>, global: &Option<String>| {
        v.clone().filter(|s| !s.is_empty()).or_else(|| global.clone()).unwrap_or_default()
    };
    headers
        .entry("Subject".to_string())
        .or_insert_with(|| r#"{{ template "email.default.subject" . }}"#.to_string());
    headers.entry("To".to_string()).or_insert_with(|| to.clone());
    headers.entry("From".to_string()).or_insert_with(|| from.clone());
    let e = Email {
        send_resolved: f.send_resolved.unwrap_or(false),
        to,
        from,
        hello: f
            .hello
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| g.smtp_hello.clone())
            .unwrap_or_else(|| "localhost".into()),
        smarthost,
        auth_username: nonempty(&f.auth_username, &g.smtp_auth_username),
        auth_password,
        auth_secret: f.auth_secret.clone().or_else(|| g.smtp_auth_secret.clone()),
        auth_identity: nonempty(&f.auth_identity, &g.smtp_auth_identity),
        headers,
        html: tmpl(&f.html, r#"{{ template "email.default.html" . }}"#),
        text: tmpl(&f.text, ""),
        require_tls: f.require_tls.or(g.smtp_require_tls).unwrap_or(true),
        tls_config: rebased_tls(f.tls_config.clone().unwrap_or_default(), base),
    };
    for (field, text) in [("to", &e.to), ("from", &e.from), ("html", &e.html), ("text", &e.text)] {
        check_template(place, field, text)?;
    }
    for text in e.headers.values() {
        check_template(place, "headers", text)?;
    }
    Ok(e)
}

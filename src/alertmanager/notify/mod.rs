//! Delivery to one receiver integration, as Alertmanager 0.25's notifiers deliver: each
//! integration renders its request(s) from the notification's template data (synchronously,
//! before anything is sent), then sends them; the caller retries retryable failures with
//! backoff until the flush's deadline.
//!
//! - `webhook`: Alertmanager's `webhook.Message` JSON.
//! - `slack`, `pagerduty`, `opsgenie`: their JSON APIs, with Alertmanager's default templates.
//! - `email`: a MIME message over SMTP (`smtp` speaks the protocol).

mod email;

mod opsgenie;
mod pagerduty;
mod slack;
mod smtp;
mod webhook;

use super::alert::{Alert, Nanos, fingerprint_string};
use crate::config::alertmanager::{HttpClientSettings, Integration};
use crate::gotemplate::notification::{AlertData, NotificationData, NotificationTemplates, Prepared};
use crate::model::Labels;
use std::time::{Duration, Instant};

pub use webhook::webhook_body;

/// What a flush hands to the receiver: the group's alerts after muting, `EndsAt` zeroed for
/// the firing ones.
pub struct Notification<'a> {
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub group_labels: &'a Labels,
    pub alerts: &'a [Alert],
    pub external_url: &'a str,
    pub now: Nanos,
}

/// Labels (or annotations) every alert has with the same value.
fn common(sets: impl Iterator<Item = Labels>) -> Labels {
    let mut iter = sets;
    let Some(first) = iter.next() else { return Labels::new() };
    let mut kept: Vec<(String, String)> = first.into_vec();
    for other in iter {
        kept.retain(|(k, v)| other.get(k) == Some(v.as_str()));
    }
    Labels::from_pairs(kept)
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver name in template data.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Notification<'_> {
    fn firing(&self) -> bool {
        self.alerts.iter().any(|a| !a.resolved_at(self.now))
    }

    /// `template.Data` for these alerts.
    pub fn template_data(&self) -> NotificationData {
        NotificationData {
            receiver: quote_meta(self.receiver),
            status: if self.firing() { "firing" } else { "resolved" }.to_string(),
            alerts: self
                .alerts
                .iter()
                .map(|a| AlertData {
                    status: if a.resolved_at(self.now) { "resolved" } else { "firing" }.to_string(),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: a.starts_at,
                    ends_at: a.ends_at,
                    generator_url: a.generator_url.clone(),
                    fingerprint: fingerprint_string(a.fingerprint()),
                })
                .collect(),
            group_labels: self.group_labels.clone(),
            common_labels: common(self.alerts.iter().map(|a| a.labels.clone())),
            common_annotations: common(self.alerts.iter().map(|a| a.annotations.clone())),
            external_url: self.external_url.to_string(),
        }
    }

    /// `notify.Key.Hash()`: SHA-256 of the group key, lowercase hex (PagerDuty's dedup key,
    /// OpsGenie's alias).
    pub fn key_hash(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.group_key.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("unexpected status code {code}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
    Status { code: u16, details: String, retry: bool },
    #[error("{0}")]
    Http(String),
    #[error("HTTP client: {0}")]
    Client(String),
    /// A template that does not execute, an address that does not parse: trying again
    /// changes nothing.
    #[error("{0}")]
    Permanent(String),
    /// An SMTP conversation that failed on the way (connection, TLS, a refused command).
    #[error("{0}")]
    Smtp(String),
}

impl NotifyError {
    /// Alertmanager's retrier: 5xx, the integration's retry codes and transport errors are
    /// worth another try.
    pub fn retryable(&self) -> bool {
        match self {
            NotifyError::Status { retry, .. } => *retry,
            NotifyError::Http(_) | NotifyError::Smtp(_) => true,
            NotifyError::Client(_) | NotifyError::Permanent(_) => false,
        }
    }
}

/// One HTTP request an integration makes.
pub struct HttpRequest {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Statuses besides 5xx that are retried (PagerDuty's and OpsGenie's 429).
    pub retry_codes: &'static [u16],
}

impl HttpRequest {
    fn post_json(url: String, body: String, retry_codes: &'static [u16]) -> HttpRequest {
        HttpRequest {
            method: reqwest::Method::POST,
            url,
            headers: vec![("Content-Type", "application/json".to_string())],
            body,
            retry_codes,
        }
    }
}

/// What one delivery sends, rendered before anything is sent.
pub enum Rendered {
    /// Sent in order; the first failure ends the delivery.
    Http(Vec<HttpRequest>),
    Email(email::Message),
}

/// Runs an integration's templates for one notification.
pub struct Renderer<'a> {
    templates: &'a NotificationTemplates,
    data: Prepared,
}

impl<'a> Renderer<'a> {
    fn new(templates: &'a NotificationTemplates, n: &Notification<'_>) -> Self {
        Renderer { templates, data: n.template_data().prepare() }
    }

    /// `ExecuteTextString`; an error names the field.
    fn text(&self, field: &str, text: &str) -> Result<String, NotifyError> {
        self.templates
            .text(text, &self.data)
            .map_err(|e| NotifyError::Permanent(format!("failed to template {field}: {e}")))
    }

    fn html(&self, field: &str, text: &str) -> Result<String, NotifyError> {
        self.templates
            .html(text, &self.data)
            .map_err(|e| NotifyError::Permanent(format!("failed to template {field}: {e}")))
    }
}

/// `notify.TruncateInRunes`: at most `n` characters, the last one `…` when cut.
fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    if s.chars().count() <= n {
        return (s.to_string(), false);
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    (out, true)
}

/// Renders what `integration` sends for `n`.
pub fn render(
    integration: &Integration,
    n: &Notification<'_>,
    templates: &NotificationTemplates,
) -> Result<Rendered, NotifyError> {
    match integration {
        Integration::Webhook(hook) => {
            let body = webhook_body(n, hook.max_alerts).to_string();
            Ok(Rendered::Http(vec![HttpRequest::post_json(hook.url.expose().to_string(), body, &[])]))
        }
        Integration::Slack(s) => {
            slack::render(s, n, &Renderer::new(templates, n)).map(|r| Rendered::Http(vec![r]))
        }
        Integration::Pagerduty(p) => {
            pagerduty::render(p, n, &Renderer::new(templates, n)).map(|r| Rendered::Http(vec![r]))
        }
        Integration::Opsgenie(o) => opsgenie::render(o, n, &Renderer::new(templates, n)).map(Rendered::Http),
        Integration::Email(e) => email::render(e, n, &Renderer::new(templates, n)).map(Rendered::Email),
    }
}

pub fn client(http: &HttpClientSettings, timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    let tls = crate::http::client_tls::rustls_config(&http.tls_config)
        .map_err(|e| NotifyError::Client(e.to_string()))?;
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("obsd-alertmanager/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(2)
        .redirect(if http.follow_redirects {
            reqwest::redirect::Policy::default()
        } else {
            reqwest::redirect::Policy::none()
        })
        .use_preconfigured_tls(tls);
    if let Some(proxy) = &http.proxy_url {
        builder = builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| NotifyError::Client(e.to_string()))?);
    }
    builder.build().map_err(|e| NotifyError::Client(e.to_string()))
}

/// Sends what was rendered; the result and how long it took. `timeout` bounds an SMTP
/// conversation (HTTP clients carry their own).
pub async fn send(
    rendered: &Rendered,
    integration: &Integration,
    client: Option<&reqwest::Client>,
    timeout: Duration,
) -> (Result<(), NotifyError>, Duration) {
    let started = Instant::now();
    let result = match (rendered, integration) {
        (Rendered::Email(message), Integration::Email(config)) => {
            match tokio::time::timeout(timeout, smtp::send(config, message)).await {
                Ok(r) => r,
                Err(_) => Err(NotifyError::Smtp(format!("SMTP conversation timed out after {timeout:?}"))),
            }
        }
        (Rendered::Http(requests), _) => match (client, integration.http()) {
            (Some(client), Some(http)) => send_http(client, http, requests).await,
            _ => {
                Err(NotifyError::Client("no HTTP client for this integration (see the error at load)".into()))
            }
        },
        (Rendered::Email(_), _) => {
            Err(NotifyError::Client("an email message for a non-email integration".into()))
        }
    };
    (result, started.elapsed())
}

async fn send_http(
    client: &reqwest::Client,
    http: &HttpClientSettings,
    requests: &[HttpRequest],
) -> Result<(), NotifyError> {
    for r in requests {
        let mut request = client.request(r.method.clone(), &r.url).body(r.body.clone());
        for (name, value) in &r.headers {
            request = request.header(*name, value);
        }
        if let Some((user, password)) = &http.basic_auth {
            request = request.basic_auth(user, Some(password.expose()));
        }
        if let Some((kind, credentials)) = &http.authorization {
            request = request.header("Authorization", format!("{kind} {}", credentials.expose()));
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the body: it is the error's detail, and draining lets the connection be reused.
                let body = response.bytes().await.unwrap_or_default();
                if !(200..300).contains(&status) {
                    let details: String = String::from_utf8_lossy(&body).chars().take(512).collect();
                    return Err(NotifyError::Status {
                        code: status,
                        details: details.trim().to_string(),
                        retry: status >= 500 || r.retry_codes.contains(&status),
                    });
                }
            }
            Err(e) => return Err(NotifyError::Http(crate::http::error_chain(&e))),
        }
    }
    Ok(())
}

/// The backoff between attempts: Alertmanager's exponential backoff (500 ms, ×1.5, up to a
/// minute, ±50 % jitter).
pub fn backoff(attempt: u32) -> Duration {
    let base = 0.5 * 1.5f64.powi(attempt.min(20) as i32);
    let capped = base.min(60.0);
    Duration::from_secs_f64(capped * (0.5 + fastrand::f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_errors_retry_codes_and_transport_errors_are_retried() {
        let status = |code, retry| NotifyError::Status { code, details: String::new(), retry };
        assert!(status(503, true).retryable());
        assert!(!status(400, false).retryable());
        assert!(NotifyError::Http("refused".into()).retryable());
        assert!(!NotifyError::Permanent("template".into()).retryable());
        assert!(backoff(0) <= Duration::from_millis(750) && backoff(50) <= Duration::from_secs(90));
        assert_eq!(status(429, false).to_string(), "unexpected status code 429");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_runes("abc", 3), ("abc".to_string(), false));
        assert_eq!(truncate_runes("ééééé", 3), ("éé…".to_string(), true));
    }

    #[test]
    fn the_key_hash_is_sha256_hex_of_the_group_key() {
        let labels = Labels::new();
        let n = Notification {
            receiver: "r",
            group_key: "{}:{alertname=\"TestAlert\"}",
            group_labels: &labels,
            alerts: &[],
            external_url: "",
            now: 0,
        };
        // Recorded from Alertmanager 0.25's PagerDuty dedup_key for this group key.
        assert_eq!(n.key_hash(), "1fc521519cfd9d039f3c2496ddc6671cf881215165bcc8a6973c078855d34e5e");
    }
}

//! Delivery to one receiver integration: the webhook's JSON body (Alertmanager's
//! `webhook.Message`, version "4"), the HTTP client its `http_config` builds, and retries with
//! backoff until the flush's deadline; 5xx and network errors are retried, other statuses not.

use super::alert::{Alert, Nanos, fingerprint_string, rfc3339_nano};
use crate::config::alertmanager::{HttpClientSettings, Webhook};
use crate::model::Labels;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

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

fn kv(labels: &Labels) -> Value {
    let mut m = Map::new();
    let mut pairs: Vec<(&str, &str)> = labels.iter().collect();
    pairs.sort_unstable();
    for (k, v) in pairs {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
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

/// The webhook body: `template.Data` plus version, groupKey and truncatedAlerts.
pub fn webhook_body(n: &Notification<'_>, max_alerts: u64) -> Value {
    let (alerts, truncated) = match usize::try_from(max_alerts) {
        Ok(max) if max > 0 && n.alerts.len() > max => (&n.alerts[..max], n.alerts.len() - max),
        _ => (n.alerts, 0),
    };
    let firing = alerts.iter().any(|a| !a.resolved_at(n.now));
    let items: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "status": if a.resolved_at(n.now) { "resolved" } else { "firing" },
                "labels": kv(&a.labels),
                "annotations": kv(&a.annotations),
                "startsAt": rfc3339_nano(a.starts_at),
                "endsAt": rfc3339_nano(a.ends_at),
                "generatorURL": a.generator_url,
                "fingerprint": fingerprint_string(a.fingerprint()),
            })
        })
        .collect();
    json!({
        "receiver": quote_meta(n.receiver),
        "status": if firing { "firing" } else { "resolved" },
        "alerts": items,
        "groupLabels": kv(n.group_labels),
        "commonLabels": kv(&common(alerts.iter().map(|a| a.labels.clone()))),
        "commonAnnotations": kv(&common(alerts.iter().map(|a| a.annotations.clone()))),
        "externalURL": n.external_url,
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": truncated,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("unexpected status code {0}")]
    Status(u16),
    #[error("{0}")]
    Http(String),
    #[error("HTTP client: {0}")]
    Client(String),
}

impl NotifyError {
    /// Alertmanager's retrier: 5xx and transport errors are worth another try.
    pub fn retryable(&self) -> bool {
        match self {
            NotifyError::Status(code) => *code >= 500,
            NotifyError::Http(_) => true,
            NotifyError::Client(_) => false,
        }
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

/// One POST of the body; the result and how long it took.
pub async fn send_webhook(
    client: &reqwest::Client,
    hook: &Webhook,
    body: &Value,
) -> (Result<(), NotifyError>, Duration) {
    let started = Instant::now();
    let mut request =
        client.post(hook.url.expose()).header("Content-Type", "application/json").body(body.to_string());
    if let Some((user, password)) = &hook.http.basic_auth {
        request = request.basic_auth(user, Some(password.expose()));
    }
    if let Some((kind, credentials)) = &hook.http.authorization {
        request = request.header("Authorization", format!("{kind} {}", credentials.expose()));
    }
    let result = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Drain the body so the connection is reused.
            let _ = response.bytes().await;
            if (200..300).contains(&status) { Ok(()) } else { Err(NotifyError::Status(status)) }
        }
        Err(e) => Err(NotifyError::Http(crate::http::error_chain(&e))),
    };
    (result, started.elapsed())
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

    fn alert(pairs: &[(&str, &str)], ends_at: Nanos) -> Alert {
        Alert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Labels::from_pairs([("summary", "s")]),
            starts_at: 1_000_000_000,
            ends_at,
            generator_url: "http://p/graph".into(),
            updated_at: 0,
            timeout: false,
        }
    }

    #[test]
    fn the_body_is_alertmanagers_webhook_message() {
        let alerts = [
            alert(&[("alertname", "A"), ("i", "1")], 0),
            alert(&[("alertname", "A"), ("i", "2")], 5_000_000_000),
        ];
        let group = Labels::from_pairs([("alertname", "A")]);
        let n = Notification {
            receiver: "team.x",
            group_key: "{}:{alertname=\"A\"}",
            group_labels: &group,
            alerts: &alerts,
            external_url: "http://am:9093",
            now: 10_000_000_000,
        };
        let body = webhook_body(&n, 0);
        assert_eq!(body["receiver"], "team\\.x");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(body["alerts"][1]["status"], "resolved");
        assert_eq!(body["alerts"][1]["endsAt"], "1970-01-01T00:00:05Z");
        assert_eq!(body["commonLabels"], json!({"alertname": "A"}));
        assert_eq!(body["commonAnnotations"], json!({"summary": "s"}));
        assert_eq!((body["version"].as_str(), body["truncatedAlerts"].as_u64()), (Some("4"), Some(0)));
        let body = webhook_body(&n, 1);
        assert_eq!(
            (body["alerts"].as_array().map(Vec::len), body["truncatedAlerts"].as_u64()),
            (Some(1), Some(1))
        );
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert!(keys.iter().any(|k| *k == "groupKey"));
    }

    #[test]
    fn only_server_errors_and_transport_errors_are_retried() {
        assert!(NotifyError::Status(503).retryable());
        assert!(!NotifyError::Status(400).retryable());
        assert!(NotifyError::Http("refused".into()).retryable());
        assert!(backoff(0) <= Duration::from_millis(750) && backoff(50) <= Duration::from_secs(90));
    }
}

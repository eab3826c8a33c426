//! PagerDuty (Alertmanager's `notify/pagerduty`): Events API v2 (`routing_key`) or v1
//! (`service_key`), deduplicated on the SHA-256 of the group key, resolved when every alert
//! of the group is. v2 retries 429 and 5xx, v1 403 and 5xx.

use super::{HttpRequest, Notification, NotifyError, Renderer, truncate_runes};
use crate::config::alertmanager::receivers::{Pagerduty, PagerdutyKey};
use crate::model::gojson::{self, Object};
use std::collections::BTreeMap;

const MAX_DESCRIPTION_RUNES: usize = 1024;
/// Events larger than this have their details replaced (PagerDuty refuses them).
const MAX_EVENT_BYTES: usize = 512_000;
const V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";
const TOO_BIG: &str =
    "Custom details have been removed because the original event exceeds the maximum size of 512KB";

pub fn render(p: &Pagerduty, n: &Notification<'_>, r: &Renderer<'_>) -> Result<HttpRequest, NotifyError> {
    let resolved = !n.firing();
    let mut details = BTreeMap::new();
    for (k, v) in &p.details {
        let value = r.text(&format!("{k:?}"), v)?;
        details.insert(k.clone(), value);
    }
    let (description, cut) = truncate_runes(&r.text("description", &p.description)?, MAX_DESCRIPTION_RUNES);
    if cut {
        tracing::warn!(
            receiver = n.receiver,
            group = n.group_key,
            max_runes = MAX_DESCRIPTION_RUNES,
            "Truncated summary"
        );
    }
    let client = r.text("client", &p.client)?;
    let client_url = r.text("client_url", &p.client_url)?;
    match &p.key {
        PagerdutyKey::Service(key) => {
            let key = r.text("service_key", &key.read(true).map_err(NotifyError::Permanent)?)?;
            if key.is_empty() {
                return Err(NotifyError::Permanent("service key cannot be empty".into()));
            }
            let encode = |details: &BTreeMap<String, String>| {
                Object::new()
                    .str("service_key", &key)
                    .str("incident_key", &n.key_hash())
                    .str("event_type", if resolved { "resolve" } else { "trigger" })
                    .str("description", &description)
                    .str("event_action", "")
                    .raw("payload", "null")
                    .str_opt("client", if resolved { "" } else { &client })
                    .str_opt("client_url", if resolved { "" } else { &client_url })
                    .map("details", details, true)
                    .finish()
            };
            let body = fit(encode(&details), || encode(&too_big()));
            Ok(HttpRequest::post_json(V1_URL.to_string(), gojson::encoded(body), &[403]))
        }
        PagerdutyKey::Routing(key) => {
            let key = r.text("routing_key", &key.read(true).map_err(NotifyError::Permanent)?)?;
            if key.is_empty() {
                return Err(NotifyError::Permanent("routing key cannot be empty".into()));
            }
            let severity = match r.text("severity", &p.severity)? {
                s if s.is_empty() => "error".to_string(),
                s => s,
            };
            let source = r.text("source", &p.source)?;
            let class = r.text("class", &p.class)?;
            let component = r.text("component", &p.component)?;
            let group = r.text("group", &p.group)?;
            let mut images = Vec::new();
            for i in &p.images {
                let src = r.text("images.src", &i.src)?;
                if src.is_empty() {
                    continue;
                }
                images.push(
                    Object::new()
                        .str_opt("src", &src)
                        .str_opt("alt", &r.text("images.alt", &i.alt)?)
                        .str_opt("href", &r.text("images.href", &i.href)?)
                        .finish(),
                );
            }
            let mut links = Vec::new();
            for l in &p.links {
                let href = r.text("links.href", &l.href)?;
                if href.is_empty() {
                    continue;
                }
                links.push(
                    Object::new()
                        .str_opt("href", &href)
                        .str_opt("text", &r.text("links.text", &l.text)?)
                        .finish(),
                );
            }
            let encode = |details: &BTreeMap<String, String>| {
                let payload = Object::new()
                    .str("summary", &description)
                    .str("source", &source)
                    .str("severity", &severity)
                    .str_opt("class", &class)
                    .str_opt("component", &component)
                    .str_opt("group", &group)
                    .map("custom_details", details, true)
                    .finish();
                Object::new()
                    .str("routing_key", &key)
                    .str("dedup_key", &n.key_hash())
                    .str("event_action", if resolved { "resolve" } else { "trigger" })
                    .raw("payload", &payload)
                    .str_opt("client", &client)
                    .str_opt("client_url", &client_url)
                    .array_opt("images", &images)
                    .array_opt("links", &links)
                    .finish()
            };
            let body = fit(encode(&details), || encode(&too_big()));
            Ok(HttpRequest::post_json(p.url.clone(), gojson::encoded(body), &[429]))
        }
    }
}

fn too_big() -> BTreeMap<String, String> {
    BTreeMap::from([("error".to_string(), TOO_BIG.to_string())])
}

/// An event over PagerDuty's limit goes out with its details replaced, as Alertmanager does.
fn fit(body: String, smaller: impl FnOnce() -> String) -> String {
    if body.len() < MAX_EVENT_BYTES {
        return body;
    }
    tracing::warn!(
        size = body.len(),
        limit = MAX_EVENT_BYTES,
        "Truncated Details because message exceeds PagerDuty's limit"
    );
    smaller()
}

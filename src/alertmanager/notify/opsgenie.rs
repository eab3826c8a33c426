//! OpsGenie's Alert API (Alertmanager's `notify/opsgenie`): create an alert aliased by the
//! SHA-256 of the group key while any alert fires (and, with `update_alerts`, update its
//! message and description), close it when all are resolved. 429 and 5xx are retried.

use super::{HttpRequest, Notification, NotifyError, Renderer, truncate_runes};
use crate::config::alertmanager::receivers::Opsgenie;
use crate::model::gojson::{self, Object};
use std::collections::BTreeMap;

const MAX_MESSAGE_RUNES: usize = 130;
const RETRY: &[u16] = &[429];

/// Tags, actions and team lists: the whole text trimmed, split on commas, empty items dropped
/// (the items themselves are not trimmed, as in Alertmanager).
fn split_list(s: &str) -> Vec<String> {
    s.trim().split(',').filter(|i| !i.is_empty()).map(str::to_string).collect()
}

fn request(method: reqwest::Method, url: String, body: String, key: &str) -> HttpRequest {
    HttpRequest {
        method,
        url,
        headers: vec![
            ("Content-Type", "application/json".to_string()),
            ("Authorization", format!("GenieKey {key}")),
        ],
        body: gojson::encoded(body),
        retry_codes: RETRY,
    }
}

pub fn render(o: &Opsgenie, n: &Notification<'_>, r: &Renderer<'_>) -> Result<Vec<HttpRequest>, NotifyError> {
    let key = r.text("api_key", &o.api_key.read(false).map_err(NotifyError::Permanent)?)?;
    let alias = n.key_hash();
    let source = r.text("source", &o.source)?;
    if !n.firing() {
        let url = format!("{}v2/alerts/{alias}/close?identifierType=alias", o.api_url);
        let body = Object::new().str("source", &source).finish();
        return Ok(vec![request(reqwest::Method::POST, url, body, &key)]);
    }
    let (message, cut) = truncate_runes(&r.text("message", &o.message)?, MAX_MESSAGE_RUNES);
    if cut {
        tracing::warn!(
            receiver = n.receiver,
            group = n.group_key,
            max_runes = MAX_MESSAGE_RUNES,
            "Truncated message"
        );
    }
    let description = r.text("description", &o.description)?;
    let mut details: BTreeMap<String, String> = super::common(n.alerts.iter().map(|a| a.labels.clone()))
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in &o.details {
        details.insert(k.clone(), r.text(&format!("details {k:?}"), v)?);
    }
    let mut responders = Vec::new();
    for resp in &o.responders {
        let id = r.text("responders.id", &resp.id)?;
        let name = r.text("responders.name", &resp.name)?;
        let username = r.text("responders.username", &resp.username)?;
        let kind = r.text("responders.type", &resp.kind)?;
        if id.is_empty() && name.is_empty() && username.is_empty() && kind.is_empty() {
            continue;
        }
        if kind == "teams" {
            for team in split_list(&name) {
                responders.push(Object::new().str("name", &team).str("type", "team").finish());
            }
            continue;
        }
        responders.push(
            Object::new()
                .str_opt("id", &id)
                .str_opt("name", &name)
                .str_opt("username", &username)
                .str("type", &kind)
                .finish(),
        );
    }
    let tags = split_list(&r.text("tags", &o.tags)?);
    let actions = split_list(&r.text("actions", &o.actions)?);
    let body = Object::new()
        .str("alias", &alias)
        .str("message", &message)
        .str_opt("description", &description)
        .map("details", &details, false)
        .str("source", &source)
        .array_opt("responders", &responders)
        .array_opt("tags", &tags.iter().map(|t| gojson::string(t)).collect::<Vec<_>>())
        .str_opt("note", &r.text("note", &o.note)?)
        .str_opt("priority", &r.text("priority", &o.priority)?)
        .str_opt("entity", &r.text("entity", &o.entity)?)
        .array_opt("actions", &actions.iter().map(|t| gojson::string(t)).collect::<Vec<_>>())
        .finish();
    let mut requests = vec![request(reqwest::Method::POST, format!("{}v2/alerts", o.api_url), body, &key)];
    if o.update_alerts {
        requests.push(request(
            reqwest::Method::PUT,
            format!("{}v2/alerts/{alias}/message?identifierType=alias", o.api_url),
            Object::new().str("message", &message).finish(),
            &key,
        ));
        requests.push(request(
            reqwest::Method::PUT,
            format!("{}v2/alerts/{alias}/description?identifierType=alias", o.api_url),
            Object::new().str_opt("description", &description).finish(),
            &key,
        ));
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_split_as_alertmanager_splits_them() {
        assert_eq!(super::split_list("a, b ,,c "), vec!["a", " b ", "c"]);
        assert!(super::split_list("  ").is_empty());
    }
}

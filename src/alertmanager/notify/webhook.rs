//! The webhook's JSON body: Alertmanager's `webhook.Message`, version "4".

use super::{Notification, common, quote_meta};
use crate::alertmanager::alert::{fingerprint_string, rfc3339_nano};
use crate::model::Labels;
use serde_json::{Map, Value, json};

fn kv(labels: &Labels) -> Value {
    let mut m = Map::new();
    let mut pairs: Vec<(&str, &str)> = labels.iter().collect();
    pairs.sort_unstable();
    for (k, v) in pairs {
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Value::Object(m)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alertmanager::alert::{Alert, Nanos};

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
}

//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers` in Prometheus 2.42's shapes
//! (web/api/v1/api.go): times as RFC 3339 with Go's trimmed fraction, alert values as Go's
//! `%e`-style strings, health `ok`/`err`/`unknown`.

use super::ApiState;
use super::error::ApiError;
use crate::exposition::format_go_float_e;
use crate::model::Labels;
use crate::rules::alert::Alert;
use crate::rules::file::RuleKind;
use crate::rules::group::{GroupState, RuleState};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Go's `time.Time` in JSON (RFC 3339, fraction trimmed of zeros); the zero time for "never".
pub fn go_time(t: Option<SystemTime>) -> String {
    match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        Some(d) => go_time_ms(d.as_millis() as i64),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

pub fn go_time_ms(ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else { return "0001-01-01T00:00:00Z".into() };
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000);
    if frac == 0 {
        format!("{base}Z")
    } else {
        let digits = format!("{frac:03}");
        format!("{base}.{}Z", digits.trim_end_matches('0'))
    }
}

fn label_map(labels: &Labels) -> Value {
    Value::Object(labels.iter().map(|(n, v)| (n.to_string(), Value::String(v.to_string()))).collect())
}

fn pairs_map(pairs: &[(String, String)]) -> Value {
    Value::Object(pairs.iter().map(|(n, v)| (n.clone(), Value::String(v.clone()))).collect())
}

fn alert_json(a: &Alert) -> Value {
    let mut m = Map::new();
    m.insert("labels".into(), label_map(&a.labels));
    m.insert("annotations".into(), label_map(&a.annotations));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("activeAt".into(), json!(go_time_ms(a.active_at)));
    if a.keep_firing_since != 0 {
        m.insert("keepFiringSince".into(), json!(go_time_ms(a.keep_firing_since)));
    }
    m.insert("value".into(), json!(format_go_float_e(a.value)));
    Value::Object(m)
}

fn rule_json(r: &RuleState) -> Value {
    let mut m = Map::new();
    match &r.spec.kind {
        RuleKind::Alerting { hold, keep_firing_for, annotations } => {
            m.insert("state".into(), json!(r.alerts.state().as_str()));
            m.insert("name".into(), json!(r.spec.name));
            m.insert("query".into(), json!(r.spec.expr));
            m.insert("duration".into(), json!(hold.as_secs_f64()));
            m.insert("keepFiringFor".into(), json!(keep_firing_for.as_secs_f64()));
            m.insert("labels".into(), pairs_map(&r.spec.labels));
            m.insert("annotations".into(), pairs_map(annotations));
            m.insert(
                "alerts".into(),
                Value::Array(r.alerts.unresolved().into_iter().map(alert_json).collect()),
            );
        }
        RuleKind::Recording => {
            m.insert("name".into(), json!(r.spec.name));
            m.insert("query".into(), json!(r.spec.expr));
            m.insert("labels".into(), pairs_map(&r.spec.labels));
        }
    }
    m.insert("health".into(), json!(r.health.as_str()));
    if !r.last_error.is_empty() {
        m.insert("lastError".into(), json!(r.last_error));
    }
    m.insert("evaluationTime".into(), json!(r.evaluation_time.as_secs_f64()));
    m.insert("lastEvaluation".into(), json!(go_time(r.last_evaluation)));
    m.insert("type".into(), json!(if r.spec.is_alert() { "alerting" } else { "recording" }));
    Value::Object(m)
}

fn group_json(g: &GroupState, want: Option<bool>) -> Value {
    let rules: Vec<Value> = g
        .rules
        .iter()
        .filter(|r| want.is_none_or(|alert| r.spec.is_alert() == alert))
        .map(rule_json)
        .collect();
    json!({
        "name": g.spec.name,
        "file": g.spec.file,
        "rules": rules,
        "interval": g.interval.as_secs_f64(),
        "limit": g.spec.limit,
        "evaluationTime": g.evaluation_time.as_secs_f64(),
        "lastEvaluation": go_time(g.last_evaluation),
    })
}

/// `type=alert|record` filters rules (and drops groups left empty, as Prometheus does); any
/// other value is a 400.
pub fn rules(state: &ApiState, params: &HashMap<String, String>) -> Result<Value, ApiError> {
    let want = match params.get("type").map(String::as_str) {
        None | Some("") => None,
        Some("alert") => Some(true),
        Some("record") => Some(false),
        Some(other) => return Err(ApiError::BadData(format!("not supported value {other:?}"))),
    };
    let groups: Vec<Value> = match &state.info.rules {
        Some(manager) => manager
            .with_groups(|g| group_json(g, want))
            .into_iter()
            .filter(|g| want.is_none() || g["rules"].as_array().is_some_and(|r| !r.is_empty()))
            .collect(),
        None => Vec::new(),
    };
    Ok(json!({ "groups": groups }))
}

/// Every pending or firing alert of every rule.
pub fn alerts(state: &ApiState) -> Value {
    let mut out = Vec::new();
    if let Some(manager) = &state.info.rules {
        for group in manager.with_groups(|g| {
            g.rules.iter().flat_map(|r| r.alerts.unresolved().into_iter().map(alert_json)).collect::<Vec<_>>()
        }) {
            out.extend(group);
        }
    }
    json!({ "alerts": out })
}

pub fn alertmanagers(state: &ApiState) -> Value {
    let (active, dropped) = state.info.rules.as_ref().map(|r| r.alertmanagers()).unwrap_or_default();
    let urls = |v: Vec<String>| -> Vec<Value> { v.into_iter().map(|u| json!({ "url": u })).collect() };
    json!({ "activeAlertmanagers": urls(active), "droppedAlertmanagers": urls(dropped) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_times_print_as_go_prints_them() {
        assert_eq!(format_go_float_e(1.0), "1e+00");
        assert_eq!(format_go_float_e(42.0), "4.2e+01");
        assert_eq!(format_go_float_e(0.000123), "1.23e-04");
        assert_eq!(format_go_float_e(-2.5e300), "-2.5e+300");
        assert_eq!(go_time_ms(1_672_531_204_059), "2023-01-01T00:00:04.059Z");
        assert_eq!(go_time_ms(1_672_531_204_500), "2023-01-01T00:00:04.5Z");
        assert_eq!(go_time_ms(1_672_531_200_000), "2023-01-01T00:00:00Z");
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
    }
}

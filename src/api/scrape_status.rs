//! The scrape side of the Prometheus API for a role that scrapes into a store (the replica and
//! the federation): `targets` and `metadata` data and the `ApiInfo` (build, flags, config).

use super::{ApiInfo, BuildInfo};
use crate::scrape::manager::ScrapeManager;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the Prometheus API reports about a scraping role: build, flags, config, targets,
/// metadata.
pub fn scrape_api_info(
    scrape: &ScrapeManager,
    flags: BTreeMap<String, String>,
    config_yaml: String,
) -> ApiInfo {
    let targets_scrape = scrape.clone();
    let metadata_scrape = scrape.clone();
    ApiInfo {
        build: BuildInfo {
            version: crate::self_metrics::VERSION.to_string(),
            revision: crate::self_metrics::GIT_COMMIT.to_string(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: format!("rustc {}", crate::self_metrics::RUST_VERSION),
        },
        runtime: None,
        flags,
        config_yaml,
        targets: Some(Arc::new(move |wanted: &str| targets_data(&targets_scrape, wanted))),
        metadata: Some(Arc::new(move |metric: Option<&str>, limit: Option<usize>| {
            metadata_data(&metadata_scrape, metric, limit)
        })),
        tsdb_status: None,
        rules: None,
    }
}

fn label_map(labels: &[(String, String)]) -> BTreeMap<String, String> {
    labels.iter().cloned().collect()
}

fn rfc3339(t: Option<std::time::SystemTime>) -> String {
    match t {
        Some(t) => {
            chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        }
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// The `data` of `/api/v1/targets` for `state` = active, dropped or any.
pub fn targets_data(scrape: &ScrapeManager, wanted: &str) -> Value {
    let (show_active, show_dropped) = match wanted.to_lowercase().as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let active: Vec<Value> = if show_active {
        scrape
            .active_targets()
            .into_iter()
            .map(|a| {
                json!({
                    "discoveredLabels": label_map(&a.target.discovered_labels),
                    "labels": label_map(&a.target.labels),
                    "scrapePool": a.target.job,
                    "scrapeUrl": a.target.url,
                    "globalUrl": a.target.url,
                    "lastError": a.state.last_error,
                    "lastScrape": rfc3339(a.state.last_scrape),
                    "lastScrapeDuration": a.state.last_duration.as_secs_f64(),
                    "health": a.state.health.as_str(),
                    "scrapeInterval": crate::model::units::format_duration(a.interval),
                    "scrapeTimeout": crate::model::units::format_duration(a.timeout),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let dropped: Vec<Value> = if show_dropped {
        scrape
            .dropped_targets()
            .into_iter()
            .map(|(_, l)| json!({ "discoveredLabels": label_map(&l) }))
            .collect()
    } else {
        Vec::new()
    };
    json!({"activeTargets": active, "droppedTargets": dropped})
}

/// The `data` of `/api/v1/metadata`: metric → distinct {type, help, unit} seen by scrapes.
pub fn metadata_data(scrape: &ScrapeManager, metric: Option<&str>, limit: Option<usize>) -> Value {
    let mut by_metric: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in scrape.active_targets() {
        for m in a.state.metadata {
            if metric.is_some_and(|want| want != m.metric) {
                continue;
            }
            let entry = json!({"type": m.kind.metadata_name(), "help": m.help, "unit": m.unit});
            let list = by_metric.entry(m.metric).or_default();
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (name, list) in by_metric {
        if limit.is_some_and(|l| l > 0 && out.len() >= l) {
            break;
        }
        out.insert(name, Value::Array(list));
    }
    Value::Object(out)
}

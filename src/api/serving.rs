//! What every role that scrapes into a store serves beside `/api/v1` (the replica and the
//! federation): `/federate`, the `targets` and `metadata` data of the API, and the `ApiInfo`
//! (build, flags, config). Kept in the API engine so the two roles share it without
//! importing each other.

use super::selector::parse_match;
use super::{ApiInfo, BuildInfo};
use crate::exposition::{FederatedSample, FederationWriter};

/// Size of the pieces a `/federate` answer is sent in.
const FEDERATE_CHUNK_BYTES: usize = 64 * 1024;
use crate::model::is_stale_nan;
use crate::model::labels::Labels;
use crate::scrape::manager::ScrapeManager;
use crate::store::Store;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What `/federate` needs: the store and the settings a reload may change.
pub struct FederateState {
    pub store: Store,
    pub settings: RwLock<FederateSettings>,
}

#[derive(Debug, Clone)]
pub struct FederateSettings {
    pub external_labels: Vec<(String, String)>,
    pub lookback: Duration,
}

impl FederateState {
    pub fn new(store: Store, settings: FederateSettings) -> Arc<FederateState> {
        Arc::new(FederateState { store, settings: RwLock::new(settings) })
    }

    pub fn update(&self, settings: FederateSettings) {
        if let Ok(mut s) = self.settings.write() {
            *s = settings;
        }
    }

    fn current(&self) -> FederateSettings {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or(FederateSettings { external_labels: Vec::new(), lookback: Duration::from_secs(300) })
    }
}

/// `GET /federate`, and `GET /` with the web UI (the seed's health checks probe `GET /`, HAProxy's
/// `option httpchk GET /`, so it answers 200).
pub fn federate_router(state: Arc<FederateState>, ui: crate::webui::Features) -> Router {
    Router::new().route("/federate", get(federate)).with_state(state).merge(crate::webui::router(ui))
}

/// Query-string pairs, percent-decoded, repeated keys kept (`match[]`).
pub fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
}

pub fn text_error(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

async fn federate(State(state): State<Arc<FederateState>>, RawQuery(raw): RawQuery) -> Response {
    let selectors: Vec<String> =
        query_pairs(&raw).into_iter().filter(|(k, _)| k == "match[]").map(|(_, v)| v).collect();
    let mut matcher_sets = Vec::new();
    for s in &selectors {
        match parse_match(s) {
            Ok(m) => matcher_sets.push(m),
            Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
        }
    }
    let state2 = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let settings = state2.current();
        let now = crate::model::now_ms();
        let lookback = settings.lookback.as_millis() as i64;
        let querier = state2.store.querier(now - lookback, now);
        let mut seen: HashSet<Labels> = HashSet::new();
        let mut latest: Vec<(Labels, i64, f64)> = Vec::new();
        for matchers in &matcher_sets {
            for series in querier.select(matchers) {
                let series = series.map_err(|e| e.to_string())?;
                if !seen.insert(series.labels.clone()) {
                    continue;
                }
                // The newest sample at or before now; a stale marker means the series ended.
                if let Some((t, v)) = series.samples().last()
                    && !is_stale_nan(v)
                {
                    latest.push((series.labels.clone(), t, v));
                }
            }
        }
        latest.sort_by(|a, b| (a.0.name(), a.0.as_slice()).cmp(&(b.0.name(), b.0.as_slice())));
        Ok::<_, String>((latest, settings.external_labels))
    })
    .await;
    match result {
        Ok(Ok((latest, external))) => {
            // Like Prometheus, the newest sample per series is gathered and sorted first; the
            // text, several times larger, goes out in chunks as it is written.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
            tokio::task::spawn_blocking(move || {
                let mut writer = FederationWriter::new(&external);
                let mut chunk = String::with_capacity(FEDERATE_CHUNK_BYTES + 1024);
                for (labels, t, v) in &latest {
                    writer.write(
                        &mut chunk,
                        &FederatedSample { labels: labels.as_slice(), t_ms: *t, value: *v },
                    );
                    if chunk.len() >= FEDERATE_CHUNK_BYTES {
                        let full =
                            std::mem::replace(&mut chunk, String::with_capacity(FEDERATE_CHUNK_BYTES + 1024));
                        if tx.blocking_send(Ok(full.into())).is_err() {
                            return; // the client went away
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.blocking_send(Ok(chunk.into()));
                }
            });
            let stream =
                futures_util::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
                );
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Ok(Err(e)) => text_error(StatusCode::INTERNAL_SERVER_ERROR, format!("federation failed: {e}")),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, format!("federation failed: {e}")),
    }
}

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

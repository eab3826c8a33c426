//! HTTP handlers owned by the replica: `/federate`, `/api/v1/targets`, `/api/v1/write`, `/metrics`.

use super::ReplicaState;
use super::selector::parse_match;
use crate::exposition::{self, FederatedSample, FederationWriter};

/// Size of the pieces a `/federate` answer is sent in.
const FEDERATE_CHUNK_BYTES: usize = 64 * 1024;
use crate::labels::Labels;
use crate::remote_write;
use crate::store::{Exemplar, StoreError, is_stale_nan};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

type Shared = Arc<ReplicaState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/federate", get(federate))
        .route("/api/v1/write", post(remote_write_receive))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Query-string pairs, percent-decoded, repeated keys kept (`match[]`).
pub fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
}

/// Health checks in the seed probe `GET /` (HAProxy's `option httpchk GET /`), so it answers 200.
async fn landing() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<html><head><title>obsd</title></head><body><h1>obsd</h1><ul>\
         <li><a href=\"/api/v1/targets\">targets</a></li><li><a href=\"/federate?match[]=up\">/federate</a></li>\
         <li><a href=\"/metrics\">metrics</a></li></ul></body></html>\n",
    )
        .into_response()
}

fn text_error(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

async fn federate(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
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
        let now = crate::store::now_ms();
        let lookback = state2.lookback().as_millis() as i64;
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
        Ok::<_, String>(latest)
    })
    .await;
    match result {
        Ok(Ok(latest)) => {
            // Like Prometheus, the newest sample per series is gathered and sorted first; the
            // text, several times larger, goes out in chunks as it is written.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
            let external = state.external_labels();
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
                        if tx.blocking_send(Ok(Bytes::from(full))).is_err() {
                            return; // the client went away
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
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
pub fn targets_data(state: &ReplicaState, wanted: &str) -> Value {
    let (show_active, show_dropped) = match wanted.to_lowercase().as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let active: Vec<Value> = if show_active {
        state
            .scrape
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
                    "scrapeInterval": crate::api_duration(a.interval),
                    "scrapeTimeout": crate::api_duration(a.timeout),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let dropped: Vec<Value> = if show_dropped {
        state
            .scrape
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
pub fn metadata_data(state: &ReplicaState, metric: Option<&str>, limit: Option<usize>) -> Value {
    let mut by_metric: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in state.scrape.active_targets() {
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

/// Prometheus's remote-write receiver: 204 on success, 400 for a bad payload or a sample the
/// store refuses (so the sender does not retry it), 500 otherwise. One bad sample rolls the
/// whole request back, as Prometheus's handler does.
async fn remote_write_receive(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let enabled = state.settings.read().map(|s| s.remote_write_receiver).unwrap_or(false);
    if !enabled {
        return text_error(
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with remote_write_receiver = true in [replica]".into(),
        );
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!("unsupported Content-Encoding {enc:?}; only snappy"),
        );
    }
    let request = match remote_write::decode(&body, 256 << 20) {
        Ok(r) => r,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Prometheus's appender refuses a sample older than one before it in the same series.
    for ts in &request.timeseries {
        if let Some(w) = ts.samples.windows(2).find(|w| w[1].timestamp < w[0].timestamp) {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("out of order sample: timestamp {} after {}", w[1].timestamp, w[0].timestamp),
            );
        }
    }
    let store = state.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut app = store.appender();
        for ts in request.timeseries {
            let labels = Labels::from_pairs(
                ts.labels.into_iter().filter(|l| !l.value.is_empty()).map(|l| (l.name, l.value)),
            );
            if labels.name().is_none_or(str::is_empty) {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("invalid labels: series {labels} has no metric name"),
                ));
            }
            let mut series = None;
            for s in ts.samples {
                match app.append(&labels, s.timestamp, s.value) {
                    Ok(r) => series = Some(r),
                    Err(e) if e.is_user_error() => return Err((StatusCode::BAD_REQUEST, e.to_string())),
                    Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                }
            }
            if !ts.exemplars.is_empty() {
                let r = match series {
                    Some(r) => r,
                    None => app
                        .series_ref(&labels)
                        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
                };
                for e in ts.exemplars {
                    let labels = Labels::from_pairs(e.labels.into_iter().map(|l| (l.name, l.value)));
                    app.append_exemplar(&r, Exemplar { labels, value: e.value, t: e.timestamp });
                }
            }
        }
        app.commit().map_err(|e: StoreError| {
            let status =
                if e.is_user_error() { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
            (status, e.to_string())
        })
    })
    .await;
    match outcome {
        Ok(Ok(summary)) if summary.out_of_order > 0 || summary.duplicate > 0 => text_error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} out of order and {} duplicate samples refused",
                summary.out_of_order, summary.duplicate
            ),
        ),
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err((status, message))) => text_error(status, message),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let store = state.store.clone();
    let mut families = tokio::task::spawn_blocking(move || store.metric_families()).await.unwrap_or_default();
    families.extend(crate::self_metrics::process_metrics());
    families.push(crate::self_metrics::build_info());
    let families = exposition::merge_and_sort(families);
    let mut body = String::new();
    exposition::write_families(&mut body, &families);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

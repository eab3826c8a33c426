//! The `/api/v1` handlers (Prometheus 2.42 `web/api/v1/api.go`).

use super::error::ApiError;
use super::json::{format_timestamp, format_value, json_string, query_data, success, write_labels};
use super::params::{
    MAX_TIME_MS, MIN_TIME_MS, Params, invalid_param, parse_duration, time_param, unescape_label_name,
};
use super::{ApiState, RuntimeInfo};
use crate::model::{Labels, MatchOp, Matcher, now_ms};
use crate::promql::{self, QuerySpec, QueryValue};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Prometheus's guard against huge range queries.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

pub(super) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/query_exemplars", get(query_exemplars).post(query_exemplars))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/metadata", get(|| async { ok_json(&serde_json::json!([])) }))
        .route("/api/v1/scrape_pools", get(|| async { ok_json(&serde_json::json!({"scrapePools": []})) }))
        .route(
            "/api/v1/alertmanagers",
            get(|State(s): State<ApiState>| async move { ok_json(&super::rules::alertmanagers(&s)) }),
        )
        .route(
            "/api/v1/alerts",
            get(|State(s): State<ApiState>| async move { ok_json(&super::rules::alerts(&s)) }),
        )
        .route(
            "/api/v1/rules",
            get(|State(s): State<ApiState>, RawQuery(q): RawQuery| async move {
                let params: HashMap<String, String> =
                    serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
                result(super::rules::rules(&s, &params).map(|v| ok_json(&v)))
            }),
        )
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/status/runtimeinfo", get(status_runtimeinfo))
        .route("/api/v1/status/buildinfo", get(status_buildinfo))
        .route("/api/v1/status/flags", get(status_flags))
        .route("/api/v1/status/tsdb", get(status_tsdb))
        .route(
            "/api/v1/status/walreplay",
            get(|| async { ok_json(&serde_json::json!({"min": 0, "max": 0, "current": 0})) }),
        )
        .with_state(state)
}

fn respond(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok_json(data: &serde_json::Value) -> Response {
    respond(success(&data.to_string(), &[]))
}

fn result(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Go's `ParseForm` reads a body only for form content types.
fn params(q: Option<String>, headers: &HeaderMap, body: &Bytes) -> Result<Params, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    Params::new(q.as_deref(), if is_form && !body.is_empty() { Some(body) } else { None })
}

/// Sets the query's cancel flag when the request goes away before the query ends.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn run_query(st: &ApiState, mut spec: QuerySpec) -> Result<QueryValue, ApiError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    spec.cancel = Some(cancel);
    let engine = st.engine.clone();
    let store = st.store.clone();
    let (turn, left) = engine.admit(spec.timeout).await?;
    spec.timeout = Some(left);
    // Evaluation is CPU-bound: keep it off the async workers.
    let res = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        engine.exec(&*store, &spec)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?;
    Ok(res?)
}

fn timeout_param(p: &Params) -> Result<Option<Duration>, ApiError> {
    match p.get("timeout") {
        None => Ok(None),
        Some(s) => {
            let ms = parse_duration(s).map_err(|e| invalid_param("timeout", e))?;
            Ok(Some(Duration::from_millis(ms.max(0) as u64)))
        }
    }
}

async fn query(
    State(st): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let p = params(q, &headers, &body)?;
            let t = time_param(&p, "time", now_ms())?;
            let timeout = timeout_param(&p)?;
            let query = p.get("query").unwrap_or("").to_string();
            let v = run_query(
                &st,
                QuerySpec { query, start_ms: t, end_ms: t, step_ms: 0, timeout, cancel: None },
            )
            .await?;
            Ok(respond(success(&query_data(&v), &[])))
        }
        .await,
    )
}

async fn query_range(
    State(st): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let p = params(q, &headers, &body)?;
            let start = super::params::parse_time(p.get("start").unwrap_or("")).map_err(|e| invalid_param("start", e))?;
            let end = super::params::parse_time(p.get("end").unwrap_or("")).map_err(|e| invalid_param("end", e))?;
            if end < start {
                return Err(ApiError::BadData("end timestamp must not be before start time".into()));
            }
            let step = parse_duration(p.get("step").unwrap_or("")).map_err(|e| invalid_param("step", e))?;
            if step <= 0 {
                return Err(ApiError::BadData(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
                ));
            }
            if end.saturating_sub(start) / step > MAX_POINTS_PER_SERIES {
                return Err(ApiError::BadData(
                    "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
                ));
            }
            let timeout = timeout_param(&p)?;
            let query = p.get("query").unwrap_or("").to_string();
            let v = run_query(&st, QuerySpec { query, start_ms: start, end_ms: end, step_ms: step, timeout, cancel: None }).await?;
            Ok(respond(success(&query_data(&v), &[])))
        }
        .await,
    )
}

/// Exemplars of every series any selector of `query` matches (Prometheus 2.42
/// `queryExemplars`): one entry per series, series sorted by labels, exemplars in time order.
async fn query_exemplars(
    State(st): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let p = params(q, &headers, &body)?;
            let start = time_param(&p, "start", MIN_TIME_MS)?;
            let end = time_param(&p, "end", MAX_TIME_MS)?;
            if end < start {
                return Err(ApiError::BadData("end timestamp must not be before start time".into()));
            }
            let expr = promql::parse(p.get("query").unwrap_or("")).map_err(ApiError::from)?;
            let sets = promql::extract_selectors(&expr).map_err(ApiError::from)?;
            if sets.is_empty() {
                // Prometheus returns no data at all here, which its wrapper sends as 204.
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            let store = st.store.clone();
            let found = blocking(move || {
                // A series matched by several selectors is reported once.
                let mut by_series: BTreeMap<Labels, Vec<promql::ExemplarData>> = BTreeMap::new();
                for set in &sets {
                    for (labels, ex) in
                        store.exemplars(set, start, end).map_err(|e| ApiError::Internal(e.to_string()))?
                    {
                        by_series.entry(labels).or_insert(ex);
                    }
                }
                Ok(by_series)
            })
            .await?;
            let mut out = String::from("[");
            for (i, (labels, ex)) in found.iter().filter(|(_, ex)| !ex.is_empty()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"seriesLabels\":");
                write_labels(&mut out, labels);
                out.push_str(",\"exemplars\":[");
                for (j, e) in ex.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push_str("{\"labels\":");
                    write_labels(&mut out, &e.labels);
                    out.push_str(",\"value\":\"");
                    out.push_str(&format_value(e.value));
                    out.push_str("\",\"timestamp\":");
                    out.push_str(&format_timestamp(e.t_ms));
                    out.push('}');
                }
                out.push_str("]}");
            }
            out.push(']');
            Ok(respond(success(&out, &[])))
        }
        .await,
    )
}

async fn format_query(RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    result((|| {
        let p = params(q, &headers, &body)?;
        let formatted = promql::format_query(p.get("query").unwrap_or("")).map_err(ApiError::from)?;
        Ok(respond(success(&json_string(&formatted), &[])))
    })())
}

fn matcher_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .into_iter()
        .map(|m| promql::parse_selector(m).map_err(|e| invalid_param("match[]", e.to_string())))
        .collect()
}

fn range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((time_param(p, "start", MIN_TIME_MS)?, time_param(p, "end", MAX_TIME_MS)?))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

async fn series(
    State(st): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let p = params(q, &headers, &body)?;
            let sets = matcher_sets(&p)?;
            if sets.is_empty() {
                return Err(ApiError::BadData("no match[] parameter provided".into()));
            }
            let (start, end) = range(&p)?;
            let store = st.store.clone();
            let found = blocking(move || {
                let mut all: BTreeSet<Labels> = BTreeSet::new();
                for set in &sets {
                    all.extend(store.series(set, start, end).map_err(|e| ApiError::Internal(e.to_string()))?);
                }
                Ok(all)
            })
            .await?;
            let mut out = String::from("[");
            for (i, l) in found.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_labels(&mut out, l);
            }
            out.push(']');
            Ok(respond(success(&out, &[])))
        }
        .await,
    )
}

async fn labels(
    State(st): State<ApiState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let p = params(q, &headers, &body)?;
            let sets = matcher_sets(&p)?;
            let (start, end) = range(&p)?;
            let store = st.store.clone();
            let names = blocking(move || {
                let mut all = BTreeSet::new();
                if sets.is_empty() {
                    all.extend(
                        store.label_names(&[], start, end).map_err(|e| ApiError::Internal(e.to_string()))?,
                    );
                }
                for set in &sets {
                    all.extend(
                        store.label_names(set, start, end).map_err(|e| ApiError::Internal(e.to_string()))?,
                    );
                }
                Ok(all)
            })
            .await?;
            Ok(ok_json(&serde_json::json!(names)))
        }
        .await,
    )
}

async fn label_values(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    result(
        async {
            let p = params(q, &headers, &body)?;
            let name = unescape_label_name(&name);
            if !crate::model::labels::is_valid_label_name(&name) {
                return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
            }
            let sets = matcher_sets(&p)?;
            let (start, end) = range(&p)?;
            let store = st.store.clone();
            let values = blocking(move || {
                let mut all = BTreeSet::new();
                if sets.is_empty() {
                    all.extend(
                        store
                            .label_values(&name, &[], start, end)
                            .map_err(|e| ApiError::Internal(e.to_string()))?,
                    );
                }
                for set in &sets {
                    all.extend(
                        store
                            .label_values(&name, set, start, end)
                            .map_err(|e| ApiError::Internal(e.to_string()))?,
                    );
                }
                Ok(all)
            })
            .await?;
            Ok(ok_json(&serde_json::json!(values)))
        }
        .await,
    )
}

async fn metadata(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    result((|| {
        let p = Params::new(q.as_deref(), None)?;
        let limit = match p.get("limit") {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n as usize),
                Ok(_) => None,
                Err(_) => return Err(ApiError::BadData("limit must be a number".into())),
            },
        };
        let data = match &st.info.metadata {
            Some(cb) => cb(p.get("metric"), limit),
            None => serde_json::json!({}),
        };
        Ok(ok_json(&data))
    })())
}

async fn targets(State(st): State<ApiState>, RawQuery(q): RawQuery) -> Response {
    result((|| {
        let p = Params::new(q.as_deref(), None)?;
        let data = match &st.info.targets {
            Some(cb) => cb(p.get("state").unwrap_or("any")),
            None => serde_json::json!({"activeTargets": [], "droppedTargets": []}),
        };
        Ok(ok_json(&data))
    })())
}

async fn status_config(State(st): State<ApiState>) -> Response {
    ok_json(&serde_json::json!({"yaml": st.info.config_yaml}))
}

async fn status_runtimeinfo(State(st): State<ApiState>) -> Response {
    let mut info = st.info.runtime.as_ref().map(|cb| cb()).unwrap_or_else(RuntimeInfo::default);
    // The process's configuration state, not a default: `false` here would tell Prometheus's
    // UI and its users that a reload failed.
    let (ok, loaded_at) = crate::self_metrics::config_reload_state();
    info.reload_config_success = ok;
    if loaded_at > 0.0 {
        let nanos = (loaded_at * 1e9) as i64;
        info.last_config_time = chrono::DateTime::from_timestamp_nanos(nanos)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    ok_json(&serde_json::to_value(info).unwrap_or_default())
}

async fn status_buildinfo(State(st): State<ApiState>) -> Response {
    ok_json(&serde_json::to_value(&st.info.build).unwrap_or_default())
}

async fn status_flags(State(st): State<ApiState>) -> Response {
    ok_json(&serde_json::to_value(&st.info.flags).unwrap_or_default())
}

async fn status_tsdb(State(st): State<ApiState>) -> Response {
    if let Some(cb) = &st.info.tsdb_status {
        return ok_json(&cb());
    }
    let store = st.store.clone();
    result(
        blocking(move || {
            let all = Matcher::new(MatchOp::Regex, "__name__", ".+")
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let series = store
                .series(&[all], MIN_TIME_MS, MAX_TIME_MS)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(ok_json(&tsdb_stats(&series)))
        })
        .await,
    )
}

/// Cardinality statistics shaped like Prometheus's `/status/tsdb` (top 10 of each list).
fn tsdb_stats(series: &[Labels]) -> serde_json::Value {
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    let mut values_by_label: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut bytes_by_label: HashMap<&str, u64> = HashMap::new();
    let mut by_pair: HashMap<String, u64> = HashMap::new();
    for s in series {
        for (n, v) in s.iter() {
            if n == "__name__" {
                *by_name.entry(v).or_default() += 1;
            }
            values_by_label.entry(n).or_default().insert(v);
            by_pair.entry(format!("{n}={v}")).and_modify(|c| *c += 1).or_insert(1);
        }
    }
    for (n, vals) in &values_by_label {
        bytes_by_label.insert(n, vals.iter().map(|v| v.len() as u64).sum());
    }
    fn top<K: AsRef<str>>(m: impl IntoIterator<Item = (K, u64)>) -> serde_json::Value {
        let mut v: Vec<(String, u64)> = m.into_iter().map(|(k, c)| (k.as_ref().to_string(), c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(10);
        serde_json::Value::Array(
            v.into_iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect(),
        )
    }
    let pairs: usize = values_by_label.values().map(BTreeSet::len).sum();
    serde_json::json!({
        "headStats": {
            "numSeries": series.len(),
            "numLabelPairs": pairs,
            "chunkCount": 0,
            "minTime": 0,
            "maxTime": 0,
        },
        "seriesCountByMetricName": top(by_name),
        "labelValueCountByLabelName": top(values_by_label.iter().map(|(k, v)| (*k, v.len() as u64))),
        "memoryInBytesByLabelName": top(bytes_by_label),
        "seriesCountByLabelValuePair": top(by_pair),
    })
}

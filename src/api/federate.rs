//! `/federate` over a store, as Prometheus serves it: the latest sample of every matching
//! series within the lookback, with the external labels, streamed in pieces. The replica and
//! the federation both serve it, so it lives in the API engine rather than in either role.

use super::error::text_error;
use super::selector::parse_match;
use crate::exposition::{FederatedSample, FederationWriter};

/// Size of the pieces a `/federate` answer is sent in.
const FEDERATE_CHUNK_BYTES: usize = 64 * 1024;
use crate::model::is_stale_nan;
use crate::model::labels::Labels;
use crate::store::Store;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashSet;
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

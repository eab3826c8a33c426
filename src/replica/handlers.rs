//! HTTP handlers owned by the replica: `/api/v1/write` and `/metrics` (`/federate`, targets and
//! metadata come from `api::serving`, shared with the federation).

use super::ReplicaState;
use crate::api::serving::text_error;
use crate::exposition;
use crate::model::labels::Labels;
use crate::remote_write;
use crate::store::{Exemplar, StoreError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

type Shared = Arc<ReplicaState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/write", post(remote_write_receive))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Prometheus's remote-write receiver: 204 on success, 400 for a bad payload or a sample the
/// store refuses (so the sender does not retry it), 500 otherwise. One bad sample rolls the
/// whole request back, as Prometheus's handler does.
async fn remote_write_receive(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (enabled, limits) = state
        .settings
        .read()
        .map(|s| (s.remote_write_receiver, s.remote_write_limits))
        .unwrap_or((false, remote_write::Limits::default()));
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
    let request = match remote_write::decode(&body, &limits) {
        Ok(r) => r,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    drop(body);
    for ts in &request.timeseries {
        if let Err(message) = check_labels(&ts.labels) {
            return text_error(StatusCode::BAD_REQUEST, message);
        }
    }
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

/// Refuses what would break `/federate` and the store's one-value-per-name labels: a duplicate
/// name (Prometheus's head refuses it with this text), an invalid label name, or an invalid
/// metric name, which `/federate` would write out verbatim into unparseable text.
fn check_labels(labels: &[remote_write::proto::Label]) -> Result<(), String> {
    let mut names: Vec<&str> = Vec::with_capacity(labels.len());
    for label in labels {
        if label.name == crate::model::labels::METRIC_NAME {
            if !exposition::is_valid_metric_name(&label.value) {
                return Err(format!("invalid metric name {:?}", label.value));
            }
        } else if !exposition::is_valid_label_name(&label.name) {
            return Err(format!("invalid label name {:?}", label.name));
        }
        names.push(&label.name);
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("label name {:?} is not unique: invalid sample", w[0]));
    }
    Ok(())
}

async fn metrics(State(state): State<Shared>) -> Response {
    let store = state.store.clone();
    let mut families = tokio::task::spawn_blocking(move || store.metric_families()).await.unwrap_or_default();
    families.extend(crate::self_metrics::process_metrics());
    families.push(crate::self_metrics::build_info());
    families.extend(crate::self_metrics::config_metrics());
    let families = exposition::merge_and_sort(families);
    let mut body = String::new();
    exposition::write_families(&mut body, &families);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

//! Prometheus's remote-write receiver (`/api/v1/write`) into a store: the wire checks, the
//! label checks Prometheus's head makes, and one appender per request, all or nothing.

use crate::api::error::text_error;
use crate::config::RemoteWriteLimits;
use crate::exposition;
use crate::model::labels::Labels;
use crate::remote_write;
use crate::store::{Exemplar, Store, StoreError};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Takes one remote-write request: 204 on success, 400 for a bad payload or a sample the store
/// refuses (so the sender does not retry it), 500 otherwise. One bad sample rolls the whole
/// request back, as Prometheus's handler does.
pub async fn receive(store: Store, limits: &RemoteWriteLimits, headers: &HeaderMap, body: Bytes) -> Response {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return text_error(
            StatusCode::BAD_REQUEST,
            format!("unsupported Content-Encoding {enc:?}; only snappy"),
        );
    }
    let request = match remote_write::decode(&body, limits) {
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

//! HTTP handlers owned by the replica: `/api/v1/write` and `/metrics` (`/federate`, targets and
//! metadata come from `api::federate` and `api::scrape_status`, shared with the federation).

use super::ReplicaState;
use crate::api::error::text_error;
use crate::remote_write;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;

type Shared = Arc<ReplicaState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/v1/write", post(remote_write_receive))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `/api/v1/write` when `remote_write_receiver` is on, with the limits of the config in force.
async fn remote_write_receive(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (enabled, limits) = state
        .settings
        .read()
        .map(|s| (s.remote_write_receiver, s.remote_write_limits))
        .unwrap_or((false, crate::config::RemoteWriteLimits::default()));
    if !enabled {
        return text_error(
            StatusCode::NOT_FOUND,
            "remote write receiver needs to be enabled with remote_write_receiver = true in [replica]".into(),
        );
    }
    remote_write::receive::receive(state.store.clone(), &limits, &headers, body).await
}

async fn metrics(State(state): State<Shared>) -> Response {
    let store = state.store.clone();
    let mut families = tokio::task::spawn_blocking(move || store.metric_families()).await.unwrap_or_default();
    families.extend(state.rules.metric_families());
    crate::self_metrics::text_page(families)
}

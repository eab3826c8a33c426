//! Prometheus HTTP API v1 over the PromQL engine and a [`Queryable`] — an engine the replica
//! and federation roles mount, not a role itself.
//!
//! [`router`] builds the axum `Router` for `/api/v1/…`; the role supplies the engine, the
//! store, and an [`ApiInfo`] with what only it knows (build info, flags, config, targets).

pub mod error;
pub mod federate;
pub mod json;
mod params;
pub mod rules;
pub mod scrape_status;
pub mod selector;
mod v1;

use crate::promql::{Engine, Queryable};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `/api/v1/status/buildinfo`. There is deliberately no `features` field: Grafana takes a
/// server that lists features for Mimir.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

/// `/api/v1/status/runtimeinfo`, field names as Prometheus spells them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RuntimeInfo {
    #[serde(rename = "startTime")]
    pub start_time: String,
    #[serde(rename = "CWD")]
    pub cwd: String,
    #[serde(rename = "reloadConfigSuccess")]
    pub reload_config_success: bool,
    #[serde(rename = "lastConfigTime")]
    pub last_config_time: String,
    #[serde(rename = "corruptionCount")]
    pub corruption_count: i64,
    #[serde(rename = "goroutineCount")]
    pub goroutine_count: i64,
    #[serde(rename = "GOMAXPROCS")]
    pub gomaxprocs: i64,
    #[serde(rename = "GOGC")]
    pub gogc: String,
    #[serde(rename = "GODEBUG")]
    pub godebug: String,
    #[serde(rename = "storageRetention")]
    pub storage_retention: String,
}

pub type JsonCallback = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;
/// Metric metadata: `(metric filter, limit)` → the `data` map of `/api/v1/metadata`.
pub type MetadataCallback = Arc<dyn Fn(Option<&str>, Option<usize>) -> serde_json::Value + Send + Sync>;
/// Targets: the `state` parameter → the `data` object of `/api/v1/targets`.
pub type TargetsCallback = Arc<dyn Fn(&str) -> serde_json::Value + Send + Sync>;

/// What the mounting role knows and the API reports. Every callback is optional; without one
/// the endpoint answers Prometheus's empty shape.
#[derive(Clone, Default)]
pub struct ApiInfo {
    pub build: BuildInfo,
    pub runtime: Option<Arc<dyn Fn() -> RuntimeInfo + Send + Sync>>,
    pub flags: BTreeMap<String, String>,
    /// The running configuration, as `/api/v1/status/config` serves it under `yaml`.
    pub config_yaml: String,
    pub targets: Option<TargetsCallback>,
    pub metadata: Option<MetadataCallback>,
    /// Overrides the TSDB stats computed from the store's index.
    pub tsdb_status: Option<JsonCallback>,
    /// The role's rule groups and notifier, for `/api/v1/rules`, `/api/v1/alerts` and
    /// `/api/v1/alertmanagers` (none: empty lists).
    pub rules: Option<Arc<crate::rules::manager::RuleManager>>,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Arc<Engine>,
    pub store: Arc<dyn Queryable>,
    pub info: Arc<ApiInfo>,
}

/// The `/api/v1/…` routes. GET and POST (form bodies) where Prometheus accepts both, GET only
/// elsewhere (POST answers 405).
pub fn router(engine: Arc<Engine>, store: Arc<dyn Queryable>, info: ApiInfo) -> Router {
    v1::routes(ApiState { engine, store, info: Arc::new(info) })
}

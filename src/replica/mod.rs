//! The replica role: one Prometheus replica. It scrapes its targets (`scrape`), stores
//! samples (`store`), and serves `/federate`, `/api/v1/targets`, `/api/v1/write` and, through
//! the shared API engine, PromQL to Grafana and the federation node.

mod handlers;

use crate::api::federate::{self, FederateSettings, FederateState};
use crate::api::scrape_status;
use crate::api::{self, ApiInfo};
use crate::config::ReplicaConfig;
use crate::http;
use crate::lifecycle::{self, Ctx, Started};
use crate::promql::store_source::StoreSource;
use crate::promql::{Engine, EngineOptions};
use crate::rules::manager::RuleManager;
use crate::scrape::manager::ScrapeManager;
use crate::store::Store;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Store(#[from] crate::store::RoleStoreError),
    #[error(transparent)]
    Listener(#[from] http::HttpError),
    #[error("rule files refused:\n{}", .0.join("\n"))]
    Rules(Vec<String>),
}

/// What the replica's handlers share.
pub struct ReplicaState {
    pub store: Store,
    pub scrape: ScrapeManager,
    pub rules: Arc<RuleManager>,
    pub settings: RwLock<ReplicaConfig>,
}

impl ReplicaState {
    pub fn external_labels(&self) -> Vec<(String, String)> {
        self.settings.read().map(|s| s.scrape.external_labels.clone()).unwrap_or_default()
    }

    pub fn lookback(&self) -> Duration {
        self.settings.read().map(|s| s.lookback_delta).unwrap_or(Duration::from_secs(300))
    }
}

pub struct Replica {
    pub state: Arc<ReplicaState>,
    federate: Arc<FederateState>,
}

/// What the Prometheus API reports about this role: build, flags, config, targets, metadata.
fn api_info(state: &Arc<ReplicaState>, config: &ReplicaConfig, role: &str) -> ApiInfo {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert(
        "query.lookback-delta".to_string(),
        crate::model::units::format_duration(config.lookback_delta),
    );
    flags.insert(
        "storage.tsdb.retention.time".to_string(),
        crate::model::units::format_duration(config.retention_time),
    );
    flags.insert("web.enable-remote-write-receiver".to_string(), config.remote_write_receiver.to_string());
    flags.insert("obsd.role".to_string(), role.to_string());
    let mut info = scrape_status::scrape_api_info(&state.scrape, flags, config.scrape.status_yaml.clone());
    info.rules = Some(state.rules.clone());
    info
}

fn federate_settings(config: &ReplicaConfig) -> FederateSettings {
    FederateSettings {
        external_labels: config.scrape.external_labels.clone(),
        lookback: config.lookback_delta,
    }
}

impl Replica {
    /// Opens the store (replaying its WAL), binds the listener and starts scraping.
    pub async fn start(config: &ReplicaConfig, ctx: &Ctx) -> Result<Started<Replica>, ReplicaError> {
        let store = crate::store::open_role_store(
            &ctx.global.data_dir,
            "replica",
            config.retention_time,
            config.retention_size,
        )
        .await?;
        let bound = http::bind("replica", &config.listen).await?;
        let engine = Arc::new(Engine::new(EngineOptions {
            lookback_delta: config.lookback_delta,
            default_subquery_step: config.scrape.evaluation_interval,
            ..EngineOptions::default()
        }));
        let rules = crate::rules::start_for_role(
            &store,
            None,
            &engine,
            &config.scrape,
            bound.local_addr,
            ctx.shutdown.clone(),
        )
        .await
        .map_err(ReplicaError::Rules)?;
        let scrape = ScrapeManager::new(Arc::new(crate::scrape::store_sink::StoreSink(store.clone())));
        scrape.apply(config.scrape.clone());
        let state = Arc::new(ReplicaState { store, scrape, rules, settings: RwLock::new(config.clone()) });
        let api = api::router(
            engine,
            Arc::new(StoreSource(state.store.clone())),
            api_info(&state, config, "replica"),
        );
        let federate = FederateState::new(state.store.clone(), federate_settings(config));
        let router = handlers::router(state.clone())
            .merge(federate::federate_router(
                federate.clone(),
                crate::webui::Features { metrics: true, ..Default::default() },
            ))
            .merge(api)
            .merge(lifecycle::store_health_routes(state.store.clone()));
        tokio::spawn(state.scrape.clone().watch_files(ctx.shutdown.clone()));
        Ok(Started { role: Replica { state, federate }, listeners: vec![(bound, router)] })
    }

    pub fn reload(&self, config: &ReplicaConfig) {
        self.state.scrape.apply(config.scrape.clone());
        crate::rules::reload_for_role(&self.state.rules, &config.scrape);
        self.federate.update(federate_settings(config));
        if let Ok(mut s) = self.state.settings.write() {
            *s = config.clone();
        }
    }

    /// Stops rule evaluation and scraping (writing staleness markers), then closes the store
    /// so its WAL is synced.
    pub async fn stop(self, _ctx: &Ctx) {
        self.state.rules.stop_all().await;
        self.state.scrape.stop_all().await;
        let store = self.state.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.sync()).await;
    }
}

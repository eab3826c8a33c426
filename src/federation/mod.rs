//! The federation role: the central Prometheus of the seed. It scrapes `/federate` of the
//! replicas (through a balancer, or every replica directly in fan-out mode) with the
//! replica's scrape engine, merges HA replicas into one series per identity (`dedup`) before
//! the store, serves the same API and `/federate` as a replica, and optionally remote-writes
//! what it stored to a clustered engine (through `remote_write::queue`).

pub mod dedup;

use crate::api::federate::{self, FederateSettings, FederateState};
use crate::api::scrape_status;
use crate::config::FederationConfig;
use crate::exposition::MetricFamily;
use crate::http;
use crate::lifecycle::{self, Ctx, Started};
use crate::model::labels::Labels;
use crate::promql::store_source::StoreSource;
use crate::promql::{Engine, EngineOptions};
use crate::remote_write::queue::{self as remote_write_out, RemoteWriteQueue};
use crate::scrape::manager::ScrapeManager;
use crate::scrape::sink::{AppendOutcome, SampleSink, ScrapedSample};
use crate::scrape::store_sink::{Accepted, append_scrape};
use crate::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use dedup::Dedup;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error(transparent)]
    Store(#[from] crate::store::RoleStoreError),
    #[error(transparent)]
    RemoteWrite(#[from] remote_write_out::RemoteWriteError),
    #[error(transparent)]
    Listener(#[from] http::HttpError),
    #[error("rule files refused:\n{}", .0.join("\n"))]
    Rules(Vec<String>),
}

/// The scrape loops' sink: dedup, then the store, then the remote-write queues. One lock
/// covers dedup and append so two replicas' scrapes landing at once cannot reorder a series
/// between the decision and the store.
pub struct DedupSink {
    dedup: Option<Mutex<Dedup>>,
    store: Store,
    remote: Vec<Arc<RemoteWriteQueue>>,
    append_lock: Mutex<()>,
}

impl DedupSink {
    fn dedup_stats(&self) -> Option<(dedup::DedupStats, usize, std::collections::BTreeMap<String, usize>)> {
        let d = self.dedup.as_ref()?.lock().ok()?;
        Some((d.stats.clone(), d.tracked_series(), d.series_by_leader()))
    }
}

impl SampleSink for DedupSink {
    fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, crate::store::StoreError> {
        let _guard = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let samples = match &self.dedup {
            Some(d) => d.lock().unwrap_or_else(|p| p.into_inner()).offer_batch(samples),
            None => samples,
        };
        let mut forward: Vec<(Labels, i64, f64)> = Vec::new();
        let forwarding = !self.remote.is_empty();
        let mut forward_accepted = |labels: &Labels, t: i64, v: f64| forward.push((labels.clone(), t, v));
        let callback: Option<&mut Accepted> = if forwarding { Some(&mut forward_accepted) } else { None };
        let outcome = append_scrape(&self.store, samples, callback)?;
        // Only what the store accepted goes out, so the receiver's answer equals ours.
        for queue in &self.remote {
            if let Err(e) = queue.append(&forward) {
                tracing::error!(remote = %queue.name(), error = %e, "remote write queue append failed; samples lost for this remote");
            }
        }
        Ok(outcome)
    }
}

pub struct Federation {
    scrape: ScrapeManager,
    store: Store,
    federate: Arc<FederateState>,
    sink: Arc<DedupSink>,
    rules: Arc<crate::rules::manager::RuleManager>,
}

impl Federation {
    /// The federation's store (for the health routes).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn federate_settings(config: &FederationConfig) -> FederateSettings {
    FederateSettings {
        external_labels: config.scrape.external_labels.clone(),
        lookback: config.lookback_delta,
    }
}

fn flags(config: &FederationConfig) -> std::collections::BTreeMap<String, String> {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert(
        "query.lookback-delta".to_string(),
        crate::model::units::format_duration(config.lookback_delta),
    );
    flags.insert(
        "storage.tsdb.retention.time".to_string(),
        crate::model::units::format_duration(config.retention_time),
    );
    flags.insert("obsd.role".to_string(), "federation".to_string());
    flags.insert("obsd.dedup.replica-label".to_string(), config.dedup.replica_label.clone());
    flags.insert("obsd.dedup.enabled".to_string(), config.dedup.enabled.to_string());
    flags
}

impl Federation {
    /// Opens the store and the remote-write queues, binds the listener, starts scraping.
    pub async fn start(config: &FederationConfig, ctx: &Ctx) -> Result<Started<Federation>, FederationError> {
        let (global, shutdown) = (&ctx.global, ctx.shutdown.clone());
        let store = crate::store::open_role_store(
            &global.data_dir,
            "federation",
            config.retention_time,
            config.retention_size,
        )
        .await?;
        let mut remote = Vec::new();
        for rw in &config.remote_write {
            let queue_dir = global.data_dir.join("federation").join("rw-queue").join(&rw.name);
            let queue = RemoteWriteQueue::open(rw.clone(), &queue_dir)?;
            queue.spawn_senders(shutdown.clone());
            remote.push(queue);
        }
        let bound = http::bind("federation", &config.listen).await?;
        let dedup = config.dedup.enabled.then(|| {
            Mutex::new(Dedup::new(
                &config.dedup.replica_label,
                config.dedup.failover_timeout,
                config.dedup.forget_after,
            ))
        });
        let sink = Arc::new(DedupSink { dedup, store: store.clone(), remote, append_lock: Mutex::new(()) });
        let scrape = ScrapeManager::new(sink.clone());
        scrape.apply(config.scrape.clone());
        let engine = Arc::new(Engine::new(EngineOptions {
            lookback_delta: config.lookback_delta,
            default_subquery_step: config.scrape.evaluation_interval,
            ..EngineOptions::default()
        }));
        // Rule results skip dedup (they are not replica series) and go to the store and, as
        // Prometheus remote-writes its rule results, to every remote-write queue.
        let forward: Option<crate::rules::group::RuleForward> = (!sink.remote.is_empty()).then(|| {
            let remote = sink.remote.clone();
            Arc::new(move |samples: &[(Labels, i64, f64)]| {
                for queue in &remote {
                    if let Err(e) = queue.append(samples) {
                        tracing::error!(remote = %queue.name(), error = %e, "remote write queue append failed; rule results lost for this remote");
                    }
                }
            }) as crate::rules::group::RuleForward
        });
        let rules = crate::rules::start_for_role(
            &store,
            forward,
            &engine,
            &config.scrape,
            bound.local_addr,
            ctx.shutdown.clone(),
        )
        .await
        .map_err(FederationError::Rules)?;
        let mut info =
            scrape_status::scrape_api_info(&scrape, flags(config), config.scrape.status_yaml.clone());
        info.rules = Some(rules.clone());
        let api = crate::api::router(engine, Arc::new(StoreSource(store.clone())), info);
        let federate = FederateState::new(store.clone(), federate_settings(config));
        let rules_for_metrics = rules.clone();
        let federation = Federation { scrape, store, federate: federate.clone(), sink: sink.clone(), rules };
        let router = Router::new()
            .route(
                "/metrics",
                get(move |sink: State<Arc<DedupSink>>| metrics(sink, rules_for_metrics.clone())),
            )
            .route("/api/v1/status/dedup", get(dedup_leaders))
            // `GET /` (the seed's `option httpchk GET /`) is answered by the shared federate router.
            .with_state(sink)
            .merge(federate::federate_router(
                federate,
                crate::webui::Features { metrics: true, federation: true, ..Default::default() },
            ))
            .merge(api)
            .merge(lifecycle::store_health_routes(federation.store.clone()));
        tokio::spawn(federation.scrape.clone().watch_files(shutdown));
        tracing::info!(
            jobs = config.scrape.jobs.len(),
            dedup = config.dedup.enabled,
            replica_label = %config.dedup.replica_label,
            remote_writes = config.remote_write.len(),
            "federation started"
        );
        Ok(Started { role: federation, listeners: vec![(bound, router)] })
    }

    /// Scrape jobs and `/federate` settings follow a reload; dedup and remote-write settings
    /// need a restart (their state lives on disk and in the leaders map).
    pub fn reload(&self, config: &FederationConfig) {
        self.scrape.apply(config.scrape.clone());
        self.federate.update(federate_settings(config));
        crate::rules::reload_for_role(&self.rules, &config.scrape);
    }

    /// Stops scraping, then flushes the store and the queues' open segments.
    pub async fn stop(self, _ctx: &Ctx) {
        self.rules.stop_all().await;
        self.scrape.stop_all().await;
        for q in &self.sink.remote {
            q.sync();
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.sync()).await;
    }
}

/// `GET /api/v1/status/dedup?match=<substring>&limit=<n>`: which replica each series follows,
/// for the web UI's replica view (an obsd extension in the Prometheus API's envelope).
async fn dedup_leaders(
    State(sink): State<Arc<DedupSink>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let filter = q.get("match").cloned().unwrap_or_default();
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(500).min(10_000);
    let data = match sink.dedup.as_ref().and_then(|d| d.lock().ok()) {
        Some(d) => {
            let (total, rows) = d.leaders(&filter, limit);
            let series: Vec<serde_json::Value> = rows
                .into_iter()
                .map(|(labels, replica, t)| serde_json::json!({ "labels": labels, "replica": replica, "lastSampleMs": t }))
                .collect();
            serde_json::json!({ "enabled": true, "total": total, "series": series })
        }
        None => serde_json::json!({ "enabled": false, "total": 0, "series": [] }),
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "status": "success", "data": data }).to_string(),
    )
}

fn counter(name: &str, help: &str, value: f64) -> MetricFamily {
    MetricFamily::counter(name, help).with_value(value)
}

async fn metrics(
    State(sink): State<Arc<DedupSink>>,
    rules: Arc<crate::rules::manager::RuleManager>,
) -> impl IntoResponse {
    let store = sink.store.clone();
    let mut families = tokio::task::spawn_blocking(move || store.metric_families()).await.unwrap_or_default();
    families.extend(rules.metric_families());
    if let Some((stats, tracked, by_leader)) = sink.dedup_stats() {
        let mut led = MetricFamily::gauge(
            "obsd_federation_dedup_series_by_replica",
            "Series whose samples come from this replica (the one each series follows).",
        );
        for (replica, n) in &by_leader {
            led.add(&[("replica", replica.as_str())], *n as f64);
        }
        families.push(led);
        families.push(counter(
            "obsd_federation_dedup_samples_accepted_total",
            "Samples carrying the replica label that HA dedup kept.",
            stats.accepted as f64,
        ));
        families.push(counter(
            "obsd_federation_dedup_samples_duplicate_total",
            "Samples dropped because the leading replica had already sent them.",
            stats.dropped_duplicate as f64,
        ));
        families.push(counter(
            "obsd_federation_dedup_samples_other_replica_total",
            "Samples dropped because another replica leads their series.",
            stats.dropped_other_replica as f64,
        ));
        families.push(counter(
            "obsd_federation_dedup_failovers_total",
            "Times a series switched to another replica.",
            stats.failovers as f64,
        ));
        families.push(
            MetricFamily::gauge("obsd_federation_dedup_series", "Series whose leading replica is tracked.")
                .with_value(tracked as f64),
        );
    }
    for q in &sink.remote {
        families.extend(q.metric_families());
    }
    crate::self_metrics::text_page(families)
}

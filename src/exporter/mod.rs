//! The exporter role: node_exporter's `/metrics` on :9100.
//!
//! Each scrape runs every enabled collector on the blocking pool at once, times it, and
//! reports `node_scrape_collector_success` / `_duration_seconds` per collector, so a broken
//! collector costs its own families and nothing else.

pub mod collectors;

use crate::config::ExporterConfig;
use crate::exposition::{self, MetricFamily};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Shared by the HTTP handlers; the config is swapped on SIGHUP.
#[derive(Clone)]
pub struct Exporter {
    config: Arc<RwLock<Arc<ExporterConfig>>>,
}

impl Exporter {
    pub fn new(config: ExporterConfig) -> Self {
        Exporter { config: Arc::new(RwLock::new(Arc::new(config))) }
    }

    pub fn reload(&self, config: ExporterConfig) {
        if let Ok(mut current) = self.config.write() {
            *current = Arc::new(config);
        }
    }

    fn current(&self) -> Arc<ExporterConfig> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs every enabled collector and returns the node families, sorted and merged.
    pub async fn gather(&self) -> Vec<MetricFamily> {
        let config = self.current();
        let mut tasks = Vec::new();
        for (name, enabled) in &config.collectors {
            let Some(registered) = collectors::find(name).filter(|_| *enabled) else { continue };
            let config = config.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let result = (registered.collect)(&config);
                (registered.name, started.elapsed(), result)
            }));
        }
        let mut success = MetricFamily::gauge(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
        );
        let mut duration = MetricFamily::gauge(
            "node_scrape_collector_duration_seconds",
            "node_exporter: Duration of a collector scrape.",
        );
        let mut families = Vec::new();
        for task in tasks {
            let Ok((name, elapsed, result)) = task.await else { continue };
            duration.add(&[("collector", name)], elapsed.as_secs_f64());
            match result {
                Ok(f) => {
                    success.add(&[("collector", name)], 1.0);
                    families.extend(f);
                }
                Err(collectors::CollectError::NoData(why)) => {
                    tracing::debug!(collector = name, reason = %why, "collector returned no data");
                    success.add(&[("collector", name)], 0.0);
                }
                Err(err) => {
                    tracing::warn!(collector = name, error = %err, "collector failed");
                    success.add(&[("collector", name)], 0.0);
                }
            }
        }
        families.push(success);
        families.push(duration);
        families.extend(crate::self_metrics::process_metrics());
        families.push(crate::self_metrics::build_info());
        exposition::merge_and_sort(families)
    }
}

pub fn router(exporter: Exporter) -> Router {
    Router::new().route("/metrics", get(metrics)).route("/", get(landing)).with_state(exporter)
}

async fn metrics(State(exporter): State<Exporter>) -> impl IntoResponse {
    let families = exporter.gather().await;
    let mut body = String::with_capacity(64 * 1024);
    exposition::write_families(&mut body, &families);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn landing() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<html><head><title>obsd exporter</title></head><body><h1>obsd exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
    )
}

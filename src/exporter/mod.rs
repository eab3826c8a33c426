//! The exporter role: node_exporter's `/metrics` on :9100.
//!
//! Each scrape runs every enabled collector on the blocking pool at once, times it, and
//! reports `node_scrape_collector_success` / `_duration_seconds` per collector, so a broken
//! collector costs its own families and nothing else.

pub mod node;
pub mod plugins;

use crate::config::ExporterConfig;
use crate::exposition::{self, MetricFamily};
use crate::http;
use crate::lifecycle::{self, Ctx, Started};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use plugins::Plugins;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Shared by the HTTP handlers; the config and the plugins are swapped on SIGHUP.
#[derive(Clone)]
pub struct Exporter {
    config: Arc<RwLock<Arc<ExporterConfig>>>,
    /// `/metrics` requests being answered, for `max_requests`.
    in_flight: Arc<AtomicUsize>,
    /// None until a config names a plugin, so exporters without plugins start no engine.
    plugins: Arc<RwLock<Option<Arc<Plugins>>>>,
}

/// Families obsd itself adds to every exporter scrape, which no plugin may export.
pub fn builtin_family_names() -> BTreeSet<String> {
    static NAMES: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| crate::self_metrics::common_families().into_iter().map(|f| f.name).collect()).clone()
}

impl Exporter {
    pub fn new(config: ExporterConfig) -> Self {
        let exporter = Exporter {
            config: Arc::new(RwLock::new(Arc::new(config))),
            in_flight: Arc::default(),
            plugins: Arc::new(RwLock::new(None)),
        };
        exporter.load_plugins();
        exporter
    }

    pub fn reload(&self, config: &ExporterConfig) {
        if let Ok(mut current) = self.config.write() {
            *current = Arc::new(config.clone());
        }
        self.load_plugins();
    }

    /// Compiles what changed (a file whose bytes are the same keeps its module).
    fn load_plugins(&self) {
        let config = self.current();
        let previous = self.plugins.read().ok().and_then(|p| p.clone());
        let next = match previous {
            Some(p) => Some(Arc::new(p.reload(&config.plugins.plugins))),
            None if config.plugins.plugins.is_empty() => None,
            None => match Plugins::new(&config.plugins.plugins) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the plugin engine; plugins are off");
                    None
                }
            },
        };
        if let Ok(mut current) = self.plugins.write() {
            *current = next;
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
        // Plugins run beside the collectors; their output is checked against the collectors'
        // family names once both are done.
        let plugins = self.plugins.read().ok().and_then(|p| p.clone()).filter(|p| !p.is_empty());
        let plugin_task = plugins.clone().map(|p| {
            tokio::spawn(async move {
                let builtin = builtin_family_names();
                p.collect(&builtin).await
            })
        });
        let mut tasks = Vec::new();
        for (name, enabled) in &config.collectors {
            let Some(registered) = node::find(name).filter(|_| *enabled) else { continue };
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
                Err(node::CollectError::NoData(why)) => {
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
        families.extend(crate::self_metrics::common_families());
        if let (Some(plugins), Some(task)) = (plugins, plugin_task) {
            let taken: BTreeSet<String> = families.iter().map(|f| f.name.clone()).collect();
            match task.await {
                Ok(collected) => families.extend(plugins.families(collected, &taken)),
                Err(e) => tracing::error!(error = %e, "plugin collection failed"),
            }
        }
        exposition::merge_and_sort(families)
    }
}

/// Starts the exporter role: its plugins compiled, `/metrics` bound.
pub async fn start(config: &ExporterConfig, _ctx: &Ctx) -> Result<Started<Exporter>, http::HttpError> {
    let exporter = Exporter::new(config.clone());
    let router = router(exporter.clone()).merge(lifecycle::health_routes());
    let bound = http::bind("exporter", &config.listen).await?;
    Ok(Started { role: exporter, listeners: vec![(bound, router)] })
}

impl Exporter {
    /// Nothing to flush: a scrape is a request, and the listener's drain has waited for it.
    pub async fn stop(self, _ctx: &Ctx) {}
}

pub fn router(exporter: Exporter) -> Router {
    Router::new().route("/metrics", get(metrics)).route("/", get(landing)).with_state(exporter)
}

/// Gives back a slot of a counted limit however its holder ends (a client that hangs up, a
/// plugin thread that returns late): `/metrics` requests here, plugin collects in `plugins`.
pub(crate) struct InFlight(pub(crate) Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn metrics(State(exporter): State<Exporter>) -> axum::response::Response {
    // As node_exporter's --web.max-requests (promhttp's MaxRequestsInFlight): each scrape
    // runs every collector on the blocking pool, so a flood of scrapes is refused, not queued.
    let limit = exporter.current().max_requests;
    let running = exporter.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    let _slot = InFlight(exporter.in_flight.clone());
    if limit > 0 && running > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Limit of concurrent requests reached ({limit}), try again later.\n"),
        )
            .into_response();
    }
    let families = exporter.gather().await;
    let mut body = String::with_capacity(64 * 1024);
    exposition::write_families(&mut body, &families);
    ([(header::CONTENT_TYPE, crate::self_metrics::TEXT_FORMAT)], body).into_response()
}

async fn landing() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<html><head><title>obsd exporter</title></head><body><h1>obsd exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
    )
}

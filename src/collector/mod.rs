//! The collector role: Jaeger all-in-one's job. Spans arrive over OTLP/gRPC (`otlp_grpc`),
//! OTLP/HTTP (`otlp_http`) and Jaeger thrift (`jaeger_thrift`: UDP agent ports and HTTP), are
//! mapped to the store's Jaeger-shaped `Span` (`otlp`), counted into RED metrics
//! (`red_metrics`), queued (`intake`) and written by one thread to the `trace_store`; the Jaeger
//! query API (`query_api`) reads them back on the query listener, which also serves `/metrics`.
//!
//! Stop order: listeners and UDP/gRPC tasks stop first, then the queue drains into the
//! store, then the store flushes, so an orderly stop loses no acknowledged span.

mod intake;
pub(crate) mod jaeger_thrift;
pub(crate) mod otlp;
mod otlp_grpc;
mod otlp_http;
pub(crate) mod otlp_limits;
mod query_api;
mod red_metrics;
pub(crate) mod thrift;

use crate::config::CollectorConfig;
use crate::exposition::{self, MetricFamily};
use crate::http;
use crate::lifecycle::{self, Ctx, Started};
use crate::trace_store::{Store, StoreError, StoreOptions};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use intake::{Counters, Intake};
use red_metrics::RedMetrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("collector: cannot create data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("collector: {0}")]
    Store(#[from] StoreError),
    #[error("collector: listener {name}: cannot bind {address}: {source}")]
    Bind { name: &'static str, address: std::net::SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("collector: cannot start the span writer thread: {0}")]
    Thread(std::io::Error),
}

/// A running collector: its HTTP listeners are returned to `app` to serve; the rest it runs.
pub struct Collector {
    store: Store,
    intake: Option<Intake>,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

struct MetricsState {
    intake: Intake,
    store: Store,
    retention_dropped: Arc<AtomicU64>,
}

impl Collector {
    /// Opens the store, binds every listener (logging each "listening" line) and starts the
    /// non-HTTP servers. The HTTP listeners come back with their routers for `app` to serve.
    pub async fn start(config: &CollectorConfig, ctx: &Ctx) -> Result<Started<Collector>, CollectorError> {
        let shutdown = ctx.shutdown.clone();
        let dir = ctx.global.data_dir.join("collector");
        std::fs::create_dir_all(&dir)
            .map_err(|source| CollectorError::DataDir { path: dir.display().to_string(), source })?;
        let options = StoreOptions {
            retention: config.retention,
            retention_size_bytes: config.retention_size_bytes,
            flush_interval: config.flush_interval,
            ..StoreOptions::default()
        };
        let store = tokio::task::block_in_place(|| Store::open(&dir, &options))?;
        let red = Arc::new(RedMetrics::new(&config.span_metrics_namespace, &config.span_metrics_buckets_ms));
        let (intake, writer_thread) = Intake::start(
            store.writer(),
            config.queue_spans,
            config.max_batch_spans,
            Arc::new(Counters::default()),
            red,
        )
        .map_err(CollectorError::Thread)?;

        let mut listeners = Vec::new();
        let retention_dropped = Arc::new(AtomicU64::new(0));
        let metrics_state = Arc::new(MetricsState {
            intake: intake.clone(),
            store: store.clone(),
            retention_dropped: retention_dropped.clone(),
        });
        let query = query_api::router(store.reader())
            .merge(Router::new().route("/metrics", get(metrics_page)).with_state(metrics_state))
            .merge(crate::webui::router(crate::webui::Features { traces: true, ..Default::default() }));
        listeners.push((http::bind("collector", &config.listen).await?, query));

        let (grpc_listener, _) = otlp_grpc::bind(config.otlp_grpc.address).await.map_err(|source| {
            CollectorError::Bind { name: "collector-otlp-grpc", address: config.otlp_grpc.address, source }
        })?;
        listeners.push((
            http::bind("collector-otlp-http", &config.otlp_http).await?,
            otlp_http::router(intake.clone(), config.otlp_http.max_body_bytes),
        ));
        listeners.push((
            http::bind("collector-jaeger-http", &config.jaeger_thrift_http).await?,
            jaeger_thrift::http_router(intake.clone(), config.jaeger_thrift_http.max_body_bytes),
        ));
        let mut udp = Vec::new();
        for (name, address, compact) in [
            ("collector-jaeger-compact", config.jaeger_compact_udp, true),
            ("collector-jaeger-binary", config.jaeger_binary_udp, false),
        ] {
            if let Some(address) = address {
                let (socket, _) = jaeger_thrift::bind_udp(name, address)
                    .await
                    .map_err(|source| CollectorError::Bind { name, address, source })?;
                udp.push((socket, compact));
            }
        }

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(otlp_grpc::serve(
            grpc_listener,
            intake.clone(),
            config.otlp_grpc.max_body_bytes,
            shutdown.clone(),
        )));
        for (socket, compact) in udp {
            tasks.push(tokio::spawn(jaeger_thrift::serve_udp(
                socket,
                compact,
                intake.clone(),
                shutdown.clone(),
            )));
        }
        tasks.push(tokio::spawn(retention_loop(store.clone(), retention_dropped, shutdown)));
        // Health answers on every collector listener, as on every role's.
        let listeners =
            listeners.into_iter().map(|(l, router)| (l, router.merge(lifecycle::health_routes()))).collect();
        let collector = Collector { store, intake: Some(intake), writer_thread: Some(writer_thread), tasks };
        Ok(Started { role: collector, listeners })
    }

    /// Call after the HTTP listeners have stopped: waits for the other servers, drains the
    /// queue into the store and flushes it.
    pub async fn stop(mut self, ctx: &Ctx) {
        let timeout = ctx.drain;
        for task in self.tasks.drain(..) {
            if tokio::time::timeout(timeout, task).await.is_err() {
                tracing::warn!("a collector task did not stop in time");
            }
        }
        self.intake.take();
        if let Some(thread) = self.writer_thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            if tokio::time::timeout(timeout, joined).await.is_err() {
                tracing::warn!("span writer did not drain its queue in time");
            }
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => tracing::info!("span store flushed"),
            Ok(Err(e)) => tracing::error!(error = %e, "span store flush failed"),
            Err(e) => tracing::error!(error = %e, "span store flush task failed"),
        }
    }
}

async fn retention_loop(store: Store, dropped: Arc<AtomicU64>, mut shutdown: watch::Receiver<bool>) {
    let interval = store.sweep_interval();
    loop {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.enforce_retention(crate::trace_store::now_us())).await {
            Ok(Ok(outcome)) => {
                dropped
                    .fetch_add((outcome.dropped_by_time + outcome.dropped_by_size) as u64, Ordering::Relaxed);
            }
            Ok(Err(e)) => tracing::error!(error = %e, "span retention failed"),
            Err(e) => tracing::error!(error = %e, "span retention task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn self_families(state: &MetricsState) -> Vec<MetricFamily> {
    let counters = &state.intake.counters;
    let mut received = MetricFamily::counter(
        "obsd_collector_spans_received_total",
        "Spans accepted into the queue, by intake protocol.",
    );
    for (p, n) in counters.snapshot_received() {
        received.add(&[("protocol", p.label())], n as f64);
    }
    let mut rejected = MetricFamily::counter(
        "obsd_collector_spans_rejected_total",
        "Spans refused or lost, by intake protocol and reason.",
    );
    for ((p, r), n) in counters.snapshot_rejected_spans() {
        rejected.add(&[("protocol", p.label()), ("reason", r.label())], n as f64);
    }
    let mut batches = MetricFamily::counter(
        "obsd_collector_batches_rejected_total",
        "Requests or datagrams refused whole, by intake protocol and reason.",
    );
    for ((p, r), n) in counters.snapshot_rejected_batches() {
        batches.add(&[("protocol", p.label()), ("reason", r.label())], n as f64);
    }
    let mut limited = [
        MetricFamily::counter(
            "obsd_collector_dropped_attributes_total",
            "Attributes dropped past the span limits (128 per span, event, link, scope and resource).",
        ),
        MetricFamily::counter(
            "obsd_collector_truncated_attribute_values_total",
            "String attribute values cut to the span limits' 4096 characters.",
        ),
        MetricFamily::counter(
            "obsd_collector_dropped_span_events_total",
            "Events dropped past 128 per span.",
        ),
        MetricFamily::counter("obsd_collector_dropped_span_links_total", "Links dropped past 128 per span."),
    ];
    for (p, d) in counters.snapshot_limited() {
        for (family, n) in limited.iter_mut().zip([d.attributes, d.truncated_values, d.events, d.links]) {
            family.add(&[("protocol", p.label())], n as f64);
        }
    }
    let [dropped_attributes, truncated_values, dropped_events, dropped_links] = limited;
    vec![
        received,
        rejected,
        dropped_attributes,
        truncated_values,
        dropped_events,
        dropped_links,
        batches,
        MetricFamily::gauge("obsd_collector_queue_spans", "Spans accepted and waiting to be stored.")
            .with_value(state.intake.queue_length() as f64),
        MetricFamily::gauge(
            "obsd_collector_queue_capacity_spans",
            "Spans the queue holds before intake refuses.",
        )
        .with_value(state.intake.capacity() as f64),
        MetricFamily::gauge("obsd_collector_store_size_bytes", "Bytes the span store occupies on disk.")
            .with_value(state.store.size_on_disk() as f64),
        MetricFamily::gauge("obsd_collector_store_buckets", "Time buckets (sled trees) in the span store.")
            .with_value(state.store.bucket_count() as f64),
        MetricFamily::counter(
            "obsd_collector_retention_buckets_dropped_total",
            "Time buckets deleted by retention (time or size).",
        )
        .with_value(state.retention_dropped.load(Ordering::Relaxed) as f64),
        MetricFamily::counter(
            "obsd_collector_span_metrics_series_dropped_total",
            "Spans not counted in RED metrics because the series limit was reached.",
        )
        .with_value(state.intake.red.series_dropped() as f64),
    ]
}

/// `/metrics`: RED metrics and self metrics; OpenMetrics (with exemplars) when the scraper
/// prefers it, as Prometheus does with exemplar storage on.
async fn metrics_page(State(state): State<Arc<MetricsState>>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let mut families = crate::self_metrics::common_families();
    families.extend(self_families(&state));
    let families = exposition::merge_and_sort(families);
    let mut body = String::new();
    if openmetrics {
        red_metrics::write_families_openmetrics(&mut body, &families);
        state.intake.red.write_openmetrics(&mut body);
        body.push_str("# EOF\n");
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
    } else {
        exposition::write_families(&mut body, &families);
        exposition::write_families(&mut body, &state.intake.red.families());
        ([(header::CONTENT_TYPE, crate::self_metrics::TEXT_FORMAT)], body)
    }
}

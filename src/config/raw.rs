//! The TOML file as written by a user: every key optional, unknown keys rejected.
//! `validate` turns this into the resolved `Config` the roles run on.

use super::Secret;
use super::check::RawListener;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub global: RawGlobal,
    pub exporter: RawExporter,
    pub replica: RawReplica,
    pub federation: RawFederation,
    pub balancer: super::balancer::RawBalancer,
    pub collector: RawCollector,
    pub alertmanager: RawAlertmanager,
}

/// `[alertmanager]`: Alertmanager's job. Its routing comes from an unchanged alertmanager.yml
/// (`config`) or the same sections inline (`route`, `receivers`, ...); HA peers sync over HTTP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlertmanager {
    pub listen: RawListener,
    /// Path of an alertmanager.yml, relative to this file.
    pub config: Option<Spanned<String>>,
    pub global: Option<toml::Value>,
    pub route: Option<toml::Value>,
    pub receivers: Option<toml::Value>,
    pub inhibit_rules: Option<toml::Value>,
    pub templates: Option<toml::Value>,
    pub time_intervals: Option<toml::Value>,
    pub mute_time_intervals: Option<toml::Value>,
    /// Alertmanager's --web.external-url.
    pub external_url: Option<Spanned<String>>,
    /// Alertmanager's --data.retention (120h).
    pub data_retention: Option<Spanned<String>>,
    /// Base URLs of the other obsd alertmanagers (`http://10.0.0.2:9093`).
    pub peers: Option<Vec<Spanned<String>>>,
    /// Shared secret the peers authenticate with; required with `peers`.
    pub cluster_token: Option<Spanned<Secret>>,
    /// This instance's URL as the peers reach it; defaults to `http://<listen address>`.
    pub cluster_advertise: Option<Spanned<String>>,
    /// Alertmanager's --cluster.peer-timeout (15s): the wait per position before a flush.
    pub peer_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGlobal {
    pub data_dir: Option<Spanned<String>>,
    pub log_level: Option<Spanned<String>>,
    pub log_format: Option<Spanned<String>>,
    /// How long SIGTERM waits for in-flight requests before closing anyway.
    pub shutdown_timeout: Option<Spanned<String>>,
}

/// `[federation]`: the central Prometheus. Scrapes `/federate` of the replicas with the
/// replica's scrape settings, deduplicates HA replicas, stores, serves the same API and may
/// remote-write onward.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFederation {
    pub listen: RawListener,
    pub prometheus_config: Option<Spanned<String>>,
    pub global: Option<crate::config::prometheus::GlobalConfig>,
    pub scrape_configs: Option<Vec<crate::config::prometheus::ScrapeConfig>>,
    /// As `[replica] rule_files`.
    pub rule_files: Option<Vec<Spanned<String>>>,
    /// As `[replica] alerting`.
    pub alerting: Option<crate::config::alerting::AlertingConfig>,
    /// As `[replica] alert_drop_labels`; the default is `[replica_label]`.
    pub alert_drop_labels: Option<Vec<String>>,
    /// As `[replica] alert_resend_delay` and the two `alert_for_*`.
    pub alert_resend_delay: Option<Spanned<String>>,
    pub alert_for_outage_tolerance: Option<Spanned<String>>,
    pub alert_for_grace_period: Option<Spanned<String>>,
    pub lookback_delta: Option<Spanned<String>>,
    pub retention_time: Option<Spanned<String>>,
    pub retention_size: Option<Spanned<String>>,
    /// The label that tells HA replicas apart (`prometheus_instance` in the seed; Thanos and
    /// Mimir users often call it `replica` or `__replica__`). Dropped before storing.
    pub replica_label: Option<Spanned<String>>,
    /// Targets mode: scrape every replica of `replicas` directly (one federate job per entry)
    /// instead of trusting a balancer.
    pub fan_out: Option<RawFanOut>,
    pub dedup: RawDedup,
    pub remote_write: Vec<RawRemoteWrite>,
}

/// Fan-out: obsd builds a federate job that scrapes every listed replica itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFanOut {
    /// `host:port` of each replica.
    pub replicas: Vec<Spanned<String>>,
    /// `match[]` selectors; every series by default.
    pub match_selectors: Option<Vec<String>>,
    pub scrape_interval: Option<Spanned<String>>,
    pub scrape_timeout: Option<Spanned<String>>,
    pub job_name: Option<String>,
    pub scheme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDedup {
    /// Turn HA deduplication off (the replica label is then kept as an ordinary label).
    pub enabled: Option<bool>,
    /// How far (in sample time) another replica must be ahead of the current leader of a
    /// series before it takes over. Default: half the shortest federation scrape interval.
    pub failover_timeout: Option<Spanned<String>>,
    /// Series state not touched for this long is forgotten.
    pub forget_after: Option<Spanned<String>>,
}

/// One `[[federation.remote_write]]`: Prometheus's remote_write block, TOML-spelled.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRemoteWrite {
    pub url: Option<Spanned<String>>,
    /// Names the queue directory and the `url` label of the self metrics; defaults to a hash.
    pub name: Option<Spanned<String>>,
    pub basic_auth: Option<crate::config::prometheus_common::BasicAuth>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub headers: Option<BTreeMap<String, Secret>>,
    pub remote_timeout: Option<Spanned<String>>,
    pub shards: Option<usize>,
    pub max_samples_per_send: Option<usize>,
    /// Samples older than the newest queued one by more than this are dropped (and counted).
    pub max_backlog: Option<Spanned<String>>,
    pub min_backoff: Option<Spanned<String>>,
    pub max_backoff: Option<Spanned<String>>,
    /// Cap on the queue's size on disk (`4GB`); oldest data is dropped beyond it.
    pub max_queue_size: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawExporter {
    pub listen: RawListener,
    /// Per-collector switches (`timex = false`); unnamed collectors keep node_exporter's default.
    pub collectors: BTreeMap<String, Spanned<bool>>,
    pub proc_path: Option<Spanned<String>>,
    pub sys_path: Option<Spanned<String>>,
    pub rootfs_path: Option<Spanned<String>>,
    pub textfile_directory: Option<Spanned<String>>,
    pub filesystem_mount_points_exclude: Option<Spanned<String>>,
    pub filesystem_fs_types_exclude: Option<Spanned<String>>,
    pub diskstats_device_exclude: Option<Spanned<String>>,
    pub netdev_device_exclude: Option<Spanned<String>>,
    pub netstat_fields: Option<Spanned<String>>,
    pub vmstat_fields: Option<Spanned<String>>,
    /// Upper bound for one filesystem's statfs call, so a hung NFS mount cannot stall a scrape.
    pub filesystem_statfs_timeout: Option<Spanned<String>>,
    /// node_exporter's `--web.max-requests`: concurrent `/metrics` requests (0: no limit).
    pub max_requests: Option<usize>,
    /// Shared settings of the WASM plugins.
    pub plugins: super::plugins::RawPlugins,
    /// One `[[exporter.plugin]]` per WASM plugin to run.
    pub plugin: Vec<super::plugins::RawPlugin>,
}

/// `[replica]`: a Prometheus replica. Scrape settings come from an existing prometheus.yml
/// (`prometheus_config`) or inline `global` / `scrape_configs` with Prometheus's field names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReplica {
    pub listen: RawListener,
    pub prometheus_config: Option<Spanned<String>>,
    pub global: Option<crate::config::prometheus::GlobalConfig>,
    pub scrape_configs: Option<Vec<crate::config::prometheus::ScrapeConfig>>,
    /// Prometheus rule files (globs in the last element), relative to this file's directory;
    /// added to a prometheus.yml's `rule_files`.
    pub rule_files: Option<Vec<Spanned<String>>>,
    /// prometheus.yml's `alerting:` inline (`[[replica.alerting.alertmanagers]]`), for a
    /// replica configured without a prometheus.yml.
    pub alerting: Option<crate::config::alerting::AlertingConfig>,
    /// Labels removed from alerts before they go to Alertmanager (default
    /// `["prometheus_instance"]`, the seed's replica label); `[]` keeps every label.
    pub alert_drop_labels: Option<Vec<String>>,
    /// Prometheus's --rules.alert.resend-delay (1m): how often a firing alert is re-sent.
    pub alert_resend_delay: Option<Spanned<String>>,
    /// Prometheus's --rules.alert.for-outage-tolerance (1h): the longest outage after which
    /// an alert's `for` state is still restored.
    pub alert_for_outage_tolerance: Option<Spanned<String>>,
    /// Prometheus's --rules.alert.for-grace-period (10m): the least pending time left to an
    /// alert restored at start; alerts with a shorter `for` are not restored at all.
    pub alert_for_grace_period: Option<Spanned<String>>,
    /// How far back an instant query looks for a sample (Prometheus's --query.lookback-delta).
    pub lookback_delta: Option<Spanned<String>>,
    /// Prometheus's --storage.tsdb.retention.time.
    pub retention_time: Option<Spanned<String>>,
    /// Prometheus's --storage.tsdb.retention.size (`10GB`); none by default.
    pub retention_size: Option<Spanned<String>>,
    /// Accept remote write on /api/v1/write (Prometheus's --web.enable-remote-write-receiver).
    pub remote_write_receiver: Option<bool>,
    /// Most series one remote-write request may carry.
    pub remote_write_max_series: Option<usize>,
    /// Most labels one remote-written series may have.
    pub remote_write_max_labels_per_series: Option<usize>,
    /// Most bytes of label names and values one remote-written series may have.
    pub remote_write_max_label_bytes_per_series: Option<usize>,
    /// Largest decompressed request, and largest estimated size of its decoded form (`64MB`).
    pub remote_write_max_decoded_size: Option<Spanned<String>>,
}

/// `[collector]`: Jaeger all-in-one's listeners plus the span store's retention and queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCollector {
    /// Jaeger query API, `/metrics` (RED metrics) and health, as Jaeger's :16686.
    pub listen: RawListener,
    /// OTLP/gRPC (HTTP/2, served by tonic); only `address` and `max_body_bytes` apply.
    pub otlp_grpc: RawListener,
    /// OTLP/HTTP `/v1/traces`.
    pub otlp_http: RawListener,
    /// Jaeger collector's thrift-over-HTTP `POST /api/traces`.
    pub jaeger_thrift_http: RawListener,
    /// Jaeger agent's UDP ports; `""` turns one off.
    pub jaeger_compact_udp: Option<Spanned<String>>,
    pub jaeger_binary_udp: Option<Spanned<String>>,
    /// Spans older than this (by start time) are deleted; Jaeger's badger `span-store-ttl`.
    pub retention: Option<Spanned<String>>,
    /// Oldest time buckets are dropped while the store is larger (`10GB`, as the replica's
    /// `retention_size`); no size limit by default.
    pub retention_size: Option<Spanned<String>>,
    /// How often sled writes to disk: the crash-loss window for acknowledged spans.
    pub flush_interval: Option<Spanned<String>>,
    /// Spans accepted but not yet stored; a full queue answers 429/UNAVAILABLE.
    pub queue_spans: Option<usize>,
    /// Largest batch one request may carry, in spans.
    pub max_batch_spans: Option<usize>,
    /// Prefix of the RED metric names (spanmetrics `namespace`, Prometheus form).
    pub span_metrics_namespace: Option<Spanned<String>>,
    /// Histogram buckets in milliseconds (spanmetrics defaults when unset).
    pub span_metrics_buckets_ms: Option<Vec<f64>>,
}

//! obsd: one binary for a high-availability observability stack.
//!
//! Roles (one folder each, never importing each other): `exporter` (node_exporter), `replica`
//! (a Prometheus replica: scraping, the store, /federate, remote-write receive), `balancer`
//! (HAProxy + haproxy_exporter), `collector` (Jaeger: OTLP and Jaeger thrift intake, the Jaeger
//! query API, span RED metrics), `federation` (the central Prometheus: scrapes the replicas'
//! /federate, merges HA replicas into one series, serves the same API, remote-writes onward).
//!
//! Shared engines, which import no role:
//! - `model`: the vocabulary every engine shares (labels, matchers, sample times, the stale
//!   marker, durations and byte sizes); a leaf.
//! - `config`: TOML (and prometheus.yml) → resolved, validated config.
//! - `http`: listeners with TLS, basic auth and limits.
//! - `exposition`: metric families, the text and OpenMetrics formats, /federate output.
//! - `scrape`: scrape pools, targets, relabelling, the scrape loop and its sink into a store.
//! - `store`: the time-series store on sled (Gorilla chunks, WAL, postings index, retention;
//!   `Appender`/`Querier` like Prometheus's storage interface).
//! - `promql`: the PromQL engine over a `Queryable` store.
//! - `rules`: recording and alerting rules (rule files, group evaluation, alert notification).
//! - `gotemplate`: Go's `text/template` as Prometheus (alert templates) and Alertmanager
//!   (notification templates) run it.
//! - `api`: Prometheus's HTTP API (/api/v1/*, /federate) over a store and the engine.
//! - `remote_write`: Prometheus remote-write 1.0 messages, decoded and encoded.
//! - `webui`: the built-in web UI.
//! - `trace_store`: spans on sled.
//! - `self_metrics`: process and build metrics every role serves.
//! - `protobuf_wire`: bounds checks on protobuf bytes before they are decoded.
//! - `logging`, `systemd`: log output and sd_notify.
//!
//! `app` starts the roles and stops them in order.

pub mod alertmanager;
pub mod api;
pub mod app;
pub mod balancer;
pub mod collector;
pub mod config;
pub mod exporter;
pub mod exposition;
pub mod federation;
#[doc(hidden)]
pub mod fuzzing;
pub mod gotemplate;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod model;
pub mod promql;
pub mod protobuf_wire;
pub mod remote_write;
pub mod replica;
pub mod rules;
pub mod scrape;
pub mod self_metrics;
pub mod store;
pub mod systemd;
pub mod trace_store;
pub mod webui;

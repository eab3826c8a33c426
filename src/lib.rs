//! obsd: one binary for a high-availability observability stack.
//!
//! Roles (one folder each): `exporter` (node_exporter), `collector` (Jaeger: OTLP and Jaeger
//! thrift intake, the Jaeger query API, span RED metrics). Planned roles — replica, federation,
//! balancer — are named in `config::Role` and refused at start until built.
//! Shared engines: `config` (TOML → resolved config), `http` (listeners with TLS, basic auth
//! and limits), `exposition` (metric families and the text format), `self_metrics` (process
//! and build metrics every role serves), `trace_store` (spans on sled). `app` starts the roles and stops them in order.

pub mod app;
pub mod collector;
pub mod config;
pub mod exporter;
pub mod exposition;
pub mod http;
pub mod self_metrics;
pub mod trace_store;

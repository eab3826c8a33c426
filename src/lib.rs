//! obsd: one binary for a high-availability observability stack.
//!
//! Roles (one folder each): `exporter` (node_exporter). Planned roles — replica, federation,
//! balancer, collector — are named in `config::Role` and refused at start until built.
//! Shared engines: `config` (TOML → resolved config), `http` (listeners with TLS, basic auth
//! and limits), `exposition` (metric families and the text format), `self_metrics` (process
//! and build metrics every role serves). `app` starts the roles and stops them in order.

pub mod api;
pub mod app;
pub mod config;
pub mod exporter;
pub mod exposition;
pub mod http;
pub mod promql;
pub mod self_metrics;

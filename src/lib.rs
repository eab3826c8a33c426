//! obsd: one binary for a high-availability observability stack.
//!
//! Roles (one folder each): `exporter` (node_exporter). Planned roles — replica, federation,
//! balancer, collector — are named in `config::Role` and refused at start until built.
//! Shared engines: `config` (TOML → resolved config), `http` (listeners with TLS, basic auth
//! and limits), `exposition` (metric families and the text format), `self_metrics` (process
//! and build metrics every role serves), `labels` (the sorted label set every engine names
//! series by), `store` (the time-series store on sled: Gorilla chunks, WAL, postings index,
//! retention; `Appender`/`Querier` like Prometheus's storage interface). `app` starts the roles
//! and stops them in order.

pub mod app;
pub mod config;
pub mod exporter;
pub mod exposition;
pub mod http;
pub mod labels;
pub mod self_metrics;
pub mod store;

//! obsd: one binary for a high-availability observability stack.
//!
//! Roles (one folder each): `exporter` (node_exporter), `replica` (a Prometheus replica:
//! scraping, the store, /federate, remote-write receive), `balancer` (HAProxy + haproxy_exporter),
//! `collector` (Jaeger: OTLP and Jaeger thrift intake, the Jaeger query API, span RED metrics),
//! `federation` (the central Prometheus: scrapes the replicas' /federate, merges HA replicas
//! into one series, serves the same API, remote-writes onward).
//! Shared engines: `config` (TOML → resolved config), `http` (listeners with TLS, basic auth
//! and limits), `exposition` (metric families and the text format), `self_metrics` (process
//! and build metrics every role serves), `labels` (the sorted label set every engine names
//! series by), `store` (the time-series store on sled: Gorilla chunks, WAL, postings index,
//! retention; `Appender`/`Querier` like Prometheus's storage interface), `trace_store` (spans
//! on sled). `app` starts the roles and stops them in order, telling systemd (`systemd`).

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
pub mod http;
pub mod labels;
pub mod logging;
pub mod promql;
pub mod protobuf_wire;
pub mod remote_write;
pub mod replica;
pub mod scrape;
pub mod self_metrics;
pub mod store;
pub mod systemd;
pub mod trace_store;
pub mod webui;

/// Formats a duration the way Prometheus prints one (`1m`, `15s`, `1h30m`, `500ms`).
pub fn api_duration(d: std::time::Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

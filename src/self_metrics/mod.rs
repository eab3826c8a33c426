//! What every role's `/metrics` carries about obsd itself: the standard process metrics
//! (named as client_golang's process collector names them), `obsd_build_info` and the state
//! of the loaded configuration (with Prometheus's names for the reload metrics).

use crate::exposition::MetricFamily;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

// One process runs one configuration, whichever roles serve it, so its state is process-wide.
static CONFIG_WARNINGS: AtomicU64 = AtomicU64::new(0);
static LAST_RELOAD_OK: AtomicBool = AtomicBool::new(true);
static LAST_RELOAD_SUCCESS_SECONDS: AtomicU64 = AtomicU64::new(0);

/// The content type of the text exposition format every `/metrics` answers in.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The families about obsd itself that every role's `/metrics` carries beside its own.
pub fn common_families() -> Vec<MetricFamily> {
    let mut families = process_metrics();
    families.push(build_info());
    families.extend(config_metrics());
    families
}

/// A role's `/metrics` page in the text format: its own families and the common ones, merged
/// and sorted as Prometheus's registry would.
pub fn text_page(own: Vec<MetricFamily>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut families = own;
    families.extend(common_families());
    let families = crate::exposition::merge_and_sort(families);
    let mut body = String::with_capacity(32 * 1024);
    crate::exposition::write_families(&mut body, &families);
    ([(axum::http::header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

/// A configuration was loaded (at start or by a reload) and is now the running one.
pub fn config_loaded(warnings: usize) {
    CONFIG_WARNINGS.store(warnings as u64, Ordering::Relaxed);
    LAST_RELOAD_OK.store(true, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    LAST_RELOAD_SUCCESS_SECONDS.store(now.to_bits(), Ordering::Relaxed);
}

/// A reload was refused; the previous configuration keeps running.
pub fn config_reload_failed() {
    LAST_RELOAD_OK.store(false, Ordering::Relaxed);
}

/// Whether the last reload succeeded, and when the running configuration was loaded (Unix
/// seconds), for `/api/v1/status/runtimeinfo`.
pub fn config_reload_state() -> (bool, f64) {
    (
        LAST_RELOAD_OK.load(Ordering::Relaxed),
        f64::from_bits(LAST_RELOAD_SUCCESS_SECONDS.load(Ordering::Relaxed)),
    )
}

pub fn config_metrics() -> Vec<MetricFamily> {
    vec![
        MetricFamily::gauge(
            "obsd_config_warnings",
            "Warnings of the running configuration (settings accepted but not acted on); check-config lists them.",
        )
        .with_value(CONFIG_WARNINGS.load(Ordering::Relaxed) as f64),
        MetricFamily::gauge(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        )
        .with_value(if LAST_RELOAD_OK.load(Ordering::Relaxed) { 1.0 } else { 0.0 }),
        MetricFamily::gauge(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        )
        .with_value(f64::from_bits(LAST_RELOAD_SUCCESS_SECONDS.load(Ordering::Relaxed))),
    ]
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("OBSD_GIT_COMMIT");
pub const RUST_VERSION: &str = env!("OBSD_RUSTC_VERSION");

pub fn build_info() -> MetricFamily {
    let mut f = MetricFamily::gauge(
        "obsd_build_info",
        "A metric with a constant '1' value labeled by version, revision and rustversion from which obsd was built.",
    );
    f.add(&[("revision", GIT_COMMIT), ("rustversion", RUST_VERSION), ("version", VERSION)], 1.0);
    f
}

/// Process metrics read from /proc/self; a field that cannot be read is left out, never
/// guessed.
pub fn process_metrics() -> Vec<MetricFamily> {
    let mut out = Vec::new();
    let Ok(me) = procfs::process::Process::myself() else {
        return out;
    };
    let ticks = procfs::ticks_per_second() as f64;
    let page_size = procfs::page_size() as f64;
    if let Ok(stat) = me.stat() {
        out.push(
            MetricFamily::counter(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            )
            .with_value((stat.utime + stat.stime) as f64 / ticks),
        );
        out.push(
            MetricFamily::gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
                .with_value(stat.rss as f64 * page_size),
        );
        out.push(
            MetricFamily::gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
                .with_value(stat.vsize as f64),
        );
        if let Ok(boot) = procfs::boot_time_secs() {
            out.push(
                MetricFamily::gauge(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                )
                .with_value(boot as f64 + stat.starttime as f64 / ticks),
            );
        }
    }
    if let Ok(fds) = me.fd_count() {
        out.push(
            MetricFamily::gauge("process_open_fds", "Number of open file descriptors.")
                .with_value(fds as f64),
        );
    }
    if let Ok(limits) = me.limits() {
        let value = |l: procfs::process::LimitValue| match l {
            procfs::process::LimitValue::Unlimited => f64::from(u32::MAX) * f64::from(u32::MAX),
            procfs::process::LimitValue::Value(v) => v as f64,
        };
        out.push(
            MetricFamily::gauge("process_max_fds", "Maximum number of open file descriptors.")
                .with_value(value(limits.max_open_files.soft_limit)),
        );
        out.push(
            MetricFamily::gauge(
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
            )
            .with_value(match limits.max_address_space.soft_limit {
                // client_golang reports an unlimited address space as -1 cast to uint64.
                procfs::process::LimitValue::Unlimited => 1.8446744073709552e19,
                procfs::process::LimitValue::Value(v) => v as f64,
            }),
        );
    }
    out
}

//! What every role's `/metrics` carries about obsd itself: the standard process metrics
//! (named as client_golang's process collector names them) and `obsd_build_info`.

use crate::exposition::MetricFamily;

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

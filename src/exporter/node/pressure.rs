//! Pressure stall information from /proc/pressure (kernels with PSI): totals in µs → seconds.

use super::{CollectError, parse_error, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

fn totals(text: &str) -> (Option<f64>, Option<f64>) {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let total = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("total="))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|us| us / 1e6);
        if line.starts_with("some ") {
            some = total;
        } else if line.starts_with("full ") {
            full = total;
        }
    }
    (some, full)
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let dir = config.proc_path.join("pressure");
    if !dir.is_dir() {
        return Err(CollectError::NoData("kernel has no pressure stall information".into()));
    }
    let mut out = Vec::new();
    let (cpu_some, _) = totals(&read(dir.join("cpu"))?);
    let (io_some, io_full) = totals(&read(dir.join("io"))?);
    let (mem_some, mem_full) = totals(&read(dir.join("memory"))?);
    let entries = [
        (
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
            cpu_some,
        ),
        (
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
            io_some,
        ),
        (
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
            io_full,
        ),
        (
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
            mem_some,
        ),
        (
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
            mem_full,
        ),
    ];
    for (name, help, value) in entries {
        let value = value.ok_or_else(|| parse_error(&dir, format!("missing total for {name}")))?;
        out.push(MetricFamily::counter(name, help).with_value(value));
    }
    Ok(out)
}

//! Kernel counters from /proc/stat: boot time, context switches, forks, interrupts, and the
//! running/blocked process gauges.

use super::{CollectError, number, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("stat");
    let text = read(&path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else { continue };
        let family = match key {
            "intr" => MetricFamily::counter("node_intr_total", "Total number of interrupts serviced."),
            "ctxt" => {
                MetricFamily::counter("node_context_switches_total", "Total number of context switches.")
            }
            "btime" => MetricFamily::gauge("node_boot_time_seconds", "Node boot time, in unixtime."),
            "processes" => MetricFamily::counter("node_forks_total", "Total number of forks."),
            "procs_running" => {
                MetricFamily::gauge("node_procs_running", "Number of processes in runnable state.")
            }
            "procs_blocked" => MetricFamily::gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
            ),
            _ => continue,
        };
        out.push(family.with_value(number(&path, value)?));
    }
    Ok(out)
}

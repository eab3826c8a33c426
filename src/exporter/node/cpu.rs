//! `node_cpu_seconds_total{cpu,mode}` and `node_cpu_guest_seconds_total{cpu,mode}` from
//! /proc/stat (node_exporter collector/cpu_linux.go).

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("stat");
    let text = read(&path)?;
    let user_hz = procfs::ticks_per_second() as f64;
    let mut seconds = MetricFamily::counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.");
    let mut guest = MetricFamily::counter(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    );
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(label) = fields.next() else { continue };
        let Some(cpu) = label.strip_prefix("cpu") else { continue };
        if cpu.is_empty() {
            continue; // the all-CPU total line
        }
        let values: Vec<f64> = fields.map(|f| f.parse::<f64>().unwrap_or(0.0) / user_hz).collect();
        for (i, mode) in MODES.iter().enumerate() {
            if let Some(v) = values.get(i) {
                seconds.add(&[("cpu", cpu), ("mode", mode)], *v);
            }
        }
        for (i, mode) in [(8usize, "user"), (9, "nice")] {
            if let Some(v) = values.get(i) {
                guest.add(&[("cpu", cpu), ("mode", mode)], *v);
            }
        }
    }
    if seconds.samples.is_empty() {
        return Err(super::parse_error(&path, "no per-CPU lines"));
    }
    Ok(vec![seconds, guest])
}

//! `node_softnet_*_total{cpu}` from /proc/net/softnet_stat (hex columns, one line per CPU).

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let text = read(config.proc_path.join("net/softnet_stat"))?;
    let mut processed = MetricFamily::counter("node_softnet_processed_total", "Number of processed packets");
    let mut dropped = MetricFamily::counter("node_softnet_dropped_total", "Number of dropped packets");
    let mut squeezed = MetricFamily::counter(
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
    );
    for (cpu, line) in text.lines().enumerate() {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|f| u64::from_str_radix(f, 16).map(|x| x as f64).unwrap_or(0.0))
            .collect();
        if v.len() < 3 {
            continue;
        }
        let cpu = cpu.to_string();
        processed.add(&[("cpu", cpu.as_str())], v[0]);
        dropped.add(&[("cpu", cpu.as_str())], v[1]);
        squeezed.add(&[("cpu", cpu.as_str())], v[2]);
    }
    Ok(vec![processed, dropped, squeezed])
}

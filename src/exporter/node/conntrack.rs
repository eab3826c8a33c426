//! Netfilter connection tracking: table size and limit, and the per-CPU statistics from
//! /proc/net/stat/nf_conntrack summed over CPUs (gauges in node_exporter 1.5).

use super::{CollectError, number, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

const STATS: [&str; 8] =
    ["found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop", "search_restart"];

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let count_path = config.proc_path.join("sys/net/netfilter/nf_conntrack_count");
    if !count_path.exists() {
        return Err(CollectError::NoData("conntrack is not loaded".into()));
    }
    let max_path = config.proc_path.join("sys/net/netfilter/nf_conntrack_max");
    let mut out = vec![
        MetricFamily::gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
        )
        .with_value(number(&count_path, &read(&count_path)?)?),
        MetricFamily::gauge("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.")
            .with_value(number(&max_path, &read(&max_path)?)?),
    ];
    let stat_path = config.proc_path.join("net/stat/nf_conntrack");
    if let Ok(text) = read(&stat_path) {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let mut totals = vec![0.0; header.len()];
        for line in lines {
            for (i, field) in line.split_whitespace().enumerate() {
                if let (Some(total), Ok(v)) = (totals.get_mut(i), u64::from_str_radix(field, 16)) {
                    *total += v as f64;
                }
            }
        }
        for stat in STATS {
            if let Some(i) = header.iter().position(|h| *h == stat) {
                out.push(
                    MetricFamily::gauge(
                        format!("node_nf_conntrack_stat_{stat}"),
                        format!("Number of conntrack {stat} events."),
                    )
                    .with_value(totals[i]),
                );
            }
        }
    }
    Ok(out)
}

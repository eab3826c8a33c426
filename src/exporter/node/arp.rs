//! `node_arp_entries{device}`: ARP cache entries per interface from /proc/net/arp.

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::collections::BTreeMap;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let text = read(config.proc_path.join("net/arp"))?;
    let mut per_device: BTreeMap<&str, f64> = BTreeMap::new();
    for line in text.lines().skip(1) {
        if let Some(device) = line.split_whitespace().nth(5) {
            *per_device.entry(device).or_default() += 1.0;
        }
    }
    let mut f = MetricFamily::gauge("node_arp_entries", "ARP entries by device");
    for (device, count) in per_device {
        f.add(&[("device", device)], count);
    }
    Ok(vec![f])
}

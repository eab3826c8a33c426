//! `node_network_{receive,transmit}_<field>_total{device}` from /proc/net/dev, plus
//! `receive_nohandler` from sysfs (node_exporter 1.5 reads it over netlink).

use super::{CollectError, parse_error, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::collections::BTreeMap;

const RECEIVE: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"];
const TRANSMIT: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"];

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("net/dev");
    let text = read(&path)?;
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    let mut add = |name: String, device: &str, value: f64| {
        families
            .entry(name.clone())
            .or_insert_with(|| {
                let stat =
                    name.trim_start_matches("node_network_").trim_end_matches("_total").replace('_', " ");
                MetricFamily::counter(name.clone(), format!("Network device statistic {stat}."))
            })
            .add(&[("device", device)], value);
    };
    for line in text.lines().skip(2) {
        let Some((device, counters)) = line.split_once(':') else {
            return Err(parse_error(&path, format!("bad line {line:?}")));
        };
        let device = device.trim();
        if config.netdev_device_exclude.as_ref().is_some_and(|re| re.is_match(device)) {
            continue;
        }
        let values: Vec<f64> = counters.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
        for (i, field) in RECEIVE.iter().enumerate() {
            if let Some(v) = values.get(i) {
                add(format!("node_network_receive_{field}_total"), device, *v);
            }
        }
        for (i, field) in TRANSMIT.iter().enumerate() {
            if let Some(v) = values.get(8 + i) {
                add(format!("node_network_transmit_{field}_total"), device, *v);
            }
        }
        let nohandler = config.sys_path.join(format!("class/net/{device}/statistics/rx_nohandler"));
        if let Some(v) = std::fs::read_to_string(nohandler).ok().and_then(|t| t.trim().parse::<f64>().ok()) {
            add("node_network_receive_nohandler_total".into(), device, v);
        }
    }
    Ok(families.into_values().collect())
}

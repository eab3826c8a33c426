//! Interface state from /sys/class/net (node_exporter collector/netclass_linux.go):
//! `node_network_up`, `node_network_info` and one gauge per numeric attribute. An attribute
//! the kernel refuses to read (carrier on a down link: EINVAL) is left out, as upstream does.

use super::CollectError;
use crate::config::ExporterConfig;
use crate::exposition::{MetricFamily, MetricType};
use std::collections::BTreeMap;
use std::path::Path;

/// sysfs file, metric suffix, type, parse as hex, help.
const ATTRIBUTES: &[(&str, &str, MetricType, bool, &str)] = &[
    (
        "addr_assign_type",
        "address_assign_type",
        MetricType::Gauge,
        false,
        "Network device property: address_assign_type",
    ),
    ("carrier", "carrier", MetricType::Gauge, false, "Network device property: carrier"),
    (
        "carrier_changes",
        "carrier_changes_total",
        MetricType::Counter,
        false,
        "Network device property: carrier_changes_total",
    ),
    (
        "carrier_up_count",
        "carrier_up_changes_total",
        MetricType::Counter,
        false,
        "Network device property: carrier_up_changes_total",
    ),
    (
        "carrier_down_count",
        "carrier_down_changes_total",
        MetricType::Counter,
        false,
        "Network device property: carrier_down_changes_total",
    ),
    ("dev_id", "device_id", MetricType::Gauge, true, "Network device property: device_id"),
    ("dormant", "dormant", MetricType::Gauge, false, "Network device property: dormant"),
    ("flags", "flags", MetricType::Gauge, true, "Network device property: flags"),
    ("ifindex", "iface_id", MetricType::Gauge, false, "Network device property: iface_id"),
    ("iflink", "iface_link", MetricType::Gauge, false, "Network device property: iface_link"),
    ("link_mode", "iface_link_mode", MetricType::Gauge, false, "Network device property: iface_link_mode"),
    ("mtu", "mtu_bytes", MetricType::Gauge, false, "Network device property: mtu_bytes"),
    (
        "name_assign_type",
        "name_assign_type",
        MetricType::Gauge,
        false,
        "Network device property: name_assign_type",
    ),
    ("netdev_group", "net_dev_group", MetricType::Gauge, false, "Network device property: net_dev_group"),
    ("type", "protocol_type", MetricType::Gauge, false, "Network device property: protocol_type"),
    (
        "tx_queue_len",
        "transmit_queue_length",
        MetricType::Gauge,
        false,
        "Network device property: transmit_queue_length",
    ),
];

fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_string())
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let class = config.sys_path.join("class/net");
    let entries =
        std::fs::read_dir(&class).map_err(|source| CollectError::Io { path: class.clone(), source })?;
    let mut devices: Vec<String> =
        entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    devices.sort();
    let mut families: BTreeMap<&str, MetricFamily> = BTreeMap::new();
    let mut up = MetricFamily::gauge("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.");
    let mut info = MetricFamily::gauge(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
    );
    let mut speed = MetricFamily::gauge("node_network_speed_bytes", "Network device property: speed_bytes");
    for device in &devices {
        let dir = class.join(device);
        let operstate = attr(&dir, "operstate").unwrap_or_default();
        up.add(&[("device", device.as_str())], if operstate == "up" { 1.0 } else { 0.0 });
        info.add(
            &[
                ("address", attr(&dir, "address").unwrap_or_default()),
                ("broadcast", attr(&dir, "broadcast").unwrap_or_default()),
                ("device", device.clone()),
                ("duplex", attr(&dir, "duplex").unwrap_or_default()),
                ("ifalias", attr(&dir, "ifalias").unwrap_or_default()),
                ("operstate", operstate.clone()),
            ],
            1.0,
        );
        for (file, suffix, kind, hex, help) in ATTRIBUTES {
            let Some(text) = attr(&dir, file) else { continue };
            let value = if *hex {
                i64::from_str_radix(text.trim_start_matches("0x"), 16).ok().map(|v| v as f64)
            } else {
                text.parse::<f64>().ok()
            };
            let Some(value) = value else { continue };
            families
                .entry(suffix)
                .or_insert_with(|| MetricFamily::new(format!("node_network_{suffix}"), *help, *kind))
                .add(&[("device", device.as_str())], value);
        }
        // Mbit/s → bytes/s; upstream reports -1 (unknown) as -125000 too.
        if let Some(mbps) = attr(&dir, "speed").and_then(|s| s.parse::<f64>().ok()) {
            speed.add(&[("device", device.as_str())], mbps * 1000.0 * 1000.0 / 8.0);
        }
    }
    let mut out: Vec<MetricFamily> = families.into_values().collect();
    out.extend([up, info, speed]);
    Ok(out)
}

//! `node_disk_*` from /proc/diskstats (node_exporter collector/diskstats_linux.go): sectors are
//! 512 bytes whatever the device's block size, times are ms → seconds; `node_disk_info`
//! carries udev's properties when /run/udev/data is readable.

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::collections::HashMap;

const SECTOR_BYTES: f64 = 512.0;

/// Column (0-based after major, minor, name), family, help, scale, counter?
const FIELDS: &[(usize, &str, &str, f64, bool)] = &[
    (0, "node_disk_reads_completed_total", "The total number of reads completed successfully.", 1.0, true),
    (1, "node_disk_reads_merged_total", "The total number of reads merged.", 1.0, true),
    (2, "node_disk_read_bytes_total", "The total number of bytes read successfully.", SECTOR_BYTES, true),
    (3, "node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", 0.001, true),
    (4, "node_disk_writes_completed_total", "The total number of writes completed successfully.", 1.0, true),
    (5, "node_disk_writes_merged_total", "The number of writes merged.", 1.0, true),
    (
        6,
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
        true,
    ),
    (
        7,
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        0.001,
        true,
    ),
    (8, "node_disk_io_now", "The number of I/Os currently in progress.", 1.0, false),
    (9, "node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", 0.001, true),
    (
        10,
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        0.001,
        true,
    ),
    (
        11,
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
        true,
    ),
    (12, "node_disk_discards_merged_total", "The total number of discards merged.", 1.0, true),
    (
        13,
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
        true,
    ),
    (
        14,
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        0.001,
        true,
    ),
    (
        15,
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
        true,
    ),
    (
        16,
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        0.001,
        true,
    ),
];

fn udev_properties(config: &ExporterConfig, major: &str, minor: &str) -> HashMap<String, String> {
    let path = config.rootfs_path.join(format!("run/udev/data/b{major}:{minor}"));
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("diskstats");
    let text = read(&path)?;
    let mut families: Vec<MetricFamily> =
        FIELDS
            .iter()
            .map(|(_, name, help, _, counter)| {
                if *counter { MetricFamily::counter(*name, *help) } else { MetricFamily::gauge(*name, *help) }
            })
            .collect();
    let mut info = MetricFamily::gauge("node_disk_info", "Info of /sys/block/<block_device>.");
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 14 {
            continue;
        }
        let (major, minor, device) = (parts[0], parts[1], parts[2]);
        if config.diskstats_device_exclude.is_match(device) {
            continue;
        }
        let udev = udev_properties(config, major, minor);
        let prop = |k: &str| udev.get(k).cloned().unwrap_or_default();
        info.add(
            &[
                ("device", device.to_string()),
                ("major", major.to_string()),
                ("minor", minor.to_string()),
                ("model", prop("ID_MODEL")),
                ("path", prop("ID_PATH")),
                ("revision", prop("ID_REVISION")),
                ("serial", prop("ID_SERIAL_SHORT")),
                ("wwn", prop("ID_WWN")),
            ],
            1.0,
        );
        for (family, (column, _, _, scale, _)) in families.iter_mut().zip(FIELDS) {
            let Some(raw) = parts.get(3 + column) else { continue };
            let Ok(value) = raw.parse::<f64>() else { continue };
            family.add(&[("device", device)], value * scale);
        }
    }
    families.push(info);
    Ok(families)
}

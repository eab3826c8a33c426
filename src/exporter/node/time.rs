//! `node_time_seconds`, `node_time_zone_offset_seconds{time_zone}` and the clock sources.

use super::CollectError;
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::ffi::CStr;
use std::time::{SystemTime, UNIX_EPOCH};

fn local_zone(now: libc::time_t) -> Option<(String, f64)> {
    // SAFETY: localtime_r fills the zeroed tm we own; tm_zone points into libc's static tz data.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() || tm.tm_zone.is_null() {
        return None;
    }
    let name = unsafe { CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned();
    Some((name, tm.tm_gmtoff as f64))
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let mut out = vec![
        MetricFamily::gauge("node_time_seconds", "System time in seconds since epoch (1970).")
            .with_value(now),
    ];
    if let Some((zone, offset)) = local_zone(now as libc::time_t) {
        let mut f =
            MetricFamily::gauge("node_time_zone_offset_seconds", "System time zone offset in seconds.");
        f.add(&[("time_zone", zone)], offset);
        out.push(f);
    }
    let mut available = MetricFamily::gauge(
        "node_time_clocksource_available_info",
        "Available clocksources read from '/sys/devices/system/clocksource'.",
    );
    let mut current = MetricFamily::gauge(
        "node_time_clocksource_current_info",
        "Current clocksource read from '/sys/devices/system/clocksource'.",
    );
    let dir = config.sys_path.join("devices/system/clocksource");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<String> =
            entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for name in names {
            let Some(device) = name.strip_prefix("clocksource") else { continue };
            let path = dir.join(&name);
            if let Ok(text) = std::fs::read_to_string(path.join("available_clocksource")) {
                for source in text.split_whitespace() {
                    available.add(&[("clocksource", source), ("device", device)], 1.0);
                }
            }
            if let Ok(text) = std::fs::read_to_string(path.join("current_clocksource")) {
                current.add(&[("clocksource", text.trim()), ("device", device)], 1.0);
            }
        }
    }
    out.extend([available, current]);
    Ok(out)
}

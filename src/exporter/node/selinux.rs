//! `node_selinux_enabled`, and the config/current modes when SELinux is on.

use super::CollectError;
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let fs = config.sys_path.join("fs/selinux");
    let enforce = std::fs::read_to_string(fs.join("enforce")).ok();
    let enabled = enforce.is_some();
    let mut out = vec![
        MetricFamily::gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false")
            .with_value(if enabled { 1.0 } else { 0.0 }),
    ];
    if let Some(mode) = enforce.and_then(|m| m.trim().parse::<f64>().ok()) {
        out.push(
            MetricFamily::gauge(
                "node_selinux_current_mode",
                "SELinux is enforcing (1), permissive (0) or disabled (-1)",
            )
            .with_value(mode),
        );
    }
    Ok(out)
}

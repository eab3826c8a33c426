//! Untyped `node_vmstat_<field>` for the /proc/vmstat fields matching `vmstat_fields`
//! (node_exporter keeps these untyped; dashboards apply rate() themselves).

use super::{CollectError, number, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("vmstat");
    let text = read(&path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else { continue };
        if !config.vmstat_fields.is_match(key) {
            continue;
        }
        out.push(
            MetricFamily::untyped(
                format!("node_vmstat_{key}"),
                format!("/proc/vmstat information field {key}."),
            )
            .with_value(number(&path, value)?),
        );
    }
    Ok(out)
}

//! `node_load1`, `node_load5`, `node_load15` from /proc/loadavg.

use super::{CollectError, number, parse_error, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("loadavg");
    let text = read(&path)?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < 3 {
        return Err(parse_error(&path, "fewer than 3 fields"));
    }
    Ok(vec![
        MetricFamily::gauge("node_load1", "1m load average.").with_value(number(&path, fields[0])?),
        MetricFamily::gauge("node_load5", "5m load average.").with_value(number(&path, fields[1])?),
        MetricFamily::gauge("node_load15", "15m load average.").with_value(number(&path, fields[2])?),
    ])
}

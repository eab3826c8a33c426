//! `node_filefd_allocated` and `node_filefd_maximum` from /proc/sys/fs/file-nr.

use super::{CollectError, number, parse_error, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("sys/fs/file-nr");
    let text = read(&path)?;
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 3 {
        return Err(parse_error(&path, "expected 3 fields"));
    }
    Ok(vec![
        MetricFamily::gauge("node_filefd_allocated", "File descriptor statistics: allocated.")
            .with_value(number(&path, fields[0])?),
        MetricFamily::gauge("node_filefd_maximum", "File descriptor statistics: maximum.")
            .with_value(number(&path, fields[2])?),
    ])
}

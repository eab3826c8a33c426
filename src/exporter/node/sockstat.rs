//! `node_sockstat_*` gauges from /proc/net/sockstat and sockstat6; `mem` (pages) also as bytes.

use super::{CollectError, number, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let page_size = procfs::page_size() as f64;
    let mut out = Vec::new();
    for (file, required) in [("net/sockstat", true), ("net/sockstat6", false)] {
        let path = config.proc_path.join(file);
        let text = match read(&path) {
            Ok(t) => t,
            Err(e) if required => return Err(e),
            Err(_) => continue, // no IPv6 in this kernel
        };
        for line in text.lines() {
            let Some((proto, rest)) = line.split_once(':') else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            for pair in fields.chunks(2) {
                let [key, value] = pair else { continue };
                let value = number(&path, value)?;
                let name = format!("node_sockstat_{proto}_{key}");
                out.push(
                    MetricFamily::gauge(name.clone(), format!("Number of {proto} sockets in state {key}."))
                        .with_value(value),
                );
                if *key == "mem" {
                    out.push(
                        MetricFamily::gauge(
                            format!("{name}_bytes"),
                            format!("Number of {proto} sockets in state {key}_bytes."),
                        )
                        .with_value(value * page_size),
                    );
                }
            }
        }
    }
    Ok(out)
}

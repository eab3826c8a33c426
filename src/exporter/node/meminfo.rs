//! `node_memory_<Field>[_bytes]` gauges from /proc/meminfo, named as node_exporter 1.5 names
//! them: `(anon)`/`(file)` become `_anon`/`_file`, kB fields are converted and get `_bytes`,
//! unitless fields (HugePages_Total…) keep their bare name.

use super::{CollectError, parse_error, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let path = config.proc_path.join("meminfo");
    let text = read(&path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
        let Ok(mut value) = value.parse::<f64>() else {
            return Err(parse_error(&path, format!("bad value in line {line:?}")));
        };
        let key = key.trim_end_matches(':').replace(" (", "_").replace('(', "_").replace(')', "");
        let name = match parts.next() {
            Some("kB") => {
                value *= 1024.0;
                format!("node_memory_{key}_bytes")
            }
            _ => format!("node_memory_{key}"),
        };
        let help = format!("Memory information field {}.", name.trim_start_matches("node_memory_"));
        out.push(MetricFamily::gauge(name, help).with_value(value));
    }
    if out.is_empty() {
        return Err(parse_error(&path, "no fields"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node_exporter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       16384 kB\nActive(anon):    4 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n",
        )
        .unwrap();
        let mut config = crate::config::parse_str("", None).unwrap().exporter;
        config.proc_path = dir.path().to_path_buf();
        let families = collect(&config).unwrap();
        let names: Vec<_> = families.iter().map(|f| (f.name.as_str(), f.samples[0].value)).collect();
        assert_eq!(
            names,
            vec![
                ("node_memory_MemTotal_bytes", 16384.0 * 1024.0),
                ("node_memory_Active_anon_bytes", 4096.0),
                ("node_memory_HugePages_Total", 0.0),
                ("node_memory_Hugepagesize_bytes", 2048.0 * 1024.0),
            ]
        );
    }
}

//! The textfile collector: `*.prom` files in `textfile_directory`, as node_exporter reads
//! them. A file that cannot be read or parsed, or that carries client-side timestamps, is
//! skipped whole and raises `node_textfile_scrape_error`; the scrape itself always answers.

use super::CollectError;
use crate::config::ExporterConfig;
use crate::exposition::{self, MetricFamily, MetricType, Sample};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::UNIX_EPOCH;

fn suffix_of(family: &str, sample: &str) -> &'static str {
    match sample.strip_prefix(family) {
        Some("_bucket") => "_bucket",
        Some("_sum") => "_sum",
        Some("_count") => "_count",
        _ => "",
    }
}

/// Converts one parsed file; every sample of a family gets the union of its label names
/// (missing ones empty), as node_exporter's convertMetricFamily does.
fn convert(path: &Path, text: &str) -> Result<Vec<MetricFamily>, String> {
    let parsed = exposition::parse_text(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for family in parsed {
        if family.samples.iter().any(|s| s.timestamp_ms.is_some()) {
            return Err(format!(
                "textfile {:?} contains unsupported client-side timestamps, skipping entire file",
                path.display().to_string()
            ));
        }
        let names: BTreeSet<&str> =
            family.samples.iter().flat_map(|s| s.labels.iter().map(|(n, _)| n.as_str())).collect();
        let help = family.help.clone().unwrap_or_else(|| format!("Metric read from {}", path.display()));
        let mut converted = MetricFamily::new(family.name.clone(), help, family.kind);
        for s in &family.samples {
            let mut labels: Vec<(String, String)> = names
                .iter()
                .map(|n| {
                    let v = s.labels.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
                    (n.to_string(), v)
                })
                .collect();
            labels.sort();
            let suffix = match family.kind {
                MetricType::Histogram | MetricType::Summary => suffix_of(&family.name, &s.name),
                _ => "",
            };
            converted.samples.push(Sample { suffix, labels, value: s.value, timestamp_ms: None });
        }
        out.push(converted);
    }
    Ok(out)
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let mut errored = false;
    let mut out = Vec::new();
    let mut mtime =
        MetricFamily::gauge("node_textfile_mtime_seconds", "Unixtime mtime of textfiles successfully read.");
    if let Some(dir) = &config.textfile_directory {
        match std::fs::read_dir(dir) {
            Err(err) => {
                tracing::warn!(directory = %dir.display(), error = %err, "textfile directory unreadable");
                errored = true;
            }
            Ok(entries) => {
                let mut files: Vec<_> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "prom"))
                    .collect();
                files.sort();
                for path in files {
                    let result = std::fs::read_to_string(&path)
                        .map_err(|e| e.to_string())
                        .and_then(|text| convert(&path, &text))
                        .and_then(|families| {
                            let modified = std::fs::metadata(&path)
                                .and_then(|m| m.modified())
                                .map_err(|e| e.to_string())?;
                            let secs = modified.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                            Ok((families, secs))
                        });
                    match result {
                        Ok((families, secs)) => {
                            out.extend(families);
                            mtime.add(&[("file", path.display().to_string())], secs as f64);
                        }
                        Err(err) => {
                            tracing::warn!(file = %path.display(), error = %err, "textfile skipped");
                            errored = true;
                        }
                    }
                }
            }
        }
    }
    out.push(mtime);
    out.push(
        MetricFamily::gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
        )
        .with_value(if errored { 1.0 } else { 0.0 }),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_fills_missing_labels() {
        let f = convert(Path::new("/x/a.prom"), "# TYPE r counter\nr{a=\"1\"} 1\nr{b=\"2\"} 2\n").unwrap();
        assert_eq!(f[0].help, "Metric read from /x/a.prom");
        assert_eq!(f[0].samples[0].labels, vec![("a".into(), "1".into()), ("b".into(), "".into())]);
        assert_eq!(f[0].samples[1].labels, vec![("a".into(), "".into()), ("b".into(), "2".into())]);
    }

    #[test]
    fn timestamps_and_garbage_reject_the_file() {
        assert!(convert(Path::new("t.prom"), "x 1 1000\n").unwrap_err().contains("client-side timestamps"));
        assert!(convert(Path::new("t.prom"), "x{ 1\n").is_err());
    }
}

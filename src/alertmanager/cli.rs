//! `obsd alertmanager check` (amtool check-config) and `obsd alertmanager routes-test`
//! (amtool config routes test): the same verdicts and the same lines on the same files.

use crate::config::alertmanager::parse_in;
use crate::model::Labels;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Checks each alertmanager.yml as amtool does: 0 when every file is valid, 1 otherwise.
pub fn check_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut failed = 0;
    for path in files {
        let _ = write!(out, "Checking '{}'", path.display());
        let result = std::fs::read_to_string(path)
            .map_err(|e| format!("open {}: {e}", path.display()))
            .and_then(|text| {
                let base = path.parent().unwrap_or(Path::new("."));
                parse_in(&text, base).map_err(|e| e.to_string()).map(|c| (c, text))
            });
        match result {
            Ok((config, text)) => {
                let templates = serde_norway::from_str::<serde_norway::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("templates").and_then(|t| t.as_sequence().map(Vec::len)))
                    .unwrap_or(0);
                let _ = writeln!(out, "  SUCCESS");
                let _ = writeln!(out, "Found:");
                let _ = writeln!(out, " - global config");
                let _ = writeln!(out, " - route");
                let _ = writeln!(out, " - {} inhibit rules", config.inhibit_rules.len());
                let _ = writeln!(out, " - {} receivers", config.receivers.len());
                let _ = writeln!(out, " - {templates} templates");
                for w in &config.warnings {
                    let _ = writeln!(err, "  WARNING: {w}");
                }
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(out, "  FAILED: {}: {e}", path.display());
            }
        }
        let _ = writeln!(out);
    }
    if failed > 0 {
        let _ = writeln!(err, "obsd: error: failed to validate {failed} file(s)");
        1
    } else {
        0
    }
}

/// The receivers an alert with `labels` (`name=value` each) goes to, comma-separated.
pub fn routes_test(config: &Path, labels: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "obsd: error: {}: {e}", config.display());
            return 1;
        }
    };
    let parsed = match parse_in(&text, config.parent().unwrap_or(Path::new("."))) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "obsd: error: {}: {e}", config.display());
            return 1;
        }
    };
    let mut pairs = Vec::new();
    for l in labels {
        match crate::config::alertmanager::matchers::parse_matcher(l) {
            Ok(m) if m.op == crate::model::MatchOp::Equal => pairs.push((m.name.clone(), m.value.clone())),
            Ok(_) => {
                let _ = writeln!(err, "obsd: error: {l:?}: labels must be name=value");
                return 1;
            }
            Err(e) => {
                let _ = writeln!(err, "obsd: error: {e}");
                return 1;
            }
        }
    }
    let labels = Labels::from_pairs(pairs);
    let receivers: Vec<&str> = parsed.route.matching(&labels).iter().map(|r| r.receiver.as_str()).collect();
    let _ = writeln!(out, "{}", receivers.join(","));
    0
}

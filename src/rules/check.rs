//! `obsd rules check`: `promtool check rules` for obsd's rule reader — the same files accepted
//! and refused, the same lines printed, the same exit status (0 good, 1 a file refused, 3 a
//! lint finding with `--lint-fatal`).

use super::file::{duplicate_recording_rules, read_rule_file};
use std::io::Write;
use std::path::PathBuf;

/// Checks each file in turn as promtool does: a report on `out`, problems on `err`.
pub fn check_files(
    files: &[PathBuf],
    lint_duplicates: bool,
    lint_fatal: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut failed = false;
    let mut lint_found = false;
    for path in files {
        let _ = writeln!(out, "Checking {}", path.display());
        match read_rule_file(path) {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                let duplicates =
                    if lint_duplicates { duplicate_recording_rules(&groups) } else { Vec::new() };
                if duplicates.is_empty() {
                    let _ = writeln!(out, "  SUCCESS: {rules} rules found");
                } else {
                    lint_found = true;
                    let _ = writeln!(err, "  FAILED:");
                    let _ = writeln!(err, "lint error {} duplicate rule(s) found.", duplicates.len());
                    for (metric, labels) in &duplicates {
                        let _ = writeln!(err, "Metric: {metric}\nLabel(s):");
                        for (n, v) in labels {
                            let _ = writeln!(err, "\t{n}: {v}");
                        }
                    }
                    let _ = writeln!(err, "Might cause inconsistency while recording expressions");
                }
            }
            Err(problems) => {
                failed = true;
                let _ = writeln!(err, "  FAILED:");
                for p in problems {
                    let _ = writeln!(err, "{p}");
                }
            }
        }
        let _ = writeln!(out);
    }
    if failed {
        1
    } else if lint_found && lint_fatal {
        3
    } else {
        0
    }
}

use super::{MetricFamily, escape_label_value, format_go_float};
use std::fmt::Write;

pub fn escape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes families in text format 0.0.4. Families without samples are skipped, as client_golang
/// does, so promtool never sees a TYPE line with nothing under it.
pub fn write_families(out: &mut String, families: &[MetricFamily]) {
    for family in families {
        if family.samples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(&family.name);
            out.push_str(sample.suffix);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&format_go_float(sample.value));
            if let Some(ts) = sample.timestamp_ms {
                let _ = write!(out, " {ts}");
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::MetricFamily;

    #[test]
    fn writes_help_type_and_escaped_labels() {
        let mut f = MetricFamily::gauge("node_x", "A \\ help\nline.");
        f.add(&[("device", "a\"b\\c\nd")], 1e6);
        let mut out = String::new();
        write_families(&mut out, &[f, MetricFamily::counter("empty_total", "none")]);
        assert_eq!(
            out,
            "# HELP node_x A \\\\ help\\nline.\n# TYPE node_x gauge\nnode_x{device=\"a\\\"b\\\\c\\nd\"} 1e+06\n"
        );
    }
}

//! What a plugin printed, checked before any of it reaches `/metrics`: the interface header,
//! the strict text-format parser, then the rules a scrape target must follow. One bad line
//! rejects the plugin's whole output, so a half-broken plugin is visible as down, not as a
//! silently thinner set of series.

use crate::exposition::{self, MetricFamily, MetricType, Sample};
use std::collections::{BTreeSet, HashMap};

/// The interface version this obsd speaks; plugins/README.md describes it.
pub const INTERFACE_VERSION: u32 = 1;
/// The first line of every plugin's output.
pub const HEADER_PREFIX: &str = "# obsd-plugin-interface ";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutputError {
    #[error("output is not UTF-8 (byte {0})")]
    NotUtf8(usize),
    #[error("output does not start with \"{HEADER_PREFIX}{INTERFACE_VERSION}\"")]
    MissingHeader,
    #[error("plugin speaks interface {0:?}; this obsd speaks {INTERFACE_VERSION}")]
    UnsupportedInterface(String),
    #[error("invalid exposition: {0}")]
    Parse(#[from] exposition::ParseError),
    #[error("line {line}: {message}")]
    Rule { line: usize, message: String },
    #[error("family {0:?} is already exported by {1}")]
    Collision(String, String),
}

impl OutputError {
    /// The `reason` label of obsd_plugin_errors_total.
    pub fn reason(&self) -> &'static str {
        match self {
            OutputError::MissingHeader | OutputError::UnsupportedInterface(_) => "interface",
            OutputError::Collision(..) => "collision",
            _ => "invalid_output",
        }
    }
}

/// Names a plugin may not export: node_exporter's namespace and obsd's own.
pub fn reserved_prefix(name: &str) -> Option<&'static str> {
    ["node_", "obsd_"].into_iter().find(|p| name.starts_with(p))
}

fn suffix(family: &MetricFamily, sample: &str) -> Option<&'static str> {
    let rest = sample.strip_prefix(family.name.as_str())?;
    ["", "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gsum", "_gcount"]
        .into_iter()
        .find(|s| *s == rest)
}

/// Parses and checks a plugin's stdout. `builtin` holds the family names the exporter's own
/// collectors emit; a plugin family with one of those names is rejected as a collision.
pub fn validate(
    plugin: &str,
    stdout: &[u8],
    builtin: &BTreeSet<String>,
) -> Result<Vec<MetricFamily>, OutputError> {
    let text = std::str::from_utf8(stdout).map_err(|e| OutputError::NotUtf8(e.valid_up_to()))?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let version = first.strip_prefix(HEADER_PREFIX).ok_or(OutputError::MissingHeader)?.trim();
    if version != INTERFACE_VERSION.to_string() {
        return Err(OutputError::UnsupportedInterface(version.to_string()));
    }
    let parsed = exposition::parse_text(text)?;
    // The parser keeps no line numbers, but it keeps the order of samples of one name, so the
    // n-th sample named x came from the n-th sample line that starts with x.
    let mut lines_by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
        lines_by_name.entry(&line[..end]).or_default().push(i + 1);
    }
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut line_of = |name: &str| {
        let n = used.entry(name.to_string()).or_insert(0);
        *n += 1;
        lines_by_name.get(name).and_then(|l| l.get(*n - 1)).copied().unwrap_or(1)
    };
    let rule = |line: usize, message: String| OutputError::Rule { line, message };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for family in parsed {
        if family.samples.is_empty() {
            continue;
        }
        if let Some(prefix) = reserved_prefix(&family.name) {
            return Err(rule(
                line_of(&family.samples[0].name),
                format!("family {:?} uses the reserved prefix {prefix:?}", family.name),
            ));
        }
        if builtin.contains(&family.name) {
            return Err(OutputError::Collision(family.name.clone(), "the exporter's collectors".into()));
        }
        let help = family.help.clone().unwrap_or_else(|| format!("Metric from the {plugin} plugin."));
        let mut converted = MetricFamily::new(family.name.clone(), help, family.kind);
        for s in &family.samples {
            let line = line_of(&s.name);
            if s.timestamp_ms.is_some() {
                return Err(rule(line, format!("{}: client-side timestamps are not allowed", s.name)));
            }
            if let Some((name, _)) = s.labels.iter().find(|(n, _)| n.starts_with("__")) {
                return Err(rule(
                    line,
                    format!("{}: label name {name:?} is reserved (starts with __)", s.name),
                ));
            }
            let Some(suffix) = suffix(&converted, &s.name) else {
                return Err(rule(
                    line,
                    format!("sample {:?} does not belong to family {:?}", s.name, family.name),
                ));
            };
            if family.kind == MetricType::Histogram
                && suffix == "_bucket"
                && !s.labels.iter().any(|(n, _)| n == "le")
            {
                return Err(rule(line, format!("{}: histogram bucket without an le label", s.name)));
            }
            let mut key: Vec<&(String, String)> = s.labels.iter().collect();
            key.sort();
            if !seen.insert(format!("{}{key:?}", s.name)) {
                return Err(rule(line, format!("duplicate series {}{}", s.name, render_labels(&s.labels))));
            }
            converted.samples.push(Sample {
                suffix,
                labels: s.labels.clone(),
                value: s.value,
                timestamp_ms: None,
            });
        }
        out.push(converted);
    }
    Ok(out)
}

fn render_labels(labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> =
        labels.iter().map(|(n, v)| format!("{n}=\"{}\"", exposition::escape_label_value(v))).collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Vec<MetricFamily>, OutputError> {
        let builtin: BTreeSet<String> = ["process_cpu_seconds_total".to_string()].into();
        validate("t", text.as_bytes(), &builtin)
    }

    #[test]
    fn accepts_a_valid_output_and_keeps_types_and_suffixes() {
        let f = check(
            "# obsd-plugin-interface 1\n# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\n\
             app_requests_total{code=\"200\"} 3\napp_requests_total{code=\"500\"} 1\n\
             # TYPE lat histogram\nlat_bucket{le=\"1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 3\nlat_count 2\nloose 1\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].kind, MetricType::Counter);
        assert_eq!(f[0].help, "Requests.");
        assert_eq!(
            f[1].samples.iter().map(|s| s.suffix).collect::<Vec<_>>(),
            ["_bucket", "_bucket", "_sum", "_count"]
        );
        assert_eq!(f[2].help, "Metric from the t plugin.");
    }

    #[test]
    fn rejects_each_rule_with_a_reason() {
        let h = "# obsd-plugin-interface 1\n";
        let cases: &[(&str, &str, &str)] = &[
            ("x 1\n", "interface", "does not start"),
            ("# obsd-plugin-interface 2\nx 1\n", "interface", "interface \"2\""),
            ("bad{ 1\n", "invalid_output", "line 2"),
            ("x{a=\"1\"} 1\nx{a=\"1\"} 2\n", "invalid_output", "duplicate series x{a=\"1\"}"),
            ("x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 2\n", "invalid_output", "duplicate series"),
            ("node_cpu_seconds_total 1\n", "invalid_output", "reserved prefix \"node_\""),
            ("obsd_plugin_up 1\n", "invalid_output", "reserved prefix \"obsd_\""),
            ("process_cpu_seconds_total 1\n", "collision", "already exported"),
            ("x 1 1700000000000\n", "invalid_output", "timestamps"),
            ("x{__name__=\"y\"} 1\n", "invalid_output", "reserved"),
            ("# TYPE h histogram\nh_bucket 1\n", "invalid_output", "le label"),
            ("x{1a=\"\"} 1\n", "invalid_output", "label"),
        ];
        for (body, reason, needle) in cases {
            let text = if body.starts_with("# obsd") || *reason == "interface" && body.starts_with('x') {
                body.to_string()
            } else {
                format!("{h}{body}")
            };
            let err = check(&text).unwrap_err();
            assert_eq!(err.reason(), *reason, "{body:?}: {err}");
            assert!(err.to_string().contains(needle), "{body:?}: {err}");
        }
        assert!(matches!(validate("t", b"\xff", &BTreeSet::new()), Err(OutputError::NotUtf8(0))));
    }

    #[test]
    fn rule_errors_name_the_line() {
        let err = check("# obsd-plugin-interface 1\na 1\nb 1\nb 2\n").unwrap_err();
        assert_eq!(err.to_string(), "line 4: duplicate series b");
    }
}

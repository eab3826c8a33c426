//! A strict parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0: every malformed
//! line is an error with its line number. (`prometheus-parse` skips lines it cannot read, which would hide a
//! broken textfile; see the test `prometheus_parse_accepts_garbage`.)

use super::MetricType;
use super::label_limits::{LabelCheck, label_limit_error, label_name_length_error, label_value_length_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text format 0.0.4: timestamps are integer milliseconds.
    Text,
    /// OpenMetrics 1.0: timestamps are float seconds, exemplars, `# EOF` required.
    OpenMetrics,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFamily {
    pub name: String,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub kind: MetricType,
    pub samples: Vec<ParsedSample>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

pub fn is_valid_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && is_name_start(b[0]) && b.iter().all(|c| is_name_char(*c))
}

/// Parses a float as Prometheus's text parser does (Go's strconv.ParseFloat without hex and
/// `_` forms): `NaN`, `Inf` and `Infinity` in any case, and an error for a finite spelling
/// too large for an f64 (Go's ErrRange), which Prometheus reports as a failed scrape rather
/// than storing +Inf.
pub fn parse_value(text: &str) -> Result<f64, String> {
    let invalid = || format!("strconv.ParseFloat: parsing {text:?}: invalid syntax");
    let (sign, body) = match text.as_bytes().first() {
        Some(b'+') => (1.0, &text[1..]),
        Some(b'-') => (-1.0, &text[1..]),
        _ => (1.0, text),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Ok(sign * f64::INFINITY);
    }
    // Go takes no sign on NaN.
    if text.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    if body.is_empty() || body.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') {
        return Err(invalid());
    }
    let v = text.parse::<f64>().map_err(|_| invalid())?;
    if v.is_infinite() {
        return Err(format!("strconv.ParseFloat: parsing {text:?}: value out of range"));
    }
    Ok(v)
}

struct Cursor<'a> {
    /// `s` as text: names and tokens end at ASCII bytes, so they slice it on char boundaries.
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, s: text.as_bytes(), i: 0 }
    }
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn name(&mut self, label: bool) -> Option<&'a str> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let ok = if self.i == start {
                if label { c.is_ascii_alphabetic() || c == b'_' } else { is_name_start(c) }
            } else if label {
                c.is_ascii_alphanumeric() || c == b'_'
            } else {
                is_name_char(c)
            };
            if !ok {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| self.text.get(start..self.i).unwrap_or(""))
    }
    fn quoted(&mut self) -> Result<String, String> {
        if self.peek() != Some(b'"') {
            return Err("expected '\"' to start a label value".into());
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated label value".into()),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'n') => out.push(b'\n'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'"') => out.push(b'"'),
                        other => {
                            return Err(format!(
                                "invalid escape sequence '\\{}' in label value",
                                other.map(|c| c as char).unwrap_or(' ')
                            ));
                        }
                    }
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| "label value is not valid UTF-8".to_string())
    }
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' {
                break;
            }
            self.i += 1;
        }
        self.text.get(start..self.i).unwrap_or("")
    }
}

/// Why a label block was not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LabelError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A [`LabelLimits`] bound, with Prometheus's message.
    #[error("{0}")]
    Limit(String),
    #[error("context deadline exceeded")]
    Deadline,
}

enum BlockError {
    Syntax(String),
    Limit(String),
    Deadline,
}

impl From<String> for BlockError {
    fn from(message: String) -> Self {
        BlockError::Syntax(message)
    }
}

impl From<&str> for BlockError {
    fn from(message: &str) -> Self {
        BlockError::Syntax(message.to_string())
    }
}

impl BlockError {
    /// Where no limits or deadline were given only syntax errors can occur.
    fn message(self) -> String {
        match self {
            BlockError::Syntax(m) | BlockError::Limit(m) => m,
            BlockError::Deadline => "context deadline exceeded".into(),
        }
    }
}

/// Below this many labels a scan finds a duplicate name faster than a hash set.
const SCAN_FOR_DUPLICATES: usize = 16;
/// Labels read between two looks at the clock.
const LABELS_PER_DEADLINE_CHECK: usize = 1024;

fn parse_labels<'a>(
    c: &mut Cursor<'a>,
    check: Option<&LabelCheck>,
) -> Result<Vec<(String, String)>, BlockError> {
    let mut labels = Vec::new();
    if c.peek() != Some(b'{') {
        return Ok(labels);
    }
    let limits = check.map(|k| k.limits).unwrap_or_default();
    let metric = check.map_or("", |k| k.metric);
    let deadline = check.and_then(|k| k.deadline);
    // `__name__` counts towards label_limit; empty values do not, as they are dropped.
    let mut counted = 1;
    // A pairwise check made one series with 100k labels cost ~35 s of CPU per scrape.
    let mut names: Vec<&'a str> = Vec::new();
    let mut seen: std::collections::HashSet<&'a str> = std::collections::HashSet::new();
    c.i += 1;
    loop {
        c.skip_spaces();
        if c.peek() == Some(b'}') {
            c.i += 1;
            break;
        }
        let label = c.name(true).ok_or("expected a label name")?;
        if limits.name_length > 0 && label.len() > limits.name_length {
            return Err(BlockError::Limit(label_name_length_error(metric, label, limits.name_length)));
        }
        c.skip_spaces();
        if c.peek() != Some(b'=') {
            return Err(format!("expected '=' after label name {label:?}").into());
        }
        c.i += 1;
        c.skip_spaces();
        let value = c.quoted()?;
        let duplicate = if names.len() < SCAN_FOR_DUPLICATES {
            names.contains(&label)
        } else {
            if seen.is_empty() {
                seen.extend(names.iter().copied());
            }
            !seen.insert(label)
        };
        if duplicate {
            // Prometheus's text (its head refuses the series at append).
            return Err(format!("label name {label:?} is not unique: invalid sample").into());
        }
        if limits.value_length > 0 && value.len() > limits.value_length {
            return Err(BlockError::Limit(label_value_length_error(
                metric,
                label,
                &value,
                limits.value_length,
            )));
        }
        if !value.is_empty() && label != crate::model::labels::METRIC_NAME {
            counted += 1;
            if limits.count > 0 && counted > limits.count {
                return Err(BlockError::Limit(label_limit_error(metric, counted, limits.count)));
            }
        }
        names.push(label);
        labels.push((label.to_string(), value));
        if labels.len().is_multiple_of(LABELS_PER_DEADLINE_CHECK)
            && deadline.is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(BlockError::Deadline);
        }
        c.skip_spaces();
        match c.peek() {
            Some(b',') => c.i += 1,
            Some(b'}') => {
                c.i += 1;
                break;
            }
            _ => return Err("expected ',' or '}' after a label".into()),
        }
    }
    Ok(labels)
}

fn parse_timestamp(text: &str, format: Format) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a valid timestamp");
    match format {
        Format::Text => text.parse::<i64>().map_err(|_| bad()),
        Format::OpenMetrics => {
            let secs = text.parse::<f64>().map_err(|_| bad())?;
            if !secs.is_finite() {
                return Err(bad());
            }
            Ok((secs * 1000.0).round() as i64)
        }
    }
}

/// One sample line, read without allocating its labels: a scrape looks its `series` text up
/// in a cache and parses the labels only for text it has not seen (as Prometheus does).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleLine<'a> {
    pub name: &'a str,
    /// The metric name and label block exactly as written; equal text means equal labels.
    pub series: &'a str,
    label_block: &'a str,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar>,
    /// Index into [`ExpositionReader::families`].
    pub family: usize,
    pub line: usize,
}

impl SampleLine<'_> {
    /// The labels of the line, `__name__` not included; duplicate names are an error.
    pub fn labels(&self) -> Result<Vec<(String, String)>, ParseError> {
        let mut c = Cursor::new(self.label_block);
        parse_labels(&mut c, None).map_err(|e| ParseError { line: self.line, message: e.message() })
    }

    /// As [`Self::labels`], stopping at the first label past `check`'s limits or deadline.
    pub fn labels_checked(&self, check: &LabelCheck) -> Result<Vec<(String, String)>, LabelError> {
        let mut c = Cursor::new(self.label_block);
        parse_labels(&mut c, Some(check)).map_err(|e| match e {
            BlockError::Syntax(message) => LabelError::Parse(ParseError { line: self.line, message }),
            BlockError::Limit(message) => LabelError::Limit(message),
            BlockError::Deadline => LabelError::Deadline,
        })
    }
}

/// Steps over a label block, checking only its quoting; [`parse_labels`] checks the rest.
fn skip_label_block(c: &mut Cursor) -> Result<(), String> {
    if c.peek() != Some(b'{') {
        return Ok(());
    }
    let mut quoted = false;
    while let Some(b) = c.peek() {
        c.i += 1;
        match (quoted, b) {
            (true, b'\\') => c.i += 1,
            (_, b'"') => quoted = !quoted,
            (false, b'}') => return Ok(()),
            _ => {}
        }
    }
    Err(if quoted { "unterminated label value" } else { "expected ',' or '}' after a label" }.into())
}

fn parse_sample_line<'a>(line: &'a str, line_no: usize, format: Format) -> Result<SampleLine<'a>, String> {
    let mut c = Cursor::new(line);
    let name = c.name(false).ok_or("expected a metric name")?;
    if format == Format::Text {
        c.skip_spaces();
    }
    let block_start = c.i;
    skip_label_block(&mut c)?;
    let series = &line[..c.i];
    let label_block = &line[block_start..c.i];
    c.skip_spaces();
    let value_text = c.token();
    let value = parse_value(value_text)?;
    c.skip_spaces();
    let mut timestamp_ms = None;
    let mut exemplar = None;
    match c.token() {
        "" => {}
        "#" if format == Format::OpenMetrics => exemplar = Some(parse_exemplar(&mut c)?),
        t => timestamp_ms = Some(parse_timestamp(t, format)?),
    }
    c.skip_spaces();
    if exemplar.is_none() && format == Format::OpenMetrics && c.peek() == Some(b'#') {
        let _ = c.token();
        exemplar = Some(parse_exemplar(&mut c)?);
    }
    c.skip_spaces();
    if c.peek().is_some() {
        return Err("unexpected text after the sample".into());
    }
    Ok(SampleLine { name, series, label_block, value, timestamp_ms, exemplar, family: 0, line: line_no })
}

fn parse_exemplar(c: &mut Cursor) -> Result<Exemplar, String> {
    c.skip_spaces();
    if c.peek() != Some(b'{') {
        return Err("expected '{' to start an exemplar's labels".into());
    }
    let labels = parse_labels(c, None).map_err(BlockError::message)?;
    let runes: usize = labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
    if runes > 128 {
        return Err("exemplar labels exceed 128 UTF-8 characters".into());
    }
    c.skip_spaces();
    let value_text = c.token();
    let value = parse_value(value_text)?;
    c.skip_spaces();
    let timestamp_ms = match c.token() {
        "" => None,
        t => Some(parse_timestamp(t, Format::OpenMetrics)?),
    };
    Ok(Exemplar { labels, value, timestamp_ms })
}

/// Whether a sample named `<family><suffix>` belongs to a family of this type.
fn suffix_belongs(kind: MetricType, suffix: &str) -> bool {
    match kind {
        MetricType::Histogram => matches!(suffix, "_bucket" | "_sum" | "_count"),
        MetricType::Summary => matches!(suffix, "_sum" | "_count" | "_created"),
        MetricType::Counter => matches!(suffix, "_total" | "_created"),
        MetricType::GaugeHistogram => matches!(suffix, "_bucket" | "_gsum" | "_gcount"),
        MetricType::Info => suffix == "_info",
        _ => false,
    }
}

const FAMILY_SUFFIXES: [&str; 8] =
    ["_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount", "_info"];

/// Parses a text format 0.0.4 exposition.
pub fn parse_text(text: &str) -> Result<Vec<ParsedFamily>, ParseError> {
    parse_exposition(text, Format::Text)
}

/// A family's metadata as read so far.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMeta {
    pub name: String,
    pub help: Option<String>,
    pub unit: Option<String>,
    pub kind: MetricType,
    pub samples: usize,
}

/// Reads an exposition line by line: metadata lines update [`ExpositionReader::families`],
/// sample lines come out of [`ExpositionReader::next_sample`] one at a time.
pub struct ExpositionReader<'a> {
    text: &'a str,
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    format: Format,
    saw_eof: bool,
    families: Vec<FamilyMeta>,
    /// Index into `families` by name (names are unique there): a scan per sample line made an
    /// exposition of many families quadratic.
    by_name: std::collections::HashMap<String, usize>,
}

impl<'a> ExpositionReader<'a> {
    pub fn new(text: &'a str, format: Format) -> Self {
        ExpositionReader {
            text,
            lines: text.lines().enumerate(),
            format,
            saw_eof: false,
            families: Vec::new(),
            by_name: std::collections::HashMap::new(),
        }
    }

    /// The family a sample belongs to: the latest one it names exactly or by a suffix its type
    /// allows.
    fn family_of(&self, sample: &str) -> Option<usize> {
        let mut found = self.by_name.get(sample).copied();
        for suffix in FAMILY_SUFFIXES {
            if let Some(base) = sample.strip_suffix(suffix)
                && let Some(&i) = self.by_name.get(base)
                && suffix_belongs(self.families[i].kind, suffix)
            {
                found = found.max(Some(i));
            }
        }
        found
    }

    fn add_family(&mut self, name: &str) -> usize {
        self.families.push(FamilyMeta {
            name: name.to_string(),
            help: None,
            unit: None,
            kind: MetricType::Untyped,
            samples: 0,
        });
        self.by_name.insert(name.to_string(), self.families.len() - 1);
        self.families.len() - 1
    }

    /// Families in input order (a sample with no metadata makes an untyped family).
    pub fn families(&self) -> &[FamilyMeta] {
        &self.families
    }

    pub fn into_families(self) -> Vec<FamilyMeta> {
        self.families
    }

    /// The next sample, `None` at the end of a well-formed text.
    pub fn next_sample(&mut self) -> Result<Option<SampleLine<'a>>, ParseError> {
        let om = self.format == Format::OpenMetrics;
        while let Some((idx, raw)) = self.lines.next() {
            let line_no = idx + 1;
            let err = |message: String| ParseError { line: line_no, message };
            if self.saw_eof {
                if raw.is_empty() && idx + 1 == self.text.lines().count() {
                    continue;
                }
                return Err(err("unexpected data after # EOF".into()));
            }
            let line = if om { raw } else { raw.trim_start() };
            if line.trim().is_empty() {
                if om {
                    return Err(err("empty line in OpenMetrics".into()));
                }
                continue;
            }
            if om && line == "# EOF" {
                self.saw_eof = true;
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                self.metadata_line(comment, line, om).map_err(err)?;
                continue;
            }
            let mut sample = parse_sample_line(line, line_no, self.format).map_err(err)?;
            sample.family = match self.family_of(sample.name) {
                Some(i) => i,
                None => self.add_family(sample.name),
            };
            self.families[sample.family].samples += 1;
            return Ok(Some(sample));
        }
        if om && !self.saw_eof {
            return Err(ParseError {
                line: self.text.lines().count(),
                message: "data does not end with # EOF".into(),
            });
        }
        Ok(None)
    }

    fn metadata_line(&mut self, comment: &str, line: &str, om: bool) -> Result<(), String> {
        let mut parts = comment.trim_start().splitn(3, [' ', '\t']);
        let keyword = parts.next().unwrap_or("");
        if keyword != "HELP" && keyword != "TYPE" && !(om && keyword == "UNIT") {
            if om {
                return Err(format!("unexpected comment {line:?} in OpenMetrics"));
            }
            return Ok(());
        }
        let name = parts.next().unwrap_or("").trim();
        if !is_valid_metric_name(name) {
            return Err(format!("invalid metric name {name:?} in {keyword} line"));
        }
        let rest = parts.next().unwrap_or("").trim();
        let index = match self.by_name.get(name) {
            Some(&i) => i,
            None => self.add_family(name),
        };
        let family = &mut self.families[index];
        if keyword == "UNIT" {
            family.unit = Some(rest.to_string());
        } else if keyword == "HELP" {
            // Prometheus takes a repeated HELP or TYPE line, or one after the family's samples,
            // and keeps the target up; the last one wins, as in its metadata cache.
            family.help = Some(if om {
                unescape_om_help(rest)
            } else {
                rest.replace("\\n", "\n").replace("\\\\", "\\")
            });
        } else {
            family.kind = match rest {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "summary" => MetricType::Summary,
                "untyped" if !om => MetricType::Untyped,
                "unknown" if om => MetricType::Untyped,
                "gaugehistogram" if om => MetricType::GaugeHistogram,
                "info" if om => MetricType::Info,
                "stateset" if om => MetricType::StateSet,
                other => return Err(format!("unknown metric type {other:?}")),
            };
        }
        Ok(())
    }
}

/// Parses a whole exposition; families appear in input order.
pub fn parse_exposition(text: &str, format: Format) -> Result<Vec<ParsedFamily>, ParseError> {
    let mut reader = ExpositionReader::new(text, format);
    let mut samples: Vec<Vec<ParsedSample>> = Vec::new();
    while let Some(line) = reader.next_sample()? {
        if samples.len() <= line.family {
            samples.resize_with(line.family + 1, Vec::new);
        }
        let labels = line.labels()?;
        samples[line.family].push(ParsedSample {
            name: line.name.to_string(),
            labels,
            value: line.value,
            timestamp_ms: line.timestamp_ms,
            exemplar: line.exemplar,
        });
    }
    samples.resize_with(reader.families().len(), Vec::new);
    Ok(reader
        .into_families()
        .into_iter()
        .zip(samples)
        .map(|(f, samples)| ParsedFamily { name: f.name, help: f.help, unit: f.unit, kind: f.kind, samples })
        .collect())
}

fn unescape_om_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::LabelLimits;

    #[test]
    fn parses_families_labels_escapes_and_timestamps() {
        let text = "# HELP a_total Some \\\\ help\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\n\"} 3 1700000000000\n\
                    # TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\nloose NaN\n";
        let f = parse_text(text).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].help.as_deref(), Some("Some \\ help"));
        assert_eq!(f[0].samples[0].labels[1].1, "q\"\n");
        assert_eq!(f[0].samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(f[1].kind, MetricType::Histogram);
        assert_eq!(f[1].samples.len(), 3);
        assert!(f[2].samples[0].value.is_nan());
    }

    #[test]
    fn rejects_malformed_lines_with_line_numbers() {
        for (text, line) in [
            ("ok 1\nbad{ 1\n", 2),
            ("x 1 2 3\n", 1),
            ("x{a=\"1\",a=\"2\"} 1\n", 1),
            ("# TYPE x bogus\n", 1),
            ("x abc\n", 1),
            ("x{a=\"\\q\"} 1\n", 1),
            ("1x 1\n", 1),
        ] {
            let e = parse_text(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }

    #[test]
    fn parses_openmetrics_with_exemplars_units_and_eof() {
        let text = "# TYPE req counter\n# UNIT req requests\n# HELP req Requests.\nreq_total{m=\"get\"} 17 1700000000.5 # {trace_id=\"abc\"} 1 1700000000.25\n\
                    req_created{m=\"get\"} 1.6e9\n# TYPE lat histogram\nlat_bucket{le=\"0.1\"} 3 # {trace_id=\"t1\"} 0.05\n\
                    lat_bucket{le=\"+Inf\"} 4\nlat_sum 0.4\nlat_count 4\n# EOF\n";
        let f = parse_exposition(text, Format::OpenMetrics).unwrap();
        assert_eq!(f[0].kind, MetricType::Counter);
        assert_eq!(f[0].unit.as_deref(), Some("requests"));
        assert_eq!(f[0].samples.len(), 2, "req_total and req_created belong to req");
        let s = &f[0].samples[0];
        assert_eq!(s.timestamp_ms, Some(1_700_000_000_500));
        let ex = s.exemplar.as_ref().unwrap();
        assert_eq!(
            (ex.labels[0].1.as_str(), ex.value, ex.timestamp_ms),
            ("abc", 1.0, Some(1_700_000_000_250))
        );
        assert_eq!(f[1].samples[0].exemplar.as_ref().unwrap().labels[0].1, "t1");
        assert!(parse_exposition("a 1\n", Format::OpenMetrics).unwrap_err().message.contains("# EOF"));
        assert!(parse_exposition("a 1\n# EOF\nb 2\n", Format::OpenMetrics).is_err());
        assert!(
            parse_exposition("a 1 # {x=\"y\"} 1\n", Format::Text).is_err(),
            "exemplars only in OpenMetrics"
        );
    }

    #[test]
    fn values_parse_as_prometheus_parses_them() {
        assert_eq!(
            parse_value("1e309").unwrap_err(),
            "strconv.ParseFloat: parsing \"1e309\": value out of range"
        );
        assert!(parse_value("-1e309").is_err());
        assert_eq!(parse_value("1e-400"), Ok(0.0), "Go rounds an underflow to 0 without an error");
        for (text, want) in
            [("Infinity", f64::INFINITY), ("-INF", f64::NEG_INFINITY), ("+inf", f64::INFINITY)]
        {
            assert_eq!(parse_value(text), Ok(want), "{text}");
        }
        assert!(parse_value("nan").unwrap().is_nan());
        for bad in ["+nan", "0x1p3", "1_000", "", "1e", "infinit"] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
        let e = parse_text("ok 1\nm 1e309\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("value out of range"), "{e}");
    }

    #[test]
    fn metadata_after_samples_is_taken_as_prometheus_takes_it() {
        let f = parse_text("m 1\n# TYPE m counter\n# HELP m first\n# HELP m second\nm 2\n").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].help.as_deref(), f[0].samples.len()),
            (MetricType::Counter, Some("second"), 2)
        );
        let f = parse_exposition("a_total 1\n# TYPE a counter\n# EOF\n", Format::OpenMetrics).unwrap();
        assert_eq!(f.iter().map(|f| f.samples.len()).sum::<usize>(), 1);
    }

    fn wide_line(labels: usize) -> String {
        let mut line = String::from("wide{");
        for i in 0..labels {
            line.push_str(&format!("l{i}=\"v\","));
        }
        line.push_str("} 1\n");
        line
    }

    fn first_sample(text: &str) -> SampleLine<'_> {
        ExpositionReader::new(text, Format::Text).next_sample().unwrap().unwrap()
    }

    #[test]
    fn label_limits_stop_the_parse_at_the_first_violation() {
        let text = wide_line(100_000);
        let line = first_sample(&text);
        let check = |limits| LabelCheck { limits, metric: "wide", deadline: None };
        let e = line.labels_checked(&check(LabelLimits { count: 64, ..Default::default() })).unwrap_err();
        // 65 (not 100,001): the parse stopped at the first label over the limit.
        assert_eq!(
            e,
            LabelError::Limit("label_limit exceeded (metric: wide, number of labels: 65, limit: 64)".into())
        );
        let e =
            line.labels_checked(&check(LabelLimits { name_length: 3, ..Default::default() })).unwrap_err();
        assert_eq!(
            e.to_string(),
            "label_name_length_limit exceeded (metric: wide, label name: l100, length: 4, limit: 3)",
        );
        let text = "m{a=\"ééé\"} 1\n";
        let e = first_sample(text)
            .labels_checked(&check(LabelLimits { value_length: 5, ..Default::default() }))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "label_value_length_limit exceeded (metric: wide, label name: a, value: \"ééé\", length: 6, limit: 5)",
            "bytes, as Go's len"
        );
        // Empty values are dropped before Prometheus counts labels.
        let text = "m{a=\"1\",b=\"\",c=\"\"} 1\n";
        assert!(
            first_sample(text).labels_checked(&check(LabelLimits { count: 2, ..Default::default() })).is_ok()
        );
    }

    #[test]
    fn a_duplicate_among_many_labels_is_found() {
        let mut text = wide_line(100_000);
        text.insert_str(5, "l99999=\"again\",");
        let e = first_sample(&text).labels().unwrap_err();
        assert_eq!(e.message, "label name \"l99999\" is not unique: invalid sample");
        let e = first_sample("m{a=\"1\",b=\"2\",a=\"3\"} 1\n").labels().unwrap_err();
        assert_eq!(e.message, "label name \"a\" is not unique: invalid sample");
        assert_eq!(first_sample(&wide_line(100_000)).labels().unwrap().len(), 100_000);
    }

    #[test]
    fn a_passed_deadline_stops_a_wide_label_block() {
        let text = wide_line(100_000);
        let check = LabelCheck {
            limits: LabelLimits::default(),
            metric: "wide",
            deadline: Some(std::time::Instant::now()),
        };
        assert_eq!(first_sample(&text).labels_checked(&check).unwrap_err(), LabelError::Deadline);
    }

    #[test]
    fn many_families_keep_their_suffix_rules() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!(
                "# TYPE f{i} histogram\nf{i}_bucket{{le=\"+Inf\"}} 1\nf{i}_sum 1\nf{i}_total 1\n"
            ));
        }
        let f = parse_text(&text).unwrap();
        // `_total` is no histogram suffix: each makes an untyped family of its own.
        assert_eq!(f.len(), 40_000);
        assert_eq!((f[0].name.as_str(), f[0].samples.len(), f[1].name.as_str()), ("f0", 2, "f0_total"));
    }

    #[test]
    fn prometheus_parse_accepts_garbage() {
        // Why obsd parses exposition itself: the prometheus-parse crate drops a line it
        // cannot read without an error, so a broken file would look healthy.
        let lines = ["good 1", "bad{ 1", "worse 1 2 3 4"].iter().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines);
        assert!(scrape.is_ok(), "prometheus-parse reports no error for malformed lines");
        assert!(parse_text("good 1\nbad{ 1\n").is_err());
    }
}

//! A strict parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0: every malformed
//! line is an error with its line number. (`prometheus-parse` skips lines it cannot read, which would hide a
//! broken textfile; see the test `prometheus_parse_accepts_garbage`.)

use super::MetricType;

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

pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Parses a float as Go's strconv.ParseFloat does for exposition values.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => {
            if t.is_empty() || t.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
                return None;
            }
            t.parse::<f64>().ok()
        }
    }
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

fn parse_labels(c: &mut Cursor) -> Result<Vec<(String, String)>, String> {
    let mut labels = Vec::new();
    if c.peek() != Some(b'{') {
        return Ok(labels);
    }
    c.i += 1;
    loop {
        c.skip_spaces();
        if c.peek() == Some(b'}') {
            c.i += 1;
            break;
        }
        let label = c.name(true).ok_or("expected a label name")?.to_string();
        c.skip_spaces();
        if c.peek() != Some(b'=') {
            return Err(format!("expected '=' after label name {label:?}"));
        }
        c.i += 1;
        c.skip_spaces();
        let value = c.quoted()?;
        if labels.iter().any(|(n, _): &(String, String)| n == &label) {
            return Err(format!("duplicate label name {label:?}"));
        }
        labels.push((label, value));
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
        parse_labels(&mut c).map_err(|message| ParseError { line: self.line, message })
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
    let value =
        parse_value(value_text).ok_or_else(|| format!("{value_text:?} is not a valid sample value"))?;
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
    let labels = parse_labels(c)?;
    let runes: usize = labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
    if runes > 128 {
        return Err("exemplar labels exceed 128 UTF-8 characters".into());
    }
    c.skip_spaces();
    let value_text = c.token();
    let value =
        parse_value(value_text).ok_or_else(|| format!("{value_text:?} is not a valid exemplar value"))?;
    c.skip_spaces();
    let timestamp_ms = match c.token() {
        "" => None,
        t => Some(parse_timestamp(t, Format::OpenMetrics)?),
    };
    Ok(Exemplar { labels, value, timestamp_ms })
}

fn family_of(families: &[FamilyMeta], sample: &str) -> Option<usize> {
    families.iter().rposition(|f| {
        f.name == sample
            || match f.kind {
                MetricType::Histogram => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| sample.strip_suffix(s) == Some(f.name.as_str())),
                MetricType::Summary => ["_sum", "_count", "_created"]
                    .iter()
                    .any(|s| sample.strip_suffix(s) == Some(f.name.as_str())),
                MetricType::Counter => {
                    ["_total", "_created"].iter().any(|s| sample.strip_suffix(s) == Some(f.name.as_str()))
                }
                MetricType::GaugeHistogram => ["_bucket", "_gsum", "_gcount"]
                    .iter()
                    .any(|s| sample.strip_suffix(s) == Some(f.name.as_str())),
                MetricType::Info => sample.strip_suffix("_info") == Some(f.name.as_str()),
                _ => false,
            }
    })
}

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
}

impl<'a> ExpositionReader<'a> {
    pub fn new(text: &'a str, format: Format) -> Self {
        ExpositionReader {
            text,
            lines: text.lines().enumerate(),
            format,
            saw_eof: false,
            families: Vec::new(),
        }
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
            sample.family = match family_of(&self.families, sample.name) {
                Some(i) => i,
                None => {
                    self.families.push(FamilyMeta {
                        name: sample.name.to_string(),
                        help: None,
                        unit: None,
                        kind: MetricType::Untyped,
                        samples: 0,
                    });
                    self.families.len() - 1
                }
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
        let family = match self.families.iter().position(|f| f.name == name) {
            Some(i) => &mut self.families[i],
            None => {
                self.families.push(FamilyMeta {
                    name: name.to_string(),
                    help: None,
                    unit: None,
                    kind: MetricType::Untyped,
                    samples: 0,
                });
                let last = self.families.len() - 1;
                &mut self.families[last]
            }
        };
        if keyword == "UNIT" {
            family.unit = Some(rest.to_string());
        } else if keyword == "HELP" {
            if family.help.is_some() {
                return Err(format!("second HELP line for metric name {name:?}"));
            }
            family.help = Some(if om {
                unescape_om_help(rest)
            } else {
                rest.replace("\\n", "\n").replace("\\\\", "\\")
            });
        } else {
            if family.samples > 0 {
                return Err(format!("TYPE line for {name:?} after its samples"));
            }
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
    fn prometheus_parse_accepts_garbage() {
        // Why obsd parses exposition itself: the prometheus-parse crate drops a line it
        // cannot read without an error, so a broken file would look healthy.
        let lines = ["good 1", "bad{ 1", "worse 1 2 3 4"].iter().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines);
        assert!(scrape.is_ok(), "prometheus-parse reports no error for malformed lines");
        assert!(parse_text("good 1\nbad{ 1\n").is_err());
    }
}

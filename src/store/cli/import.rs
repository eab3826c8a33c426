//! `obsd store import`: OpenMetrics text with timestamps checked whole, then written all or
//! nothing, with progress on long files (`promtool tsdb create-blocks-from openmetrics`).

use super::{as_data_dir_owner, cli_options};
use crate::model::Labels;
use crate::store::{Store, StoreOptions, chunk};
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// One parsed OpenMetrics sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub labels: Labels,
    pub value: f64,
    pub t_ms: Option<i64>,
}

/// Parses one OpenMetrics (or text 0.0.4) sample line; comments and blank lines give `None`.
/// Timestamps are seconds with up to millisecond precision; an exemplar after ` # ` is ignored.
pub fn parse_line(line: &str) -> Result<Option<ParsedSample>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let name_end = line.find(['{', ' ']).ok_or("expected a value after the metric name")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("missing metric name".into());
    }
    let mut pairs: Vec<(String, String)> =
        vec![(crate::model::labels::METRIC_NAME.to_string(), name.to_string())];
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let mut consumed = None;
        loop {
            while chars.peek().is_some_and(|&(_, c)| c == ' ' || c == ',') {
                chars.next();
            }
            match chars.peek() {
                Some(&(i, '}')) => {
                    consumed = Some(i + 1);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut lname = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                lname.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {lname:?}: expected '=\"'"));
            }
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some(other) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => break,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("label {lname:?}: unterminated value"));
            }
            pairs.push((lname.trim().to_string(), value));
        }
        let end = consumed.ok_or("unterminated label set")?;
        rest = &after[end..];
    }
    let rest = rest.split(" # ").next().unwrap_or("");
    let mut fields = rest.split_ascii_whitespace();
    let value = parse_value(fields.next().ok_or("missing value")?)?;
    let t_ms = fields.next().map(parse_timestamp).transpose()?;
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(Some(ParsedSample { labels: Labels::from_pairs(pairs), value, t_ms }))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Seconds (decimal) to milliseconds without float rounding for the common case.
fn parse_timestamp(s: &str) -> Result<i64, String> {
    let bad = || format!("bad timestamp {s:?}");
    if s.contains(['e', 'E']) {
        let f: f64 = s.parse().map_err(|_| bad())?;
        return Ok((f * 1000.0).round() as i64);
    }
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let mut ms = 0i64;
    for (i, c) in frac.chars().chain(std::iter::repeat('0')).take(3).enumerate() {
        let d = c.to_digit(10).ok_or_else(bad)? as i64;
        ms += d * 10i64.pow(2 - i as u32);
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let v = int.checked_mul(1000).and_then(|x| x.checked_add(ms)).ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// What checking a whole import file found, before anything is written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CheckedFile {
    pub samples: u64,
    pub series: u64,
    pub mint: Option<i64>,
    pub maxt: Option<i64>,
}

/// Reads the whole file and checks every line: syntax, explicit timestamps, and the `# EOF`
/// that ends an OpenMetrics file (promtool requires it too: without it a file cut short by a
/// failed copy would import as if whole). Nothing is written; any error names file and line.
pub fn check_file(file: &Path, progress: &mut Progress) -> anyhow::Result<CheckedFile> {
    use std::hash::{Hash, Hasher};
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    progress.start("checking", size);
    let mut checked = CheckedFile::default();
    let mut series: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut last: Option<Labels> = None;
    let mut eof_at: Option<usize> = None;
    let mut bytes = 0u64;
    for (i, line) in BufReader::with_capacity(1 << 20, input).lines().enumerate() {
        let at = || format!("{}:{}", file.display(), i + 1);
        let line = line.with_context(|| format!("{}: reading", at()))?;
        bytes += line.len() as u64 + 1;
        if let Some(eof) = eof_at {
            if line.trim().is_empty() {
                continue;
            }
            bail!("{}: unexpected data after `# EOF` (line {eof}); nothing was imported", at());
        }
        if line.trim_end() == "# EOF" {
            eof_at = Some(i + 1);
            continue;
        }
        let parsed = parse_line(&line).map_err(|e| anyhow::anyhow!("{}: {e}; nothing was imported", at()))?;
        let Some(s) = parsed else { continue };
        let Some(t) = s.t_ms else {
            bail!(
                "{}: sample without a timestamp; backfill needs explicit timestamps; nothing was imported",
                at()
            );
        };
        checked.samples += 1;
        checked.mint = Some(checked.mint.map_or(t, |m| m.min(t)));
        checked.maxt = Some(checked.maxt.map_or(t, |m| m.max(t)));
        if last.as_ref() != Some(&s.labels) {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            s.labels.hash(&mut h);
            series.insert(h.finish());
            last = Some(s.labels);
        }
        if checked.samples.is_multiple_of(4096) {
            progress.tick(bytes, || format!("{} samples", checked.samples));
        }
    }
    progress.finish();
    if eof_at.is_none() {
        bail!(
            "{}: does not end with `# EOF` (OpenMetrics requires it; the file may be cut short); nothing was imported",
            file.display()
        );
    }
    checked.series = series.len() as u64;
    Ok(checked)
}

/// `obsd store import --format openmetrics FILE`: all or nothing. The whole file is checked
/// first and nothing is created or written unless every line is good; then it is written.
/// Run as root against a data directory another user owns (the service's), every file the
/// import creates is given to that user, so the service can open the store afterwards.
pub fn import(dir: &Path, file: &Path, format: &str) -> anyhow::Result<()> {
    if format != "openmetrics" {
        bail!("unsupported import format {format:?}; supported: openmetrics");
    }
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let checked = check_file(file, &mut progress)?;
    as_data_dir_owner(dir, true, || write_import(dir, file, &checked, &mut progress))
}

fn write_import(
    dir: &Path,
    file: &Path,
    checked: &CheckedFile,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    // Whole 2 h chunks (they are cut at the range boundary): a backfill is read far more
    // than it is appended to, and a quarter of the chunks is a quarter of sled's per-key cost.
    let opts = StoreOptions { chunk_samples: chunk::MAX_SAMPLES, ..cli_options() };
    let store = Store::open(dir, opts).with_context(|| format!("opening store {}", dir.display()))?;
    let started = Instant::now();
    progress.start("importing", checked.samples);
    let mut app = store.appender();
    let mut total = crate::store::CommitSummary::default();
    let mut rejected = 0usize;
    let mut read = 0u64;
    let mut cached: Option<(Labels, crate::store::SeriesRef)> = None;
    let mut finished: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut series_major = true;
    // The file was checked whole; a failure now is the system's (a full disk) or the file
    // changed since. What was committed stays, and the same import run again completes it.
    let stopped = |read: u64, e: anyhow::Error| {
        e.context(format!(
            "the import of {} stopped while writing, after {read} of {} samples; those stay in the store, and running the same import again completes it (samples already stored are skipped)",
            file.display(),
            checked.samples
        ))
    };
    for (i, line) in BufReader::with_capacity(1 << 20, input).lines().enumerate() {
        let line = line
            .with_context(|| format!("{}:{}: reading", file.display(), i + 1))
            .map_err(|e| stopped(read, e))?;
        if line.trim_end() == "# EOF" {
            break;
        }
        let parsed = parse_line(&line).map_err(|e| {
            stopped(read, anyhow::anyhow!("{}:{}: {e} (the file changed)", file.display(), i + 1))
        })?;
        let Some(s) = parsed else { continue };
        let Some(t) = s.t_ms else {
            return Err(stopped(read, anyhow::anyhow!("{}:{}: the file changed", file.display(), i + 1)));
        };
        read += 1;
        // Consecutive lines of one series are the common case: skip the index lookup.
        let r = match &cached {
            Some((l, r)) if *l == s.labels => r.clone(),
            _ => {
                let r = app.series_ref(&s.labels).map_err(|e| stopped(read, e.into()))?;
                // A series-major file (promtool's and ours) is done with the previous series:
                // closing its chunk now writes every chunk in key order, which sled stores far
                // more tightly than the same chunks scattered over a final cut.
                if let Some((_, prev)) = cached.take()
                    && series_major
                {
                    app.cut_after(&prev);
                    finished.insert(prev.id());
                    series_major = !finished.contains(&r.id());
                }
                cached = Some((s.labels.clone(), r.clone()));
                r
            }
        };
        if app.append_ref(&r, t, s.value).is_err() {
            rejected += 1;
        }
        if app.len() >= 20_000 {
            let sum = std::mem::replace(&mut app, store.appender())
                .commit()
                .map_err(|e| stopped(read, e.into()))?;
            accumulate(&mut total, &sum);
            progress.tick(read, || {
                format!("{read}/{} samples, {} series", checked.samples, store.series_count())
            });
        }
    }
    accumulate(&mut total, &app.commit().map_err(|e| stopped(read, e.into()))?);
    progress.finish();
    let append_elapsed = started.elapsed();
    store.sync()?;
    store.cut_heads()?;
    let series = store.series_count();
    // No compaction afterwards: measured, a sled rewrite of a fresh import is larger (12.0 vs
    // 8.9 bytes/sample with XOR chunks).
    store.close()?;
    let elapsed = started.elapsed();
    println!(
        "imported {} samples ({} rejected as out of order or duplicate) into {} series in {:.3}s ({:.0} samples/s; appends {:.3}s)",
        total.appended,
        rejected + total.out_of_order + total.duplicate,
        series,
        elapsed.as_secs_f64(),
        total.appended as f64 / elapsed.as_secs_f64().max(1e-9),
        append_elapsed.as_secs_f64(),
    );
    if let Some(warning) =
        retention_warning(checked, crate::model::now_ms(), StoreOptions::default().retention)
    {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Retention counts back from the newest sample, as Prometheus's does; once the service stores
/// current data that is now, and whatever the import holds older than the retention before
/// now goes at the next pass. The store does not know the service's configured retention, so
/// this names the default.
pub fn retention_warning(checked: &CheckedFile, now: i64, retention: Duration) -> Option<String> {
    let mint = checked.mint?;
    let retention_ms = retention.as_millis().min(i64::MAX as u128) as i64;
    (mint < now.saturating_sub(retention_ms)).then(|| {
        let date = chrono::DateTime::from_timestamp_millis(mint)
            .map_or_else(|| format!("{mint} ms"), |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        format!(
            "imported samples reach back to {date}, {:.1} days ago; retention counts back from the newest sample, so once the service stores current data a retention_time shorter than that (the default is {:.0}d) deletes the older ones at its next retention pass: raise retention_time in [replica] (or [federation]) first",
            (now - mint) as f64 / 86_400_000.0,
            retention.as_secs_f64() / 86_400.0,
        )
    })
}

/// Progress of a long import on stderr: a bar redrawn in place on a terminal, a line every
/// `interval` otherwise (a log or a pipe). Silent for what ends before the first report is due.
pub struct Progress {
    terminal: bool,
    interval: Duration,
    phase: &'static str,
    total: u64,
    started: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub fn new(terminal: bool) -> Progress {
        let interval = if terminal { Duration::from_millis(200) } else { Duration::from_secs(10) };
        Progress::with_interval(terminal, interval)
    }

    pub fn with_interval(terminal: bool, interval: Duration) -> Progress {
        let now = Instant::now();
        Progress { terminal, interval, phase: "", total: 0, started: now, last: now, drawn: false }
    }

    pub fn start(&mut self, phase: &'static str, total: u64) {
        self.phase = phase;
        self.total = total;
        self.started = Instant::now();
        self.last = self.started;
    }

    /// Reports `done` of the total if a report is due; `detail` is built only then.
    pub fn tick(&mut self, done: u64, detail: impl FnOnce() -> String) {
        let now = Instant::now();
        if now.duration_since(self.last) < self.interval {
            return;
        }
        self.last = now;
        let line = self.line(done, &detail(), now.duration_since(self.started));
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{line}");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Ends the bar's line on a terminal.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }

    /// `importing: [#####     ] 50% 1000/2000 samples, 10 series, 500/s, ETA 2s`.
    pub fn line(&self, done: u64, detail: &str, elapsed: Duration) -> String {
        let fraction = if self.total == 0 { 1.0 } else { (done as f64 / self.total as f64).min(1.0) };
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let left = self.total.saturating_sub(done) as f64 / rate.max(1e-9);
        let eta = if done == 0 { "?".to_string() } else { format!("{}s", left.ceil() as u64) };
        let bar = if self.terminal {
            let filled = (fraction * 20.0) as usize;
            format!("[{}{}] ", "#".repeat(filled), " ".repeat(20 - filled))
        } else {
            String::new()
        };
        // The checking pass counts bytes read, the import samples written.
        let speed = if self.phase == "checking" {
            format!("{:.1} MiB/s", rate / 1_048_576.0)
        } else {
            format!("{rate:.0} samples/s")
        };
        format!("{}: {bar}{:.0}% {detail}, {speed}, ETA {eta}", self.phase, fraction * 100.0)
    }
}

fn accumulate(total: &mut crate::store::CommitSummary, s: &crate::store::CommitSummary) {
    total.appended += s.appended;
    total.out_of_order += s.out_of_order;
    total.duplicate += s.duplicate;
    total.noop += s.noop;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openmetrics_lines() {
        let s = parse_line(r#"http_requests_total{code="200",path="/a \"b\"\n"} 1027 1395066363.5"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.labels.get("code"), Some("200"));
        assert_eq!(s.labels.get("path"), Some("/a \"b\"\n"));
        assert_eq!(s.labels.name(), Some("http_requests_total"));
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.t_ms, Some(1_395_066_363_500));
        let s = parse_line("up 1").unwrap().unwrap();
        assert_eq!(s.t_ms, None);
        let s = parse_line(r#"foo_bucket{le="+Inf"} NaN 12 # {trace_id="x"} 1 12"#).unwrap().unwrap();
        assert!(s.value.is_nan());
        assert_eq!(s.t_ms, Some(12_000));
        assert_eq!(parse_line("# TYPE foo counter").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
        assert!(parse_line("foo{a=\"x} 1").is_err());
        assert!(parse_line("foo abc").is_err());
        assert_eq!(parse_timestamp("-1.25").unwrap(), -1250);
        assert_eq!(parse_timestamp("1.2345").unwrap(), 1234);
        assert!(parse_timestamp("1.x").is_err());
    }

    #[test]
    fn progress_lines_give_share_counts_rate_and_eta() {
        let mut p = Progress::with_interval(false, Duration::from_secs(10));
        p.start("importing", 2000);
        let line = p.line(1000, "1000/2000 samples, 10 series", Duration::from_secs(2));
        assert_eq!(line, "importing: 50% 1000/2000 samples, 10 series, 500 samples/s, ETA 2s");
        let mut p = Progress::with_interval(true, Duration::from_secs(10));
        p.start("importing", 2000);
        let line = p.line(500, "x", Duration::from_secs(1));
        assert!(line.starts_with("importing: [#####               ] 25% x"), "{line}");
        assert!(p.line(0, "x", Duration::ZERO).ends_with("ETA ?"));
    }

    #[test]
    fn warns_when_an_import_reaches_past_the_retention() {
        let day = 86_400_000;
        let now = 100 * day;
        let retention = Duration::from_secs(15 * 86_400);
        let file = |mint| CheckedFile { samples: 1, series: 1, mint: Some(mint), maxt: Some(mint) };
        let w = retention_warning(&file(now - 20 * day), now, retention);
        assert!(w.is_some_and(|w| w.contains("20.0 days ago") && w.contains("retention_time")));
        assert!(retention_warning(&file(now - 14 * day), now, retention).is_none());
    }
}

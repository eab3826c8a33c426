//! `obsd store ...` subcommands: import (backfill from OpenMetrics text with timestamps, like
//! `promtool tsdb create-blocks-from openmetrics`), stats, check, and the hidden stress-append
//! the crash test drives.

use super::{Labels, Store, StoreOptions, chunk, keys};
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

fn cli_options() -> StoreOptions {
    // One-shot tools: no background retention (it would delete an old backfill before the
    // user sees it) and no checkpoint timer.
    StoreOptions { background: false, ..StoreOptions::default() }
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

/// Runs `f`, which opens the store in `dir` (opening writes: a WAL segment, a checkpoint).
/// Run as root against a data directory another user owns (the service's), everything it
/// created is given to that user afterwards, failed or not: a root-owned file left behind
/// would make the service refuse the store.
fn as_data_dir_owner<T>(dir: &Path, loud: bool, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let owner = foreign_owner(dir)?;
    if let Some(o) = &owner {
        let message = format!(
            "running as root against a data directory owned by {}; the files written are given to {}:{} so the service can use them",
            o.user, o.user, o.group
        );
        if loud {
            tracing::warn!(dir = %o.root.display(), "{message}");
        } else {
            tracing::info!(dir = %o.root.display(), "{message}");
        }
    }
    let done = f();
    let given = owner.as_ref().map(|o| o.give(dir)).transpose();
    let done = done?;
    given?;
    Ok(done)
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
    let mut total = super::CommitSummary::default();
    let mut rejected = 0usize;
    let mut read = 0u64;
    let mut cached: Option<(Labels, super::SeriesRef)> = None;
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
    if let Some(warning) = retention_warning(checked, super::now_ms(), StoreOptions::default().retention) {
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

/// The owner of the data directory, when obsd runs as root and the directory is someone
/// else's: what the import creates is given to them.
#[derive(Debug)]
struct Owner {
    root: std::path::PathBuf,
    uid: u32,
    gid: u32,
    user: String,
    group: String,
}

fn foreign_owner(dir: &Path) -> anyhow::Result<Option<Owner>> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // The nearest directory that exists: the store's own, or the data directory it goes in.
    let mut root = dir;
    let meta = loop {
        match std::fs::metadata(root) {
            Ok(m) => break m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match root.parent() {
                Some(p) if !p.as_os_str().is_empty() => root = p,
                _ => return Ok(None),
            },
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading the owner of {}", root.display())));
            }
        }
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let (uid, gid) = (meta.uid(), meta.gid());
    // SAFETY: getpwuid/getgrgid return null or a static record read at once.
    let (user, group) = unsafe {
        let pw = libc::getpwuid(uid);
        let gr = libc::getgrgid(gid);
        let name = |p: *const libc::c_char, id: u32| {
            if p.is_null() {
                id.to_string()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        (
            if pw.is_null() { uid.to_string() } else { name((*pw).pw_name, uid) },
            if gr.is_null() { gid.to_string() } else { name((*gr).gr_name, gid) },
        )
    };
    Ok(Some(Owner { root: root.to_path_buf(), uid, gid, user, group }))
}

impl Owner {
    /// Gives everything from the existing ancestor down to the store (and all inside it) to the
    /// owner; symlinks themselves, never what they point to.
    fn give(&self, dir: &Path) -> anyhow::Result<()> {
        let mut p = dir;
        while p != self.root {
            self.chown(p)?;
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
        self.chown_tree(dir)
    }

    fn chown_tree(&self, path: &Path) -> anyhow::Result<()> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
        };
        self.chown(path)?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
            for e in entries {
                let e = e.with_context(|| format!("reading {}", path.display()))?;
                self.chown_tree(&e.path())?;
            }
        }
        Ok(())
    }

    fn chown(&self, path: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.uid() == self.uid && m.gid() == self.gid => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            _ => {}
        }
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).with_context(|| {
            format!(
                "giving {} to {}:{}; the service cannot use the store until it is: chown -R {}:{} {}",
                path.display(),
                self.user,
                self.group,
                self.user,
                self.group,
                self.root.display()
            )
        })
    }
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

fn accumulate(total: &mut super::CommitSummary, s: &super::CommitSummary) {
    total.appended += s.appended;
    total.out_of_order += s.out_of_order;
    total.duplicate += s.duplicate;
    total.noop += s.noop;
}

/// What a full scan of the store finds.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub series: u64,
    pub symbols: u64,
    pub chunks: u64,
    pub ooo_chunks: u64,
    pub chunk_samples: u64,
    pub chunk_bytes: u64,
    pub heads: u64,
    pub head_samples: u64,
    pub mint: Option<i64>,
    pub maxt: Option<i64>,
    pub damaged: Vec<String>,
}

/// Reads every key and decodes every value.
pub fn scan(store: &Store) -> anyhow::Result<ScanReport> {
    let mut r = ScanReport::default();
    let ix = super::read(&store.inner.index);
    for kv in store.inner.db()?.iter() {
        let (k, v) = kv?;
        match k.first().copied() {
            Some(keys::SYMBOL) => {
                r.symbols += 1;
                if std::str::from_utf8(&v).is_err() {
                    r.damaged.push(format!("symbol {:?} is not UTF-8", keys::symbol_id(&k)));
                }
            }
            Some(keys::SERIES) => {
                r.series += 1;
                if ix.decode_series(&v).is_none() {
                    r.damaged.push(format!("series {:?} does not decode", keys::sid_of(&k)));
                }
            }
            Some(keys::CHUNK) => {
                let Some(ck) = keys::parse_chunk(&k) else {
                    r.damaged.push(format!("chunk key {k:?} malformed"));
                    continue;
                };
                r.chunks += 1;
                if ck.kind == keys::KIND_OUT_OF_ORDER {
                    r.ooo_chunks += 1;
                }
                r.chunk_bytes += v.len() as u64;
                let decoded = keys::check_crc(&v)
                    .ok_or("checksum mismatch")
                    .and_then(|p| chunk::decode(p).map_err(|_| "does not decode"));
                match decoded {
                    Ok(samples) => {
                        r.chunk_samples += samples.len() as u64;
                        let bad_range = samples.first().is_some_and(|s| s.0 != ck.mint)
                            || samples.last().is_some_and(|s| s.0 != ck.maxt);
                        if bad_range {
                            r.damaged.push(format!(
                                "chunk of series {} [{}, {}]: samples outside its key's range",
                                ck.sid, ck.mint, ck.maxt
                            ));
                        }
                        r.mint = Some(r.mint.map_or(ck.mint, |m| m.min(ck.mint)));
                        r.maxt = Some(r.maxt.map_or(ck.maxt, |m| m.max(ck.maxt)));
                    }
                    Err(why) => r
                        .damaged
                        .push(format!("chunk of series {} [{}, {}]: {why}", ck.sid, ck.mint, ck.maxt)),
                }
            }
            Some(keys::HEAD) => {
                r.heads += 1;
                match keys::check_crc(&v).and_then(super::head::SeriesHead::decode_checkpoint) {
                    Some(h) => r.head_samples += h.sample_count(),
                    None => r.damaged.push(format!("head of series {:?} does not decode", keys::sid_of(&k))),
                }
            }
            _ => {}
        }
    }
    let segment = super::checkpoint_segment(&store.inner.db()?)?;
    let heads_dir = store.inner.heads_dir();
    let read = super::head_file::read(&heads_dir, segment, |_, h| {
        r.heads += 1;
        r.head_samples += h.sample_count();
    })?;
    if let Some(read) = read
        && read.damaged > 0
    {
        let path = super::head_file::path(&heads_dir, segment);
        r.damaged.push(format!("{}: {} damaged records", path.display(), read.damaged));
    }
    Ok(r)
}

/// Refuses a directory that holds no store: opening one would create an empty store there and
/// report on it, which looks like a store that lost everything.
pub fn require_store(dir: &Path) -> anyhow::Result<()> {
    // `STORE` marks every store since it was introduced; `db` and `wal` the ones before.
    for name in ["STORE", "db", "wal"] {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display()))),
        }
    }
    let what = if dir.exists() { "holds no obsd store" } else { "does not exist" };
    bail!(
        "{} {what}; nothing was created. The store is <data_dir>/<role>/tsdb: check --data-dir (or data_dir in the config) and --role (replica or federation)",
        dir.display()
    )
}

/// `obsd store stats`.
pub fn stats(dir: &Path) -> anyhow::Result<()> {
    require_store(dir)?;
    as_data_dir_owner(dir, false, || stats_store(dir))
}

fn stats_store(dir: &Path) -> anyhow::Result<()> {
    let store =
        Store::open(dir, cli_options()).with_context(|| format!("opening store {}", dir.display()))?;
    let r = scan(&store)?;
    let disk = store.disk_bytes();
    let samples = r.chunk_samples + r.head_samples;
    println!("store:            {}", dir.display());
    println!("series:           {}", r.series);
    println!("symbols:          {}", r.symbols);
    println!("chunks:           {} ({} out-of-order)", r.chunks, r.ooo_chunks);
    println!("samples:          {} ({} in chunks, {} in heads)", samples, r.chunk_samples, r.head_samples);
    if let (Some(a), Some(b)) = (r.mint, r.maxt) {
        println!("time range:       {a} .. {b} ms ({:.1} h)", (b - a) as f64 / 3.6e6);
    }
    println!(
        "chunk bytes:      {} ({:.3} bytes/sample)",
        r.chunk_bytes,
        r.chunk_bytes as f64 / r.chunk_samples.max(1) as f64
    );
    println!("disk bytes:       {} ({:.3} bytes/sample)", disk, disk as f64 / samples.max(1) as f64);
    println!("damaged records:  {}", r.damaged.len());
    store.close()?;
    Ok(())
}

/// `obsd store check`: opens the store as a start would (replaying the WAL), then decodes
/// every record. Fails if anything is damaged.
pub fn check(dir: &Path) -> anyhow::Result<()> {
    require_store(dir)?;
    as_data_dir_owner(dir, false, || check_store(dir))
}

fn check_store(dir: &Path) -> anyhow::Result<()> {
    let store =
        Store::open(dir, cli_options()).with_context(|| format!("opening store {}", dir.display()))?;
    let damage = store.damage();
    let r = scan(&store)?;
    println!(
        "{} series, {} chunks, {} samples in chunks, {} heads",
        r.series, r.chunks, r.chunk_samples, r.heads
    );
    if damage.wal_corruptions > 0 {
        println!(
            "WAL: {} segment(s) had torn or corrupt records (each skipped at replay)",
            damage.wal_corruptions
        );
    }
    if damage.db_recoveries > 0 {
        println!("database: could not be opened; moved aside and rebuilt from the WAL");
    }
    if damage.chunk_corruptions > 0 {
        println!("{} damaged record(s) skipped while loading", damage.chunk_corruptions);
    }
    for d in r.damaged.iter().take(20) {
        println!("damaged: {d}");
    }
    store.close()?;
    if !r.damaged.is_empty() || damage.any() {
        bail!(
            "store {} is damaged: {} bad record(s)",
            dir.display(),
            r.damaged.len() + damage.chunk_corruptions as usize
        );
    }
    println!("{}: OK", dir.display());
    Ok(())
}

/// The value stress-append writes for series `i` at `t`; every 17th timestamp is a stale
/// marker so bit-exact NaN survival is checked too.
pub fn stress_value(i: u64, t: i64) -> f64 {
    if t % 17 == 0 { super::stale_nan() } else { (t as f64) * 7.0 + i as f64 / 3.0 }
}

/// Labels of stress series `i`.
pub fn stress_labels(i: u64) -> Labels {
    Labels::metric("stress_total", &[("series", &i.to_string()), ("job", "stress")])
}

/// Appends `series` series at t = start, start+1, ... as fast as it can; after every `sync_every`
/// commits calls `Store::sync` and prints `durable T` (every t ≤ T of every series is durable).
/// Stops after `count` timestamps (0 = forever).
pub fn stress_append(
    dir: &Path,
    series: u64,
    start: i64,
    sync_every: u64,
    fsync_interval_ms: u64,
    count: u64,
) -> anyhow::Result<()> {
    let opts = StoreOptions {
        wal_fsync_interval: Duration::from_millis(fsync_interval_ms),
        checkpoint_interval: Duration::from_millis(700),
        // Stress timestamps are tiny numbers (near the epoch); never let retention touch them.
        retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..StoreOptions::default()
    };
    let store = Store::open(dir, opts)?;
    let mut refs = Vec::new();
    let mut app = store.appender();
    for i in 0..series {
        refs.push(app.series_ref(&stress_labels(i))?);
    }
    app.rollback();
    let out = std::io::stdout();
    writeln!(out.lock(), "started {start}")?;
    let mut t = start;
    let mut commits = 0u64;
    loop {
        let mut app = store.appender();
        for (i, r) in refs.iter().enumerate() {
            // A restarted run may repeat timestamps already stored: same value, so a no-op.
            let _ = app.append_ref(r, t, stress_value(i as u64, t));
        }
        app.commit()?;
        commits += 1;
        if commits.is_multiple_of(sync_every.max(1)) {
            store.sync()?;
            let mut o = out.lock();
            writeln!(o, "durable {t}")?;
            o.flush()?;
        }
        t += 1;
        if count > 0 && (t - start) as u64 >= count {
            store.sync()?;
            writeln!(out.lock(), "durable {}", t - 1)?;
            break;
        }
    }
    store.close()?;
    Ok(())
}

/// Parses a selector as `promtool tsdb dump --match` takes it: `metric{a="b", c=~"d"}` or
/// `{__name__=~"x.*"}`.
pub fn parse_selector(sel: &str) -> anyhow::Result<Vec<super::Matcher>> {
    use super::{MatchOp, Matcher};
    let sel = sel.trim();
    let (name, rest) = match sel.find('{') {
        Some(i) => (&sel[..i], &sel[i..]),
        None => (sel, ""),
    };
    let mut out = Vec::new();
    if !name.trim().is_empty() {
        out.push(Matcher::equal(crate::model::labels::METRIC_NAME, name.trim()));
    }
    let body = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or("");
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let lname: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_alphanumeric() || *c == '_')).collect();
        let op: String =
            std::iter::from_fn(|| chars.next_if(|c| matches!(c, '=' | '!' | '~' | ' '))).collect();
        let quote = chars.next().filter(|q| *q == '"' || *q == '\'').context("expected a quoted value")?;
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.extend(chars.next()),
                c if c == quote => break,
                c => value.push(c),
            }
        }
        let op = match op.trim() {
            "=" => MatchOp::Equal,
            "!=" => MatchOp::NotEqual,
            "=~" => MatchOp::Regex,
            "!~" => MatchOp::NotRegex,
            other => bail!("unknown matcher operator {other:?} in {sel:?}"),
        };
        out.push(Matcher::new(op, lname, value).with_context(|| format!("bad regex in {sel:?}"))?);
    }
    Ok(out)
}

/// Hidden `obsd store dump`: every sample matching a selector, one line each, in the format
/// `promtool tsdb dump` prints (so the two can be timed and diffed side by side).
pub fn dump(dir: &Path, selector: &str, mint: i64, maxt: i64) -> anyhow::Result<()> {
    let matchers = parse_selector(selector)?;
    require_store(dir)?;
    as_data_dir_owner(dir, false, || dump_store(dir, &matchers, mint, maxt))
}

fn dump_store(dir: &Path, matchers: &[super::Matcher], mint: i64, maxt: i64) -> anyhow::Result<()> {
    let store =
        Store::open(dir, cli_options()).with_context(|| format!("opening store {}", dir.display()))?;
    let started = Instant::now();
    let out = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    let (mut series, mut samples) = (0u64, 0u64);
    for s in store.querier(mint, maxt).select(matchers) {
        let s = s?;
        series += 1;
        let mut labels = String::from("{");
        for (i, (n, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                labels.push_str(", ");
            }
            labels.push_str(&format!("{n}=\"{}\"", crate::exposition::escape_label_value(v)));
        }
        labels.push('}');
        for (t, v) in s.samples() {
            samples += 1;
            writeln!(w, "{labels} {} {t}", crate::exposition::format_go_float(v))?;
        }
    }
    w.flush()?;
    drop(w);
    tracing::info!(series, samples, elapsed = ?started.elapsed(), "dumped");
    eprintln!("dumped {series} series, {samples} samples in {:.3}s", started.elapsed().as_secs_f64());
    store.close()?;
    Ok(())
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

    #[test]
    fn parses_selectors() {
        let ms = parse_selector(r#"up{job="node", instance=~"a.*",code!="5\"00", x!~'y'}"#).unwrap();
        let text: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            [r#"__name__="up""#, r#"job="node""#, r#"instance=~"a.*""#, r#"code!="5\"00""#, r#"x!~"y""#]
        );
        assert!(parse_selector(r#"{a=~"("}"#).is_err());
        assert!(parse_selector(r#"{a=>"x"}"#).is_err());
    }
}

//! `obsd store ...` subcommands: import (backfill from OpenMetrics text with timestamps, like
//! `promtool tsdb create-blocks-from openmetrics`), stats, check, and the hidden stress-append
//! the crash test drives.

use super::{Labels, Store, StoreOptions, chunk, keys};
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
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
    let mut pairs: Vec<(String, String)> = vec![(crate::labels::METRIC_NAME.to_string(), name.to_string())];
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

/// `obsd store import --format openmetrics FILE`.
pub fn import(dir: &Path, file: &Path, format: &str) -> anyhow::Result<()> {
    if format != "openmetrics" {
        bail!("unsupported import format {format:?}; supported: openmetrics");
    }
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    // Whole 2 h chunks (they are cut at the range boundary): a backfill is read far more
    // than it is appended to, and a quarter of the chunks is a quarter of sled's per-key cost.
    let opts = StoreOptions { chunk_samples: chunk::MAX_SAMPLES, ..cli_options() };
    let store = Store::open(dir, opts).with_context(|| format!("opening store {}", dir.display()))?;
    let started = Instant::now();
    let mut app = store.appender();
    let mut total = super::CommitSummary::default();
    let mut rejected = 0usize;
    let mut cached: Option<(Labels, super::SeriesRef)> = None;
    let mut finished: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut series_major = true;
    for (i, line) in BufReader::with_capacity(1 << 20, input).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: reading", file.display(), i + 1))?;
        if line.starts_with("# EOF") {
            break;
        }
        let parsed = parse_line(&line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), i + 1))?;
        let Some(s) = parsed else { continue };
        let Some(t) = s.t_ms else {
            bail!(
                "{}:{}: sample without a timestamp; backfill needs explicit timestamps",
                file.display(),
                i + 1
            );
        };
        // Consecutive lines of one series are the common case: skip the index lookup.
        let r = match &cached {
            Some((l, r)) if *l == s.labels => r.clone(),
            _ => {
                let r = app.series_ref(&s.labels)?;
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
            let sum = std::mem::replace(&mut app, store.appender()).commit()?;
            accumulate(&mut total, &sum);
        }
    }
    accumulate(&mut total, &app.commit()?);
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
    Ok(())
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

/// `obsd store stats`.
pub fn stats(dir: &Path) -> anyhow::Result<()> {
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
        out.push(Matcher::equal(crate::labels::METRIC_NAME, name.trim()));
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
    let store =
        Store::open(dir, cli_options()).with_context(|| format!("opening store {}", dir.display()))?;
    let started = Instant::now();
    let out = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    let (mut series, mut samples) = (0u64, 0u64);
    for s in store.querier(mint, maxt).select(&matchers) {
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

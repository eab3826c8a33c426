//! `obsd store stats`, `check` and `dump`: reading a store without changing it.

use super::{as_data_dir_owner, cli_options, require_store};
use crate::store::{Store, chunk, keys};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

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
    let ix = crate::store::read(&store.inner.index);
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
                match keys::check_crc(&v).and_then(crate::store::head::SeriesHead::decode_checkpoint) {
                    Some(h) => r.head_samples += h.sample_count(),
                    None => r.damaged.push(format!("head of series {:?} does not decode", keys::sid_of(&k))),
                }
            }
            _ => {}
        }
    }
    let segment = crate::store::checkpoint_segment(&store.inner.db()?)?;
    let heads_dir = store.inner.heads_dir();
    let read = crate::store::head_file::read(&heads_dir, segment, |_, h| {
        r.heads += 1;
        r.head_samples += h.sample_count();
    })?;
    if let Some(read) = read
        && read.damaged > 0
    {
        let path = crate::store::head_file::path(&heads_dir, segment);
        r.damaged.push(format!("{}: {} damaged records", path.display(), read.damaged));
    }
    Ok(r)
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

/// Parses a selector as `promtool tsdb dump --match` takes it: `metric{a="b", c=~"d"}` or
/// `{__name__=~"x.*"}`.
pub fn parse_selector(sel: &str) -> anyhow::Result<Vec<crate::model::Matcher>> {
    use crate::model::{MatchOp, Matcher};
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

fn dump_store(dir: &Path, matchers: &[crate::model::Matcher], mint: i64, maxt: i64) -> anyhow::Result<()> {
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

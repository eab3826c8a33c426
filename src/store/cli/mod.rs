//! `obsd store ...` subcommands: import (backfill from OpenMetrics text with timestamps, like
//! `promtool tsdb create-blocks-from openmetrics`), stats, check, and the hidden stress-append
//! the crash test drives.
//!
//! `import` backfills, `inspect` reports (stats, check, dump, the scan they share), `stress`
//! appends for the crash tests; what they share (the options of a one-shot store, running as
//! the data directory's owner, refusing a path that holds no store) is here.

mod import;
mod inspect;
mod owner;
mod stress;

pub use import::{CheckedFile, ParsedSample, Progress, check_file, import, parse_line, retention_warning};
pub use inspect::{ScanReport, check, dump, parse_selector, scan, stats};
pub use stress::{stress_append, stress_labels, stress_value};

use crate::store::StoreOptions;
use anyhow::bail;
use owner::foreign_owner;
use std::path::Path;

pub(super) fn cli_options() -> StoreOptions {
    // One-shot tools: no background retention (it would delete an old backfill before the
    // user sees it) and no checkpoint timer.
    StoreOptions { background: false, ..StoreOptions::default() }
}

/// Runs `f`, which opens the store in `dir` (opening writes: a WAL segment, a checkpoint).
/// Run as root against a data directory another user owns (the service's), everything it
/// created is given to that user afterwards, failed or not: a root-owned file left behind
/// would make the service refuse the store.
pub(super) fn as_data_dir_owner<T>(
    dir: &Path,
    loud: bool,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
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

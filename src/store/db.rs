//! The sled database under the store: its generations (`CURRENT`), the one write path every
//! sled write takes (`Inner::apply`: the free-space reserve, the journal of unflushed writes,
//! a running compaction's copy), and what happens when sled fails a write: the store refuses
//! writes (`db_failure`) until the background reopens the database and replays the journal.

use super::head::ClosedChunk;
use super::{Inner, StoreError, chunk, head, keys, lock, read, write};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One sled write: key and new value, or `None` to delete.
pub(super) type Op = (Vec<u8>, Option<Vec<u8>>);

/// A sled batch we can also read back (a compaction replays writes made while it copied).
#[derive(Default)]
pub(super) struct Ops(pub(super) Vec<Op>);

impl Ops {
    pub(super) fn insert(&mut self, k: &[u8], v: Vec<u8>) {
        self.0.push((k.to_vec(), Some(v)));
    }

    pub(super) fn remove(&mut self, k: &[u8]) {
        self.0.push((k.to_vec(), None));
    }

    pub(super) fn to_batch(ops: &[Op]) -> sled::Batch {
        let mut b = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => b.insert(k.as_slice(), v.as_slice()),
                None => b.remove(k.as_slice()),
            }
        }
        b
    }
}

/// sled writes since the last flush known to have succeeded, in order. `forgotten` counts
/// those dropped from the front, so a flush can say up to where it covered.
#[derive(Default)]
pub(super) struct Journal {
    forgotten: u64,
    pub(super) ops: std::collections::VecDeque<Op>,
}

impl Journal {
    fn end(&self) -> u64 {
        self.forgotten + self.ops.len() as u64
    }

    fn forget_until(&mut self, mark: u64) {
        let n = mark.saturating_sub(self.forgotten).min(self.ops.len() as u64);
        self.ops.drain(..n as usize);
        self.forgotten += n;
    }
}

/// `CURRENT` names the live sled directory (`db`, then `db.N` after compactions), so a
/// compaction switches generations with one atomic rename.
pub(super) fn current_db_path(dir: &Path) -> io::Result<PathBuf> {
    match std::fs::read_to_string(dir.join("CURRENT")) {
        Ok(name) if !name.trim().is_empty() && !name.contains('/') => Ok(dir.join(name.trim())),
        Ok(_) => Ok(dir.join("db")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(dir.join("db")),
        // Not knowing the current generation, "db" could be an older one: refused instead.
        Err(e) => Err(e),
    }
}

pub(super) fn write_current(dir: &Path, name: &str) -> io::Result<()> {
    let tmp = dir.join("CURRENT.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        io::Write::write_all(&mut f, name.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join("CURRENT"))?;
    std::fs::File::open(dir)?.sync_all()
}

/// A cut chunk's sled value: its smaller layout, behind a crc.
pub(super) fn chunk_value(c: &ClosedChunk) -> Vec<u8> {
    keys::with_crc(&chunk::compact(&c.bytes))
}

/// How long opening waits for a database another handle holds.
pub(super) const DB_LOCK_WAIT: Duration = Duration::from_secs(10);

/// sled's "could not acquire lock" (its file lock is held by another handle or process).
pub(super) fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn dir_bytes(path: &Path) -> u64 {
    // Allocated blocks, not apparent length: sparse files must count as what they occupy.
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += dir_bytes(&e.path());
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

impl Inner {
    pub(super) fn db(&self) -> Result<sled::Db, StoreError> {
        read(&self.db).clone().ok_or(StoreError::Reopening)
    }

    /// Flushes sled; what was applied before the flush began is then on disk and leaves the
    /// journal.
    pub(super) fn flush_db(&self) -> Result<(), StoreError> {
        let mark = lock(&self.unflushed).end();
        self.db()?.flush().map_err(|e| self.db_error(e))?;
        lock(&self.unflushed).forget_until(mark);
        Ok(())
    }

    /// Reopens a sled database that failed a write, once the disk takes writes again: sled
    /// reads back what it had made durable, the journal puts back what it had not, and the
    /// store takes writes again without a restart.
    pub(super) fn reopen_db(&self) -> Result<(), StoreError> {
        let _m = lock(&self.maintenance);
        let _gate = write(&self.write_gate);
        drop(write(&self.db).take());
        let path = current_db_path(&self.dir).map_err(|e| {
            let e = StoreError::refused(&self.dir, &self.dir.join("CURRENT"), e);
            self.note_open_error(&e);
            e
        })?;
        let config =
            sled::Config::new().path(&path).cache_capacity(self.opts.cache_bytes).flush_every_ms(Some(1000));
        // Queries still holding the old handle keep its lock a moment.
        let deadline = Instant::now() + DB_LOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if is_lock_error(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(sled::Error::Io(io)) if io.raw_os_error().is_some() => {
                    let e = StoreError::refused(&self.dir, &path, io);
                    self.note_open_error(&e);
                    return Err(e);
                }
                Err(e) => return Err(StoreError::Db(e)),
            }
        };
        let (journal, mark) = {
            let j = lock(&self.unflushed);
            (j.ops.iter().cloned().collect::<Vec<Op>>(), j.end())
        };
        db.apply_batch(Ops::to_batch(&journal))?;
        db.flush()?;
        lock(&self.unflushed).forget_until(mark);
        *write(&self.db) = Some(db);
        *lock(&self.db_failure) = None;
        self.space.forget();
        self.metrics.db_reopens.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            dir = %self.dir.display(), replayed_writes = journal.len(),
            "sled database reopened after a failed write; the store takes writes again"
        );
        Ok(())
    }

    /// Counts a failed reopen, and logs it at ERROR when its reason is new: the background
    /// retries every few seconds, and the same error each time would bury everything else.
    fn note_open_error(&self, e: &StoreError) {
        let Some(reason) = e.open_error_reason() else { return };
        let first = self.metrics.open_errors.get(reason) == 0;
        self.metrics.open_errors.note(reason);
        if first {
            tracing::error!(
                dir = %self.dir.display(), reason = reason.label(), error = %e,
                "the sled database cannot be reopened; the store refuses writes until this is fixed"
            );
        }
    }

    /// Why the store cannot take a commit now, if it cannot: the WAL's last flush failed,
    /// sled failed, or less than the reserve is free.
    pub(super) fn unwritable(&self) -> Option<String> {
        if let Some(e) = self.wal.failure() {
            return Some(format!("writing the WAL failed: {e}"));
        }
        if let Some(e) = lock(&self.db_failure).clone() {
            return Some(format!("the sled database failed a write ({e})"));
        }
        let (free, reserve) = self.space.check(&self.dir);
        (free < reserve).then(|| {
            format!(
                "{} MiB free on the filesystem of {}, below the {} MiB reserve",
                free >> 20,
                self.dir.display(),
                reserve >> 20
            )
        })
    }

    /// Notes a sled error: an I/O error leaves sled failed for good (see `db_failure`).
    fn db_error(&self, e: sled::Error) -> StoreError {
        if let sled::Error::Io(io) = &e
            && !is_lock_error(&e)
        {
            let mut failure = lock(&self.db_failure);
            if failure.is_none() {
                tracing::error!(
                    dir = %self.dir.display(), error = %io,
                    "sled database write failed; the store refuses writes from now on (the WAL keeps what it holds)"
                );
                *failure = Some(io.to_string());
            }
        }
        StoreError::Db(e)
    }

    /// Every sled write goes through here, so a compaction can see it.
    pub(super) fn apply(&self, ops: Ops) -> Result<(), StoreError> {
        let (free, reserve) = self.space.check(&self.dir);
        if free < reserve / 4 {
            return Err(StoreError::Unwritable(format!(
                "{} KiB free on the filesystem of {}; sled writes wait for {} KiB",
                free >> 10,
                self.dir.display(),
                (reserve / 4) >> 10
            )));
        }
        if let Some(e) = lock(&self.db_failure).clone() {
            return Err(StoreError::Unwritable(format!("the sled database failed a write ({e})")));
        }
        let _gate = read(&self.write_gate);
        self.db()?.apply_batch(Ops::to_batch(&ops.0)).map_err(|e| self.db_error(e))?;
        if let Some(d) = lock(&self.dirty).as_mut() {
            d.extend(ops.0.iter().cloned());
        }
        lock(&self.unflushed).ops.extend(ops.0);
        Ok(())
    }

    /// The earliest sample time in a series' chunks on disk. Chunks sort by maxt and span less
    /// than `CHUNK_RANGE_MS`, so the smallest mint is among those ending within one range of
    /// the first chunk's end.
    pub(super) fn disk_first_mint(&self, sid: u64) -> Result<Option<i64>, StoreError> {
        let mut limit = None;
        let mut first = None;
        for kv in self.db()?.scan_prefix(keys::chunk_prefix(sid)) {
            let (k, _) = kv?;
            let Some(ck) = keys::parse_chunk(&k) else { continue };
            if ck.maxt > *limit.get_or_insert(ck.maxt.saturating_add(head::CHUNK_RANGE_MS)) {
                break;
            }
            first = Some(first.map_or(ck.mint, |f: i64| f.min(ck.mint)));
        }
        Ok(first)
    }

    pub(super) fn disk_bytes(&self) -> u64 {
        dir_bytes(&current_db_path(&self.dir).unwrap_or_else(|_| self.dir.join("db"))) + self.wal.disk_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions, access};

    fn opts() -> StoreOptions {
        StoreOptions { background: false, ..StoreOptions::default() }
    }

    /// A reopen at runtime (after a failed write) that the system refuses is counted by
    /// reason and leaves the database where it is; once the cause is gone the reopen succeeds.
    #[test]
    fn a_refused_reopen_is_counted_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        let inner = &store.inner;
        *lock(&inner.db_failure) = Some("test: a write failed".into());
        let db_file = current_db_path(dir.path()).unwrap().join("db");
        let saved = db_file.with_extension("saved");
        std::fs::rename(&db_file, &saved).unwrap();
        // Opening a directory for writing fails with EISDIR: an error of the system, as EIO is.
        std::fs::create_dir(&db_file).unwrap();
        for _ in 0..2 {
            match inner.reopen_db() {
                Err(StoreError::Refused { path, reason, .. }) => {
                    assert_eq!(path, current_db_path(dir.path()).unwrap());
                    assert_eq!(reason, access::OpenErrorReason::Io);
                }
                Err(e) => panic!("refused expected, got {e}"),
                Ok(()) => panic!("refused expected, the reopen succeeded"),
            }
        }
        let mut text = String::new();
        crate::exposition::write_families(&mut text, &store.metric_families());
        assert!(text.contains("obsd_store_open_errors_total{reason=\"io_error\"} 2"), "{text}");
        assert!(text.contains("obsd_store_open_errors_total{reason=\"permission_denied\"} 0"), "{text}");
        assert!(saved.exists(), "the database stays where it was");
        std::fs::remove_dir(&db_file).unwrap();
        std::fs::rename(&saved, &db_file).unwrap();
        inner.reopen_db().unwrap();
        assert!(store.write_health().is_ok());
        store.close().unwrap();
    }
}

//! Silences and the notification log on disk, so both survive a restart and `kill -9`: each is
//! one JSON file in the role's data directory, rewritten (temporary file, fsync, rename, fsync
//! of the directory) by one writer task right after every change.
//!
//! A file that cannot be read is an I/O error and refuses the start; a file that reads but
//! does not parse is moved aside under a new name, loudly and counted, and the role starts
//! with an empty set rather than refusing to route alerts at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Counts of what the state files went through, for `/metrics`.
#[derive(Default)]
pub struct StateCounters {
    pub write_failures: AtomicU64,
    pub set_aside: AtomicU64,
}

/// Reads a JSON state file; a missing file is an empty list.
pub fn load<T: serde::de::DeserializeOwned>(
    path: &Path,
    counters: &StateCounters,
) -> Result<Vec<T>, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StateError::Io { path: path.to_path_buf(), source }),
    };
    match serde_json::from_slice(&bytes) {
        Ok(list) => Ok(list),
        Err(e) => {
            let aside = path.with_extension(format!("corrupt-{}", std::process::id()));
            std::fs::rename(path, &aside)
                .map_err(|source| StateError::Io { path: path.to_path_buf(), source })?;
            counters.set_aside.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                path = %path.display(),
                moved_to = %aside.display(),
                error = %e,
                "alertmanager state file does not parse; moved aside, starting without its contents"
            );
            Ok(Vec::new())
        }
    }
}

/// Writes `value` as JSON to `path` so that a crash leaves the old file or the new one.
pub fn save<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let io = |source| StateError::Io { path: path.to_path_buf(), source };
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(value).map_err(|e| io(std::io::Error::other(e)))?;
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_damaged_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        let counters = StateCounters::default();
        assert!(load::<u32>(&path, &counters).unwrap().is_empty());
        save(&path, &vec![1u32, 2]).unwrap();
        assert_eq!(load::<u32>(&path, &counters).unwrap(), vec![1, 2]);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load::<u32>(&path, &counters).unwrap().is_empty());
        assert_eq!(counters.set_aside.load(Ordering::Relaxed), 1);
        assert!(!path.exists());
    }
}

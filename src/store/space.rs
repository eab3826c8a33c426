//! Free space on the store's filesystem, and the reserve that keeps a full disk from
//! breaking the store.
//!
//! Commits stop while less than the reserve is free, so the WAL never writes the last bytes
//! of a disk; sled writes (checkpoints, cut chunks, retention) go on down to a quarter of it,
//! so a checkpoint can still shrink the WAL. sled records the first failed write as a fatal
//! error of the whole database until it is reopened; keeping its writes out of a full disk is
//! what lets the store carry on by itself once space comes back.

use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The reserve: 2% of the filesystem, at least 1 MiB, at most 256 MiB.
pub fn reserve_for(total_bytes: u64) -> u64 {
    (total_bytes / 50).clamp(1 << 20, 256 << 20)
}

/// Bytes free to an unprivileged user and the filesystem's size.
pub fn statvfs(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is written by the call on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // The statvfs fields are 32 bits wide on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let (frsize, bavail, blocks) = (u64::from(st.f_frsize), u64::from(st.f_bavail), u64::from(st.f_blocks));
    Ok((bavail * frsize, blocks * frsize))
}

/// A cached reading of free space: commits ask at their own rate, the filesystem is asked
/// at most every 100 ms.
pub struct Space {
    last: Mutex<Option<(Instant, u64, u64)>>,
}

impl Space {
    pub fn new() -> Space {
        Space { last: Mutex::new(None) }
    }

    /// (free, reserve) for `dir`'s filesystem. A filesystem that cannot be asked counts as
    /// having room: the writes themselves then report what is wrong.
    pub fn check(&self, dir: &Path) -> (u64, u64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, free, reserve)) = *last
            && at.elapsed() < Duration::from_millis(100)
        {
            return (free, reserve);
        }
        let (free, reserve) = match statvfs(dir) {
            Ok((free, total)) => (free, reserve_for(total)),
            Err(_) => (u64::MAX, 0),
        };
        *last = Some((Instant::now(), free, reserve));
        (free, reserve)
    }

    /// Forgets the cached reading (after space was freed by the store itself).
    pub fn forget(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_two_percent_within_bounds() {
        assert_eq!(reserve_for(0), 1 << 20);
        assert_eq!(reserve_for(200 << 20), 4 << 20);
        assert_eq!(reserve_for(1 << 40), 256 << 20);
    }

    #[test]
    fn statvfs_reads_this_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let (free, total) = statvfs(dir.path()).unwrap();
        assert!(total > 0 && free <= total, "{free} {total}");
        assert!(statvfs(&dir.path().join("missing")).is_err());
    }
}

//! Telling a store obsd may not use from a damaged one. A file obsd cannot read or write
//! (another owner, a read-only filesystem, a full disk, a failing disk) is not damage: moving
//! it aside would hide data that is intact, so such a store is refused with the path, the
//! errno and what to do, and nothing is changed.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a store could not be opened; the `reason` label of `obsd_store_open_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenErrorReason {
    PermissionDenied,
    ReadOnlyFilesystem,
    NoSpace,
    Io,
    InUse,
}

impl OpenErrorReason {
    pub const ALL: [OpenErrorReason; 5] = [
        OpenErrorReason::PermissionDenied,
        OpenErrorReason::ReadOnlyFilesystem,
        OpenErrorReason::NoSpace,
        OpenErrorReason::Io,
        OpenErrorReason::InUse,
    ];

    pub fn label(self) -> &'static str {
        match self {
            OpenErrorReason::PermissionDenied => "permission_denied",
            OpenErrorReason::ReadOnlyFilesystem => "read_only_filesystem",
            OpenErrorReason::NoSpace => "no_space",
            OpenErrorReason::Io => "io_error",
            OpenErrorReason::InUse => "in_use",
        }
    }

    pub fn of(e: &io::Error) -> OpenErrorReason {
        match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => OpenErrorReason::PermissionDenied,
            Some(libc::EROFS) => OpenErrorReason::ReadOnlyFilesystem,
            Some(libc::ENOSPC | libc::EDQUOT) => OpenErrorReason::NoSpace,
            _ if e.kind() == io::ErrorKind::PermissionDenied => OpenErrorReason::PermissionDenied,
            _ => OpenErrorReason::Io,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts of refused opens by reason (a store reopened at runtime keeps counting).
#[derive(Debug, Default)]
pub struct OpenErrors([std::sync::atomic::AtomicU64; 5]);

impl OpenErrors {
    pub fn note(&self, reason: OpenErrorReason) {
        self.0[reason.index()].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, reason: OpenErrorReason) -> u64 {
        self.0[reason.index()].load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The errno's symbolic name, which is what people search for.
pub fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EROFS) => "EROFS",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EDQUOT) => "EDQUOT",
        Some(libc::EIO) => "EIO",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::ENOTDIR) => "ENOTDIR",
        Some(n) => return format!("errno {n}"),
        None => return "no errno".to_string(),
    };
    name.to_string()
}

/// The error with its errno's name: `Permission denied (EACCES, os error 13)`.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(n) => {
            let plain = text.strip_suffix(&format!(" (os error {n})")).unwrap_or(&text);
            format!("{plain} ({}, os error {n})", errno_name(e))
        }
        None => text,
    }
}

/// What the operator does about `reason` for the store in `dir`.
pub fn remedy(reason: OpenErrorReason, dir: &Path) -> String {
    match reason {
        OpenErrorReason::PermissionDenied => {
            let (user, group) = effective_user_and_group();
            format!(
                "obsd runs as {user}; give it the store: chown -R {user}:{group} {} (a root `obsd store import` can leave files it cannot use)",
                dir.display()
            )
        }
        OpenErrorReason::ReadOnlyFilesystem => {
            format!("the filesystem holding {} is read-only; remount it read-write", dir.display())
        }
        OpenErrorReason::NoSpace => format!("the filesystem holding {} is full; free space on it", dir.display()),
        OpenErrorReason::Io => {
            "the disk reported an I/O error; check the kernel log (journalctl -k) and the disk, then restore the store from a backup if the disk is failing".to_string()
        }
        OpenErrorReason::InUse => "stop the other obsd process that has this store open".to_string(),
    }
}

/// Names of the effective user and group (numeric ids when they have none).
pub fn effective_user_and_group() -> (String, String) {
    // SAFETY: geteuid/getegid cannot fail; getpwuid/getgrgid return null or a pointer to a
    // static record that is read at once, before any other call could reuse it.
    unsafe {
        let (uid, gid) = (libc::geteuid(), libc::getegid());
        let pw = libc::getpwuid(uid);
        let user = if pw.is_null() || (*pw).pw_name.is_null() {
            uid.to_string()
        } else {
            std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned()
        };
        let gr = libc::getgrgid(gid);
        let group = if gr.is_null() || (*gr).gr_name.is_null() {
            gid.to_string()
        } else {
            std::ffi::CStr::from_ptr((*gr).gr_name).to_string_lossy().into_owned()
        };
        (user, group)
    }
}

/// Checks that every directory and file of the store under `dir` can be read and written by
/// this process, before anything in it is opened, changed or deleted. Returns the first
/// path that cannot, with the errno the kernel gave.
pub fn check_tree(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    check_path(dir, true)?;
    let entries = std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| (dir.to_path_buf(), e))?;
        let path = entry.path();
        // A database moved aside earlier is not used; its owner does not matter.
        if entry.file_name().to_string_lossy().starts_with("db.damaged-") {
            continue;
        }
        let kind = entry.file_type().map_err(|e| (path.clone(), e))?;
        if kind.is_dir() {
            check_tree(&path)?;
        } else if kind.is_file() {
            check_path(&path, false)?;
        }
    }
    Ok(())
}

/// Reads every file under `dir` to its end; the first that fails, with the error.
pub fn read_tree(dir: &Path) -> Result<(), (PathBuf, io::Error)> {
    let entries = std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| (dir.to_path_buf(), e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| (path.clone(), e))?;
        if kind.is_dir() {
            read_tree(&path)?;
        } else if kind.is_file() {
            let mut f = std::fs::File::open(&path).map_err(|e| (path.clone(), e))?;
            io::copy(&mut f, &mut io::sink()).map_err(|e| (path.clone(), e))?;
        }
    }
    Ok(())
}

fn check_path(path: &Path, is_dir: bool) -> Result<(), (PathBuf, io::Error)> {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return Ok(()) };
    let mode = libc::R_OK | libc::W_OK | if is_dir { libc::X_OK } else { 0 };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
    if rc == 0 { Ok(()) } else { Err((path.to_path_buf(), io::Error::last_os_error())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_reasons_and_remedies() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(OpenErrorReason::of(&e), OpenErrorReason::PermissionDenied);
        assert_eq!(errno_name(&e), "EACCES");
        assert_eq!(describe(&e), "Permission denied (EACCES, os error 13)");
        assert!(remedy(OpenErrorReason::PermissionDenied, Path::new("/d")).contains("chown -R "));
        let e = io::Error::from_raw_os_error(libc::EROFS);
        assert_eq!(OpenErrorReason::of(&e), OpenErrorReason::ReadOnlyFilesystem);
        assert_eq!(
            OpenErrorReason::of(&io::Error::from_raw_os_error(libc::ENOSPC)),
            OpenErrorReason::NoSpace
        );
        assert_eq!(OpenErrorReason::of(&io::Error::from_raw_os_error(libc::EIO)), OpenErrorReason::Io);
    }

    #[test]
    fn a_readable_tree_passes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("db").join("conf"), b"x").unwrap();
        assert!(check_tree(dir.path()).is_ok());
    }
}

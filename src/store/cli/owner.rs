//! Running as the data directory's owner: a root-run tool writes files the service can use.

use anyhow::Context;
use std::path::Path;

/// The owner of the data directory, when obsd runs as root and the directory is someone
/// else's: what the import creates is given to them.
#[derive(Debug)]
pub(super) struct Owner {
    pub(super) root: std::path::PathBuf,
    uid: u32,
    gid: u32,
    pub(super) user: String,
    pub(super) group: String,
}

pub(super) fn foreign_owner(dir: &Path) -> anyhow::Result<Option<Owner>> {
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
    pub(super) fn give(&self, dir: &Path) -> anyhow::Result<()> {
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

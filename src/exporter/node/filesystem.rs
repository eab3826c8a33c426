//! `node_filesystem_*{device,mountpoint,fstype}` from the mount table and statfs(2), with
//! node_exporter's default exclusions. statfs runs on its own thread with a timeout so one
//! hung network mount costs that mount (`device_error 1`), not the whole scrape.

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

struct Mount {
    device: String,
    mount_point: String,
    fs_type: String,
    read_only: bool,
}

struct Stats {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

/// Mount-table fields escape space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts(config: &ExporterConfig) -> Result<Vec<Mount>, CollectError> {
    let text = match read(config.proc_path.join("1/mounts")) {
        Ok(t) => t,
        Err(_) => read(config.proc_path.join("mounts"))?,
    };
    let root = config.rootfs_path.to_string_lossy().trim_end_matches('/').to_string();
    Ok(text
        .lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() < 4 {
                return None;
            }
            let mut mount_point = unescape(parts[1]);
            if !root.is_empty()
                && let Some(stripped) = mount_point.strip_prefix(&root)
                && (stripped.is_empty() || stripped.starts_with('/'))
            {
                mount_point = if stripped.is_empty() { "/".into() } else { stripped.to_string() };
            }
            Some(Mount {
                device: unescape(parts[0]),
                mount_point,
                fs_type: parts[2].to_string(),
                read_only: parts[3].split(',').any(|o| o == "ro"),
            })
        })
        .collect())
}

fn statfs(path: &Path) -> std::io::Result<Stats> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: statfs writes into the zeroed struct we own; c_path is NUL-terminated.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut buf) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let bsize = buf.f_bsize as f64;
    Ok(Stats {
        size: buf.f_blocks as f64 * bsize,
        free: buf.f_bfree as f64 * bsize,
        avail: buf.f_bavail as f64 * bsize,
        files: buf.f_files as f64,
        files_free: buf.f_ffree as f64,
    })
}

fn statfs_with_timeout(path: PathBuf, timeout: std::time::Duration) -> Option<Stats> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new().name("statfs".into()).spawn(move || {
        let _ = tx.send(statfs(&path));
    });
    if spawned.is_err() {
        return None;
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(stats)) => Some(stats),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "statfs failed");
            None
        }
        Err(_) => {
            tracing::warn!("statfs timed out; mount reported with device_error 1");
            None
        }
    }
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let mut size = MetricFamily::gauge("node_filesystem_size_bytes", "Filesystem size in bytes.");
    let mut free = MetricFamily::gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.");
    let mut avail = MetricFamily::gauge(
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
    );
    let mut files = MetricFamily::gauge("node_filesystem_files", "Filesystem total file nodes.");
    let mut files_free =
        MetricFamily::gauge("node_filesystem_files_free", "Filesystem total free file nodes.");
    let mut readonly = MetricFamily::gauge("node_filesystem_readonly", "Filesystem read-only status.");
    let mut device_error = MetricFamily::gauge(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
    );
    let mut seen = HashSet::new();
    for m in mounts(config)? {
        if config.filesystem_mount_points_exclude.is_match(&m.mount_point)
            || config.filesystem_fs_types_exclude.is_match(&m.fs_type)
        {
            continue;
        }
        if !seen.insert((m.device.clone(), m.mount_point.clone(), m.fs_type.clone())) {
            continue;
        }
        let labels = [
            ("device", m.device.as_str()),
            ("fstype", m.fs_type.as_str()),
            ("mountpoint", m.mount_point.as_str()),
        ];
        let target = config.rootfs_path.join(m.mount_point.trim_start_matches('/'));
        match statfs_with_timeout(target, config.filesystem_statfs_timeout) {
            Some(s) => {
                device_error.add(&labels, 0.0);
                size.add(&labels, s.size);
                free.add(&labels, s.free);
                avail.add(&labels, s.avail);
                files.add(&labels, s.files);
                files_free.add(&labels, s.files_free);
            }
            None => {
                device_error.add(&labels, 1.0);
            }
        }
        readonly.add(&labels, if m.read_only { 1.0 } else { 0.0 });
    }
    Ok(vec![size, free, avail, files, files_free, readonly, device_error])
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("/mnt/my\\040disk"), "/mnt/my disk");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}

//! `node_uname_info` from uname(2).

use super::CollectError;
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::ffi::CStr;

fn field(raw: &[libc::c_char]) -> String {
    // SAFETY: utsname fields are NUL-terminated C strings filled by the kernel.
    unsafe { CStr::from_ptr(raw.as_ptr()) }.to_string_lossy().into_owned()
}

pub fn collect(_config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    // SAFETY: uname only writes into the zeroed struct we pass.
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut buf) } != 0 {
        return Err(CollectError::Io { path: "uname(2)".into(), source: std::io::Error::last_os_error() });
    }
    let mut f = MetricFamily::gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
    );
    f.add(
        &[
            ("domainname", field(&buf.domainname)),
            ("machine", field(&buf.machine)),
            ("nodename", field(&buf.nodename)),
            ("release", field(&buf.release)),
            ("sysname", field(&buf.sysname)),
            ("version", field(&buf.version)),
        ],
        1.0,
    );
    Ok(vec![f])
}

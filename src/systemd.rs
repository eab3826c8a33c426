//! sd_notify(3) without libsystemd: the unit is `Type=notify`, so systemd waits for `READY=1`
//! before it calls the start done (and before units ordered after it start), and shows
//! `RELOADING=1`/`STOPPING=1` in `systemctl status`. Outside systemd `NOTIFY_SOCKET` is unset
//! and every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The start time each `EXTEND_TIMEOUT_USEC` asks for, counted from when systemd receives it.
const START_EXTENSION: Duration = Duration::from_secs(30);
/// The most often start-up progress is reported: a sixth of the extension, so a slow disk
/// between two reports still lands inside the last extension.
const EXTEND_EVERY: Duration = Duration::from_secs(5);

static READY_SENT: AtomicBool = AtomicBool::new(false);
static LAST_EXTENSION: Mutex<Option<Instant>> = Mutex::new(None);

/// Sends one notification (e.g. `"READY=1"`) to `$NOTIFY_SOCKET`. Returns whether it was sent;
/// failures are logged, never fatal: a service that cannot tell systemd it is ready is still
/// serving, and systemd's start timeout reports the problem.
pub fn notify(state: &str) -> bool {
    if state.starts_with("READY=1") {
        READY_SENT.store(true, Ordering::Relaxed);
    }
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    match send(&socket, state) {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, state, "sd_notify failed");
            false
        }
    }
}

fn send(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(socket);
    if let Some(name) = bytes.strip_prefix(b"@") {
        // systemd may hand out an abstract socket ("@name"); std reaches it only through
        // SocketAddr::from_abstract_name.
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), PathBuf::from(socket))?;
    }
    Ok(())
}

/// Start-up work that can outlast systemd's start timeout (`TimeoutStartSec=`, 90 s by
/// default), such as a large replica's WAL replay, calls this as it advances. Until READY=1,
/// it asks systemd for [`START_EXTENSION`] more time, at most every [`EXTEND_EVERY`], with
/// `status()` shown in `systemctl status`. Only progress extends the start: one that hangs is
/// still killed when the last extension runs out.
pub fn startup_progress(status: impl FnOnce() -> String) {
    if READY_SENT.load(Ordering::Relaxed) || std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let now = Instant::now();
    {
        let mut last = LAST_EXTENSION.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < EXTEND_EVERY) {
            return;
        }
        *last = Some(now);
    }
    notify(&extend_message(&status()));
}

fn extend_message(status: &str) -> String {
    // STATUS= is one line in systemd's protocol.
    let status = status.replace('\n', " ");
    format!("EXTEND_TIMEOUT_USEC={}\nSTATUS={status}", START_EXTENSION.as_micros())
}

/// `RELOADING=1` must carry `MONOTONIC_USEC` for systemd ≥ 253's `Type=notify-reload`, and older
/// systemd ignores the extra field, so it is always sent.
pub fn reloading_message() -> String {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let usec = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sends_datagrams_to_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("obsd-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_server = UnixDatagram::bind_addr(&addr).unwrap();
        abstract_server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), &reloading_message()).unwrap();
        let n = abstract_server.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        assert!(text["RELOADING=1\nMONOTONIC_USEC=".len()..].parse::<u64>().unwrap() > 0);
    }

    #[test]
    fn extension_message_is_two_fields_of_one_line_each() {
        assert_eq!(
            extend_message("replaying the WAL:\nsegment 3 of 9"),
            "EXTEND_TIMEOUT_USEC=30000000\nSTATUS=replaying the WAL: segment 3 of 9"
        );
    }

    #[test]
    fn missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(send(dir.path().join("absent.sock").as_os_str(), "READY=1").is_err());
    }
}

//! sd_notify(3) without libsystemd: the unit is `Type=notify`, so systemd waits for `READY=1`
//! before it calls the start done (and before units ordered after it start), and shows
//! `RELOADING=1`/`STOPPING=1` in `systemctl status`. Outside systemd `NOTIFY_SOCKET` is unset
//! and every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Sends one notification (e.g. `"READY=1"`) to `$NOTIFY_SOCKET`. Returns whether it was sent;
/// failures are logged, never fatal: a service that cannot tell systemd it is ready is still
/// serving, and systemd's start timeout reports the problem.
pub fn notify(state: &str) -> bool {
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
    fn missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(send(dir.path().join("absent.sock").as_os_str(), "READY=1").is_err());
    }
}

//! The binary's command line and lifecycle, as a user or systemd drives it.

mod common;

use common::{Obsd, get, obsd_binary};
use std::process::Command;
use std::time::Duration;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(obsd_binary()).args(args).output().expect("run obsd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_config(text: &str) -> (i32, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap().to_string();
    let (code, out, err) = run(&["check-config", &p]);
    (code, out, err, p)
}

#[test]
fn version_names_version_and_commit() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("obsd 0."), "{out}");
    assert!(out.contains("commit "), "{out}");
}

#[test]
fn unknown_role_and_flag_are_clear_errors() {
    let (code, _, err) = run(&["--role", "exporter,warp"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown role \"warp\"") && err.contains("valid roles"), "{err}");
    let (code, _, err) = run(&["--frobnicate"]);
    assert_ne!(code, 0);
    assert!(err.contains("--frobnicate"), "{err}");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let (code, _, err, path) = check_config("[exporter]\nbogus_key = 1\n");
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{path}:2:")) && err.contains("bogus_key"), "{err}");

    let (code, _, err, path) = check_config("[exporter.listen]\nmax_connections = \"lots\"\n");
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{path}:2:")) && err.contains("exporter.listen.max_connections"), "{err}");

    let (code, _, err, path) = check_config("[global\ndata_dir = 1\n");
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{path}:1:")), "{err}");

    let (code, _, err, path) = check_config("[exporter]\nvmstat_fields = \"([\"\n");
    assert_ne!(code, 0);
    assert!(err.contains(&format!("{path}:2:")) && err.contains("exporter.vmstat_fields"), "{err}");
}

#[test]
fn check_config_describes_roles() {
    let (code, out, err, _) = check_config(
        "[exporter.listen]\naddress = \"127.0.0.1:9999\"\n[exporter.collectors]\ntimex = false\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("exporter: serves /metrics on 127.0.0.1:9999"), "{out}");
    assert!(out.contains("off: timex"), "{out}");
}

#[test]
fn bad_config_at_start_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obsd.toml");
    std::fs::write(&path, "[exporter.listen]\naddress = \"not-an-address\"\n").unwrap();
    let (code, _, err) = run(&["--role", "exporter", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("obsd.toml:2:") && err.contains("exporter.listen.address"), "{err}");
}

#[test]
fn start_serve_and_drain_on_sigterm() {
    let mut obsd = Obsd::start("exporter", "[exporter.listen]\naddress = \"127.0.0.1:0\"\n");
    let (status, body) = get(&obsd.url("exporter", "/-/healthy"));
    assert_eq!(status, 200);
    assert!(body.contains("Healthy"));
    assert_eq!(get(&obsd.url("exporter", "/-/ready")).0, 200);
    obsd.signal(libc::SIGTERM);
    let status = obsd.wait_exit(Duration::from_secs(20)).expect("exits within the drain time");
    assert!(status.success(), "exit status {status:?}; log:\n{}", obsd.log());
}

#[test]
fn port_in_use_fails_start_with_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obsd.toml");
    std::fs::write(&path, format!("[exporter.listen]\naddress = \"{addr}\"\n")).unwrap();
    let (code, _, err) = run(&["--role", "exporter", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot bind") && err.contains(&addr.to_string()), "{err}");
}

/// Every example under config/ (the seed hosts in config/seed/ too) and the packaged
/// /etc/obsd/obsd.toml must pass check-config, or a user copying one gets a daemon that
/// refuses to start.
#[test]
fn every_example_config_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pending = vec![root.join("config"), root.join("packaging/debian")];
    let mut checked = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let (code, out, err) = run(&["check-config", path.to_str().unwrap()]);
                assert_eq!(code, 0, "{}: {err}{out}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "expected every role, the seed hosts and the packaged config; found {checked}");
}

/// The systemd unit is `Type=notify`: the binary must send READY=1 once it serves, RELOADING=1
/// then READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM, to the datagram socket systemd
/// names in NOTIFY_SOCKET.
#[test]
fn notifies_systemd_on_ready_reload_and_stop() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let config = dir.path().join("obsd.toml");
    std::fs::write(&config, "[exporter.listen]\naddress = \"127.0.0.1:0\"\n").unwrap();
    let mut child = Command::new(obsd_binary())
        .args(["--role", "exporter", "--config", config.to_str().unwrap()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let next = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification within 30s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1");
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let reloading = next();
    assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reloading}");
    assert_eq!(next(), "READY=1");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(next(), "STOPPING=1");
    assert!(child.wait().unwrap().success());
}

/// A replica that must replay a WAL before it serves asks systemd for more start time
/// (EXTEND_TIMEOUT_USEC, with a STATUS line) before READY=1, so a large store's replay is not
/// killed by TimeoutStartSec.
#[test]
fn wal_replay_extends_the_systemd_start_timeout() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Commits that reach the WAL, then a crash: the next start has records to replay.
    let mut writer = Command::new(obsd_binary())
        .arg("--data-dir")
        .arg(&data)
        .args(["store", "stress-append", "--series", "20", "--sync-every", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(writer.stdout.take().unwrap()).lines().map_while(Result::ok);
    let durable = lines.filter(|l| l.starts_with("durable ")).nth(3);
    unsafe { libc::kill(writer.id() as i32, libc::SIGKILL) };
    let _ = writer.wait();
    assert!(durable.is_some(), "stress-append made no commit durable");

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let config = dir.path().join("obsd.toml");
    std::fs::write(&config, "[replica.listen]\naddress = \"127.0.0.1:0\"\n").unwrap();
    let mut child = Command::new(obsd_binary())
        .args(["--role", "replica", "--config", config.to_str().unwrap()])
        .arg("--data-dir")
        .arg(&data)
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let next = || {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = next();
    let second = if first == "READY=1" { String::new() } else { next() };
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    assert!(first.starts_with("EXTEND_TIMEOUT_USEC=30000000\nSTATUS=replaying the WAL of "), "{first}");
    assert!(first.contains("segment 1 of "), "{first}");
    assert_eq!(second, "READY=1");
}

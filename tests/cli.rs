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

#[test]
fn every_example_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, out, err) = run(&["check-config", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {err}{out}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 1, "no example configs found in {}", dir.display());
}

//! Loud configuration and journald-grade logs: warnings reach the operator, a bad flag is a
//! usage error, the journal gets each line's severity, and shippers get JSON.

mod common;

use common::{Obsd, get, obsd_binary};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(obsd_binary()).args(args).output().expect("run obsd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A prometheus.yml with two sections obsd does not serve, and an obsd config using it.
fn config_with_ignored_sections(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let yml = dir.join("prometheus.yml");
    std::fs::write(&yml, "rule_files: [\"rules.yml\"]\nremote_read: []\nscrape_configs: []\n").unwrap();
    let toml = dir.join("obsd.toml");
    std::fs::write(
        &toml,
        format!(
            "{extra}\n[replica]\nprometheus_config = \"{}\"\n[replica.listen]\naddress = \"127.0.0.1:0\"\n",
            yml.display()
        ),
    )
    .unwrap();
    toml
}

/// Starts obsd with stderr to `stderr`, waits until a line contains "obsd started" or the
/// process exits, stops it with SIGTERM and returns its exit code and whole stderr.
fn run_daemon(
    args: &[&str],
    env: &[(&str, &str)],
    stderr: std::fs::File,
    log: &std::path::Path,
) -> (i32, String) {
    let mut child = Command::new(obsd_binary())
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn obsd");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return (status.code().unwrap_or(-1), std::fs::read_to_string(log).unwrap_or_default());
        }
        if std::fs::read_to_string(log).unwrap_or_default().contains("obsd started") {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("obsd neither started nor exited; stderr:\n{}", std::fs::read_to_string(log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    (status.code().unwrap_or(-1), std::fs::read_to_string(log).unwrap_or_default())
}

fn stderr_file(dir: &std::path::Path) -> (std::fs::File, std::path::PathBuf, String) {
    use std::os::unix::fs::MetadataExt;
    let path = dir.join("stderr.log");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    (file, path, format!("{}:{}", meta.dev(), meta.ino()))
}

fn has_timestamp(line: &str) -> bool {
    let bytes = line.as_bytes();
    // 2026-01-31T…: a date followed by 'T', as tracing's default timer writes.
    bytes.windows(11).any(|w| {
        w[..4].iter().all(u8::is_ascii_digit)
            && w[4] == b'-'
            && w[5..7].iter().all(u8::is_ascii_digit)
            && w[7] == b'-'
            && w[8..10].iter().all(u8::is_ascii_digit)
            && w[10] == b'T'
    })
}

#[test]
fn check_config_prints_every_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with_ignored_sections(dir.path(), "");
    let (code, out, err) = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for section in ["rule_files", "remote_read"] {
        assert!(
            err.contains(&format!("{}:3:", path.display())) && err.contains(&format!("`{section}`")),
            "{section} not named with its location: {err}"
        );
    }
    assert!(out.contains("OK with 2 warning(s)"), "{out}");
}

#[test]
fn start_logs_warnings_and_exports_config_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let yml_dir = config_with_ignored_sections(dir.path(), "");
    let config = std::fs::read_to_string(&yml_dir).unwrap();
    let obsd = Obsd::start("replica", &config);
    let log = obsd.log();
    let warn_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && (l.contains("is ignored") || l.contains("matches no file")))
        .collect();
    assert_eq!(
        warn_lines.len(),
        2,
        "the ignored section and the missing rule file at WARN before \"obsd started\":\n{log}"
    );

    let metric = |body: &str, name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
    };
    let (status, body) = get(&obsd.url("replica", "/metrics"));
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "obsd_config_warnings"), 2.0);
    assert_eq!(metric(&body, "prometheus_config_last_reload_successful"), 1.0);
    let loaded_at = metric(&body, "prometheus_config_last_reload_success_timestamp_seconds");
    assert!(loaded_at > 1.0e9, "{loaded_at}");
    let runtimeinfo = || -> serde_json::Value {
        let (_, body) = get(&obsd.url("replica", "/api/v1/status/runtimeinfo"));
        serde_json::from_str(&body).expect("runtimeinfo JSON")
    };
    let info = runtimeinfo();
    assert_eq!(info["data"]["reloadConfigSuccess"], true, "{info}");
    assert!(info["data"]["lastConfigTime"].as_str().is_some_and(|t| t.starts_with("20")), "{info}");

    // A reload that fails keeps the running config and says so in the metric.
    std::fs::write(&obsd.config_path, "[replica\n").unwrap();
    obsd.signal(libc::SIGHUP);
    common::wait_until("the failed reload in the metric", Duration::from_secs(20), || {
        let (_, body) = get(&obsd.url("replica", "/metrics"));
        metric(&body, "prometheus_config_last_reload_successful") == 0.0
    });
    let (_, body) = get(&obsd.url("replica", "/metrics"));
    assert_eq!(metric(&body, "prometheus_config_last_reload_success_timestamp_seconds"), loaded_at);
    assert_eq!(runtimeinfo()["data"]["reloadConfigSuccess"], false);

    // A good reload recovers the metric and logs the warnings again.
    std::fs::write(&obsd.config_path, &config).unwrap();
    obsd.signal(libc::SIGHUP);
    common::wait_until("the good reload in the metric", Duration::from_secs(20), || {
        let (_, body) = get(&obsd.url("replica", "/metrics"));
        metric(&body, "prometheus_config_last_reload_successful") == 1.0
    });
    let (_, body) = get(&obsd.url("replica", "/metrics"));
    assert!(metric(&body, "prometheus_config_last_reload_success_timestamp_seconds") >= loaded_at);
    assert_eq!(metric(&body, "obsd_config_warnings"), 2.0);
    common::wait_until("the warnings logged again", Duration::from_secs(20), || {
        obsd.log()
            .lines()
            .filter(|l| l.contains("WARN") && (l.contains("is ignored") || l.contains("matches no file")))
            .count()
            == 4
    });
}

#[test]
fn log_level_flag_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("obsd.toml");
    std::fs::write(&config, "[exporter.listen]\naddress = \"127.0.0.1:0\"\n").unwrap();
    let (file, log, _) = stderr_file(dir.path());
    let data = dir.path().join("data");
    let args =
        ["--role", "exporter", "--log-level", "verbose", "--config", config.to_str().unwrap(), "--data-dir"];
    let args: Vec<&str> = args.into_iter().chain([data.to_str().unwrap()]).collect();
    let (code, err) = run_daemon(&args, &[], file, &log);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("verbose") && err.contains("error, warn, info, debug, trace"), "{err}");
    // Any case the config accepts, the flag accepts too.
    let (code, _, err) = run(&["--log-level", "WARN", "check-config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn rust_log_adds_module_filters_and_rejects_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("obsd.toml");
    std::fs::write(&config, "[exporter.listen]\naddress = \"127.0.0.1:0\"\n").unwrap();
    let data = dir.path().join("data");
    let args = [
        "--role",
        "exporter",
        "--log-level",
        "error",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let (file, log, _) = stderr_file(dir.path());
    let (code, err) = run_daemon(&args, &[("RUST_LOG", "obsd::app=info")], file, &log);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("obsd started"), "obsd::app raised to info:\n{err}");
    assert!(!err.contains("listening"), "obsd::http stays at error:\n{err}");

    let (file, log, _) = stderr_file(dir.path());
    let (code, err) = run_daemon(&args, &[("RUST_LOG", "obsd=chatty")], file, &log);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("RUST_LOG") && err.contains("chatty"), "{err}");
}

#[test]
fn journald_lines_carry_priority_and_no_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_ignored_sections(dir.path(), "");
    let data = dir.path().join("data");
    let args =
        ["--role", "replica", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let (file, log, stream) = stderr_file(dir.path());
    let (code, err) = run_daemon(&args, &[("JOURNAL_STREAM", &stream)], file, &log);
    assert_eq!(code, 0, "{err}");
    let mut seen = (0, 0);
    for line in err.lines() {
        assert!(!has_timestamp(line), "journald stamps lines itself: {line}");
        if line.contains("WARN") {
            assert!(line.starts_with("<4>"), "{line}");
            seen.0 += 1;
        } else if line.contains("INFO") {
            assert!(line.starts_with("<6>"), "{line}");
            seen.1 += 1;
        } else {
            assert!(line.starts_with('<'), "every line has a priority: {line}");
        }
    }
    assert!(seen.0 == 2 && seen.1 > 0, "warnings and info lines expected:\n{err}");

    // The fatal error too: a port taken makes the start fail at the error priority.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std::fs::write(&config, format!("[replica.listen]\naddress = \"{}\"\n", taken.local_addr().unwrap()))
        .unwrap();
    let (file, log, stream) = stderr_file(dir.path());
    let (code, err) = run_daemon(&args, &[("JOURNAL_STREAM", &stream)], file, &log);
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("<3>obsd: error:") && last.contains("cannot bind"), "{err}");

    // An inherited JOURNAL_STREAM naming another file is not the journal: plain lines.
    let (file, log, _) = stderr_file(dir.path());
    let (_, err) = run_daemon(&args, &[("JOURNAL_STREAM", "1:2")], file, &log);
    assert!(!err.starts_with('<'), "{err}");
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_ignored_sections(dir.path(), "[global]\nlog_format = \"json\"\n");
    let data = dir.path().join("data");
    let args =
        ["--role", "replica", "--config", config.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let (file, log, _) = stderr_file(dir.path());
    let (code, err) = run_daemon(&args, &[], file, &log);
    assert_eq!(code, 0, "{err}");
    let mut levels = Vec::new();
    for line in err.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(value[key].is_string(), "{key} in {line}");
        }
        assert!(value["fields"].is_object(), "{line}");
        levels.push(value["level"].as_str().unwrap_or_default().to_string());
        if value["message"] == "listening" {
            assert_eq!(value["fields"]["listener"], "replica", "{line}");
        }
    }
    assert_eq!(levels.iter().filter(|l| *l == "WARN").count(), 2, "{err}");
    assert!(err.contains("\"obsd started\""), "{err}");
}

#[test]
fn global_options_follow_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("m.om");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    std::fs::write(&file, format!("# TYPE m gauge\nm 1 {now}\n# EOF\n")).unwrap();
    let (code, _, err) = run(&[
        "store",
        "import",
        "--format",
        "openmetrics",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["store", "stats", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&data.display().to_string()), "{out}");

    let config = dir.path().join("obsd.toml");
    std::fs::write(&config, "[exporter.listen]\naddress = \"127.0.0.1:9999\"\n").unwrap();
    for args in [
        vec!["--config", config.to_str().unwrap(), "check-config"],
        vec!["check-config", "--config", config.to_str().unwrap()],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("127.0.0.1:9999"), "{args:?}: {out}");
    }
    let (code, _, err) = run(&["check-config", "--config", config.to_str().unwrap(), "/elsewhere.toml"]);
    assert_eq!(code, 2, "two different files: {err}");
}

#[test]
fn usage_errors_exit_2_and_io_errors_are_said_once() {
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2, "no --role: {err}");
    let (code, _, err) = run(&["--role", "exporter,warp"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["check-config", "/nonexistent/obsd.toml"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// Two roles on one port: the replica on the wildcard, the federation on loopback.
fn clashing_roles(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("obsd.toml");
    std::fs::write(
        &path,
        format!(
            "[replica.listen]\naddress = \"0.0.0.0:{port}\"\n[federation.listen]\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_config_reports_listener_clashes_with_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = clashing_roles(dir.path(), 19090);
    let p = path.to_str().unwrap();
    let both = |err: &str| {
        err.contains(&format!("{p}:2:")) && err.contains(&format!("{p}:4:")) && err.contains("clashes")
    };
    // A file may serve several hosts, one role each: a warning, not a refusal.
    let (code, out, err) = run(&["check-config", p]);
    assert_eq!(code, 0, "{err}");
    assert!(both(&err) && err.contains("warning"), "{err}");
    assert!(out.contains("OK with 1 warning(s)"), "{out}");
    // Roles said to run together must not clash.
    let (code, _, err) = run(&["check-config", p, "--role", "replica,federation"]);
    assert_eq!(code, 1, "{err}");
    assert!(both(&err), "{err}");
    let (code, _, err) = run(&["check-config", p, "--role", "replica"]);
    assert_eq!(code, 0, "{err}");
    assert!(both(&err), "the federation in the file is still worth a warning: {err}");
    // `--role all` runs every role together: the same refusal, no role quietly left off.
    let (code, _, err) = run(&["check-config", p, "--role", "all"]);
    assert_eq!(code, 1, "{err}");
    assert!(both(&err), "{err}");

    // Within one role a clash can never start anywhere.
    std::fs::write(
        &path,
        "[collector.listen]\naddress = \":16686\"\n[collector.otlp_http]\naddress = \"127.0.0.1:16686\"\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check-config", p]);
    assert_eq!(code, 1, "{err}");
    assert!(both(&err) && err.contains("collector.otlp_http.address"), "{err}");
}

#[test]
fn start_refuses_roles_whose_listeners_clash() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let path = clashing_roles(dir.path(), port);
    let p = path.to_str().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) =
        run(&["--role", "replica,federation", "--config", p, "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{p}:2:")) && err.contains(&format!("{p}:4:")), "{err}");
    assert!(!err.contains("cannot bind"), "refused before binding: {err}");

    // Started alone, the federation runs and warns about the replica configured beside it.
    let config = std::fs::read_to_string(&path).unwrap();
    let obsd = Obsd::start("federation", &config);
    let log = obsd.log();
    assert!(log.contains("WARN") && log.contains("replica.listen.address"), "{log}");
    let (_, body) = get(&obsd.url("federation", "/metrics"));
    assert!(body.lines().any(|l| l == "obsd_config_warnings 1"), "{body}");
}

/// The packaged /etc/obsd/obsd.toml serves every role on one host (one unit per role), and
/// `--role all` runs the embedded all-in-one config: neither may clash.
#[test]
fn packaged_configs_are_clash_free() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (file, roles) in [
        ("packaging/debian/obsd.toml", "exporter,replica,federation,balancer,collector"),
        ("config/all-in-one.toml", "all"),
    ] {
        let path = root.join(file);
        let (code, out, err) = run(&["check-config", path.to_str().unwrap(), "--role", roles]);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(!err.contains("warning"), "{file}: {err}");
        assert!(out.trim_end().ends_with(": OK"), "{file}: {out}");
    }
    // Each example, the seed hosts' included, runs its roles on one host: no clash, nothing
    // ignored.
    for dir in ["config", "config/seed"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let (code, _, err) = run(&["check-config", path.to_str().unwrap()]);
                assert!(code == 0 && err.is_empty(), "{}: {err}", path.display());
            }
        }
    }
}

/// The package ships a man page per subcommand and completions for bash, zsh and fish, all
/// generated from the CLI definition, so a new subcommand or option cannot be left out.
#[test]
fn man_pages_and_completions_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    let (code, _, err) = run(&["generate", "man", man.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "obsd-check-config",
        "obsd-store",
        "obsd-store-import",
        "obsd-store-stats",
        "obsd-store-check",
        "obsd-balancer-import-haproxy",
        "obsd-plugin-check",
    ] {
        let text = std::fs::read_to_string(man.join(format!("{page}.1"))).unwrap_or_default();
        assert!(text.contains(".TH"), "{page}.1 missing or empty");
        // Global options apply after any subcommand, so every page lists them.
        assert!(text.contains("data\\-dir"), "{page}.1 lacks --data-dir:\n{text}");
    }
    assert!(!man.join("obsd-generate.1").exists(), "the packaging helper stays out of the manual");
    let completions = dir.path().join("completions");
    let (code, _, err) = run(&["generate", "completions", completions.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for file in ["obsd.bash", "_obsd", "obsd.fish"] {
        let text = std::fs::read_to_string(completions.join(file)).unwrap_or_default();
        assert!(text.contains("check-config") && text.contains("log-level"), "{file}:\n{text}");
    }
}

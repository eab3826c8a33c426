//! The exporter role against the program it replaces: Debian's node_exporter 1.5 runs beside
//! obsd on the same machine with the same settings, and promtool lints both outputs.

mod common;

use common::{Obsd, Peer, free_port, get, peer, wait_port, wait_until};
use obsd::exposition::{MetricType, ParsedFamily, parse_text};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UPSTREAM_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// Debian's node_exporter with upstream 1.5 defaults (Debian patches some of them).
fn start_node_exporter(textfile_dir: &std::path::Path) -> Peer {
    let binary = peer("prometheus-node-exporter", "prometheus-node-exporter");
    let port = free_port();
    #[allow(clippy::zombie_processes)] // reaped in Peer's Drop
    let child = Command::new(binary)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--collector.textfile.directory={}", textfile_dir.display()))
        .arg(format!("--collector.filesystem.mount-points-exclude={UPSTREAM_MOUNT_POINTS_EXCLUDE}"))
        .arg("--collector.netdev.device-exclude=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    wait_port(port, "node_exporter");
    Peer { child, port, _dir: tempfile::tempdir().unwrap() }
}

fn textfile_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.prom"),
        "# HELP backup_last_success_timestamp_seconds Last good backup.\n# TYPE backup_last_success_timestamp_seconds gauge\nbackup_last_success_timestamp_seconds{job=\"db\"} 1.7e+09\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.prom"), "half_written{job=\"db\" 3\n").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a prom file\n").unwrap();
    dir
}

fn obsd_config(textfile: &std::path::Path) -> String {
    format!(
        "[exporter]\ntextfile_directory = {:?}\n[exporter.listen]\naddress = \"127.0.0.1:0\"\n",
        textfile.display().to_string()
    )
}

fn families(text: &str) -> BTreeMap<String, ParsedFamily> {
    parse_text(text).expect("exposition parses").into_iter().map(|f| (f.name.clone(), f)).collect()
}

fn series(f: &ParsedFamily) -> BTreeMap<String, f64> {
    f.samples
        .iter()
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.sort();
            (format!("{}{labels:?}", s.name), s.value)
        })
        .collect()
}

fn label_names(f: &ParsedFamily) -> BTreeSet<String> {
    f.samples.iter().flat_map(|s| s.labels.iter().map(|(n, _)| n.clone())).collect()
}

/// Families whose values move on their own between two scrapes a few ms apart; only their
/// names, types and labels are compared.
fn volatile(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "node_load",
        "node_procs_",
        "node_time_seconds",
        "node_filefd_allocated",
        "node_sockstat_",
        "node_entropy_available_bits",
        "node_timex_offset_seconds",
        "node_timex_frequency_adjustment_ratio",
        "node_timex_maxerror_seconds",
        "node_timex_estimated_error_seconds",
        "node_scrape_collector_duration_seconds",
        "node_filesystem_free_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_files_free",
        "node_disk_io_now",
        "node_netstat_Tcp_CurrEstab",
        // Gauges other tests move both ways (connections come and go) or the hardware does.
        "node_nf_conntrack_entries",
        "node_udp_queues",
        "node_arp_entries",
        "node_cpu_scaling_frequency_hertz",
        "node_hwmon_temp_celsius",
        "node_thermal_zone_temp",
        "process_",
    ];
    if name.starts_with("node_memory_") {
        // Totals and sizes are constants; the rest follows whatever else the machine runs.
        return !(name.contains("Total") || name.contains("size") || name.contains("Hugepagesize"));
    }
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A value from obsd agrees when it lies between node_exporter's before and after values,
/// with slack for counters that advanced in between.
fn agrees(kind: MetricType, obsd: f64, before: f64, after: f64) -> bool {
    if obsd.is_nan() {
        return before.is_nan() || after.is_nan();
    }
    let lo = before.min(after);
    let hi = before.max(after);
    let slack = match kind {
        MetricType::Counter | MetricType::Untyped => 0.02 * hi.abs() + 50.0,
        _ => 1e-9 * hi.abs() + 1e-9,
    };
    obsd >= lo - slack && obsd <= hi + slack
}

#[test]
fn matches_node_exporter_on_the_same_machine() {
    let tf = textfile_dir();
    let ne = start_node_exporter(tf.path());
    let obsd = Obsd::start("exporter", &obsd_config(tf.path()));
    let before = families(&get(&format!("http://127.0.0.1:{}/metrics", ne.port)).1);
    let (status, body) = get(&obsd.url("exporter", "/metrics"));
    assert_eq!(status, 200);
    let ours = families(&body);
    let after = families(&get(&format!("http://127.0.0.1:{}/metrics", ne.port)).1);

    let mut problems = Vec::new();
    let mut compared_series = 0;
    for (name, theirs) in &before {
        let Some(mine) = ours.get(name) else { continue };
        if mine.kind != theirs.kind {
            problems.push(format!("{name}: TYPE {:?} vs node_exporter {:?}", mine.kind, theirs.kind));
        }
        if label_names(mine) != label_names(theirs) {
            problems.push(format!(
                "{name}: labels {:?} vs node_exporter {:?}",
                label_names(mine),
                label_names(theirs)
            ));
        }
        if name == "node_scrape_collector_success" || name == "node_scrape_collector_duration_seconds" {
            continue; // node_exporter runs collectors obsd does not have
        }
        let (mine_series, before_series) = (series(mine), series(theirs));
        let after_series = after.get(name).map(series).unwrap_or_default();
        let mine_keys: BTreeSet<_> = mine_series.keys().collect();
        let their_keys: BTreeSet<_> = before_series.keys().collect();
        if mine_keys != their_keys {
            problems.push(format!(
                "{name}: series differ; only obsd: {:?}; only node_exporter: {:?}",
                mine_keys.difference(&their_keys).collect::<Vec<_>>(),
                their_keys.difference(&mine_keys).collect::<Vec<_>>()
            ));
            continue;
        }
        if volatile(name) {
            continue;
        }
        for (key, value) in &mine_series {
            let b = before_series[key];
            let a = after_series.get(key).copied().unwrap_or(b);
            compared_series += 1;
            if !agrees(theirs.kind, *value, b, a) {
                problems.push(format!("{key}: obsd {value} vs node_exporter {b} .. {a}"));
            }
        }
    }
    let missing: Vec<&String> =
        before.keys().filter(|n| !ours.contains_key(*n) && !n.starts_with("go_")).collect();
    let report = format!(
        "families node_exporter has and obsd lacks ({}):\n  {}\n",
        missing.len(),
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
    );
    println!("{report}");
    let _ = std::fs::create_dir_all("tests/artifacts");
    let _ = std::fs::write("tests/artifacts/exporter_missing_families.txt", &report);

    assert!(
        problems.is_empty(),
        "{} differences from node_exporter:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // How much there is to compare depends on the machine (CPUs, disks, interfaces): the bar
    // is what node_exporter itself exposes here, in the families both export.
    let comparable: usize = before
        .iter()
        .filter(|(name, _)| {
            ours.contains_key(*name)
                && !volatile(name)
                && *name != "node_scrape_collector_success"
                && *name != "node_scrape_collector_duration_seconds"
        })
        .map(|(_, f)| series(f).len())
        .sum();
    let exported: usize = before
        .iter()
        .filter(|(name, _)| name.starts_with("node_") && !volatile(name))
        .map(|(_, f)| series(f).len())
        .sum();
    println!(
        "compared {compared_series} of {comparable} comparable series; node_exporter exports {exported}"
    );
    assert_eq!(compared_series, comparable, "series compared by value");
    assert!(
        comparable * 10 >= exported * 7,
        "obsd serves only {comparable} of node_exporter's {exported} stable node_* series here"
    );
    for required in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_filesystem_size_bytes",
        "node_disk_read_bytes_total",
        "node_network_receive_bytes_total",
        "node_network_up",
        "node_boot_time_seconds",
        "node_uname_info",
        "node_vmstat_pgfault",
        "node_netstat_Tcp_InSegs",
        "node_textfile_scrape_error",
        "node_textfile_mtime_seconds",
        "backup_last_success_timestamp_seconds",
    ] {
        assert!(ours.contains_key(required), "obsd lacks {required}");
    }
    // The broken file is reported, the good one still served, exactly as node_exporter does.
    assert_eq!(ours["node_textfile_scrape_error"].samples[0].value, 1.0);
    assert!(ours.contains_key("process_resident_memory_bytes") && ours.contains_key("obsd_build_info"));
}

fn promtool_findings(text: &str) -> (i32, BTreeSet<String>) {
    use std::io::Write;
    let mut child = Command::new(peer("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), findings)
}

#[test]
fn promtool_finds_nothing_node_exporter_does_not_also_draw() {
    let tf = textfile_dir();
    let ne = start_node_exporter(tf.path());
    let obsd = Obsd::start("exporter", &obsd_config(tf.path()));
    let (code, ours) = promtool_findings(&get(&obsd.url("exporter", "/metrics")).1);
    let (_, theirs) = promtool_findings(&get(&format!("http://127.0.0.1:{}/metrics", ne.port)).1);
    assert!(code == 0 || code == 3, "promtool exit {code}: {ours:?}");
    assert!(!ours.iter().any(|l| l.contains("error while linting") || l.contains("parse")), "{ours:?}");
    let extra: Vec<_> = ours.difference(&theirs).collect();
    assert!(extra.is_empty(), "lint findings node_exporter does not draw: {extra:?}");
}

#[test]
fn concurrent_scrapes_and_disabled_collectors() {
    let tf = textfile_dir();
    let config =
        format!("{}[exporter.collectors]\ntimex = false\nfilesystem = false\n", obsd_config(tf.path()));
    let obsd = Obsd::start("exporter", &config);
    let url = obsd.url("exporter", "/metrics");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&url))
        })
        .collect();
    for h in handles {
        let (status, body) = h.join().unwrap();
        assert_eq!(status, 200);
        let f = families(&body);
        assert!(f.contains_key("node_cpu_seconds_total"));
        assert!(!f.contains_key("node_timex_status") && !f.contains_key("node_filesystem_size_bytes"));
    }
}

#[test]
fn failing_collector_reports_zero_and_the_rest_answers() {
    let fake_proc = tempfile::tempdir().unwrap();
    // A proc root with only loadavg: every other /proc collector fails, loadavg still works.
    std::fs::write(fake_proc.path().join("loadavg"), "0.50 0.25 0.10 1/100 42\n").unwrap();
    let config = format!(
        "[exporter]\nproc_path = {:?}\n[exporter.listen]\naddress = \"127.0.0.1:0\"\n",
        fake_proc.path().display().to_string()
    );
    let obsd = Obsd::start("exporter", &config);
    let (status, body) = get(&obsd.url("exporter", "/metrics"));
    assert_eq!(status, 200);
    let f = families(&body);
    assert_eq!(f["node_load1"].samples[0].value, 0.5);
    let success: BTreeMap<String, f64> =
        f["node_scrape_collector_success"].samples.iter().map(|s| (s.labels[0].1.clone(), s.value)).collect();
    assert_eq!(success["loadavg"], 1.0);
    assert_eq!(success["cpu"], 0.0);
    assert_eq!(success["meminfo"], 0.0);
    assert!(!f.contains_key("node_cpu_seconds_total"));
}

#[test]
fn sighup_reloads_collector_switches() {
    let tf = textfile_dir();
    let mut obsd = Obsd::start("exporter", &obsd_config(tf.path()));
    let url = obsd.url("exporter", "/metrics");
    assert!(families(&get(&url).1).contains_key("node_uname_info"));
    let new = format!("{}[exporter.collectors]\nuname = false\n", obsd_config(tf.path()));
    std::fs::write(&obsd.config_path, new).unwrap();
    obsd.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while families(&get(&url).1).contains_key("node_uname_info") {
        assert!(Instant::now() < deadline, "reload not applied; log:\n{}", obsd.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A broken config on reload is refused and the running one kept.
    std::fs::write(&obsd.config_path, "[exporter]\nnope = 1\n").unwrap();
    obsd.signal(libc::SIGHUP);
    wait_until("the failed reload logged", Duration::from_secs(10), || obsd.log().contains("reload failed"));
    assert_eq!(get(&url).0, 200);
    obsd.signal(libc::SIGTERM);
    assert!(obsd.wait_exit(Duration::from_secs(20)).is_some_and(|s| s.success()));
}

#[test]
fn scrapes_past_max_requests_get_503_at_once() {
    // A textfile that is a FIFO holds a scrape until the test writes to it, as a slow
    // collector would: with max_requests = 1 the next scrape is refused, not queued.
    let tf = tempfile::tempdir().unwrap();
    let fifo = tf.path().join("slow.prom");
    let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let config = obsd_config(tf.path()).replace("[exporter]\n", "[exporter]\nmax_requests = 1\n");
    let obsd = Obsd::start("exporter", &config);
    let url = obsd.url("exporter", "/metrics");
    let held = {
        let url = url.clone();
        std::thread::spawn(move || get(&url))
    };
    // A non-blocking open for writing succeeds only once a reader (the held scrape's
    // textfile collector) has the FIFO open; the scrape then waits for our end to close.
    let mut writer = None;
    wait_until("the first scrape reading the FIFO", Duration::from_secs(10), || {
        use std::os::unix::fs::OpenOptionsExt;
        writer = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).ok();
        writer.is_some()
    });
    let (status, body) = get(&url);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "Limit of concurrent requests reached (1), try again later.\n");
    let mut writer = writer.unwrap();
    writer.write_all(b"slow_metric 1\n").unwrap();
    drop(writer);
    let (status, body) = held.join().unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("slow_metric 1"), "{body}");
}

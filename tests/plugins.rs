//! WASM exporter plugins end to end: the example plugins under plugins/ are built for
//! wasm32-wasip1 with cargo, the real obsd binary runs them, and misbehaving plugins
//! (tests/plugins/*.wat and plugins/testing/escape) each fail alone while the exporter keeps
//! answering with everything else.

mod common;

use common::{Obsd, get, obsd_binary, wait_until};
use obsd::exposition::{ParsedFamily, parse_text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// Builds the plugins workspace once per test binary and returns where the .wasm files are.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(MANIFEST).join("target"))
            .join("wasm-plugins");
        let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(Path::new(MANIFEST).join("plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo");
        assert!(
            status.success(),
            "building plugins/ failed (is the target there? rustup target add wasm32-wasip1)"
        );
        target.join("wasm32-wasip1/release")
    })
}

fn wat(name: &str) -> String {
    format!("{MANIFEST}/tests/plugins/{name}.wat")
}

/// Sample value by `name{labels}` for a quick lookup: `name` plus sorted `k="v"` pairs.
fn samples(body: &str) -> BTreeMap<String, f64> {
    let families: Vec<ParsedFamily> = parse_text(body).expect("/metrics parses");
    let mut out = BTreeMap::new();
    for f in families {
        for s in f.samples {
            let mut labels = s.labels.clone();
            labels.sort();
            let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            out.insert(format!("{}{{{}}}", s.name, inner.join(",")), s.value);
        }
    }
    out
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        let near: Vec<&String> =
            samples.keys().filter(|k| k.starts_with(key.split('{').next().unwrap())).collect();
        panic!("no sample {key}; similar: {near:?}")
    })
}

struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A cgroup v2 tree as systemd lays it out, with known numbers.
fn cgroup_fixture() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("cgroup.controllers", "cpu io memory pids\n");
    let ssh = "system.slice/ssh.service";
    write(&format!("{ssh}/cgroup.events"), "populated 1\nfrozen 0\n");
    write(&format!("{ssh}/memory.current"), "12345\n");
    write(&format!("{ssh}/pids.current"), "3\n");
    write(&format!("{ssh}/cpu.stat"), "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\n");
    write(&format!("{ssh}/memory.events"), "low 0\nhigh 0\nmax 0\noom 1\noom_kill 2\n");
    write(&format!("{ssh}/io.stat"), "8:0 rbytes=4096 wbytes=1024 rios=1 wios=1\n");
    write(
        &format!("{ssh}/cpu.pressure"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=250000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    let getty = "system.slice/system-getty.slice/getty@tty1.service";
    write(&format!("{getty}/cgroup.events"), "populated 0\nfrozen 0\n");
    write(&format!("{getty}/memory.current"), "0\n");
    write("user.slice/user-1000.slice/session-1.scope/cgroup.events", "populated 1\n");
    root
}

#[test]
fn example_plugins_metrics_appear_beside_the_collectors() {
    let dir = wasm_dir();
    let cgroup = cgroup_fixture();
    let sleepers = Sleepers(
        (0..2)
            .map(|_| Command::new("sleep").arg("300").stdout(Stdio::null()).spawn().expect("sleep"))
            .collect(),
    );
    let config = format!(
        "[exporter.listen]\naddress = \"127.0.0.1:0\"\n[exporter.plugins]\ndirectory = {dir:?}\n\
         [[exporter.plugin]]\nname = \"process\"\nfile = \"process_exporter.wasm\"\nargs = [\"obsd\", \"sleep\", \"no-such-process\"]\n\
         read_only_dirs = [\"/proc\"]\n\
         [[exporter.plugin]]\nname = \"units\"\nfile = \"systemd_units.wasm\"\nargs = [\"ssh.service\", \"missing.service\"]\n\
         read_only_dirs = [\"{}:/sys/fs/cgroup\"]\n",
        cgroup.path().display()
    );
    let obsd = Obsd::start("exporter", &config);
    let (status, body) = get(&obsd.url("exporter", "/metrics"));
    assert_eq!(status, 200);
    let s = samples(&body);
    assert_eq!(value(&s, "obsd_plugin_up{plugin=\"process\"}"), 1.0, "log:\n{}", obsd.log());
    assert_eq!(value(&s, "obsd_plugin_up{plugin=\"units\"}"), 1.0, "log:\n{}", obsd.log());
    // The collectors are untouched.
    assert_eq!(value(&s, "node_scrape_collector_success{collector=\"cpu\"}"), 1.0);
    assert!(s.keys().any(|k| k.starts_with("node_cpu_seconds_total{")));

    let g = |name: &str| format!("groupname=\"{name}\"");
    assert!(
        value(&s, &format!("namedprocess_namegroup_num_procs{{{}}}", g("sleep"))) >= sleepers.0.len() as f64
    );
    assert_eq!(value(&s, &format!("namedprocess_namegroup_num_procs{{{}}}", g("no-such-process"))), 0.0);
    assert!(value(&s, &format!("namedprocess_namegroup_num_procs{{{}}}", g("obsd"))) >= 1.0);
    // obsd itself: a multi-threaded runtime, a listener socket, resident memory.
    assert!(value(&s, &format!("namedprocess_namegroup_num_threads{{{}}}", g("obsd"))) > 1.0);
    assert!(value(&s, &format!("namedprocess_namegroup_open_filedesc{{{}}}", g("obsd"))) >= 4.0);
    assert!(
        value(&s, &format!("namedprocess_namegroup_memory_bytes{{{},memtype=\"resident\"}}", g("obsd")))
            > 1e6
    );
    let ratio = value(&s, &format!("namedprocess_namegroup_worst_fd_ratio{{{}}}", g("obsd")));
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    let cpu_key = format!("namedprocess_namegroup_cpu_seconds_total{{{},mode=\"user\"}}", g("obsd"));
    assert!(value(&s, &cpu_key) >= 0.0);
    let started = value(&s, &format!("namedprocess_namegroup_oldest_start_time_seconds{{{}}}", g("sleep")));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!((now - started).abs() < 600.0, "sleep started {started}, now {now}");

    assert_eq!(value(&s, "systemd_unit_active{unit=\"ssh.service\"}"), 1.0);
    assert_eq!(value(&s, "systemd_unit_active{unit=\"missing.service\"}"), 0.0);
    assert_eq!(value(&s, "systemd_unit_active{unit=\"getty@tty1.service\"}"), 0.0);
    assert_eq!(value(&s, "systemd_unit_memory_bytes{unit=\"ssh.service\"}"), 12345.0);
    assert_eq!(value(&s, "systemd_unit_tasks{unit=\"ssh.service\"}"), 3.0);
    assert_eq!(value(&s, "systemd_unit_cpu_seconds_total{mode=\"user\",unit=\"ssh.service\"}"), 1.5);
    assert_eq!(value(&s, "systemd_unit_oom_kills_total{unit=\"ssh.service\"}"), 2.0);
    assert_eq!(value(&s, "systemd_unit_io_read_bytes_total{unit=\"ssh.service\"}"), 4096.0);
    assert_eq!(
        value(
            &s,
            "systemd_unit_pressure_stalled_seconds_total{kind=\"some\",resource=\"cpu\",unit=\"ssh.service\"}"
        ),
        0.25
    );
    assert!(!s.keys().any(|k| k.contains("session-1.scope")), "scopes are not reported by default");
}

#[test]
fn misbehaving_plugins_fail_alone() {
    let dir = wasm_dir();
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("public.txt"), "public\n").unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "s3cr3t-value\n").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let escape = dir.join("escape.wasm");
    let plugin = |name: &str, file: &str, extra: &str| {
        format!("[[exporter.plugin]]\nname = \"{name}\"\nfile = {file:?}\n{extra}\n")
    };
    let mut config =
        "[exporter.listen]\naddress = \"127.0.0.1:0\"\n[exporter.plugins]\ntimeout = \"3s\"\n".to_string();
    config += &plugin("good", &wat("good"), "");
    config += &plugin("spin_fuel", &wat("loop"), "fuel = 20000000");
    config += &plugin("spin_clock", &wat("loop"), "fuel = 9000000000000000000\ntimeout = \"1s\"");
    config += &plugin("hog", &wat("alloc"), "memory_limit = \"8MB\"");
    config += &plugin("crash", &wat("trap"), "");
    config += &plugin("socket", &wat("socket"), "");
    config += &plugin("garbage", &wat("garbage"), "");
    let grant = format!("read_only_dirs = [\"{}\"]", granted.path().display());
    config += &plugin(
        "read_ungranted",
        &escape.display().to_string(),
        &format!("args = [\"read\", {:?}]\n{grant}", secret.display().to_string()),
    );
    config += &plugin(
        "read_granted",
        &escape.display().to_string(),
        &format!("args = [\"read\", \"{}/public.txt\"]\n{grant}", granted.path().display()),
    );
    config += &plugin(
        "connect",
        &escape.display().to_string(),
        &format!("args = [\"connect\", \"{}\"]", listener.local_addr().unwrap()),
    );
    config += &plugin("list_root", &escape.display().to_string(), "args = [\"list\", \"/\"]");
    // Opening a FIFO nobody writes blocks in the kernel, where no epoch tick reaches.
    let fifo = granted.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    config += &plugin(
        "blocked",
        &escape.display().to_string(),
        &format!("args = [\"read\", {:?}]\n{grant}\ntimeout = \"1s\"", fifo.display().to_string()),
    );
    let obsd = Obsd::start("exporter", &config);
    for round in 0..2 {
        let (status, body) = get(&obsd.url("exporter", "/metrics"));
        assert_eq!(status, 200);
        let s = samples(&body);
        let up = |p: &str| value(&s, &format!("obsd_plugin_up{{plugin=\"{p}\"}}"));
        let errors = |p: &str, reason: &str| {
            s.get(&format!("obsd_plugin_errors_total{{plugin=\"{p}\",reason=\"{reason}\"}}"))
                .copied()
                .unwrap_or(0.0)
        };
        assert_eq!(up("good"), 1.0, "log:\n{}", obsd.log());
        assert_eq!(value(&s, "wat_answer{version=\"1\"}"), 42.0);
        assert_eq!(up("read_granted"), 1.0, "log:\n{}", obsd.log());
        assert_eq!(value(&s, "escape_read{content=\"public\"}"), 1.0);
        for (p, reason) in [
            ("spin_fuel", "cpu"),
            ("spin_clock", "timeout"),
            ("hog", "memory"),
            ("crash", "trap"),
            ("socket", "load"),
            ("garbage", "invalid_output"),
            ("read_ungranted", "trap"),
            ("connect", "trap"),
            ("list_root", "trap"),
            ("blocked", "timeout"),
        ] {
            assert_eq!(up(p), 0.0, "{p} should be down; log:\n{}", obsd.log());
            assert_eq!(errors(p, reason), (round + 1) as f64, "{p}: errors by {reason}; body:\n{body}");
        }
        assert!(!body.contains("s3cr3t"), "the secret leaked into /metrics");
        assert!(!body.contains("escape_connected") && !body.contains("escape_listed_entries"));
        assert_eq!(value(&s, "node_scrape_collector_success{collector=\"loadavg\"}"), 1.0);
    }
    // Each of those scrapes left a collect of `blocked` stuck on the FIFO. Two more fill its
    // four running slots; past that a scrape reports it busy instead of starting a fifth.
    let blocked = |body: &str, reason: &str| {
        samples(body)
            .get(&format!("obsd_plugin_errors_total{{plugin=\"blocked\",reason=\"{reason}\"}}"))
            .copied()
    };
    for _ in 0..2 {
        get(&obsd.url("exporter", "/metrics"));
    }
    let (status, body) = get(&obsd.url("exporter", "/metrics"));
    assert_eq!(status, 200);
    assert_eq!(blocked(&body, "timeout"), Some(4.0), "{body}");
    assert_eq!(blocked(&body, "busy"), Some(1.0), "{body}");
    assert!(listener.accept().is_err(), "the connect plugin reached the listener");
    let log = obsd.log();
    assert!(log.contains("sock_open"), "load error names the import:\n{log}");
    assert!(log.contains("line 2"), "invalid output names the line:\n{log}");
}

#[test]
fn sighup_swaps_a_changed_plugin_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swap.wat");
    std::fs::copy(wat("good"), &file).unwrap();
    let config = format!(
        "[exporter.listen]\naddress = \"127.0.0.1:0\"\n[exporter.plugins]\ndirectory = {:?}\n\
         [[exporter.plugin]]\nname = \"swap\"\nfile = \"swap.wat\"\n",
        dir.path().display().to_string()
    );
    let obsd = Obsd::start("exporter", &config);
    let url = obsd.url("exporter", "/metrics");
    let body = get(&url).1;
    assert!(body.contains("wat_answer{version=\"1\"} 42"), "{body}");
    std::fs::copy(wat("swapped"), &file).unwrap();
    obsd.signal(libc::SIGHUP);
    wait_until("the swapped plugin's metrics", Duration::from_secs(20), || {
        let body = get(&url).1;
        body.contains("wat_swapped{version=\"2\"} 7") && !body.contains("wat_answer")
    });
    // An unchanged file keeps its compiled module across a reload.
    let loaded = |log: &str| log.matches("plugin loaded").count();
    let before = loaded(&obsd.log());
    obsd.signal(libc::SIGHUP);
    wait_until("the second reload", Duration::from_secs(20), || {
        obsd.log().matches("configuration reloaded").count() >= 2
    });
    assert_eq!(loaded(&obsd.log()), before, "an unchanged plugin was compiled again:\n{}", obsd.log());
    assert_eq!(samples(&get(&url).1)["obsd_plugin_up{plugin=\"swap\"}"], 1.0);
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(obsd_binary()).args(args).output().expect("run obsd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plugin_check_runs_one_collect_and_reports() {
    let (code, out, err) = run(&["plugin", "check", &wat("good")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("# TYPE wat_answer gauge\nwat_answer{version=\"1\"} 42\n"), "{out}");
    assert!(err.contains("OK: 1 families, 1 samples"), "{err}");

    let process = wasm_dir().join("process_exporter.wasm");
    let (code, out, err) =
        run(&["plugin", "check", process.to_str().unwrap(), "--dir", "/proc", "--arg", "obsd"]);
    assert_eq!(code, 0, "{err}");
    // This obsd at least (other tests run more at the same time).
    assert!(value(&samples(&out), "namedprocess_namegroup_num_procs{groupname=\"obsd\"}") >= 1.0, "{out}");
    // Without the /proc grant the plugin cannot see processes and says so.
    let (code, _, err) = run(&["plugin", "check", process.to_str().unwrap(), "--arg", "obsd"]);
    assert_eq!(code, 1);
    assert!(err.contains("rejected (exit)") && err.contains("grant it in read_only_dirs"), "{err}");

    for (file, fuel, needle) in [
        ("loop", "1000000", "rejected (cpu): used up its fuel budget of 1000000"),
        ("garbage", "1000000", "rejected (invalid_output): invalid exposition: line 2"),
        ("socket", "1000000", "rejected (load)"),
        ("trap", "1000000", "rejected (trap)"),
    ] {
        let (code, out, err) = run(&["plugin", "check", &wat(file), "--fuel", fuel]);
        assert_eq!(code, 1, "{file}: {err}");
        assert!(out.is_empty(), "{file}: nothing on stdout when rejected: {out}");
        assert!(err.contains(needle), "{file}: {err}");
    }
    let (code, _, err) = run(&["plugin", "check", "/nonexistent.wasm"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.wasm"), "{err}");
}

#[test]
fn plugin_config_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obsd.toml");
    std::fs::write(
        &path,
        format!(
            "[exporter.plugins]\ndirectory = {:?}\n\n[[exporter.plugin]]\nname = \"good\"\nfile = \"{}\"\nmemory_limit = \"plenty\"\nread_only_dirs = [\"/no/such/dir\"]\n\n[[exporter.plugin]]\nname = \"nofile\"\n",
            dir.path().display().to_string(),
            wat("good")
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let shown = path.display();
    assert!(err.contains(&format!("{shown}:7:16: key `exporter.plugin[0].memory_limit`")), "{err}");
    assert!(err.contains(&format!("{shown}:8:19: key `exporter.plugin[0].read_only_dirs`")), "{err}");
    assert!(err.contains(&format!("{shown}:10:1: key `exporter.plugin[1].file`")), "{err}");
}

/// Runs `obsd args` and kills it if it has not exited within `guard`, so a hang fails the test
/// instead of stalling it: the exit code (None when it had to be killed) and stderr.
fn run_guarded(args: &[&str], guard: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(obsd_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run obsd");
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for obsd") {
            break status.code();
        }
        if started.elapsed() > guard {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    (code, stderr)
}

#[test]
fn plugin_check_cuts_off_a_plugin_sleeping_in_a_host_call() {
    let (code, err) =
        run_guarded(&["plugin", "check", &wat("sleep"), "--timeout", "1s"], Duration::from_secs(30));
    assert_eq!(code, Some(1), "plugin check did not stop the sleeping plugin; stderr:\n{err}");
    assert!(err.contains("rejected (timeout)") && err.contains("blocked in a host call"), "{err}");
}

#[test]
fn exporter_cuts_off_a_plugin_sleeping_in_a_host_call() {
    let config = format!(
        "[exporter.listen]\naddress = \"127.0.0.1:0\"\n[[exporter.plugin]]\nname = \"sleep\"\nfile = {:?}\ntimeout = \"1s\"\n",
        wat("sleep")
    );
    let obsd = Obsd::start("exporter", &config);
    let (status, body) = get(&obsd.url("exporter", "/metrics"));
    assert_eq!(status, 200);
    let s = samples(&body);
    assert_eq!(value(&s, "obsd_plugin_up{plugin=\"sleep\"}"), 0.0, "{body}");
    assert_eq!(value(&s, "obsd_plugin_errors_total{plugin=\"sleep\",reason=\"timeout\"}"), 1.0, "{body}");
}

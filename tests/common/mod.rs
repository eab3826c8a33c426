//! Test harness: runs the real `obsd` binary with a config written to a temp dir, reads the
//! "listening" lines it logs to learn its ports, and kills it on drop.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Obsd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    addresses: HashMap<String, SocketAddr>,
    log: Arc<Mutex<String>>,
    /// A command obsd runs under (`ip netns exec NS`); it must exec obsd, so the pid is obsd's.
    wrapper: Vec<String>,
}

pub fn obsd_binary() -> &'static str {
    env!("CARGO_BIN_EXE_obsd")
}

impl Obsd {
    /// Starts `obsd --role <roles> --config <file with config_toml>` and waits for "obsd started".
    pub fn start(roles: &str, config_toml: &str) -> Obsd {
        Self::start_with_args(&["--role", roles], config_toml)
    }

    pub fn start_with_args(args: &[&str], config_toml: &str) -> Obsd {
        Self::start_in(tempfile::tempdir().expect("temp dir"), &[], args, config_toml)
    }

    /// As `start_with_args`, with its config and data under `dir` (a tmpfs a test mounted).
    pub fn start_in_dir(dir: tempfile::TempDir, args: &[&str], config_toml: &str) -> Obsd {
        Self::start_in(dir, &[], args, config_toml)
    }

    /// As `start_with_args`, with obsd run by `wrapper` (`["ip", "netns", "exec", ns]`), which
    /// must exec it.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str], config_toml: &str) -> Obsd {
        let wrapper: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        Self::start_in(tempfile::tempdir().expect("temp dir"), &wrapper, args, config_toml)
    }

    /// Stops this obsd (SIGKILL when `kill`, else SIGTERM and a clean exit) and starts it again
    /// with the same arguments, config and data directory: the restart tests' tool.
    pub fn restart(mut self, args: &[&str], kill: bool) -> Obsd {
        self.signal(if kill { libc::SIGKILL } else { libc::SIGTERM });
        let status = self.wait_exit(Duration::from_secs(30)).expect("obsd did not exit");
        assert!(kill || status.success(), "obsd exited with {status}; log:\n{}", self.log());
        let config = std::fs::read_to_string(&self.config_path).expect("read config");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        let wrapper = std::mem::take(&mut self.wrapper);
        Self::start_in(dir, &wrapper, args, &config)
    }

    fn start_in(dir: tempfile::TempDir, wrapper: &[String], args: &[&str], config_toml: &str) -> Obsd {
        let config_path = dir.path().join("obsd.toml");
        std::fs::write(&config_path, config_toml).expect("write config");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(obsd_binary());
                c
            }
            None => Command::new(obsd_binary()),
        };
        let mut child = command
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            // The harness reads the INFO "listening" and "obsd started" lines; a developer's
            // RUST_LOG=warn must not hide them.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn obsd");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                    let _ = tx.send(line);
                }
            });
        }
        let mut addresses = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining) {
                Ok(line) => {
                    if line.contains("listening")
                        && let (Some(name), Some(addr)) = (field(&line, "listener"), field(&line, "address"))
                    {
                        addresses.insert(name, addr.parse().expect("address in log"));
                    }
                    if line.contains("obsd started") {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("obsd did not start; log:\n{}", log.lock().unwrap());
                }
            }
        }
        Obsd { child, dir, config_path, addresses, log, wrapper: wrapper.to_vec() }
    }

    pub fn address(&self, listener: &str) -> SocketAddr {
        *self
            .addresses
            .get(listener)
            .unwrap_or_else(|| panic!("no listener {listener} in {:?}", self.addresses))
    }

    pub fn url(&self, listener: &str, path: &str) -> String {
        format!("http://{}{}", self.address(listener), path)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the process to exit; None if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Obsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `key=value` from a tracing log line.
fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[start..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_string())
}

/// A blocking HTTP GET with a timeout; returns status and body.
pub fn get(url: &str) -> (u16, String) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let resp = client.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

/// A free TCP port on 127.0.0.1 for peers that cannot be told to use port 0.
pub fn free_port() -> u16 {
    // Picked below the kernel's ephemeral range: a port taken from that range and released
    // can be handed to the next bind to port 0 (obsd's own listeners, any client socket)
    // before the peer it was picked for binds it; that happened once in CI. Each port is
    // also given out once per run.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    if ephemeral_low > 12_000 {
        let span = u32::from(ephemeral_low - 11_000);
        let seed = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        for i in 0..span {
            let port = (10_000 + (seed.wrapping_add(i.wrapping_mul(7919))) % span) as u16;
            if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.push(port);
                return port;
            }
        }
    }
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Path of a Debian peer binary, or a panic telling how to install it.
pub fn peer(binary: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(format!("/usr/bin/{binary}"));
    assert!(path.exists(), "{binary} is missing: apt-get install {package} (bash .ci/run installs it)");
    path
}

/// A peer process (Prometheus, the Flask app, victoria-metrics) killed and reaped on drop.
pub struct Peer {
    pub child: std::process::Child,
    pub port: u16,
    pub _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The seed-like prometheus_client Flask app (tests/peers/metrics_app.py); `load` requests per
/// second it sends itself, for steady rate() panels.
pub fn metrics_app(load: Option<u32>) -> Peer {
    let venv = std::env::var("OBSD_VENV_DIR").unwrap_or_else(|_| "/var/tmp/obsd-venvs".into());
    let python = format!("{venv}/metrics/bin/python");
    assert!(std::path::Path::new(&python).exists(), "{python} missing: run tests/peers/setup_python.sh");
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/metrics_app.py");
    let mut command = Command::new(python);
    command.arg(script).arg(port.to_string());
    if let Some(rps) = load {
        command.args(["--load", &rps.to_string()]);
    }
    #[allow(clippy::zombie_processes)] // reaped in Peer's Drop
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start metrics app");
    wait_port(port, "metrics app");
    // One request so the labelled counter and histogram have series from the first scrape.
    // The port opens a moment before the server answers, so this one is retried.
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("http://127.0.0.1:{port}/")).send().is_err() {
        assert!(Instant::now() < deadline, "metrics app on port {port} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    Peer { child, port, _dir: tempfile::tempdir().unwrap() }
}

/// A self-signed certificate for 127.0.0.1/localhost in `dir`: (cert path, key path).
pub fn self_signed(dir: &std::path::Path) -> (String, String) {
    openssl_certificate(dir, "tls", "localhost", "IP:127.0.0.1,DNS:localhost")
}

/// A self-signed certificate valid only for the DNS name `name` (not for 127.0.0.1), in `dir`:
/// (cert path, key path). A client must be told the name (`server_name`) to accept it.
pub fn certificate_for(dir: &std::path::Path, name: &str) -> (String, String) {
    openssl_certificate(dir, name, name, &format!("DNS:{name}"))
}

/// `<stem>.crt` and `<stem>.key` in `dir`: a one-day self-signed certificate for `cn` and the
/// subject alternative names `san`.
fn openssl_certificate(dir: &std::path::Path, stem: &str, cn: &str, san: &str) -> (String, String) {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", &format!("/CN={cn}")])
        .args(["-addext", &format!("subjectAltName={san}"), "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (Debian package openssl) is needed to make a test certificate");
    assert!(status.success());
    (cert.display().to_string(), key.display().to_string())
}

/// Tests that need root (network namespaces, chroot) fail for other users unless they opt out
/// with OBSD_SKIP_ROOT_TESTS=1, so a skip is never silent; CI runs as root.
pub fn require_root(what: &str) -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("OBSD_SKIP_ROOT_TESTS").is_some() {
        eprintln!("SKIPPED {what}: needs root (OBSD_SKIP_ROOT_TESTS is set)");
        return false;
    }
    panic!("{what} needs root, as CI runs it; set OBSD_SKIP_ROOT_TESTS=1 to skip it")
}

/// One unary gRPC call over cleartext HTTP/2 with `message` as its request, gzipped if asked:
/// the grpc-status (from the headers or the trailers), grpc-message and the response message.
/// Spoken raw so a test can send bytes no generated client would encode.
pub fn grpc_unary(address: SocketAddr, path: &str, message: &[u8], gzip: bool) -> (u32, String, Vec<u8>) {
    use http_body_util::{BodyExt, Full};
    let message = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, message).unwrap();
        gz.finish().unwrap()
    } else {
        message.to_vec()
    };
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(u8::from(gzip));
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::post(format!("http://{address}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if gzip {
            req = req.header("grpc-encoding", "gzip");
        }
        let req = req.body(Full::new(bytes::Bytes::from(frame))).unwrap();
        let resp =
            tokio::time::timeout(Duration::from_secs(60), sender.send_request(req)).await.unwrap().unwrap();
        let headers = resp.headers().clone();
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let body = collected.to_bytes();
        let field = |name: &str| {
            trailers.get(name).or(headers.get(name)).and_then(|v| v.to_str().ok()).map(str::to_string)
        };
        let status = field("grpc-status").and_then(|s| s.parse().ok()).unwrap_or(u32::MAX);
        let payload = body.get(5..).unwrap_or_default().to_vec();
        (status, percent_decode(&field("grpc-message").unwrap_or_default()), payload)
    })
}

/// grpc-message is percent-encoded on the wire.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An OTLP/gRPC trace export of `request` (an encoded ExportTraceServiceRequest).
pub fn otlp_grpc_export(address: SocketAddr, request: &[u8], gzip: bool) -> (u32, String, Vec<u8>) {
    grpc_unary(address, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", request, gzip)
}

/// One remote-written series: its labels and `(ms, value)` samples.
pub type Series = (Vec<(&'static str, &'static str)>, Vec<(i64, f64)>);

/// Remote-writes `series` to `url` (a `/api/v1/write`) as Prometheus does; panics unless 2xx.
pub fn remote_write(url: &str, series: &[Series]) {
    use obsd::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
    let body = obsd::remote_write::encode(&WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label { name: n.to_string(), value: v.to_string() })
                    .collect(),
                samples: samples.iter().map(|&(t, v)| Sample { value: v, timestamp: t }).collect(),
                exemplars: vec![],
            })
            .collect(),
        metadata: vec![],
    });
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let r = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    assert!((200..300).contains(&status), "{url}: {status} {}", r.text().unwrap_or_default());
}

/// A tiny HTTP server on a free port: records each request body and answers every request
/// with `status`, or never answers when `status` is None.
pub struct Recorder {
    pub port: u16,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

/// One request a [`Recorder`] received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorder {
    pub fn start(status: Option<u16>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<RecordedRequest>>> = Arc::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, status, &seen));
            }
        });
        Recorder { port, requests }
    }

    pub fn json(&self) -> Vec<serde_json::Value> {
        self.requests.lock().unwrap().iter().filter_map(|r| serde_json::from_slice(&r.body).ok()).collect()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn alerts_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v2/alerts", self.port)
    }
}

fn serve(stream: std::net::TcpStream, status: Option<u16>, seen: &Mutex<Vec<RecordedRequest>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut request_line = String::new();
        let mut headers = Vec::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if request_line.is_empty() {
                request_line = line.trim_end().to_string();
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        seen.lock().unwrap().push(RecordedRequest { method, path, headers, body });
        let Some(code) = status else {
            std::thread::sleep(Duration::from_secs(3600));
            return;
        };
        let response = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n");
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Debian's Alertmanager 0.25 with clustering off, reading `am.yml` in its directory; killed
/// on drop.
pub struct RealAlertmanager {
    child: Child,
    pub port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealAlertmanager {
    /// With `config` as its am.yml in a directory of its own.
    pub fn start(config: &str) -> RealAlertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("am.yml"), config).expect("write am.yml");
        let mut am = Self::start_in(dir.path(), None);
        am._dir = Some(dir);
        am
    }

    /// With the am.yml already in `dir` (templates beside it), data under `dir/data`.
    pub fn start_in(dir: &Path, external_url: Option<&str>) -> RealAlertmanager {
        let port = free_port();
        let mut command = Command::new(peer("prometheus-alertmanager", "prometheus-alertmanager"));
        command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--config.file={}", dir.join("am.yml").display()));
        if let Some(url) = external_url {
            command.arg(format!("--web.external-url={url}"));
        }
        #[allow(clippy::zombie_processes)] // reaped in Drop
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start alertmanager");
        wait_port(port, "alertmanager");
        let am = RealAlertmanager { child, port, _dir: None };
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        wait_until("alertmanager ready", Duration::from_secs(60), || {
            client.get(format!("{}/-/ready", am.url())).send().is_ok_and(|r| r.status().is_success())
        });
        am
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// obsd's alertmanager role reading `am.yml` in `dir` (the directory it owns), with `extra`
/// lines in its `[alertmanager]` section.
pub fn start_obsd_alertmanager(dir: tempfile::TempDir, extra: &str) -> Obsd {
    let toml = format!(
        "[alertmanager]\nconfig = \"am.yml\"\n{extra}[alertmanager.listen]\naddress = \"127.0.0.1:0\"\n"
    );
    Obsd::start_in_dir(dir, &["--role", "alertmanager"], &toml)
}

//! Small HTTP/1.1 servers for balancer tests: each answers with its own name, keeps
//! connections alive, can be told to fail health checks, and can be killed like a crashed
//! process (listener closed and every open connection reset).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct TestServer {
    pub name: String,
    pub addr: SocketAddr,
    /// Status returned for every request (health checks included).
    pub status: Arc<AtomicU16>,
    pub hits: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    /// Bytes of body for `/big`.
    pub big: usize,
}

impl TestServer {
    pub fn start(name: &str) -> TestServer {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap())
    }

    /// Binds a given address (to restart a killed server on its old port).
    pub fn start_on(name: &str, addr: SocketAddr) -> TestServer {
        let listener = TcpListener::bind(addr).expect("bind test server");
        let addr = listener.local_addr().unwrap();
        let server = TestServer {
            name: name.to_string(),
            addr,
            status: Arc::new(AtomicU16::new(200)),
            hits: Arc::new(AtomicU64::new(0)),
            dead: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
            big: 20 * 1024 * 1024,
        };
        let (name, status, hits, dead, conns, big) = (
            server.name.clone(),
            server.status.clone(),
            server.hits.clone(),
            server.dead.clone(),
            server.conns.clone(),
            server.big,
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if dead.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(c) = stream.try_clone() {
                    conns.lock().unwrap().push(c);
                }
                let (name, status, hits, dead) = (name.clone(), status.clone(), hits.clone(), dead.clone());
                std::thread::spawn(move || serve(stream, &name, &status, &hits, &dead, big));
            }
        });
        server
    }

    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Like a crash: no more accepts, every open connection reset.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        // Wake the accept loop so the listener is dropped now.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(stream: TcpStream, name: &str, status: &AtomicU16, hits: &AtomicU64, dead: &AtomicBool, big: usize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 || dead.load(Ordering::SeqCst) {
            return;
        }
        let mut content_length = 0usize;
        let mut close = request_line.ends_with("HTTP/1.0\r\n");
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
            headers.push_str(&line);
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if dead.load(Ordering::SeqCst) {
            return;
        }
        hits.fetch_add(1, Ordering::SeqCst);
        let code = status.load(Ordering::SeqCst);
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let connection = if close { "close" } else { "keep-alive" };
        if path.starts_with("/big") {
            let head =
                format!("HTTP/1.1 {code} X\r\nContent-Length: {big}\r\nConnection: {connection}\r\n\r\n");
            if writer.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = big;
            while left > 0 {
                let n = left.min(chunk.len());
                if writer.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
        } else {
            let text = if path.starts_with("/headers") {
                headers.clone()
            } else if path.starts_with("/slow") {
                // Long enough that requests sent together overlap even on a loaded machine.
                std::thread::sleep(Duration::from_millis(1000));
                name.to_string()
            } else {
                name.to_string()
            };
            let response = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n{text}",
                text.len()
            );
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
        if close {
            return;
        }
    }
}

/// A TCP echo server for TCP-mode tests.
pub fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A TCP port with nothing listening on it. Taken the way `common::free_port` takes ports,
/// below the ephemeral range and once per run: a port released back to that range could be
/// handed to a listener bound to port 0 and the "dead" server would answer.
pub fn closed_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], super::common::free_port()))
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(4)
        .build()
        .unwrap()
}

/// Reads `;csv` and returns (pxname, svname) → column → value.
pub fn stats_csv(url: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = client().get(url).basic_auth("admin", Some("admin")).send().unwrap().text().unwrap();
    let mut lines = text.lines();
    let header: Vec<String> =
        lines.next().unwrap().trim_start_matches("# ").split(',').map(str::to_string).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_string)).collect()).collect()
}

pub fn server_status(stats_url: &str, backend: &str, server: &str) -> String {
    stats_csv(stats_url)
        .into_iter()
        .find(|r| r["pxname"] == backend && r["svname"] == server)
        .map(|r| r["status"].clone())
        .unwrap_or_default()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

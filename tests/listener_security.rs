//! Every listener can use TLS and basic auth, and limits what a client may send.

mod common;

use common::{Obsd, self_signed};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn tls_and_bcrypt_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let config = format!(
        "[exporter.listen]\naddress = \"127.0.0.1:0\"\n[exporter.listen.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\
         [exporter.listen.basic_auth_users]\nprometheus = {hash:?}\nops = \"plain:letmein\"\n"
    );
    let obsd = Obsd::start("exporter", &config);
    let cert_pem = std::fs::read(&cert).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert_pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let url = format!("https://{}/metrics", obsd.address("exporter"));

    let anonymous = client.get(&url).send().unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic realm="));

    let wrong = client.get(&url).basic_auth("prometheus", Some("nope")).send().unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let ok = client.get(&url).basic_auth("prometheus", Some("s3cret")).send().unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(ok.text().unwrap().contains("node_cpu_seconds_total"));
    let plain = client.get(&url).basic_auth("ops", Some("letmein")).send().unwrap();
    assert_eq!(plain.status().as_u16(), 200);

    // Plain HTTP to a TLS listener gets no answer, and the daemon keeps serving.
    let plain_http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(plain_http.get(format!("http://{}/metrics", obsd.address("exporter"))).send().is_err());
    assert_eq!(client.get(&url).basic_auth("ops", Some("letmein")).send().unwrap().status().as_u16(), 200);
}

/// Sends `request` on a new connection and reads until the server closes it (20 s at most):
/// how long that took and what came back.
fn send_until_closed(addr: std::net::SocketAddr, request: &[u8]) -> (Duration, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    (started.elapsed(), String::from_utf8_lossy(&buf).into_owned())
}

#[test]
fn oversized_headers_are_refused_and_slow_clients_cut() {
    let obsd = Obsd::start(
        "exporter",
        "[exporter.listen]\naddress = \"127.0.0.1:0\"\nmax_header_bytes = 8192\nheader_read_timeout = \"1s\"\n",
    );
    let addr = obsd.address("exporter");

    let huge = "x".repeat(64 * 1024);
    let request = format!("GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: {huge}\r\n\r\n");
    let (_, answer) = send_until_closed(addr, request.as_bytes());
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer:.200}");

    // A client that sends half a request head and stalls is disconnected after the timeout.
    let (waited, _) = send_until_closed(addr, b"GET /metrics HTTP/1.1\r\nHost: a\r\n");
    assert!(waited < Duration::from_secs(8), "slow client kept for {waited:?}");

    let (status, _) = common::get(&obsd.url("exporter", "/-/healthy"));
    assert_eq!(status, 200);
}

#[test]
fn a_body_that_trickles_in_is_cut_at_read_timeout() {
    // Prometheus's --web.read-timeout: the request must be read within it, so a client
    // sending its body a byte at a time cannot keep a connection slot.
    let obsd = Obsd::start(
        "replica",
        "[replica]\nremote_write_receiver = true\n[replica.listen]\naddress = \"127.0.0.1:0\"\nread_timeout = \"1s\"\n",
    );
    let (waited, answer) = send_until_closed(
        obsd.address("replica"),
        b"POST /api/v1/write HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\n\
          Content-Encoding: snappy\r\nContent-Length: 1000\r\n\r\nx",
    );
    // Cut well before the 20 s the test would wait, with an error answer or none.
    assert!(waited < Duration::from_secs(15), "slow body kept for {waited:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer:.300}");
    let (status, _) = common::get(&obsd.url("replica", "/-/healthy"));
    assert_eq!(status, 200);
}

/// A GET request head of exactly `len` bytes (request line, headers and the blank line), padded
/// with one `X-Pad` header, after `headers`.
fn head_of_len(path: &str, headers: &str, len: usize) -> Vec<u8> {
    let start = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{headers}X-Pad: ");
    let end = "\r\n\r\n";
    let pad = len.checked_sub(start.len() + end.len()).expect("len too small for the head");
    format!("{start}{}{end}", "p".repeat(pad)).into_bytes()
}

#[test]
fn max_header_bytes_is_exact() {
    let obsd =
        Obsd::start("exporter", "[exporter.listen]\naddress = \"127.0.0.1:0\"\nmax_header_bytes = 65536\n");
    let addr = obsd.address("exporter");
    let at_limit = head_of_len("/-/healthy", "", 65536);
    assert_eq!(at_limit.len(), 65536);
    let (_, answer) = send_until_closed(addr, &at_limit);
    assert!(answer.starts_with("HTTP/1.1 200"), "a head of exactly the limit is served: {answer:.200}");
    for len in [65537, 65536 + 4096, 100_000] {
        let (_, answer) = send_until_closed(addr, &head_of_len("/-/healthy", "", len));
        assert!(answer.starts_with("HTTP/1.1 431"), "a {len}-byte head is refused: {answer:.200}");
    }
    // The same limit with a small value, below hyper's minimum read buffer.
    let obsd =
        Obsd::start("exporter", "[exporter.listen]\naddress = \"127.0.0.1:0\"\nmax_header_bytes = 1000\n");
    let addr = obsd.address("exporter");
    let (_, answer) = send_until_closed(addr, &head_of_len("/-/healthy", "", 1000));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    let (_, answer) = send_until_closed(addr, &head_of_len("/-/healthy", "", 1001));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
}

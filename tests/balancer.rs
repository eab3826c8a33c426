//! The balancer role end to end: the real obsd binary in front of small HTTP servers on
//! loopback, driven by real clients.

mod common;
#[path = "balancer_support/mod.rs"]
mod support;

use common::Obsd;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{TestServer, client, server_status, stats_csv, wait_for};

const STATS: &str = r#"
[balancer]
stats_auth = ["admin:admin"]
stats_admin = true
stats_refresh = "5s"
[balancer.listen]
address = "127.0.0.1:0"
"#;

fn backend(name: &str, balance: &str, extra: &str, servers: &[(&str, &TestServer, &str)]) -> String {
    let mut s = format!(
        "\n[[balancer.frontends]]\nname = \"{name}\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"{name}\"\n\
         \n[[balancer.backends]]\nname = \"{name}\"\nbalance = \"{balance}\"\n{extra}\n"
    );
    for (sname, server, opts) in servers {
        s.push_str(&format!(
            "[[balancer.backends.servers]]\nname = \"{sname}\"\naddress = \"{}\"\n{opts}\n",
            server.addr
        ));
    }
    s
}

/// Checks every 100 ms. The check timeout is set apart from `inter` (which it defaults to, as
/// in HAProxy) so that a check slowed by a loaded CI machine does not count as a failure.
const FAST_CHECKS: &str = "httpchk = { method = \"GET\", path = \"/\" }\ntimeout_check = \"2s\"\n\
                           default_server = { inter = \"100ms\" }";

fn body_of(url: &str) -> String {
    body_via(&client(), url)
}

/// `body_of` on a client the caller keeps: a loop of requests then costs no client setup,
/// which matters where the loop must fit in a time window on a loaded machine.
fn body_via(http: &reqwest::blocking::Client, url: &str) -> String {
    let r = http.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "GET {url}");
    r.text().unwrap()
}

fn tally(url: &str, n: usize) -> HashMap<String, usize> {
    let c = client();
    let mut counts = HashMap::new();
    for _ in 0..n {
        let body = c.get(url).send().unwrap().text().unwrap();
        *counts.entry(body).or_insert(0) += 1;
    }
    counts
}

fn stats_url(obsd: &Obsd) -> String {
    obsd.url("balancer", "/stats;csv")
}

/// Waits until every listed server's check has passed once (status plain "UP").
/// The stats CSV row of one server (or `BACKEND`/`FRONTEND`).
fn stats_row(obsd: &Obsd, proxy: &str, server: &str) -> HashMap<String, String> {
    let rows = stats_csv(&stats_url(obsd));
    rows.into_iter()
        .find(|r| r["pxname"] == proxy && r["svname"] == server)
        .unwrap_or_else(|| panic!("no stats row {proxy}/{server}"))
}

/// Backend `be` of two servers, `a` and `b`, checks off, with `extra` backend lines.
fn two_unchecked(extra: &str, a: &TestServer, b: &TestServer) -> String {
    STATS.to_string()
        + &backend("be", "roundrobin", extra, &[("a", a, "check = false"), ("b", b, "check = false")])
}

fn wait_all_up(obsd: &Obsd, backend: &str, servers: &[&str]) {
    let url = stats_url(obsd);
    assert!(
        wait_for(Duration::from_secs(5), || servers.iter().all(|s| server_status(&url, backend, s) == "UP")),
        "servers never came UP; log:\n{}",
        obsd.log()
    );
}

#[test]
fn algorithms_distribute_like_haproxy() {
    let (a, b, c) = (TestServer::start("a"), TestServer::start("b"), TestServer::start("c"));
    let mut cfg = STATS.to_string();
    cfg += &backend("rr", "roundrobin", FAST_CHECKS, &[("a", &a, "weight = 3"), ("b", &b, "weight = 1")]);
    cfg += &backend("lc", "leastconn", FAST_CHECKS, &[("a", &a, ""), ("b", &b, "")]);
    cfg += &backend("first", "first", FAST_CHECKS, &[("a", &a, ""), ("b", &b, "")]);
    cfg += &backend("src", "source", FAST_CHECKS, &[("a", &a, ""), ("b", &b, ""), ("c", &c, "")]);
    cfg += &backend("rnd", "random", FAST_CHECKS, &[("a", &a, ""), ("b", &b, "")]);
    cfg += &backend(
        "bk",
        "roundrobin",
        FAST_CHECKS,
        &[("a", &a, ""), ("b", &b, ""), ("c", &c, "backup = true")],
    );
    let obsd = Obsd::start("balancer", &cfg);
    for name in ["rr", "lc", "first", "src", "rnd", "bk"] {
        let servers: &[&str] = if name == "src" || name == "bk" { &["a", "b", "c"] } else { &["a", "b"] };
        wait_all_up(&obsd, name, servers);
    }

    let rr = tally(&obsd.url("frontend.rr", "/"), 200);
    assert_eq!((rr["a"], rr["b"]), (150, 50), "weighted roundrobin 3:1: {rr:?}");

    // Sequential requests never overlap, so leastconn sees equal load and alternates.
    let lc = tally(&obsd.url("frontend.lc", "/"), 100);
    assert_eq!((lc["a"], lc["b"]), (50, 50), "leastconn: {lc:?}");

    let first = tally(&obsd.url("frontend.first", "/"), 50);
    assert_eq!(first.get("a"), Some(&50), "first: {first:?}");

    let src = tally(&obsd.url("frontend.src", "/"), 30);
    assert_eq!(src.len(), 1, "source hash pins one client to one server: {src:?}");

    let rnd = tally(&obsd.url("frontend.rnd", "/"), 400);
    assert!(rnd["a"] > 120 && rnd["b"] > 120, "random(2): {rnd:?}");

    let bk = tally(&obsd.url("frontend.bk", "/"), 40);
    assert_eq!(bk.get("c"), None, "backup unused while actives are up: {bk:?}");
    a.set_status(503);
    b.set_status(503);
    let url = stats_url(&obsd);
    assert!(wait_for(Duration::from_secs(5), || server_status(&url, "bk", "a") == "DOWN"
        && server_status(&url, "bk", "b") == "DOWN"));
    assert_eq!(body_of(&obsd.url("frontend.bk", "/")), "c", "backup takes over when all actives are down");
}

#[test]
fn health_transitions_follow_inter_fall_rise() {
    let s = TestServer::start("s");
    let cfg = STATS.to_string()
        + &backend(
            "be",
            "roundrobin",
            // fastinter paces the checks between UP and DOWN: long enough for the poll below to
            // see the in-between states on a loaded machine.
            "httpchk = { method = \"GET\", path = \"/\", expect_status = \"200\" }\ntimeout_check = \"2s\"\n\
             default_server = { inter = \"100ms\", fastinter = \"400ms\", fall = 3, rise = 2 }",
            &[("s", &s, "")],
        );
    let obsd = Obsd::start("balancer", &cfg);
    let url = stats_url(&obsd);
    wait_all_up(&obsd, "be", &["s"]);

    // Record every status the page shows while the server fails, then recovers.
    let mut seen: Vec<String> = Vec::new();
    let record = |seen: &mut Vec<String>| {
        let st = server_status(&url, "be", "s");
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        st
    };
    let failed_at = Instant::now();
    s.set_status(500);
    while record(&mut seen) != "DOWN" {
        assert!(failed_at.elapsed() < Duration::from_secs(5), "never went DOWN: {seen:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let down_after = failed_at.elapsed();
    // fall 3: the first failure within one inter, two more fastinter apart, about 800-900 ms.
    assert!(down_after >= Duration::from_millis(800), "went down too early: {down_after:?} {seen:?}");
    assert!(seen.contains(&"UP 2/3".to_string()) || seen.contains(&"UP 1/3".to_string()), "{seen:?}");

    let rows = stats_csv(&url);
    let row = rows.iter().find(|r| r["svname"] == "s").unwrap();
    assert_eq!(row["chkfail"], "3", "{row:?}");
    assert_eq!(row["chkdown"], "1");
    assert_eq!(row["check_status"], "L7STS");
    assert_eq!(row["check_code"], "500");

    // A DOWN backend answers 503 at once (no queueing, no connect) with HAProxy's body.
    let r = client().get(obsd.url("frontend.be", "/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().unwrap().contains("No server is available to handle this request."));

    seen.clear();
    let fixed_at = Instant::now();
    s.set_status(200);
    while record(&mut seen) != "UP" {
        assert!(fixed_at.elapsed() < Duration::from_secs(5), "never came back: {seen:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(fixed_at.elapsed() >= Duration::from_millis(100), "rise 2 needs two checks");
    assert_eq!(body_of(&obsd.url("frontend.be", "/")), "s");

    let metrics = common::get(&obsd.url("balancer", "/metrics")).1;
    assert!(metrics.contains("haproxy_server_up{backend=\"be\",server=\"s\"} 1"), "{metrics}");
    assert!(metrics.contains("haproxy_server_check_failures_total{backend=\"be\",server=\"s\"} 3"));
    assert!(
        metrics.contains("obsd_balancer_backend_request_duration_seconds_bucket{backend=\"be\",le=\"+Inf\"}")
    );
}

#[test]
fn all_servers_down_gives_503_at_once() {
    let dead1 = support::closed_port();
    let dead2 = support::closed_port();
    let cfg = format!(
        "{STATS}\n[[balancer.frontends]]\nname = \"fe\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"be\"\n\
         [[balancer.backends]]\nname = \"be\"\ntimeout_queue = \"30s\"\ndefault_server = {{ inter = \"100ms\" }}\n\
         [[balancer.backends.servers]]\nname = \"x\"\naddress = \"{dead1}\"\n\
         [[balancer.backends.servers]]\nname = \"y\"\naddress = \"{dead2}\"\n"
    );
    let obsd = Obsd::start("balancer", &cfg);
    // Even before the first check marks them DOWN, connect failures end in 503, not a hang.
    let r = client().get(obsd.url("frontend.fe", "/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let url = stats_url(&obsd);
    assert!(wait_for(Duration::from_secs(3), || server_status(&url, "be", "x") == "DOWN"
        && server_status(&url, "be", "y") == "DOWN"));
    // "At once": neither queued (that would last timeout_queue, 30 s, past the client's 10 s
    // timeout) nor sent to a server (econ would grow).
    let econ = |s: &str| stats_row(&obsd, "be", s)["econ"].clone();
    let econ_before = (econ("x"), econ("y"));
    let http = client();
    for _ in 0..5 {
        let r = http.get(obsd.url("frontend.fe", "/")).send().unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers()["content-type"], "text/html");
        assert_eq!(
            r.text().unwrap(),
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"
        );
    }
    assert_eq!((econ("x"), econ("y")), econ_before);
    let metrics = common::get(&obsd.url("balancer", "/metrics")).1;
    assert!(metrics.contains("haproxy_backend_up{backend=\"be\"} 0"), "{metrics}");
}

#[test]
fn upstream_connections_are_pooled_and_reused() {
    let server = TestServer::start("a");
    // No health check, so every connection the server accepts carries proxied requests.
    let stats = STATS.replacen("[balancer]\n", "[balancer]\nnbthread = 2\n", 1);
    let cfg = format!("{stats}{}", backend("fe", "roundrobin", "", &[("a", &server, "check = false")]));
    let obsd = Obsd::start("balancer", &cfg);
    assert!(obsd.log().contains("threads=2"), "nbthread = 2 not applied:\n{}", obsd.log());
    let url = obsd.url("frontend.fe", "/");
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = client();
                for _ in 0..50 {
                    let r = c.get(&url).send().unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    assert_eq!(r.text().unwrap(), "a");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(server.hits(), 200);
    // Four clients at a time, each connection thread pooling its own: at most 2 x 4
    // connections, where no pool would open one per request.
    let opened = server.connections();
    assert!((1..=8).contains(&opened), "{opened} upstream connections for 200 requests");
}

/// Runs `threads` keep-alive clients against `url` until `stop`; `ok` counts the successful
/// requests as they complete, and the handle returns (ok, failed).
fn load(
    url: String,
    threads: usize,
    ok: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (url, stop, ok) = (url.clone(), stop.clone(), ok.clone());
                std::thread::spawn(move || {
                    let c = client();
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        match c.get(&url).send() {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes();
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(r) => failures.push(format!("status {}", r.status())),
                            Err(e) => failures.push(format!("{e:?}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        let failures = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        (ok.load(Ordering::SeqCst), failures)
    })
}

#[test]
fn killing_a_server_under_load_loses_no_request() {
    let a = TestServer::start("a");
    let b = TestServer::start("b");
    // Default retries/redispatch; checks slow enough that they cannot mark the dead server
    // down in time, so retries (and the failed-connect hold after them) save the requests.
    let cfg = STATS.to_string()
        + &backend(
            "be",
            "roundrobin",
            "default_server = { inter = \"2s\" }",
            &[("a", &a, ""), ("b", &b, "")],
        );
    let obsd = Obsd::start("balancer", &cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let handle = load(obsd.url("frontend.be", "/"), 8, done.clone(), stop.clone());
    // Counted, not timed: a slow machine still sends enough requests on both sides of the kill.
    let traffic = |n: u64| wait_for(Duration::from_secs(60), || done.load(Ordering::SeqCst) >= n);
    std::thread::sleep(Duration::from_millis(700));
    let before_kill = traffic(100);
    a.kill();
    let killed_at = done.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    let after_kill = traffic(killed_at + 200);
    stop.store(true, Ordering::SeqCst);
    let (ok, failures) = handle.join().unwrap();
    assert!(
        before_kill && after_kill,
        "too little traffic to mean anything: {ok} in all, {killed_at} before the kill"
    );
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        ok,
        &failures[..failures.len().min(5)]
    );
    let rows = stats_csv(&stats_url(&obsd));
    let be = rows.iter().find(|r| r["pxname"] == "be" && r["svname"] == "BACKEND").unwrap();
    assert!(be["wredis"].parse::<u64>().unwrap() > 0 || be["wretr"].parse::<u64>().unwrap() > 0, "{be:?}");
}

#[test]
fn stats_page_auth_formats_and_admin_actions() {
    let a = TestServer::start("a");
    let b = TestServer::start("b");
    let cfg = STATS.to_string() + &backend("be", "roundrobin", FAST_CHECKS, &[("a", &a, ""), ("b", &b, "")]);
    let obsd = Obsd::start("balancer", &cfg);
    wait_all_up(&obsd, "be", &["a", "b"]);
    let c = client();

    let r = c.get(obsd.url("balancer", "/stats")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"HAProxy Statistics\"");
    let r = c.get(obsd.url("balancer", "/stats")).basic_auth("admin", Some("wrong")).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let html = c.get(obsd.url("balancer", "/stats")).basic_auth("admin", Some("admin")).send().unwrap();
    assert_eq!(html.status().as_u16(), 200);
    let html = html.text().unwrap();
    assert!(html.contains("http-equiv=\"refresh\" content=\"5\""), "auto-refresh");
    assert!(html.contains(">be</th>") && html.contains("name=\"action\""), "{html}");

    let csv = c.get(obsd.url("balancer", "/stats;csv")).basic_auth("admin", Some("admin")).send().unwrap();
    let csv = csv.text().unwrap();
    assert!(csv.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,"));
    assert!(csv.contains("\nbe,a,") && csv.contains("\nbe,BACKEND,") && csv.contains("\nbe,FRONTEND,"));

    let json_text = c
        .get(obsd.url("balancer", "/stats;json"))
        .basic_auth("admin", Some("admin"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let rows = json.as_array().unwrap();
    let first = &rows[0][0];
    assert_eq!(first["field"]["name"], "pxname");
    assert_eq!(first["objType"], "Frontend");
    assert!(rows.iter().any(|r| r[1]["value"]["value"] == "a" && r[0]["objType"] == "Server"));

    // Admin: drain a, traffic all goes to b; maint shows MAINT; ready restores.
    let no_redirect =
        reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let post = |action: &str| {
        no_redirect
            .post(obsd.url("balancer", "/stats"))
            .basic_auth("admin", Some("admin"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("s=a&action={action}&b=%23be"))
            .send()
            .unwrap()
    };
    let r = post("drain");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/stats;st=DONE");
    let url = stats_url(&obsd);
    assert_eq!(server_status(&url, "be", "a"), "DRAIN");
    let counts = tally(&obsd.url("frontend.be", "/"), 20);
    assert_eq!(counts.get("b"), Some(&20), "{counts:?}");
    let metrics = common::get(&obsd.url("balancer", "/metrics")).1;
    assert!(metrics.contains("haproxy_server_up{backend=\"be\",server=\"a\"} 1"), "DRAIN counts as up");
    assert!(metrics.contains("haproxy_server_weight{backend=\"be\",server=\"a\"} 0"));

    post("maint");
    assert_eq!(server_status(&url, "be", "a"), "MAINT");
    let metrics = common::get(&obsd.url("balancer", "/metrics")).1;
    assert!(metrics.contains("haproxy_server_up{backend=\"be\",server=\"a\"} 0"));
    post("ready");
    assert!(wait_for(Duration::from_secs(3), || server_status(&url, "be", "a") == "UP"));
    let counts = tally(&obsd.url("frontend.be", "/"), 20);
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");

    // Without credentials, no admin.
    let r = no_redirect.post(obsd.url("balancer", "/stats")).body("s=a&action=maint&b=be").send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(common::get(&obsd.url("balancer", "/-/healthy")).0, 200);
    assert_eq!(common::get(&obsd.url("balancer", "/-/ready")).0, 200);
}

fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn slowloris_is_cut_and_malformed_requests_get_400() {
    let a = TestServer::start("a");
    let cfg = STATS.to_string()
        + &backend("be", "roundrobin", "", &[("a", &a, "")]).replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\ntimeout_http_request = \"500ms\"\nmax_header_count = 20",
        );
    let obsd = Obsd::start("balancer", &cfg);
    let fe = obsd.address("frontend.be");

    // Slowloris: a header line every 200 ms never completes the head.
    let mut s = TcpStream::connect(fe).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut cut = false;
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        if let Ok(0) = s.read(&mut buf) {
            cut = true;
            break;
        }
    }
    assert!(cut, "slow client never cut");
    assert!(started.elapsed() < Duration::from_secs(3), "cut after {:?}", started.elapsed());

    // Idle keep-alive is cut too.
    let mut s = TcpStream::connect(fe).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let idle_started = Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    assert!(idle_started.elapsed() < Duration::from_secs(3));

    let bad = raw_exchange(fe, b"THIS IS NOT HTTP\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let bad = raw_exchange(fe, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..50 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    let too_many = raw_exchange(fe, many.as_bytes());
    assert!(too_many.starts_with("HTTP/1.1 4"), "{too_many}");
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let too_big = raw_exchange(fe, big.as_bytes());
    assert!(too_big.starts_with("HTTP/1.1 431") || too_big.starts_with("HTTP/1.1 400"), "{too_big}");
    // A good request on the same frontend still works, with forwarding headers added.
    let headers = body_of(&obsd.url("frontend.be", "/headers"));
    assert!(headers.to_ascii_lowercase().contains("x-forwarded-for: 127.0.0.1"), "{headers}");
    assert!(headers.to_ascii_lowercase().contains("forwarded: for=127.0.0.1;proto=http"), "{headers}");

    let rows = stats_csv(&stats_url(&obsd));
    let fe_row = rows.iter().find(|r| r["pxname"] == "be" && r["svname"] == "FRONTEND").unwrap();
    assert!(fe_row["ereq"].parse::<u64>().unwrap() >= 3, "{fe_row:?}");
}

#[test]
fn large_responses_stream_through() {
    let a = TestServer::start("a");
    let cfg = STATS.to_string() + &backend("be", "roundrobin", "", &[("a", &a, "")]);
    let obsd = Obsd::start("balancer", &cfg);
    let mut r = client().get(obsd.url("frontend.be", "/big")).send().unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut checked_midway = false;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        // A quarter in, the rest (15 MB) cannot all sit in socket buffers: the download is
        // still running, and `bout` already holds at least what the client has read, as
        // HAProxy's does, so a rate of bytes_out shows a long download while it runs.
        if !checked_midway && total >= a.big / 4 {
            checked_midway = true;
            let row = stats_row(&obsd, "be", "a");
            assert_eq!(row["scur"], "1", "{row:?}");
            assert!(row["bout"].parse::<usize>().unwrap() >= total, "read {total}: {row:?}");
        }
    }
    assert_eq!(total, a.big);
    let row = stats_row(&obsd, "be", "a");
    assert!(row["bout"].parse::<usize>().unwrap() >= a.big, "{row:?}");
}

#[test]
fn a_long_upload_shows_in_bin_while_it_runs() {
    let a = TestServer::start("a");
    let cfg = STATS.to_string() + &backend("be", "roundrobin", "", &[("a", &a, "check = false")]);
    let obsd = Obsd::start("balancer", &cfg);
    // Past the 64 KiB obsd keeps for replay, so the body streams to the server as it comes.
    let total = 4 << 20;
    let mut up = TcpStream::connect(obsd.address("frontend.be")).unwrap();
    up.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(up, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n").unwrap();
    let half = vec![b'u'; total / 2];
    up.write_all(&half).unwrap();
    // Half the body is in and the request is still open: bin already holds that half, as
    // HAProxy's does, in the frontend, the backend and the server.
    let bin = |server: &str| -> usize { stats_row(&obsd, "be", server)["bin"].parse().unwrap() };
    assert!(
        wait_for(Duration::from_secs(10), || ["FRONTEND", "BACKEND", "a"]
            .iter()
            .all(|s| bin(s) >= total / 2)),
        "{:?}",
        stats_row(&obsd, "be", "a")
    );
    assert_eq!(stats_row(&obsd, "be", "a")["scur"], "1");
    up.write_all(&half).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.ends_with(b"\r\n\r\na") {
        let n = up.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&answer));
    // Counted once: the body plus its head, not the body twice.
    let row = stats_row(&obsd, "be", "a");
    let bin_total: usize = row["bin"].parse().unwrap();
    assert!(bin_total >= total && bin_total < total + 1024, "{row:?}");
}

#[test]
fn sighup_reload_under_load_drops_nothing_and_keeps_health() {
    let a = TestServer::start("a");
    let b = TestServer::start("b");
    let c = TestServer::start("c");
    let dead = support::closed_port();
    let base = |extra_server: &str| {
        let mut cfg =
            STATS.to_string() + &backend("be", "roundrobin", FAST_CHECKS, &[("a", &a, ""), ("b", &b, "")]);
        cfg.push_str(&format!("[[balancer.backends.servers]]\nname = \"dead\"\naddress = \"{dead}\"\n"));
        cfg.push_str(extra_server);
        cfg
    };
    let mut obsd = Obsd::start("balancer", &base(""));
    let url = stats_url(&obsd);
    wait_all_up(&obsd, "be", &["a", "b"]);
    assert!(wait_for(Duration::from_secs(3), || server_status(&url, "be", "dead") == "DOWN"));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let handle = load(obsd.url("frontend.be", "/"), 6, done.clone(), stop.clone());
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        let extra = if round % 2 == 0 {
            format!("[[balancer.backends.servers]]\nname = \"c\"\naddress = \"{}\"\n", c.addr)
        } else {
            String::new()
        };
        std::fs::write(&obsd.config_path, base(&extra)).unwrap();
        obsd.signal(libc::SIGHUP);
        // Each reload is seen through before the next signal: two signals close together
        // may be taken as one reload, and the check below is about the state after it.
        let reloads = || obsd.log().matches("configuration reloaded").count();
        assert!(wait_for(Duration::from_secs(10), || reloads() == round + 1), "{}", obsd.log());
        // The dead server stays DOWN across the reload: its state is kept, not reset to UP.
        assert_eq!(server_status(&url, "be", "dead"), "DOWN", "round {round}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let enough = wait_for(Duration::from_secs(60), || done.load(Ordering::SeqCst) > 100);
    stop.store(true, Ordering::SeqCst);
    let (ok, failures) = handle.join().unwrap();
    assert!(enough, "too little traffic to mean anything: {ok}");
    assert!(failures.is_empty(), "{} failed: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    assert!(c.hits() > 0, "the added server took traffic after reload");
    assert_eq!(obsd.log().matches("configuration reloaded").count(), 3, "{}", obsd.log());
    obsd.signal(libc::SIGTERM);
    assert!(obsd.wait_exit(Duration::from_secs(20)).is_some_and(|s| s.success()));
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_at_once() {
    let a = TestServer::start("a");
    let cfg = format!(
        "[global]\nshutdown_timeout = \"30s\"\n{STATS}{}",
        backend("fe", "roundrobin", "", &[("a", &a, "check = false")])
    );
    let mut obsd = Obsd::start("balancer", &cfg);
    let addr = obsd.address("frontend.fe");
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).ends_with("\r\n\r\na"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // The connection now waits for its next request; shutdown must close it, not wait for
    // the 30 s drain.
    let started = Instant::now();
    obsd.signal(libc::SIGTERM);
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0, "the idle connection was not closed");
    assert!(obsd.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn tcp_mode_proxies_bytes() {
    let echo = support::echo_server();
    let cfg = format!(
        "{STATS}\n[[balancer.frontends]]\nname = \"t\"\nbind = \"127.0.0.1:0\"\nmode = \"tcp\"\ndefault_backend = \"t\"\n\
         [[balancer.backends]]\nname = \"t\"\nmode = \"tcp\"\n\
         [[balancer.backends.servers]]\nname = \"dead\"\naddress = \"{}\"\ncheck = false\n\
         [[balancer.backends.servers]]\nname = \"echo\"\naddress = \"{echo}\"\ncheck = false\n",
        support::closed_port()
    );
    let obsd = Obsd::start("balancer", &cfg);
    // Round-robin hits the dead server half the time; the connect retry redispatches.
    for i in 0..6 {
        let mut s = TcpStream::connect(obsd.address("frontend.t")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let msg = format!("hello {i}\n");
        s.write_all(msg.as_bytes()).unwrap();
        let mut buf = vec![0u8; msg.len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, msg.as_bytes());
    }
    let rows = stats_csv(&stats_url(&obsd));
    let echo_row = rows.iter().find(|r| r["svname"] == "echo").unwrap();
    assert_eq!(echo_row["status"], "no check");
    assert_eq!(echo_row["stot"], "6");
    assert_eq!(echo_row["mode"], "tcp");
}

#[test]
fn import_haproxy_translates_the_seed_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(
        &path,
        "global\n    maxconn 4096\n\nfrontend prometheus_frontend\n    bind *:9091\n    default_backend prometheus_backends\n\n\
         backend prometheus_backends\n    mode http\n    balance leastconn\n    option httpchk GET /\n    option httpclose\n\
         \x20   timeout check 5s\n    default-server inter 5s fall 2 rise 3\n    server replica1 127.0.0.1:9090 check\n\
         \x20   server replica2 127.0.0.1:9190 check\n\nlisten stats\n    bind :8404\n    mode http\n    stats enable\n\
         \x20   stats uri /stats\n    stats auth admin:admin\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::obsd_binary())
        .args(["balancer", "import-haproxy", path.to_str().unwrap()])
        .output()
        .unwrap();
    let toml = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "untranslated lines make exit status 2: {err}");
    assert!(err.contains("line 2: maxconn 4096"), "{err}");
    let toml_path = dir.path().join("obsd.toml");
    std::fs::write(&toml_path, &toml).unwrap();
    let check = std::process::Command::new(common::obsd_binary())
        .args(["check-config", toml_path.to_str().unwrap()])
        .output()
        .unwrap();
    let described = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.status.success(), "{toml}\n{}", String::from_utf8_lossy(&check.stderr));
    assert!(
        described.contains("backend prometheus_backends http balance leastconn HTTP GET / check"),
        "{described}"
    );
    assert!(described.contains("frontend prometheus_frontend http on 0.0.0.0:9091"), "{described}");
}

#[test]
fn tls_frontend_terminates_and_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let a = TestServer::start("a");
    let cfg = STATS.to_string()
        + &backend("be", "roundrobin", "", &[("a", &a, "")]).replace(
            "default_backend = \"be\"",
            &format!(
                "default_backend = \"be\"\ntls = {{ cert_file = \"{}\", key_file = \"{}\" }}",
                cert.display(),
                key.display()
            ),
        );
    let obsd = Obsd::start("balancer", &cfg);
    let https = reqwest::blocking::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let url = format!("https://{}/headers", obsd.address("frontend.be"));
    let body = https.get(&url).send().unwrap().text().unwrap();
    assert!(body.to_ascii_lowercase().contains("proto=https"), "{body}");
}

#[test]
fn maxconn_queues_then_times_out() {
    let a = TestServer::start("a");
    let mut cfg = STATS.to_string();
    cfg += &backend("q", "roundrobin", "timeout_queue = \"10s\"", &[("a", &a, "maxconn = 1\ncheck = false")]);
    cfg +=
        &backend("t", "roundrobin", "timeout_queue = \"100ms\"", &[("a", &a, "maxconn = 1\ncheck = false")]);
    let obsd = Obsd::start("balancer", &cfg);
    // Three requests sent together: clients built first, released by one barrier.
    let parallel = |frontend: &str| -> Vec<u16> {
        let url = obsd.url(frontend, "/slow");
        let start = Arc::new(std::sync::Barrier::new(3));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (url, start, http) = (url.clone(), start.clone(), client());
                std::thread::spawn(move || {
                    start.wait();
                    http.get(&url).send().map(|r| r.status().as_u16()).unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    };
    // Three 1 s requests through one slot: they wait their turn.
    let started = Instant::now();
    assert_eq!(parallel("frontend.q"), vec![200, 200, 200]);
    assert!(started.elapsed() >= Duration::from_millis(2900), "{:?}", started.elapsed());
    let rows = stats_csv(&stats_url(&obsd));
    let q = rows.iter().find(|r| r["pxname"] == "q" && r["svname"] == "BACKEND").unwrap();
    assert_eq!(q["qmax"], "2", "{q:?}");
    assert_eq!(rows.iter().find(|r| r["pxname"] == "q" && r["svname"] == "a").unwrap()["smax"], "1");
    // With a 100 ms queue timeout the ones that cannot get the slot in time get 503.
    let statuses = parallel("frontend.t");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 2, "{statuses:?}");
}

/// Runs curl with `args`; returns (HTTP version curl used, status, body).
fn curl(args: &[&str], url: &str) -> (String, u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_version} %{http_code}", "--max-time", "10"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl (apt-get install curl)");
    assert!(out.status.success(), "curl {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (version, code) = tail.split_once(' ').unwrap();
    (version.to_string(), code.parse().unwrap(), body.to_string())
}

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (cert, key)
}

#[test]
fn http2_by_alpn_on_tls_and_prior_knowledge_on_plain() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let a = TestServer::start("a");
    let mut cfg = STATS.to_string() + &backend("plain", "roundrobin", "", &[("a", &a, "")]);
    cfg += &backend("tls", "roundrobin", "", &[("a", &a, "")]).replace(
        "default_backend = \"tls\"",
        &format!(
            "default_backend = \"tls\"\ntls = {{ cert_file = \"{}\", key_file = \"{}\" }}",
            cert.display(),
            key.display()
        ),
    );
    cfg += &backend("h1only", "roundrobin", "", &[("a", &a, "")]).replace(
        "default_backend = \"h1only\"",
        &format!(
            "default_backend = \"h1only\"\nalpn = [\"http/1.1\"]\ntls = {{ cert_file = \"{}\", key_file = \"{}\" }}",
            cert.display(),
            key.display()
        ),
    );
    let obsd = Obsd::start("balancer", &cfg);
    let plain = format!("http://{}/", obsd.address("frontend.plain"));
    let tls = format!("https://{}/", obsd.address("frontend.tls"));
    let h1only = format!("https://{}/", obsd.address("frontend.h1only"));

    assert_eq!(curl(&["--http2-prior-knowledge"], &plain), ("2".into(), 200, "a".into()));
    assert_eq!(curl(&["--http1.1"], &plain), ("1.1".into(), 200, "a".into()));
    assert_eq!(curl(&["-k", "--http2"], &tls), ("2".into(), 200, "a".into()));
    assert_eq!(curl(&["-k", "--http1.1"], &tls), ("1.1".into(), 200, "a".into()));
    // A frontend that offers only http/1.1 by ALPN keeps h2 clients on HTTP/1.1.
    assert_eq!(curl(&["-k", "--http2"], &h1only), ("1.1".into(), 200, "a".into()));

    // Over h2 the server still gets HTTP/1.1 with a Host (from :authority), one Cookie line
    // and the forwarding headers.
    let (v, _, headers) =
        curl(&["-k", "--http2", "-H", "cookie: x=1", "-H", "cookie: y=2"], &format!("{tls}headers"));
    assert_eq!(v, "2");
    let lower = headers.to_ascii_lowercase();
    assert!(lower.contains(&format!("host: {}", obsd.address("frontend.tls"))), "{headers}");
    assert!(lower.contains("cookie: x=1; y=2"), "{headers}");
    assert!(lower.contains("proto=https"), "{headers}");

    // Several concurrent streams on one h2 connection, large bodies streaming through.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "--parallel", "--parallel-immediate", "-o", "/dev/null"])
        .args(["-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{size_download}\n"])
        .args([format!("{plain}big"), plain.clone(), format!("{plain}big")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["2 200 1", format!("2 200 {}", a.big).as_str(), format!("2 200 {}", a.big).as_str()]
    );

    let rows = stats_csv(&stats_url(&obsd));
    let fe = rows.iter().find(|r| r["pxname"] == "plain" && r["svname"] == "FRONTEND").unwrap();
    assert!(fe["req_tot"].parse::<u64>().unwrap() >= 5, "{fe:?}");
    assert_eq!(fe["hrsp_2xx"], fe["req_tot"], "{fe:?}");
}

#[test]
fn use_backend_switches_on_acls_first_match_wins() {
    let (api, grafana, writes, web) = (
        TestServer::start("api"),
        TestServer::start("grafana"),
        TestServer::start("writes"),
        TestServer::start("web"),
    );
    let mut cfg = STATS.to_string();
    cfg += r#"
[[balancer.frontends]]
name = "fe"
bind = "127.0.0.1:0"
default_backend = "web"
acls = { is_api = ["path_beg /api/", "path /api"], is_grafana = "hdr(host) -i grafana.example", is_write = "method POST PUT DELETE" }
[[balancer.frontends.use_backend]]
backend = "writes"
if = "is_write !is_grafana"
[[balancer.frontends.use_backend]]
backend = "grafana"
if = "is_grafana || { path_beg /d/ }"
[[balancer.frontends.use_backend]]
backend = "api"
if = "is_api"
[[balancer.frontends.use_backend]]
backend = "web"
unless = "{ path_end .html }"

[[balancer.frontends]]
name = "rules_only"
bind = "127.0.0.1:0"
[[balancer.frontends.use_backend]]
backend = "api"
if = "{ path_beg /api }"
"#;
    for (name, server) in [("api", &api), ("grafana", &grafana), ("writes", &writes), ("web", &web)] {
        cfg += &format!(
            "\n[[balancer.backends]]\nname = \"{name}\"\n[[balancer.backends.servers]]\nname = \"s\"\naddress = \"{}\"\n",
            server.addr
        );
    }
    let obsd = Obsd::start("balancer", &cfg);
    let fe = obsd.address("frontend.fe");
    let c = client();
    let ask = |method: &str, path: &str, host: Option<&str>| -> String {
        let mut r = c.request(method.parse().unwrap(), format!("http://{fe}{path}"));
        if let Some(h) = host {
            r = r.header("host", h);
        }
        let resp = r.send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{method} {path} {host:?}");
        resp.text().unwrap()
    };
    assert_eq!(ask("GET", "/api/v1/query", None), "api");
    assert_eq!(ask("GET", "/api", None), "api");
    assert_eq!(ask("GET", "/apix", None), "web");
    assert_eq!(ask("GET", "/", Some("Grafana.Example")), "grafana");
    assert_eq!(ask("GET", "/d/abc", None), "grafana");
    // First match wins: a POST to /api/ is a write; a POST to grafana is not.
    assert_eq!(ask("POST", "/api/v1/write", None), "writes");
    assert_eq!(ask("POST", "/api/x", Some("grafana.example")), "grafana");
    assert_eq!(ask("DELETE", "/x", None), "writes");
    // `unless`: .html pages match no rule and fall to default_backend (also web here).
    assert_eq!(ask("GET", "/page.html", None), "web");
    // HTTP/2's :authority stands in for Host.
    let h2 = std::process::Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "--connect-to", &format!("grafana.example:80:{fe}")])
        .arg("http://grafana.example/")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&h2.stdout), "grafana");

    // No rule matched and no default_backend: 503 at once, as HAProxy.
    let ro = obsd.address("frontend.rules_only");
    assert_eq!(body_of(&format!("http://{ro}/api/x")), "api");
    let r = c.get(format!("http://{ro}/other")).send().unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let csv = stats_csv(&stats_url(&obsd));
    let hits =
        |b: &str| csv.iter().find(|r| r["pxname"] == b && r["svname"] == "BACKEND").unwrap()["stot"].clone();
    assert_eq!(hits("writes"), "2");
    assert_eq!(hits("grafana"), "4");
}

#[test]
fn retry_on_statuses_and_none() {
    let (bad, good) = (TestServer::start("bad"), TestServer::start("good"));
    bad.set_status(503);
    let dead = support::closed_port();
    let mut cfg = STATS.to_string();
    // Checks off: the failures are the retries' to handle.
    cfg += &backend(
        "status",
        "roundrobin",
        "retry_on = \"conn-failure 503\"",
        &[("bad", &bad, "check = false"), ("good", &good, "check = false")],
    );
    cfg += &backend(
        "plain",
        "roundrobin",
        "",
        &[("bad", &bad, "check = false"), ("good", &good, "check = false")],
    );
    cfg += &format!(
        "\n[[balancer.frontends]]\nname = \"none\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"none\"\n\
         [[balancer.backends]]\nname = \"none\"\nretry_on = \"none\"\n\
         [[balancer.backends.servers]]\nname = \"dead\"\naddress = \"{dead}\"\ncheck = false\n\
         [[balancer.backends.servers]]\nname = \"good\"\naddress = \"{}\"\ncheck = false\n",
        good.addr
    );
    let obsd = Obsd::start("balancer", &cfg);
    let c = client();
    let status = |fe: &str, method: &str| -> (u16, String) {
        let r = c.request(method.parse().unwrap(), obsd.url(&format!("frontend.{fe}"), "/")).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // retry_on 503: idempotent requests that meet the 503 go to the other server.
    for _ in 0..10 {
        assert_eq!(status("status", "GET"), (200, "good".into()));
    }
    // A POST is never replayed once it reached a server, whatever retry_on says.
    let posts: Vec<u16> = (0..10).map(|_| status("status", "POST").0).collect();
    assert!(posts.contains(&503) && posts.contains(&200), "{posts:?}");
    // Without 503 in retry_on the 503 reaches the client.
    let plain: Vec<u16> = (0..10).map(|_| status("plain", "GET").0).collect();
    assert!(plain.contains(&503), "{plain:?}");
    // retry_on none: a refused connection is not retried either.
    let none: Vec<u16> = (0..10).map(|_| status("none", "GET").0).collect();
    assert!(none.contains(&503) && none.contains(&200), "{none:?}");
    let csv = stats_csv(&stats_url(&obsd));
    let be = |b: &str| csv.iter().find(|r| r["pxname"] == b && r["svname"] == "BACKEND").unwrap().clone();
    assert!(be("status")["wretr"].parse::<u64>().unwrap() >= 5, "{:?}", be("status"));
    assert_eq!(be("none")["wretr"], "0");
}

/// An HTTP/2 connection with no open stream is closed at `timeout_client` (GOAWAY, then
/// close) even when the client answers every ping, as HAProxy does.
#[test]
fn idle_http2_connection_closes_at_timeout_client() {
    let a = TestServer::start("a");
    let cfg = STATS.to_string()
        + &backend("h2", "roundrobin", "", &[("a", &a, "")]).replace(
            "default_backend = \"h2\"",
            // Pings every second, answered below: only the idle timer may end the connection.
            "default_backend = \"h2\"\ntimeout_client = \"2s\"\ntimeout_http_keep_alive = \"1s\"",
        );
    let obsd = Obsd::start("balancer", &cfg);
    let mut s = TcpStream::connect(obsd.address("frontend.h2")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // An empty SETTINGS frame.
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let started = Instant::now();
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    let (mut goaway, mut closed, mut pings) = (None, None, 0);
    while closed.is_none() && started.elapsed() < Duration::from_secs(15) {
        match s.read(&mut chunk) {
            Ok(0) => closed = Some(started.elapsed()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => closed = Some(started.elapsed()),
        }
        while buf.len() >= 9 {
            let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            match kind {
                // SETTINGS: acknowledge.
                4 if flags & 1 == 0 => s.write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).unwrap(),
                // PING: answer with the same payload.
                6 if flags & 1 == 0 => {
                    pings += 1;
                    let mut ack = vec![0, 0, 8, 6, 1, 0, 0, 0, 0];
                    ack.extend_from_slice(&payload);
                    let _ = s.write_all(&ack);
                }
                7 => goaway = goaway.or(Some(started.elapsed())),
                _ => {}
            }
        }
    }
    let goaway = goaway.expect("no GOAWAY on an idle h2 connection");
    assert!(closed.is_some(), "idle h2 connection not closed after GOAWAY");
    assert!(pings >= 1, "the server never pinged: the test did not exercise keep-alive");
    assert!(goaway >= Duration::from_millis(1900), "closed before timeout_client: {goaway:?}");
}

/// Reads from `s` until `buf` holds a complete head (an empty line), returning the head.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return String::from_utf8_lossy(&head).into_owned();
        }
        let mut chunk = [0u8; 4096];
        let n = s
            .read(&mut chunk)
            .unwrap_or_else(|e| panic!("read head: {e}; so far {:?}", String::from_utf8_lossy(buf)));
        assert!(n > 0, "closed before a complete head; so far {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn interim_early_hints_reach_the_client_before_the_answer() {
    // A server that sends 103 Early Hints, then waits for the test's word before the final
    // answer: the client can only see the 103 first if the balancer forwards it at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        let mut buf = Vec::new();
        let _ = read_head(&mut s, &mut buf);
        let _ = s.write_all(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nConnection: keep-alive\r\n\r\n",
        );
        if go_rx.recv_timeout(Duration::from_secs(10)).is_ok() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
        }
        std::thread::sleep(Duration::from_secs(1));
    });
    let cfg = format!(
        "{STATS}\n[[balancer.frontends]]\nname = \"fe\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"be\"\n\
         [[balancer.backends]]\nname = \"be\"\n\
         [[balancer.backends.servers]]\nname = \"hints\"\naddress = \"{addr}\"\ncheck = false\n"
    );
    let obsd = Obsd::start("balancer", &cfg);
    let mut s = TcpStream::connect(obsd.address("frontend.fe")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let interim = read_head(&mut s, &mut buf);
    assert!(interim.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{interim}");
    assert!(interim.contains("Link: </style.css>; rel=preload\r\n"), "{interim}");
    assert!(!interim.to_ascii_lowercase().contains("connection:"), "hop-by-hop field forwarded: {interim}");
    go_tx.send(()).unwrap();
    let last = read_head(&mut s, &mut buf);
    assert!(last.starts_with("HTTP/1.1 200 OK\r\n"), "{last}");
    while buf.len() < 5 {
        let mut chunk = [0u8; 64];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "body cut: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(&buf, b"final");
    let rows = stats_csv(&stats_url(&obsd));
    let server = rows.iter().find(|r| r["svname"] == "hints").unwrap();
    assert_eq!(server["hrsp_2xx"], "1", "{server:?}");
    assert_eq!(server["hrsp_1xx"], "0", "an interim answer is not the request's answer: {server:?}");
}

#[test]
fn a_server_that_refused_a_connection_is_passed_over_for_one_inter() {
    let a = TestServer::start("a");
    let b = TestServer::start("b");
    // Checks off: only the refused connect can tell obsd that b is gone.
    // An inter far longer than the 20 requests below take, even on a loaded machine.
    let obsd = Obsd::start("balancer", &two_unchecked("default_server = { inter = \"5s\" }", &a, &b));
    let url = obsd.url("frontend.be", "/");
    let http = client();
    let names: Vec<String> = (0..4).map(|_| body_via(&http, &url)).collect();
    assert!(names.contains(&"a".to_string()) && names.contains(&"b".to_string()), "{names:?}");
    b.kill();
    let econ = |server: &str| -> u64 { stats_row(&obsd, "be", server)["econ"].parse().unwrap() };
    // One request meets the refusal and is redispatched; the others go straight to a.
    for _ in 0..20 {
        assert_eq!(body_via(&http, &url), "a");
    }
    assert_eq!(econ("b"), 1, "b was tried again within its inter");
    assert_eq!(server_status(&stats_url(&obsd), "be", "b"), "no check", "the hold is not a state change");
    // After one inter b is tried again, and refuses again.
    std::thread::sleep(Duration::from_millis(5300));
    for _ in 0..4 {
        assert_eq!(body_via(&http, &url), "a");
    }
    assert_eq!(econ("b"), 2);
}

#[test]
fn a_refused_connect_sends_the_request_to_the_backup_at_once() {
    let main = TestServer::start("main");
    let spare = TestServer::start("spare");
    let cfg = STATS.to_string()
        + &backend(
            "be",
            "roundrobin",
            "",
            &[("main", &main, "check = false"), ("spare", &spare, "check = false\nbackup = true")],
        );
    let obsd = Obsd::start("balancer", &cfg);
    let url = obsd.url("frontend.be", "/");
    let http = client();
    for _ in 0..3 {
        assert_eq!(body_via(&http, &url), "main", "the backup takes nothing while the active server works");
    }
    main.kill();
    // The retry of the refused request goes to the backup, not to the same dead server
    // three times over. The five requests fit in main's hold (one inter, 2 s by default).
    for _ in 0..5 {
        assert_eq!(body_via(&http, &url), "spare");
    }
    let row = stats_row(&obsd, "be", "main");
    assert_eq!(row["econ"], "1", "{row:?}");
}

#[test]
fn hold_failed_servers_false_keeps_haproxys_selection() {
    let a = TestServer::start("a");
    let b = TestServer::start("b");
    let obsd = Obsd::start("balancer", &two_unchecked("hold_failed_servers = false", &a, &b));
    let url = obsd.url("frontend.be", "/");
    b.kill();
    // Round-robin keeps sending every second request to b first; each is redispatched.
    for _ in 0..20 {
        assert_eq!(body_of(&url), "a");
    }
    let row = stats_row(&obsd, "be", "b");
    assert!(row["econ"].parse::<u64>().unwrap() >= 5, "{row:?}");
}

#[test]
fn a_connection_list_cannot_drop_the_body_length() {
    // A client that lists Content-Length in Connection would have obsd drop the length yet
    // send the body, and the server would read the body as a second request of the
    // client's making, past obsd's rules and counters.
    let a = TestServer::start("a");
    let cfg = STATS.to_string() + &backend("be", "roundrobin", "", &[("a", &a, "check = false")]);
    let obsd = Obsd::start("balancer", &cfg);
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let request = format!(
        "POST /headers HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: content-length, close\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let answer = raw_exchange(obsd.address("frontend.be"), request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains(&format!("content-length: {}\r\n", smuggled.len())), "{answer}");
    // Time for a second request to show, had the server seen one.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.hits(), 1, "the server saw the body as a request");
    // HTTP/1.0 goes through hyper, which keeps Host too.
    let answer = raw_exchange(
        obsd.address("frontend.be"),
        b"GET /headers HTTP/1.0\r\nHost: x\r\nConnection: host, x-hop\r\nX-Hop: 1\r\n\r\n",
    );
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("\r\n\r\n") && lower.contains("host: x\r\n"), "{answer}");
    assert!(!lower.contains("x-hop: 1"), "a listed field was forwarded: {answer}");
}

#[test]
fn stray_bytes_from_a_server_never_answer_the_next_request() {
    // A server that sends more than its response (here a whole second response, 100 ms
    // later) leaves those bytes in the idle pooled socket; the next request on that socket
    // would take them for its answer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let head = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head: Vec<u8> = buf.drain(..end + 4).collect();
                            break String::from_utf8_lossy(&head).into_owned();
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    if head.starts_with("GET /poison ") {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA");
                        std::thread::sleep(Duration::from_millis(100));
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen");
                    } else {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh");
                    }
                }
            });
        }
    });
    // One thread, so the second request meets the socket the first one left in the pool.
    let stats = STATS.replacen("[balancer]\n", "[balancer]\nnbthread = 1\n", 1);
    let cfg = format!(
        "{stats}\n[[balancer.frontends]]\nname = \"fe\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"be\"\n\
         [[balancer.backends]]\nname = \"be\"\n\
         [[balancer.backends.servers]]\nname = \"odd\"\naddress = \"{addr}\"\ncheck = false\n"
    );
    let obsd = Obsd::start("balancer", &cfg);
    let http = client();
    assert_eq!(body_via(&http, &obsd.url("frontend.fe", "/poison")), "A");
    std::thread::sleep(Duration::from_millis(400));
    for _ in 0..3 {
        assert_eq!(body_via(&http, &obsd.url("frontend.fe", "/next")), "fresh");
    }
}

#[test]
fn a_head_cut_short_is_junk_not_an_empty_response() {
    // HAProxy's retry-on: a response head cut short is junk-response; empty-response means
    // closed before any byte. obsd's default retry_on names empty-response only, so a GET
    // that got half a head is not sent again (the server may have acted on it).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let counted = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            if s.read(&mut buf).unwrap_or(0) == 0 {
                continue;
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
        }
    });
    let cfg = format!(
        "{STATS}\n[[balancer.frontends]]\nname = \"fe\"\nbind = \"127.0.0.1:0\"\ndefault_backend = \"be\"\n\
         [[balancer.backends]]\nname = \"be\"\n\
         [[balancer.backends.servers]]\nname = \"cut\"\naddress = \"{addr}\"\ncheck = false\n"
    );
    let obsd = Obsd::start("balancer", &cfg);
    let r = client().get(obsd.url("frontend.fe", "/")).send().unwrap();
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(seen.load(Ordering::SeqCst), 1, "the request was sent again");
    let row = stats_row(&obsd, "be", "cut");
    assert_eq!((row["eresp"].as_str(), row["wretr"].as_str()), ("1", "0"), "{row:?}");
}

/// A GET head of exactly `len` bytes (request line, headers, blank line) after `headers`.
fn head_of_len(headers: &str, len: usize) -> Vec<u8> {
    let start = format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}X-Pad: ");
    let pad = len.checked_sub(start.len() + 4).expect("len too small for the head");
    format!("{start}{}\r\n\r\n", "p".repeat(pad)).into_bytes()
}

#[test]
fn frontend_max_header_bytes_is_exact_on_both_paths() {
    let a = TestServer::start("a");
    let cfg = STATS.to_string()
        + &backend("be", "roundrobin", "", &[("a", &a, "")]).replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\nmax_header_bytes = 65536\nmax_header_count = 300",
        );
    let obsd = Obsd::start("balancer", &cfg);
    let fe = obsd.address("frontend.be");
    // The fast path parses up to 128 headers; more go to hyper, which must keep the same limit.
    let many: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
    for (path, headers) in [("fast path", ""), ("hyper path", many.as_str())] {
        let at_limit = head_of_len(headers, 65536);
        assert_eq!(at_limit.len(), 65536);
        let answer = raw_exchange(fe, &at_limit);
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: a head at the limit is proxied: {answer:.200}");
        let answer = raw_exchange(fe, &head_of_len(headers, 65537));
        // HAProxy answers 400 to a head larger than its buffer; hyper's own refusal is 431.
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 431"),
            "{path}: one byte more is refused: {answer:.200}"
        );
    }
}

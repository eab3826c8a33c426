//! Input nested without bound (a query, a config file) is refused with an error; it never
//! overflows a stack, which would abort the process with every role in it.

mod common;

use common::{Obsd, obsd_binary, url_encode};
use std::process::Command;
use std::time::Duration;

fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// The queries of the hardening report, and a few more shapes; each aborted obsd (SIGABRT).
fn hostile_queries() -> Vec<String> {
    vec![
        nested("abs(", "1", ")", 4000),
        nested("sum(", "up", ")", 5000),
        vec!["1"; 20_000].join("+"),
        nested("(", "up", ")", 30_000),
        format!("{}1", "-".repeat(30_000)),
        vec!["up"; 3000].join(" or "),
        // Not deep, but found by the promql fuzz target: a panic inside the parser crate.
        "up[1e100011]".to_string(),
    ]
}

#[test]
fn deep_queries_get_400_and_the_process_stays_up() {
    let o = Obsd::start(
        "replica",
        "[replica]\n[replica.listen]\naddress = \"127.0.0.1:0\"\nmax_header_bytes = 1048576\n",
    );
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    for q in hostile_queries() {
        let form = format!("query={}", url_encode(&q));
        for path in ["/api/v1/query", "/api/v1/query_range?start=0&end=60&step=15", "/api/v1/format_query"] {
            let r = client
                .post(o.url("replica", path))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.clone())
                .send()
                .unwrap_or_else(|e| panic!("{path} with a {}-byte query: {e}; log:\n{}", q.len(), o.log()));
            let status = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            assert_eq!(status, 400, "{path} with a {}-byte query: {body}", q.len());
            assert!(body.contains("\"errorType\":\"bad_data\""), "{body}");
        }
        // match[] takes a selector, but is parsed as a query first.
        let r = client
            .post(o.url("replica", "/api/v1/series"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("match[]={}", url_encode(&q)))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
    }
    // Still up, still answering.
    let (code, body) = common::get(&o.url("replica", "/api/v1/query?query=1%2B1"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"2\""), "{body}");
}

fn check_config(text: &str, name: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let toml = if name.ends_with(".yml") {
        let t = dir.path().join("obsd.toml");
        std::fs::write(&t, format!("[replica]\nprometheus_config = {:?}\n", path.display().to_string()))
            .unwrap();
        t
    } else {
        path
    };
    let out = Command::new(obsd_binary()).arg("check-config").arg(&toml).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn deeply_nested_config_files_are_errors_not_aborts() {
    for (text, name) in [
        (format!("[global]\nx = {}\n", nested("[", "1", "]", 100_000)), "obsd.toml"),
        (format!("[global]\nx = {}\n", nested("{a=", "1", "}", 100_000)), "obsd.toml"),
        (format!("global: {}\n", nested("[", "1", "]", 100_000)), "prometheus.yml"),
        (format!("global: {}\n", nested("{a: ", "1", "}", 100_000)), "prometheus.yml"),
    ] {
        let (code, err) = check_config(&text, name);
        assert!(code == 1 || code == 2, "{name}: exit {code} (134 is an abort); {err}");
        assert!(!err.is_empty(), "{name}: no error printed");
    }
    // A file named by scrape_config_files is read at check-config too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jobs.yml"),
        format!("scrape_configs: {}\n", nested("[", "1", "]", 100_000)),
    )
    .unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), "scrape_config_files: [jobs.yml]\n").unwrap();
    let toml = dir.path().join("obsd.toml");
    let main = dir.path().join("prometheus.yml").display().to_string();
    std::fs::write(&toml, format!("[replica]\nprometheus_config = {main:?}\n")).unwrap();
    let out = Command::new(obsd_binary()).arg("check-config").arg(&toml).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("jobs.yml") && err.contains("nested deeper than"), "{err}");
}

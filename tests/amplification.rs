//! Small requests that used to cost far more than their size: a scraped series with 100k
//! labels, remote-write bodies of huge or many label sets, OTLP spans with huge attribute
//! lists. Each must be refused or bounded with a count of what was dropped, and obsd must
//! answer the next request.

mod common;

use common::{Obsd, get, wait_until};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A target that answers every scrape with `body`.
fn fixed_target(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    port
}

fn wide_series(labels: usize) -> Vec<u8> {
    let mut body = String::from("wide{");
    for i in 0..labels {
        body.push_str(&format!("l{i}=\"v\","));
    }
    body.push_str("} 1\n");
    body.into_bytes()
}

fn scrape_job(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[replica.scrape_configs]]\njob_name = \"{name}\"\nscrape_timeout = \"1s\"\n{extra}static_configs = [{{ targets = [\"127.0.0.1:{port}\"] }}]\n"
    )
}

fn replica(jobs: &str) -> Obsd {
    Obsd::start(
        "replica",
        &format!(
            "[replica]\nremote_write_receiver = true\n[replica.listen]\naddress = \"127.0.0.1:0\"\n[replica.global]\nscrape_interval = \"1s\"\n{jobs}"
        ),
    )
}

/// The targets' (health, lastError) by job, once every job in `jobs` has been scraped.
fn target_states(obsd: &Obsd, jobs: &[&str]) -> Vec<(String, String)> {
    let mut states = Vec::new();
    wait_until("every target scraped", Duration::from_secs(60), || {
        let (_, body) = get(&obsd.url("replica", "/api/v1/targets"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        states = jobs
            .iter()
            .filter_map(|job| {
                let t = active.iter().find(|t| t["scrapePool"] == *job)?;
                (t["health"] != "unknown").then(|| {
                    (
                        t["health"].as_str().unwrap_or("").to_string(),
                        t["lastError"].as_str().unwrap_or("").to_string(),
                    )
                })
            })
            .collect();
        states.len() == jobs.len()
    });
    states
}

#[test]
fn a_series_with_100k_labels_fails_at_the_label_limit_without_being_parsed() {
    let wide = fixed_target(wide_series(100_000));
    let obsd = replica(
        &[
            scrape_job("limited", wide, "label_limit = 64\n"),
            scrape_job("name_length", wide, "label_name_length_limit = 4\n"),
        ]
        .concat(),
    );
    let states = target_states(&obsd, &["limited", "name_length"]);
    // The count is the limit plus one: the scrape stopped at the first label over it instead
    // of parsing all 100,003 first (and the old parser's pairwise duplicate check cost ~35 s
    // of CPU per scrape for this body, past any scrape_timeout).
    assert_eq!(
        states[0],
        ("down".into(), "label_limit exceeded (metric: wide, number of labels: 65, limit: 64)".into())
    );
    assert_eq!(
        states[1],
        (
            "down".into(),
            "label_name_length_limit exceeded (metric: wide, label name: l1000, length: 5, limit: 4)".into()
        )
    );
}

#[test]
fn a_type_line_after_its_samples_keeps_the_target_up_and_an_overflowing_value_fails_it() {
    let late_type = fixed_target(b"m 1\n# TYPE m counter\n# HELP m once\n# HELP m twice\nother 2\n".to_vec());
    let overflow = fixed_target(b"ok 1\nbig 1e309\n".to_vec());
    let obsd =
        replica(&[scrape_job("late_type", late_type, ""), scrape_job("overflow", overflow, "")].concat());
    let states = target_states(&obsd, &["late_type", "overflow"]);
    assert_eq!(states[0], ("up".into(), String::new()), "Prometheus 2.42 keeps this target up");
    assert_eq!(states[1].0, "down");
    assert!(
        states[1].1.contains("strconv.ParseFloat: parsing \"1e309\": value out of range"),
        "Prometheus's error: {:?}",
        states[1].1
    );
}

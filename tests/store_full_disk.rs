//! A full disk under a replica: nothing acknowledged is lost, nothing refused is half applied,
//! the replica says it is not ready while it refuses writes, and it takes writes again by
//! itself once space returns, with no restart. Runs on a small tmpfs (needs root, as CI is).

mod common;

use common::{Obsd, get, require_root};
use obsd::remote_write::{self, proto};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SERIES: usize = 40;

/// Unmounts the tmpfs however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(status.success(), "mount tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// One request: sample `i` (value `i`, at `base + i s`) for every series.
fn request(base: i64, i: i64) -> Vec<u8> {
    let req = proto::WriteRequest {
        timeseries: (0..SERIES)
            .map(|s| proto::TimeSeries {
                labels: vec![
                    proto::Label { name: "__name__".into(), value: "full_disk_test".into() },
                    proto::Label { name: "series".into(), value: s.to_string() },
                    // Long label values make new series cost sled writes too.
                    proto::Label { name: "pad".into(), value: format!("{s:0>200}") },
                ],
                samples: vec![proto::Sample { value: i as f64, timestamp: base + i * 1000 }],
                exemplars: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    remote_write::encode(&req)
}

/// Fills the filesystem at `dir` with a file until it is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

fn query_scalar(o: &Obsd, q: &str) -> f64 {
    let (code, body) = get(&o.url("replica", &format!("/api/v1/query?query={}", common::url_encode(q))));
    assert_eq!(code, 200, "{q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0)
}

/// Every acknowledged sample is there, and nothing else: per series the count and the sum
/// of values equal those of the acknowledged requests.
fn check_acked(o: &Obsd, acked: &[i64], when: &str) {
    let count = acked.len() as f64;
    let sum: i64 = acked.iter().sum();
    for s in [0, SERIES - 1] {
        let sel = format!("full_disk_test{{series=\"{s}\"}}[1d]");
        assert_eq!(query_scalar(o, &format!("count_over_time({sel})")), count, "{when}: series {s} count");
        assert_eq!(query_scalar(o, &format!("sum_over_time({sel})")), sum as f64, "{when}: series {s} sum");
    }
}

#[test]
fn a_full_disk_refuses_writes_loses_nothing_acknowledged_and_recovers_without_restart() {
    if !require_root("the full-disk test (mounts a tmpfs)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(&dir.path().join("data"), "48m");
    let config = "[replica]\nremote_write_receiver = true\n[replica.listen]\naddress = \"127.0.0.1:0\"\n";
    let o = Obsd::start_in_dir(dir, &["--role", "replica"], config);
    let url = o.url("replica", "/api/v1/write");
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let base = obsd::model::now_ms() - 6 * 3600 * 1000;
    let mut acked = Vec::new();
    let mut refused = 0;
    let mut i = 0i64;
    let send = |i: i64| {
        let status =
            client.post(&url).body(request(base, i)).send().map(|r| r.status().as_u16()).unwrap_or(0);
        assert!(status == 204 || status == 500, "request {i}: HTTP {status}");
        status == 204
    };
    for _ in 0..50 {
        if send(i) {
            acked.push(i);
        }
        i += 1;
    }
    assert_eq!(acked.len(), 50, "writes before the disk filled");
    let data = o.data_dir();
    let filler = fill(&data);
    // While the disk is full: refusals, and /-/ready says why.
    let mut not_ready = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && (refused < 20 || not_ready.is_none()) {
        if send(i) {
            acked.push(i);
        } else {
            refused += 1;
        }
        i += 1;
        let (code, body) = get(&o.url("replica", "/-/ready"));
        if code == 503 {
            not_ready = Some(body);
        }
    }
    assert!(refused >= 20, "only {refused} writes refused on a full disk; log:\n{}", o.log());
    let not_ready = not_ready.expect("/-/ready stayed 200 on a full disk");
    assert!(not_ready.contains("free") || not_ready.contains("WAL"), "{not_ready}");
    let (_, metrics) = get(&o.url("replica", "/metrics"));
    assert!(metrics.contains("obsd_store_writable 0"), "{metrics}");
    assert!(!metrics.contains("obsd_store_commits_refused_total 0\n"), "refusals not counted");
    // Space returns: writes are taken again with no restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = 0;
    while after < 30 {
        assert!(Instant::now() < deadline, "writes not taken again after space returned; log:\n{}", o.log());
        if send(i) {
            acked.push(i);
            after += 1;
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
        i += 1;
    }
    common::wait_until("ready again", Duration::from_secs(30), || {
        get(&o.url("replica", "/-/ready")).0 == 200
    });
    check_acked(&o, &acked, "after space returned");
    // Durable: a kill -9 (after the 1 s window) and a restart keep every acknowledged sample.
    std::thread::sleep(Duration::from_secs(2));
    let o = o.restart(&["--role", "replica"], true);
    check_acked(&o, &acked, "after kill -9 and restart");
    let (_, metrics) = get(&o.url("replica", "/metrics"));
    assert!(metrics.contains("obsd_store_writable 1"), "{metrics}");
}

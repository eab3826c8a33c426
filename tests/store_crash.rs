//! Crash and damage tests against the real binary and the files it leaves.
//!
//! Crash: `obsd store stress-append` appends at full speed and prints `durable T` after each
//! `Store::sync`; it is SIGKILLed at random moments (during appends, checkpoints, replay).
//! After each kill the store must open, hold every sample up to the last durable T, and hold
//! nothing wrong: per series a gap-free run of timestamps from 0 with the exact value bits.

mod common;

use common::obsd_binary;
use obsd::model::Matcher;
use obsd::model::labels::Labels;
use obsd::store::cli::{stress_labels, stress_value};
use obsd::store::{Store, StoreOptions};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SERIES: u64 = 50;

fn test_opts() -> StoreOptions {
    StoreOptions {
        background: false,
        retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..StoreOptions::default()
    }
}

/// Checks the store; returns the newest timestamp (the same for every series, since one
/// commit covers all of them and is one WAL record).
fn verify(dir: &Path, durable: Option<i64>) -> Option<i64> {
    let store = Store::open(dir, test_opts()).expect("store opens after a crash");
    let got = store.querier(i64::MIN, i64::MAX).select_all(&[Matcher::equal("job", "stress")]).unwrap();
    let mut newest = None;
    for i in 0..SERIES {
        let l: Labels = stress_labels(i);
        let samples = got.iter().find(|(gl, _)| *gl == l).map(|(_, s)| s.clone()).unwrap_or_default();
        for (k, &(t, v)) in samples.iter().enumerate() {
            assert_eq!(t, k as i64, "series {i}: gap or disorder at index {k}");
            assert_eq!(v.to_bits(), stress_value(i, t).to_bits(), "series {i}: wrong value at t={t}");
        }
        let last = samples.last().map(|s| s.0);
        if let Some(d) = durable {
            assert!(
                last.is_some_and(|l| l >= d),
                "series {i}: acknowledged t={d} lost (store has up to {last:?})"
            );
        }
        match (i, newest) {
            (0, _) => newest = last,
            (_, n) => assert_eq!(last, n, "series {i} differs from series 0: a commit was torn"),
        }
    }
    store.close().unwrap();
    newest
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = data.join("replica").join("tsdb");
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut durable: Option<i64> = None;
    let mut start = 0i64;
    let mut rounds_with_progress = 0;
    for round in 0..6 {
        let mut child = Command::new(obsd_binary())
            .arg("--data-dir")
            .arg(&data)
            .args(["store", "stress-append", "--series", &SERIES.to_string(), "--sync-every", "25"])
            .args(["--fsync-interval-ms", "200", "--start", &start.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn obsd");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Kill at a random moment. Rounds 0 and 3 count from the spawn, so they may kill it
        // before it even finished opening; the others count from its "started" line, so a
        // slow start on a loaded machine cannot leave every round without progress.
        let kill_after = Duration::from_millis(rng.u64(150..1600));
        let mut round_durable = None;
        if round % 3 != 0 {
            let opened_by = Instant::now() + Duration::from_secs(30);
            while Instant::now() < opened_by {
                match rx.recv_timeout(Duration::from_millis(10)) {
                    Ok(line) if line.starts_with("started ") => break,
                    Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let deadline = Instant::now() + kill_after;
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(10)) {
                Ok(line) => {
                    if let Some(t) = line.strip_prefix("durable ").and_then(|t| t.parse::<i64>().ok()) {
                        round_durable = Some(t);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        // Lines printed before the kill still count: the process said they were durable.
        while let Ok(line) = rx.try_recv() {
            if let Some(t) = line.strip_prefix("durable ").and_then(|t| t.parse::<i64>().ok()) {
                round_durable = Some(t);
            }
        }
        let _ = reader.join();
        if let Some(d) = round_durable {
            durable = Some(durable.map_or(d, |x: i64| x.max(d)));
            rounds_with_progress += 1;
        }
        let newest = verify(&dir, durable);
        eprintln!(
            "round {round}: killed after {kill_after:?}, durable {round_durable:?}, store holds up to {newest:?}"
        );
        start = newest.map_or(0, |n| n + 1);
    }
    assert!(rounds_with_progress >= 3, "the child made too little progress to test anything");
    let out =
        Command::new(obsd_binary()).arg("--data-dir").arg(&data).args(["store", "check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "store check failed: {text}{}", String::from_utf8_lossy(&out.stderr));
}

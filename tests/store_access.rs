//! A store obsd may not read or write is refused, never taken for damage: the error names the
//! path, the errno and the remedy, exits non-zero, and nothing is renamed or deleted. And
//! `obsd store import` run as root gives what it writes to the data directory's owner, so the
//! service can use it afterwards. Needs root (as CI runs it): it switches to `nobody` and
//! mounts read-only.

mod common;

use common::{obsd_binary, require_root};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const REPLICA: &str = "[replica.listen]\naddress = \"127.0.0.1:0\"\n";

/// A temp dir others may traverse (the service user must reach the data dir inside it).
fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

fn write_import_file(dir: &Path, samples: usize) -> PathBuf {
    let path = dir.join("import.om");
    let mut text = String::from("# TYPE access_test gauge\n");
    for i in 0..samples {
        text.push_str(&format!("access_test{{n=\"a\"}} {i} {}\n", 1_700_000_000 + i as i64 * 15));
    }
    text.push_str("# EOF\n");
    std::fs::write(&path, text).unwrap();
    path
}

fn obsd(as_nobody: bool, args: &[&str], data: &Path) -> Command {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", obsd_binary()]);
        c
    } else {
        Command::new(obsd_binary())
    };
    c.arg("--data-dir").arg(data).args(args);
    c
}

/// Runs obsd (the daemon when `args` start it), waiting at most 60 s: a daemon still running
/// then has started on a store it should have refused.
fn run_to_exit(mut c: Command) -> Output {
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "obsd kept running on a store it may not use; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn stats_samples(data: &Path) -> String {
    let out = run_to_exit(obsd(false, &["store", "stats"], data));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "stats: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines().find(|l| l.starts_with("samples:")).unwrap_or_default().to_string()
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

/// The case: the service's own directories, with database files a root import left
/// behind. The service (here `nobody`) must refuse with the remedy, not move `db` aside and
/// serve an empty store.
#[test]
fn a_store_the_service_may_not_write_is_refused_not_moved_aside() {
    if !require_root("a_store_the_service_may_not_write_is_refused_not_moved_aside") {
        return;
    }
    let base = base();
    let data = base.path().join("data");
    let file = write_import_file(base.path(), 500);
    let out = run_to_exit(obsd(false, &["store", "import", file.to_str().unwrap()], &data));
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    let before = stats_samples(&data);
    assert!(before.contains("500"), "{before}");
    // The directories are the service's; what is inside them stays root's.
    let tsdb = data.join("replica").join("tsdb");
    for d in [&data, &data.join("replica"), &tsdb] {
        chown(d, NOBODY);
    }
    let config = base.path().join("obsd.toml");
    std::fs::write(&config, REPLICA).unwrap();
    let listing = names(&tsdb);
    let out = run_to_exit(obsd(true, &["--role", "replica", "--config", config.to_str().unwrap()], &data));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must exit non-zero: {err}");
    assert!(err.contains(&tsdb.display().to_string()), "names the store's path: {err}");
    assert!(err.contains("EACCES"), "names the errno: {err}");
    assert!(err.contains(&format!("chown -R nobody:nogroup {}", tsdb.display())), "names the remedy: {err}");
    assert!(err.contains("ERROR") && err.contains("permission_denied"), "an ERROR log line: {err}");
    assert!(!err.contains("moved aside, rebuilding"), "{err}");
    assert_eq!(names(&tsdb), listing, "nothing in the store may be renamed, created or deleted");
    assert_eq!(stats_samples(&data), before, "every sample is still there");
}

/// Unmounts however the test ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_store_on_a_read_only_filesystem_is_refused_not_moved_aside() {
    if !require_root("a_store_on_a_read_only_filesystem_is_refused_not_moved_aside") {
        return;
    }
    let base = base();
    let data = base.path().join("data");
    let file = write_import_file(base.path(), 200);
    let out = run_to_exit(obsd(false, &["store", "import", file.to_str().unwrap()], &data));
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    let tsdb = data.join("replica").join("tsdb");
    let listing = names(&tsdb);
    let ok = Command::new("mount").arg("--bind").arg(&tsdb).arg(&tsdb).status().unwrap().success();
    assert!(ok, "bind mount");
    let mount = Mount(tsdb.clone());
    let ok = Command::new("mount").args(["-o", "remount,bind,ro"]).arg(&tsdb).status().unwrap().success();
    assert!(ok, "remount read-only");
    let config = base.path().join("obsd.toml");
    std::fs::write(&config, REPLICA).unwrap();
    let out = run_to_exit(obsd(false, &["--role", "replica", "--config", config.to_str().unwrap()], &data));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must exit non-zero: {err}");
    assert!(err.contains(&tsdb.display().to_string()) && err.contains("EROFS"), "{err}");
    assert!(err.contains("read-only; remount it read-write"), "names the remedy: {err}");
    drop(mount);
    assert_eq!(names(&tsdb), listing, "nothing in the store may be renamed, created or deleted");
}

/// `obsd store import` (and `check`) as root into a data dir the service owns leaves every file
/// the service's, so the service (here `nobody`) can open the store afterwards.
#[test]
fn import_as_root_gives_its_files_to_the_data_dir_owner() {
    if !require_root("import_as_root_gives_its_files_to_the_data_dir_owner") {
        return;
    }
    let base = base();
    let data = base.path().join("data");
    std::fs::create_dir(&data).unwrap();
    chown(&data, NOBODY);
    let file = write_import_file(base.path(), 300);
    let out = run_to_exit(obsd(false, &["store", "import", file.to_str().unwrap()], &data));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import: {err}");
    assert!(err.contains("owned by nobody") && err.contains("WARN"), "warns whose files they become: {err}");
    // A root `store check` writes too (a checkpoint at close): its files go the same way.
    let out = run_to_exit(obsd(false, &["store", "check"], &data));
    assert!(out.status.success(), "check: {}", String::from_utf8_lossy(&out.stdout));
    fn walk(p: &Path, bad: &mut Vec<PathBuf>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        if m.uid() != NOBODY || m.gid() != NOBODY {
            bad.push(p.to_path_buf());
        }
        if m.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), bad);
            }
        }
    }
    let mut bad = Vec::new();
    walk(&data, &mut bad);
    assert!(bad.is_empty(), "not the data dir owner's: {bad:?}");
    let out = run_to_exit(obsd(true, &["store", "check"], &data));
    assert!(
        out.status.success(),
        "the service user opens the imported store: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn store_opts() -> obsd::store::StoreOptions {
    obsd::store::StoreOptions {
        background: false,
        retention: Duration::from_secs(100 * 365 * 24 * 3600),
        ..Default::default()
    }
}

fn fill(dir: &Path) {
    let store = obsd::store::Store::open(dir, store_opts()).unwrap();
    let mut app = store.appender();
    for t in 0..100 {
        app.append(&obsd::store::cli::stress_labels(1), t, t as f64).unwrap();
    }
    app.commit().unwrap();
    store.sync().unwrap();
    // Dropped, not closed: the samples live in the WAL only.
    drop(store);
}

fn served(dir: &Path) -> usize {
    let store = obsd::store::Store::open(dir, store_opts()).unwrap();
    let got = store
        .querier(i64::MIN, i64::MAX)
        .select_all(&[obsd::model::Matcher::equal("job", "stress")])
        .unwrap();
    let n = got.iter().map(|(_, s)| s.len()).sum();
    store.close().unwrap();
    n
}

/// Replaces `path` by a directory (reading it then fails with EISDIR, an error of the system,
/// as EIO from a failing disk would be), opens the store, and puts the file back.
fn open_with_unreadable(dir: &Path, path: &Path) -> Result<(), obsd::store::StoreError> {
    let saved = path.with_extension("saved");
    std::fs::rename(path, &saved).unwrap();
    std::fs::create_dir(path).unwrap();
    let opened = obsd::store::Store::open(dir, store_opts()).map(drop);
    std::fs::remove_dir(path).unwrap();
    std::fs::rename(&saved, path).unwrap();
    opened
}

/// A WAL segment or checkpoint heads file that cannot be read is refused, not skipped as
/// damaged: skipping it would lose its samples for good at the next checkpoint.
#[test]
fn unreadable_wal_segments_and_heads_files_are_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let wal_dir = dir.path().join("wal");
    let segments = obsd::store::wal::list_segments(&wal_dir).unwrap();
    let segment = segments
        .iter()
        .map(|&s| obsd::store::wal::segment_path(&wal_dir, s))
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .expect("a WAL segment with data");
    match open_with_unreadable(dir.path(), &segment) {
        Err(obsd::store::StoreError::Refused { path, .. }) => assert_eq!(path, segment),
        other => panic!("an unreadable WAL segment must be refused: {other:?}"),
    }
    assert_eq!(served(dir.path()), 100, "every sample is replayed once the segment reads again");

    // `served` closed the store: its heads are now in a checkpoint's heads file.
    let heads = std::fs::read_dir(dir.path().join("heads")).unwrap().next().unwrap().unwrap().path();
    match open_with_unreadable(dir.path(), &heads) {
        Err(obsd::store::StoreError::Refused { path, .. }) => assert_eq!(path, heads),
        other => panic!("an unreadable heads file must be refused: {other:?}"),
    }
    assert_eq!(served(dir.path()), 100, "every sample is there once the heads file reads again");
}

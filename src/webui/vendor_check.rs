//! The vendored browser libraries are exactly what the lock file pins: the registry tarball in
//! web/vendor matches package-lock.json's `integrity`, and every file served from web/vendor is
//! byte-for-byte the one inside that tarball (web/fetch-vendor.sh writes both).

use base64::Engine;
use std::io::Read;
use std::path::PathBuf;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Files of a ustar archive: (path, contents). Only regular files; GNU long names are not
/// needed for npm tarballs (`package/…`, short paths).
fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let header = &bytes[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let field = |from: usize, len: usize| {
            let raw = &header[from..from + len];
            let end = raw.iter().position(|b| *b == 0).unwrap_or(len);
            String::from_utf8_lossy(&raw[..end]).trim().to_string()
        };
        let name = field(0, 100);
        let prefix = field(345, 155);
        let size = usize::from_str_radix(&field(124, 12), 8).expect("tar size");
        let kind = header[156];
        let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let data = bytes[at + 512..at + 512 + size].to_vec();
        if kind == b'0' || kind == 0 {
            out.push((path, data));
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[test]
fn vendored_uplot_matches_the_lock_file() {
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(web_dir().join("package-lock.json")).expect("read lock"))
            .expect("lock json");
    let entry = &lock["packages"]["node_modules/uplot"];
    let version = entry["version"].as_str().expect("uplot version in lock");
    let integrity = entry["integrity"].as_str().expect("uplot integrity in lock");
    let package: serde_json::Value =
        serde_json::from_slice(&std::fs::read(web_dir().join("package.json")).expect("read package.json"))
            .expect("package json");
    assert_eq!(package["dependencies"]["uplot"], version, "package.json must pin the locked version exactly");

    let tarball = std::fs::read(web_dir().join(format!("vendor/uplot-{version}.tgz")))
        .expect("web/vendor holds the registry tarball; run web/fetch-vendor.sh");
    let digest = ring::digest::digest(&ring::digest::SHA512, &tarball);
    let got = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()));
    assert_eq!(got, integrity, "web/vendor/uplot-{version}.tgz is not the tarball the lock pins");

    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&tarball[..]).read_to_end(&mut tar).expect("gunzip");
    let files = untar(&tar);
    for (served, inside) in [
        ("uPlot.esm.js", "package/dist/uPlot.esm.js"),
        ("uPlot.min.css", "package/dist/uPlot.min.css"),
        ("LICENSE", "package/LICENSE"),
    ] {
        let expected =
            &files.iter().find(|(p, _)| p == inside).unwrap_or_else(|| panic!("{inside} not in tarball")).1;
        let vendored = std::fs::read(web_dir().join("vendor").join(served)).expect("read vendored file");
        assert!(&vendored == expected, "web/vendor/{served} differs from {inside} of the pinned tarball");
    }
}

//! `node_os_info` and `node_os_version` from os-release(5).

use super::{CollectError, read};
use crate::config::ExporterConfig;
use crate::exposition::MetricFamily;
use std::collections::HashMap;

fn parse_os_release(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
            (k.trim().to_string(), v.replace("\\\"", "\"").replace("\\\\", "\\"))
        })
        .collect()
}

/// The `^[0-9]+\.?[0-9]*` prefix node_exporter reads from VERSION_ID ("22.04.3" → 22.04).
fn major_minor(version_id: &str) -> Option<f64> {
    let major_end = version_id.find(|c: char| !c.is_ascii_digit()).unwrap_or(version_id.len());
    if major_end == 0 {
        return None;
    }
    let mut end = major_end;
    if version_id[end..].starts_with('.') {
        end += 1;
        end += version_id[end..].find(|c: char| !c.is_ascii_digit()).unwrap_or(version_id.len() - end);
    }
    version_id[..end].trim_end_matches('.').parse().ok()
}

pub fn collect(config: &ExporterConfig) -> Result<Vec<MetricFamily>, CollectError> {
    let etc = config.rootfs_path.join("etc/os-release");
    let text = match read(&etc) {
        Ok(t) => t,
        Err(_) => read(config.rootfs_path.join("usr/lib/os-release"))?,
    };
    let fields = parse_os_release(&text);
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let mut info = MetricFamily::gauge(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
    );
    info.add(
        &[
            ("build_id", get("BUILD_ID")),
            ("id", get("ID")),
            ("id_like", get("ID_LIKE")),
            ("image_id", get("IMAGE_ID")),
            ("image_version", get("IMAGE_VERSION")),
            ("name", get("NAME")),
            ("pretty_name", get("PRETTY_NAME")),
            ("variant", get("VARIANT")),
            ("variant_id", get("VARIANT_ID")),
            ("version", get("VERSION")),
            ("version_codename", get("VERSION_CODENAME")),
            ("version_id", get("VERSION_ID")),
        ],
        1.0,
    );
    let mut out = vec![info];
    if let Some(version) = major_minor(&get("VERSION_ID")) {
        let mut v = MetricFamily::gauge(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
        );
        v.add(&[("id", get("ID")), ("id_like", get("ID_LIKE")), ("name", get("NAME"))], version);
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_like_node_exporter() {
        assert_eq!(major_minor("12"), Some(12.0));
        assert_eq!(major_minor("22.04.3"), Some(22.04));
        assert_eq!(major_minor("rolling"), None);
        assert_eq!(major_minor(""), None);
    }

    #[test]
    fn parses_quoted_values() {
        let f = parse_os_release("NAME=\"Debian GNU/Linux\"\nID=debian\n# comment\nVERSION_ID='12'\n");
        assert_eq!(f["NAME"], "Debian GNU/Linux");
        assert_eq!(f["ID"], "debian");
        assert_eq!(f["VERSION_ID"], "12");
    }
}

//! Prometheus relabelling (model/relabel/relabel.go in Prometheus 2.42) applied to a label
//! set: the same `$1`/`${name}` expansion and hashmod as Prometheus. The configurations are
//! `config::relabel`.

pub use crate::config::relabel::{Action, AnchoredRegex, RelabelConfig};
use md5::{Digest, Md5};
use regex::Regex;

/// A label set under relabelling, kept sorted by name.
pub type LabelSet = Vec<(String, String)>;

fn get<'a>(labels: &'a LabelSet, name: &str) -> &'a str {
    labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn set(labels: &mut LabelSet, name: &str, value: String) {
    if value.is_empty() {
        labels.retain(|(n, _)| n != name);
        return;
    }
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => labels[i].1 = value,
        Err(i) => labels.insert(i, (name.to_string(), value)),
    }
}

/// Go's regexp.ExpandString with the `$1`, `${1}`, `$name` syntax, which Rust's expand shares.
fn expand(regex: &Regex, template: &str, value: &str) -> Option<String> {
    let caps = regex.captures(value)?;
    let mut out = String::new();
    caps.expand(template, &mut out);
    Some(out)
}

/// md5 of the value, low 8 bytes as a big-endian integer (Prometheus's sum64).
fn hash_mod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(low) % modulus
}

/// Applies configs in order; `None` means the target or series is dropped.
pub fn process(mut labels: LabelSet, configs: &[RelabelConfig]) -> Option<LabelSet> {
    labels.sort();
    for cfg in configs {
        let value =
            cfg.source_labels.iter().map(|n| get(&labels, n)).collect::<Vec<_>>().join(&cfg.separator);
        let re = &cfg.regex.regex;
        match cfg.action {
            Action::Drop => {
                if re.is_match(&value) {
                    return None;
                }
            }
            Action::Keep => {
                if !re.is_match(&value) {
                    return None;
                }
            }
            Action::DropEqual => {
                if get(&labels, &cfg.target_label) == value {
                    return None;
                }
            }
            Action::KeepEqual => {
                if get(&labels, &cfg.target_label) != value {
                    return None;
                }
            }
            Action::Replace => {
                let Some(target) = expand(re, &cfg.target_label, &value) else { continue };
                if !crate::exposition::is_valid_label_name(&target) {
                    continue;
                }
                let Some(result) = expand(re, &cfg.replacement, &value) else { continue };
                set(&mut labels, &target, result);
            }
            Action::Lowercase => set(&mut labels, &cfg.target_label, value.to_lowercase()),
            Action::Uppercase => set(&mut labels, &cfg.target_label, value.to_uppercase()),
            Action::HashMod => set(&mut labels, &cfg.target_label, hash_mod(&value, cfg.modulus).to_string()),
            Action::LabelMap => {
                let mapped: Vec<(String, String)> = labels
                    .iter()
                    .filter(|(n, _)| re.is_match(n))
                    .map(|(n, v)| (re.replace_all(n, cfg.replacement.as_str()).into_owned(), v.clone()))
                    .collect();
                for (name, value) in mapped {
                    set(&mut labels, &name, value);
                }
            }
            Action::LabelDrop => labels.retain(|(n, _)| !re.is_match(n)),
            Action::LabelKeep => labels.retain(|(n, _)| re.is_match(n)),
        }
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> RelabelConfig {
        let c: RelabelConfig = serde_norway::from_str(yaml).unwrap();
        c.validate().unwrap();
        c
    }

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        let mut v: LabelSet = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        v.sort();
        v
    }

    #[test]
    fn replace_with_groups_and_defaults() {
        let c = cfg(
            "source_labels: [__address__]\nregex: '(.+):(\\d+)'\ntarget_label: host\nreplacement: '${1}'",
        );
        let out = process(ls(&[("__address__", "node1:9100")]), &[c]).unwrap();
        assert_eq!(get(&out, "host"), "node1");
        // No match leaves the labels alone.
        let c = cfg("source_labels: [a]\nregex: 'x'\ntarget_label: b\nreplacement: y");
        assert_eq!(process(ls(&[("a", "z")]), &[c]).unwrap(), ls(&[("a", "z")]));
        // Anchored: "b" does not match inside "abc".
        let c = cfg("source_labels: [a]\nregex: b\naction: drop");
        assert!(process(ls(&[("a", "abc")]), std::slice::from_ref(&c)).is_some());
        assert!(process(ls(&[("a", "b")]), &[c]).is_none());
        // Empty replacement deletes the target label.
        let c = cfg("source_labels: [a]\ntarget_label: a\nreplacement: ''");
        assert_eq!(process(ls(&[("a", "v"), ("b", "w")]), &[c]).unwrap(), ls(&[("b", "w")]));
        // Target label from a group; invalid result names are skipped.
        let c = cfg("source_labels: [a]\nregex: '(.*)'\ntarget_label: 'x_$1'\nreplacement: v");
        assert_eq!(get(&process(ls(&[("a", "ok")]), std::slice::from_ref(&c)).unwrap(), "x_ok"), "v");
        assert_eq!(process(ls(&[("a", "not ok")]), &[c]).unwrap(), ls(&[("a", "not ok")]));
    }

    #[test]
    fn keep_drop_equal_and_case() {
        let keep = cfg("source_labels: [job]\nregex: 'node|app'\naction: keep");
        assert!(process(ls(&[("job", "app")]), std::slice::from_ref(&keep)).is_some());
        assert!(process(ls(&[("job", "db")]), &[keep]).is_none());
        let ke = cfg("source_labels: [a]\ntarget_label: b\naction: keepequal");
        assert!(process(ls(&[("a", "1"), ("b", "1")]), std::slice::from_ref(&ke)).is_some());
        assert!(process(ls(&[("a", "1"), ("b", "2")]), &[ke]).is_none());
        let de = cfg("source_labels: [a]\ntarget_label: b\naction: dropequal");
        assert!(process(ls(&[("a", "1"), ("b", "1")]), &[de]).is_none());
        let lc = cfg("source_labels: [a]\ntarget_label: l\naction: lowercase");
        let uc = cfg("source_labels: [a]\ntarget_label: u\naction: uppercase");
        let out = process(ls(&[("a", "MiX")]), &[lc, uc]).unwrap();
        assert_eq!((get(&out, "l"), get(&out, "u")), ("mix", "MIX"));
    }

    #[test]
    fn label_map_drop_keep() {
        let m = cfg("regex: '__meta_kubernetes_pod_label_(.+)'\naction: labelmap");
        let out = process(ls(&[("__meta_kubernetes_pod_label_app", "web"), ("x", "1")]), &[m]).unwrap();
        assert_eq!(get(&out, "app"), "web");
        let d = cfg("regex: 'tmp_.*'\naction: labeldrop");
        assert_eq!(process(ls(&[("tmp_a", "1"), ("b", "2")]), &[d]).unwrap(), ls(&[("b", "2")]));
        let k = cfg("regex: '__name__|job'\naction: labelkeep");
        assert_eq!(
            process(ls(&[("__name__", "up"), ("job", "j"), ("z", "1")]), &[k]).unwrap(),
            ls(&[("__name__", "up"), ("job", "j")])
        );
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Values computed by Prometheus 2.42's relabel.Process (sum64(md5) % modulus).
        let c = cfg("source_labels: [__address__]\nmodulus: 8\ntarget_label: shard\naction: hashmod");
        let shard = |addr: &str| {
            get(&process(ls(&[("__address__", addr)]), std::slice::from_ref(&c)).unwrap(), "shard")
                .to_string()
        };
        let digest = Md5::digest(b"node1:9100");
        let expected = u64::from_be_bytes(digest[8..16].try_into().unwrap()) % 8;
        assert_eq!(shard("node1:9100"), expected.to_string());
    }

    #[test]
    fn validation_errors() {
        let bad: RelabelConfig = serde_norway::from_str("action: hashmod\ntarget_label: x").unwrap();
        assert!(bad.validate().unwrap_err().contains("modulus"));
        let bad: RelabelConfig = serde_norway::from_str("action: replace").unwrap();
        assert!(bad.validate().unwrap_err().contains("target_label"));
        assert!(serde_norway::from_str::<RelabelConfig>("action: explode").is_err());
        assert!(serde_norway::from_str::<RelabelConfig>("regex: '('").is_err());
    }
}

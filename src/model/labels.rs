//! A series' identity: its label set, sorted by label name, with the metric name kept as the
//! `__name__` label the way Prometheus keeps it.
//!
//! Shared by every engine that names series (store, scrape, PromQL, federation), so it stays a
//! plain sorted vector: cheap to build from a parser, cheap to compare and hash, and its
//! ordering (name, then value, pairwise) is the one Prometheus sorts series by.

use std::fmt;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// A label set sorted by name, names unique. Empty values are dropped on construction because
/// Prometheus treats `foo=""` as the label being absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order; a later duplicate name wins over an earlier
    /// one, like relabelling's "last write wins".
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut v: Vec<(String, String)> = pairs.into_iter().map(|(n, v)| (n.into(), v.into())).collect();
        // Stable sort keeps input order among equal names, so dedup can keep the last one.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for pair in v {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        out.retain(|(_, v)| !v.is_empty());
        Labels(out)
    }

    /// Metric name plus label pairs: `Labels::metric("up", &[("job", "node")])`.
    pub fn metric(name: &str, pairs: &[(&str, &str)]) -> Self {
        Self::from_pairs(std::iter::once((METRIC_NAME, name)).chain(pairs.iter().copied()))
    }

    /// Wraps pairs the caller guarantees are sorted by name, unique and non-empty (e.g. read
    /// back from the store). Checked in debug builds.
    pub fn from_sorted(pairs: Vec<(String, String)>) -> Self {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "labels not sorted/unique");
        Labels(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| self.0[i].1.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Sets (or with an empty value removes) one label, keeping the order.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_string(), value.to_string())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// A copy with one label set (or with an empty value removed), as [`set`](Self::set) on a
    /// clone but cloning only the pairs kept, into one allocation.
    pub fn with_label(&self, name: &str, value: &str) -> Labels {
        let mut out = Vec::with_capacity(self.0.len() + usize::from(!value.is_empty()));
        let mut placed = value.is_empty();
        for (n, v) in &self.0 {
            if !placed && n.as_str() > name {
                out.push((name.to_string(), value.to_string()));
                placed = true;
            }
            if n != name {
                out.push((n.clone(), v.clone()));
            }
        }
        if !placed {
            out.push((name.to_string(), value.to_string()));
        }
        Labels(out)
    }

    /// The labels whose name `keep` accepts, in the same order; only those pairs are cloned.
    pub fn filtered(&self, mut keep: impl FnMut(&str) -> bool) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| keep(n)).cloned().collect())
    }

    /// The labels except those named in `names` (Prometheus's `Builder.Del`).
    pub fn without(&self, names: &[&str]) -> Labels {
        self.filtered(|n| !names.contains(&n))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

/// Prometheus's legacy label-name rule `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Prometheus's notation: `up{instance="a:9100", job="node"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name().unwrap_or("");
        f.write_str(name)?;
        let rest: Vec<_> = self.0.iter().filter(|(n, _)| n != METRIC_NAME).collect();
        if rest.is_empty() && !name.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (n, v)) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}=\"{}\"", escape_label_value(v))?;
        }
        f.write_str("}")
    }
}

pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_dropped() {
        let l = Labels::from_pairs([("job", "a"), ("__name__", "up"), ("x", ""), ("job", "b")]);
        assert_eq!(l.as_slice(), &[("__name__".into(), "up".into()), ("job".into(), "b".into())]);
        assert_eq!(l.get("job"), Some("b"));
        assert_eq!(l.get("x"), None);
        assert_eq!(l.to_string(), "up{job=\"b\"}");
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::metric("up", &[("b", "2")]);
        l.set("a", "1");
        l.set("c", "3");
        l.remove("b");
        let names: Vec<_> = l.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["__name__", "a", "c"]);
    }

    #[test]
    fn with_label_matches_set_on_a_clone() {
        let l = Labels::metric("up", &[("b", "2"), ("d", "4")]);
        for (name, value) in
            [("a", "1"), ("b", "x"), ("c", "3"), ("d", "y"), ("e", "5"), ("b", ""), ("c", "")]
        {
            let mut want = l.clone();
            want.set(name, value);
            assert_eq!(l.with_label(name, value), want, "{name}={value:?}");
        }
        assert_eq!(Labels::new().with_label("a", "1"), Labels::from_pairs([("a", "1")]));
        assert!(Labels::new().with_label("a", "").is_empty());
    }

    #[test]
    fn filtered_and_without_keep_order() {
        let l = Labels::metric("up", &[("b", "2"), ("a", "1"), ("c", "3")]);
        assert_eq!(l.filtered(|n| n != "b"), Labels::metric("up", &[("a", "1"), ("c", "3")]));
        assert_eq!(l.without(&[METRIC_NAME, "c"]), Labels::from_pairs([("a", "1"), ("b", "2")]));
        assert_eq!(l.without(&["nope"]), l);
        assert!(l.filtered(|_| false).is_empty());
    }
}

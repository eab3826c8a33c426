//! The seam between the PromQL engine and whatever stores samples.
//!
//! The engine reads only through [`Queryable`]; the sled store and the in-memory test store
//! ([`super::MemoryQueryable`]) both implement it. The contract mirrors Prometheus's
//! `storage.Querier`: matchers select series, every returned series carries its full label set
//! (including `__name__`) sorted by label name, and its samples in increasing time order.

use regex::Regex;
use std::fmt;

/// Prometheus's staleness marker, defined once by the store.
pub use crate::store::{STALE_NAN_BITS, is_stale_nan, stale_nan};

/// A label set sorted by name; `__name__` is an ordinary entry.
pub type Labels = Vec<(String, String)>;

/// Failures of a [`Queryable`]; the store's fault, never the user's.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

/// One label matcher; regexes are fully anchored as in Prometheus (`^(?:re)$`), and a label
/// that is absent matches as the empty string.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

/// A regex in a matcher that does not compile; the user's fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {value:?} for label {name:?}: {message}")]
pub struct BadMatcher {
    pub name: String,
    pub value: String,
    pub message: String,
}

impl LabelMatcher {
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Self, BadMatcher> {
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| BadMatcher {
                    name: name.to_string(),
                    value: value.to_string(),
                    message: e.to_string(),
                })?)
            }
            _ => None,
        };
        Ok(Self { name: name.to_string(), op, value: value.to_string(), regex })
    }

    pub fn equal(name: &str, value: &str) -> Self {
        Self { name: name.to_string(), op: MatchOp::Equal, value: value.to_string(), regex: None }
    }

    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts a series that lacks the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(label_value(labels, &self.name).unwrap_or(""))
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

pub fn label_value<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// One selected series: labels sorted by name, samples in increasing time, stale markers kept
/// bit-exactly (the engine needs them to end a series).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// One exemplar of a series: its own labels (usually `trace_id`), value and time in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarData {
    pub labels: Labels,
    pub value: f64,
    pub t_ms: i64,
}

/// What the engine needs from a store. All times are Unix milliseconds, bounds inclusive.
pub trait Queryable: Send + Sync {
    /// Series matching every matcher with their samples in `[mint_ms, maxt_ms]`. A series with
    /// no sample in the range may be omitted. Order of the returned series does not matter.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<SeriesData>, StorageError>;

    /// As [`select`](Self::select), handing the series to `f` one at a time so the caller
    /// need not hold them all; stops early when `f` returns false. The default collects
    /// through `select`; a store that decodes per series does better.
    fn for_each_series(
        &self,
        matchers: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
        f: &mut dyn FnMut(SeriesData) -> bool,
    ) -> Result<(), StorageError> {
        for sd in self.select(matchers, mint_ms, maxt_ms)? {
            if !f(sd) {
                break;
            }
        }
        Ok(())
    }

    /// Label sets of the series matching `matchers` that have samples in the range; the
    /// default loads samples through `select`, a store may do better from its index.
    fn series(
        &self,
        matchers: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<Labels>, StorageError> {
        Ok(self.select(matchers, mint_ms, maxt_ms)?.into_iter().map(|s| s.labels).collect())
    }

    /// Sorted, deduplicated label names of the matching series (all series when `matchers`
    /// is empty) with samples in the range.
    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Sorted, deduplicated values of label `name` among the matching series (all series when
    /// `matchers` is empty) with samples in the range.
    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Exemplars with times in `[mint_ms, maxt_ms]` of the series matching `matchers`, per
    /// series in time order. A store that keeps none answers empty, as Prometheus does
    /// without exemplar storage.
    fn exemplars(
        &self,
        _matchers: &[LabelMatcher],
        _mint_ms: i64,
        _maxt_ms: i64,
    ) -> Result<Vec<(Labels, Vec<ExemplarData>)>, StorageError> {
        Ok(Vec::new())
    }
}

/// Prometheus's legacy label-name rule `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

//! Label matchers as PromQL writes them: `=`, `!=`, `=~`, `!~`. The store's postings lookup,
//! the PromQL engine and the APIs' `match[]` all take these, built once per query.
//!
//! Regexes are fully anchored the way Prometheus anchors them (`^(?:re)$`), and a label that a
//! series lacks is matched as the empty string, so `{foo!="x"}` selects series without `foo`
//! and `{foo=~"a|"}` selects series where `foo` is `a` or absent.

use regex::Regex;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// A regex in a matcher that does not compile; the user's fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {value:?} for label {name:?}: {message}")]
pub struct BadMatcher {
    pub name: String,
    pub value: String,
    pub message: String,
}

impl Matcher {
    /// Builds a matcher; a regex that does not compile is an error naming it.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, BadMatcher> {
        let (name, value) = (name.into(), value.into());
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => match Regex::new(&format!("^(?:{value})$")) {
                Ok(re) => Some(re),
                Err(e) => return Err(BadMatcher { name, value, message: e.to_string() }),
            },
            _ => None,
        };
        Ok(Matcher { name, op, value, re })
    }

    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::Equal, value: value.into(), re: None }
    }

    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher { name: name.into(), op: MatchOp::NotEqual, value: value.into(), re: None }
    }

    pub fn regex(name: impl Into<String>, re: &str) -> Result<Self, BadMatcher> {
        Self::new(MatchOp::Regex, name, re)
    }

    pub fn not_regex(name: impl Into<String>, re: &str) -> Result<Self, BadMatcher> {
        Self::new(MatchOp::NotRegex, name, re)
    }

    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // Built only through the constructors, which always compile a regex.
            (_, None) => false,
        }
    }

    /// Whether a series lacking the label matches; such matchers cannot narrow by postings.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether the series with these labels (sorted or not) matches; an absent label is "".
    pub fn matches_labels(&self, labels: &[(String, String)]) -> bool {
        self.matches(labels.iter().find(|(n, _)| *n == self.name).map_or("", |(_, v)| v.as_str()))
    }

    /// For `=` (non-empty), the single value to look up directly in the postings.
    pub fn exact_value(&self) -> Option<&str> {
        (self.op == MatchOp::Equal && !self.value.is_empty()).then_some(self.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_fully_anchored() {
        let m = Matcher::regex("job", "node|prom").unwrap();
        assert!(m.matches("node") && m.matches("prom"));
        assert!(!m.matches("node_exporter") && !m.matches("xprom"));
        let m = Matcher::regex("job", "a.*").unwrap();
        assert!(m.matches("abc") && !m.matches("ba"));
        let m = Matcher::not_regex("job", "a|").unwrap();
        assert!(!m.matches("") && !m.matches("a") && m.matches("ab"));
        assert!(Matcher::regex("x", "(").is_err());
    }

    #[test]
    fn empty_matching() {
        assert!(Matcher::not_equal("a", "x").matches_empty());
        assert!(!Matcher::equal("a", "x").matches_empty());
        assert!(Matcher::equal("a", "").matches_empty());
        assert!(Matcher::regex("a", ".*").unwrap().matches_empty());
        assert!(!Matcher::regex("a", ".+").unwrap().matches_empty());
    }
}

//! HAProxy's ACLs and `if`/`unless` conditions, for `use_backend` content switching.
//!
//! An ACL is `<fetch> [flags] <value>...` (`path_beg /api /v1`, `hdr(host) -i grafana.example`,
//! `method GET HEAD`): it matches when the fetched sample matches any value. A condition is
//! ACL names, `!name` for negation and anonymous `{ <acl> }`, ANDed by juxtaposition and ORed
//! by `||` or `or` (AND binds tighter), as in haproxy.cfg.
//!
//! Only the syntax lives here, so a bad ACL fails `--check` with its file and line; the
//! balancer (`balancer::acl`) matches parsed conditions against requests.

use regex::bytes::Regex;

/// What part of the request an ACL looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    /// The path, without the query string.
    Path,
    /// Every value of a header (comma-separated values count one by one, as HAProxy's
    /// `hdr()`); `host` falls back to an HTTP/2 request's `:authority`.
    Header(String),
    Method,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Begin,
    End,
    Sub,
    /// Domain: the value is a run of whole dot- or slash-delimited labels of the sample.
    Domain,
    Regex,
    /// The sample exists at all.
    Found,
}

#[derive(Debug, Clone)]
pub struct Acl {
    pub fetch: Fetch,
    pub kind: MatchKind,
    pub ignore_case: bool,
    /// Lower-cased when `ignore_case`.
    pub values: Vec<String>,
    regexes: Vec<Regex>,
}

impl PartialEq for Acl {
    fn eq(&self, other: &Self) -> bool {
        self.fetch == other.fetch
            && self.kind == other.kind
            && self.ignore_case == other.ignore_case
            && self.values == other.values
    }
}

/// One term of a condition: a named ACL (several definitions of one name are ORed, as in
/// HAProxy), an anonymous one, or a built-in constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub negate: bool,
    pub acls: Vec<Acl>,
}

/// OR of ANDs of terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub any_of: Vec<Vec<Term>>,
    /// `unless` instead of `if`.
    pub unless: bool,
}

impl Acl {
    /// Parses `<fetch> [-i] [-m <kind>] [--] <value>...`, given as words.
    pub fn parse(words: &[&str]) -> Result<Acl, String> {
        let Some((fetch_word, rest)) = words.split_first() else {
            return Err("empty ACL: expected a fetch such as path_beg, hdr(host) or method".into());
        };
        let (fetch, mut kind) = parse_fetch(fetch_word)?;
        let mut ignore_case = false;
        let mut i = 0;
        while let Some(w) = rest.get(i) {
            match *w {
                "-i" => ignore_case = true,
                "-m" => {
                    i += 1;
                    let Some(k) = rest.get(i) else { return Err("-m needs a match method".into()) };
                    kind = match *k {
                        "str" => MatchKind::Exact,
                        "beg" => MatchKind::Begin,
                        "end" => MatchKind::End,
                        "sub" => MatchKind::Sub,
                        "dom" => MatchKind::Domain,
                        "reg" => MatchKind::Regex,
                        "found" => MatchKind::Found,
                        other => {
                            return Err(format!(
                                "-m {other}: expected str, beg, end, sub, dom, reg or found"
                            ));
                        }
                    };
                }
                "--" => {
                    i += 1;
                    break;
                }
                w if w.starts_with('-') && w.len() > 1 => {
                    return Err(format!("ACL flag {w} is not supported (-i, -m and -- are)"));
                }
                _ => break,
            }
            i += 1;
        }
        let mut values: Vec<String> = rest[i.min(rest.len())..].iter().map(|v| v.to_string()).collect();
        if kind == MatchKind::Found {
            if !values.is_empty() {
                return Err("-m found takes no values".into());
            }
        } else if values.is_empty() {
            return Err(format!("ACL {fetch_word} has no value to match"));
        }
        if ignore_case {
            values = values.into_iter().map(|v| v.to_ascii_lowercase()).collect();
        }
        let regexes = if kind == MatchKind::Regex {
            values
                .iter()
                .map(|v| {
                    regex::bytes::RegexBuilder::new(v)
                        .case_insensitive(ignore_case)
                        .build()
                        .map_err(|e| format!("bad regex {v:?}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Acl { fetch, kind, ignore_case, values, regexes })
    }

    /// The compiled `-m reg` patterns, one per value; empty for other match kinds.
    pub fn regexes(&self) -> &[Regex] {
        &self.regexes
    }
}

fn parse_fetch(word: &str) -> Result<(Fetch, MatchKind), String> {
    let (base, arg) = match word.split_once('(') {
        Some((b, rest)) => match rest.strip_suffix(')') {
            Some(a) => (b, Some(a.trim().to_ascii_lowercase())),
            None => return Err(format!("{word}: unclosed parenthesis")),
        },
        None => (word, None),
    };
    let header = |arg: Option<String>| match arg {
        Some(a) if !a.is_empty() && !a.contains(',') => Ok(Fetch::Header(a)),
        _ => Err(format!("{word}: expected a header name, as hdr(host)")),
    };
    let no_arg = |f: Fetch| match &arg {
        None => Ok(f),
        Some(_) => Err(format!("{word}: {base} takes no argument")),
    };
    Ok(match base {
        "path" => (no_arg(Fetch::Path)?, MatchKind::Exact),
        "path_beg" => (no_arg(Fetch::Path)?, MatchKind::Begin),
        "path_end" => (no_arg(Fetch::Path)?, MatchKind::End),
        "path_sub" => (no_arg(Fetch::Path)?, MatchKind::Sub),
        "path_dom" => (no_arg(Fetch::Path)?, MatchKind::Domain),
        "path_reg" => (no_arg(Fetch::Path)?, MatchKind::Regex),
        "method" => (no_arg(Fetch::Method)?, MatchKind::Exact),
        "hdr" | "req.hdr" => (header(arg)?, MatchKind::Exact),
        "hdr_beg" => (header(arg)?, MatchKind::Begin),
        "hdr_end" => (header(arg)?, MatchKind::End),
        "hdr_sub" => (header(arg)?, MatchKind::Sub),
        "hdr_dom" => (header(arg)?, MatchKind::Domain),
        "hdr_reg" => (header(arg)?, MatchKind::Regex),
        "hdr_cnt" | "hdr_val" | "hdr_len" => {
            return Err(format!(
                "{base} is not supported (hdr, hdr_beg, hdr_end, hdr_sub, hdr_dom, hdr_reg are)"
            ));
        }
        _ => {
            return Err(format!(
                "unknown fetch {base:?}: path, path_beg, path_end, path_sub, path_dom, path_reg, method and \
                 hdr(<name>) with _beg/_end/_sub/_dom/_reg are supported"
            ));
        }
    })
}

/// HAProxy's predefined ACLs that make sense for content switching.
fn predefined(name: &str) -> Option<Acl> {
    let words: &[&str] = match name {
        "TRUE" => &["method", "-m", "found"],
        "METH_GET" => &["method", "GET", "HEAD"],
        "METH_HEAD" => &["method", "HEAD"],
        "METH_POST" => &["method", "POST"],
        "METH_PUT" => &["method", "PUT"],
        "METH_DELETE" => &["method", "DELETE"],
        "METH_OPTIONS" => &["method", "OPTIONS"],
        "METH_CONNECT" => &["method", "CONNECT"],
        "METH_TRACE" => &["method", "TRACE"],
        _ => return None,
    };
    Acl::parse(words).ok()
}

impl Condition {
    /// Parses the words after `if`/`unless`, resolving names with `lookup`.
    pub fn parse(
        text: &str,
        unless: bool,
        lookup: &dyn Fn(&str) -> Option<Vec<Acl>>,
    ) -> Result<Condition, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            return Err("empty condition".into());
        }
        let mut any_of = Vec::new();
        let mut all_of = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if w == "||" || w == "or" {
                if all_of.is_empty() {
                    return Err(format!("{w} with nothing before it"));
                }
                any_of.push(std::mem::take(&mut all_of));
                i += 1;
                continue;
            }
            let (negate, w) = match w.strip_prefix('!') {
                Some("") => {
                    i += 1;
                    match words.get(i) {
                        Some(next) => (true, *next),
                        None => return Err("! with nothing after it".into()),
                    }
                }
                Some(rest) => (true, rest),
                None => (false, w),
            };
            if w == "{" || w.starts_with('{') {
                let mut inner: Vec<&str> = Vec::new();
                if w.len() > 1 {
                    inner.push(&w[1..]);
                }
                i += 1;
                let mut closed = false;
                while let Some(x) = words.get(i) {
                    i += 1;
                    if *x == "}" {
                        closed = true;
                        break;
                    }
                    if let Some(last) = x.strip_suffix('}') {
                        inner.push(last);
                        closed = true;
                        break;
                    }
                    inner.push(x);
                }
                if !closed {
                    return Err("anonymous ACL `{ ... }` is not closed".into());
                }
                all_of.push(Term { negate, acls: vec![Acl::parse(&inner)?] });
                continue;
            }
            let acls = match w {
                "FALSE" => Vec::new(),
                _ => match lookup(w).or_else(|| predefined(w).map(|a| vec![a])) {
                    Some(a) => a,
                    None => return Err(format!("no ACL named {w:?} in this frontend")),
                },
            };
            all_of.push(Term { negate, acls });
            i += 1;
        }
        if all_of.is_empty() {
            return Err("condition ends with ||".into());
        }
        any_of.push(all_of);
        Ok(Condition { any_of, unless })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_acls_say_why() {
        for (text, want) in [
            ("path_begin /x", "unknown fetch"),
            ("hdr() x", "header name"),
            ("path_beg", "no value"),
            ("path_reg (", "bad regex"),
            ("path -m nope x", "-m nope"),
            ("path -f file", "-f"),
        ] {
            let err = Acl::parse(&text.split_whitespace().collect::<Vec<_>>()).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn bad_conditions_say_why() {
        let is_api = Acl::parse(&["path_beg", "/api"]).unwrap();
        let lookup = |name: &str| (name == "is_api").then(|| vec![is_api.clone()]);
        for (text, want) in [
            ("nope", "no ACL named \"nope\""),
            ("|| is_api", "nothing before"),
            ("is_api ||", "ends with"),
            ("{ path_beg /x", "not closed"),
            ("", "empty"),
        ] {
            let err = Condition::parse(text, false, &lookup).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}

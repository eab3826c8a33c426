//! Alertmanager's label matchers (`pkg/labels` of 0.25): the tolerant syntax of `matchers:` in
//! routes and inhibit rules, of amtool's and the API's `filter`, and how they print in route
//! and group keys (`{a="b",c=~"d"}`).

use crate::model::{MatchOp, Matcher};

/// A matcher that does not parse, with Alertmanager's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatcherError(pub String);

/// `ParseMatchers`: a comma-separated list, optionally in braces; commas inside double quotes
/// do not separate; a trailing comma is allowed.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let (mut inside_quotes, mut escaped) = (false, false);
    let mut token = String::new();
    let mut tokens = Vec::new();
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// `ParseMatcher`: `name op value`, the value optionally double-quoted with OpenMetrics escapes
/// (`\"`, `\n`, `\\`); a lone backslash is literal.
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let bad = || MatcherError(format!("bad matcher format: {s}"));
    let t = s.trim_start();
    let name_len = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())))
        .map_or(t.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let name = &t[..name_len];
    let rest = t[name_len..].trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else {
        return Err(bad());
    };
    let raw_shown = rest.trim();
    let mut raw = raw_shown;
    let mut expect_trailing_quote = false;
    if let Some(r) = raw.strip_prefix('"') {
        raw = r;
        expect_trailing_quote = true;
    }
    let unescaped_quote =
        || MatcherError(format!("matcher value contains unescaped double quote: {raw_shown}"));
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        let last = i + c.len_utf8() == raw.len();
        match c {
            '\\' if !last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_trailing_quote || !last {
                    return Err(unescaped_quote());
                }
                expect_trailing_quote = false;
            }
            _ => value.push(c),
        }
    }
    if expect_trailing_quote {
        return Err(unescaped_quote());
    }
    Matcher::new(op, name, value).map_err(|e| MatcherError(format!("error parsing regexp: {}", e.message)))
}

/// How Alertmanager prints one matcher: `name="value"` with OpenMetrics escaping.
pub fn matcher_string(m: &Matcher) -> String {
    let op = match m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    };
    format!("{}{}\"{}\"", m.name, op, escape(&m.value))
}

/// `Matchers.String()`: `{a="b",c=~"d"}`, in the order given.
pub fn matchers_string(ms: &[Matcher]) -> String {
    let inner: Vec<String> = ms.iter().map(matcher_string).collect();
    format!("{{{}}}", inner.join(","))
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out
}

/// Alertmanager sorts a route's matchers by name, then value, then type.
pub fn sort_matchers(ms: &mut [Matcher]) {
    let rank = |op: MatchOp| match op {
        MatchOp::Equal => 0,
        MatchOp::NotEqual => 1,
        MatchOp::Regex => 2,
        MatchOp::NotRegex => 3,
    };
    ms.sort_by(|a, b| (&a.name, &a.value, rank(a.op)).cmp(&(&b.name, &b.value, rank(b.op))));
}

/// Whether every matcher matches the labels (an absent label is the empty string).
pub fn all_match(ms: &[Matcher], labels: &crate::model::Labels) -> bool {
    ms.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(s: &str) -> Result<String, String> {
        parse_matchers(s).map(|ms| matchers_string(&ms)).map_err(|e| e.0)
    }

    #[test]
    fn the_tolerant_syntax_parses_as_alertmanager_does() {
        assert_eq!(shown("{foo = \"bar\", dings != \"bums\", }").unwrap(), "{foo=\"bar\",dings!=\"bums\"}");
        assert_eq!(shown("foo=bar,dings!=bums").unwrap(), "{foo=\"bar\",dings!=\"bums\"}");
        assert_eq!(shown("statuscode=~\"5..\"").unwrap(), "{statuscode=~\"5..\"}");
        assert_eq!(
            shown(r#"{quote="She said: \"Hi, ladies!\""}"#).unwrap(),
            r#"{quote="She said: \"Hi, ladies!\""}"#
        );
        assert_eq!(shown("a=\"x,y\"").unwrap(), "{a=\"x,y\"}");
        assert_eq!(shown("a=").unwrap(), "{a=\"\"}");
        assert_eq!(shown(r"a=b\c").unwrap(), r#"{a="b\\c"}"#);
        assert_eq!(shown("").unwrap(), "{}");
    }

    #[test]
    fn bad_matchers_carry_alertmanagers_messages() {
        assert_eq!(shown("foo").unwrap_err(), "bad matcher format: foo");
        assert_eq!(shown("1a=b").unwrap_err(), "bad matcher format: 1a=b");
        assert_eq!(shown("a=\"b").unwrap_err(), "matcher value contains unescaped double quote: \"b");
        assert_eq!(shown("a=b\"c").unwrap_err(), "matcher value contains unescaped double quote: b\"c");
        assert!(shown("a=~\"(\"").unwrap_err().starts_with("error parsing regexp"));
    }

    #[test]
    fn regexes_are_anchored_and_absent_labels_are_empty() {
        let ms = parse_matchers("job=~\"no.*\",env!=\"prod\"").unwrap();
        let labels = crate::model::Labels::from_pairs([("job", "node")]);
        assert!(all_match(&ms, &labels));
        let labels = crate::model::Labels::from_pairs([("job", "anode")]);
        assert!(!all_match(&ms, &labels));
    }
}

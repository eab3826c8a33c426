//! Go's `regexp` (RE2 syntax, as `match` and `reReplaceAll` use it) on top of the `regex`
//! crate: the pattern is rewritten where the two differ in meaning, Go's stricter syntax rules
//! are checked, parse errors are worded as Go's (`error parsing regexp: missing closing ):
//! `(``), and `ReplaceAllString` follows Go's empty-match and `$name` expansion rules.
//!
//! Rewritten: `\d \s \w \b` and their negations are ASCII-only in Go (Unicode in `regex`); a
//! `{` that does not start a repeat count is a literal in Go; `\Q…\E` quotes; inside a class,
//! `[`, `&`, `~` and `--` are literals in Go but set operators in `regex`.
//! Go-only errors: stacked repetition (`a**`), repeat counts above 1000, `(?<name>…)`.
//! Error texts for the rarer syntax errors follow Go's categories but may quote a different
//! fragment of the pattern than Go does.

use regex::Regex;
use regex_syntax::ast::ErrorKind as AstKind;
use regex_syntax::hir::ErrorKind as HirKind;

type GoErr = (&'static str, String);

fn go_error((code, expr): GoErr) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

/// Compiles a Go regular expression; the error is Go's `(*regexp.Error).Error()` text.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern).map_err(go_error)?;
    if let Err(e) = regex_syntax::Parser::new().parse(&translated) {
        return Err(go_error(classify(pattern, &translated, &e)));
    }
    Regex::new(&translated).map_err(|e| format!("error parsing regexp: {e}"))
}

/// How `regexp.MustCompile` quotes the pattern in its panic message.
pub(super) fn quote_pattern(p: &str) -> String {
    if super::gostr::can_backquote(p) { format!("`{p}`") } else { super::gostr::quote(p) }
}

fn classify(original: &str, translated: &str, e: &regex_syntax::Error) -> GoErr {
    let frag = |start: usize, end: usize| translated.get(start..end).unwrap_or("").to_string();
    match e {
        regex_syntax::Error::Parse(e) => {
            let sp = e.span();
            let (s, en) = (sp.start.offset, sp.end.offset);
            match e.kind() {
                AstKind::GroupUnclosed => ("missing closing )", original.to_string()),
                AstKind::GroupUnopened => ("unexpected )", original.to_string()),
                AstKind::ClassUnclosed => ("missing closing ]", frag(s, translated.len())),
                AstKind::RepetitionMissing => {
                    ("missing argument to repetition operator", repeat_op(translated, s, en))
                }
                AstKind::RepetitionCountInvalid => ("invalid repeat count", frag(s, en)),
                AstKind::ClassRangeInvalid | AstKind::ClassRangeLiteral => {
                    ("invalid character class range", frag(s, en))
                }
                AstKind::EscapeUnexpectedEof => ("trailing backslash at end of expression", String::new()),
                AstKind::GroupNameDuplicate { .. }
                | AstKind::GroupNameEmpty
                | AstKind::GroupNameInvalid
                | AstKind::GroupNameUnexpectedEof => {
                    let start = translated[..s].rfind("(?").unwrap_or(s);
                    let end = translated[s..].find('>').map_or(translated.len(), |i| s + i + 1);
                    ("invalid named capture", frag(start, end))
                }
                AstKind::FlagUnrecognized
                | AstKind::FlagDanglingNegation
                | AstKind::FlagDuplicate { .. }
                | AstKind::FlagRepeatedNegation { .. }
                | AstKind::FlagUnexpectedEof
                | AstKind::UnsupportedLookAround => {
                    let start = translated[..s.min(translated.len())].rfind("(?").unwrap_or(s);
                    ("invalid or unsupported Perl syntax", frag(start, en))
                }
                AstKind::NestLimitExceeded(_) => ("expression nests too deeply", original.to_string()),
                _ => ("invalid escape sequence", frag(s, en)),
            }
        }
        regex_syntax::Error::Translate(e) => {
            let sp = e.span();
            let text = frag(sp.start.offset, sp.end.offset);
            match e.kind() {
                HirKind::UnicodePropertyNotFound | HirKind::UnicodePropertyValueNotFound => {
                    ("invalid character class range", text)
                }
                _ => ("invalid escape sequence", text),
            }
        }
        _ => ("invalid escape sequence", original.to_string()),
    }
}

/// The repetition operator at `start` (Go quotes it, lazy `?` included); the span `regex`
/// reports for a missing operand may be empty.
fn repeat_op(p: &str, start: usize, end: usize) -> String {
    if end > start {
        return p.get(start..end).unwrap_or("").to_string();
    }
    let rest = p.get(start..).unwrap_or("");
    let mut len = if rest.starts_with('{') {
        rest.find('}').map_or(rest.len(), |i| i + 1)
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    if rest[len..].starts_with('?') {
        len += 1;
    }
    rest[..len].to_string()
}

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` at the start of `s`: (min, max, byte length).
fn parse_repeat(s: &str) -> Option<(i64, i64, usize)> {
    let b = s.as_bytes();
    let mut i = 1;
    let num = |i: &mut usize| -> Option<i64> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == start {
            return None;
        }
        s[start..*i].parse::<i64>().ok().filter(|&n| n < 100_000_000)
    };
    let min = num(&mut i)?;
    let max = if b.get(i) == Some(&b',') {
        i += 1;
        if b.get(i) == Some(&b'}') { -1 } else { num(&mut i)? }
    } else {
        min
    };
    if b.get(i) != Some(&b'}') {
        return None;
    }
    Some((min, max, i + 1))
}

fn push_escape_tail(p: &str, i: usize, out: &mut String) -> usize {
    // `i` is just after the backslash and the escape letter (`p` or `x`): copy `{…}` or one char.
    if p[i..].starts_with('{') {
        let end = p[i..].find('}').map_or(p.len(), |j| i + j + 1);
        out.push_str(&p[i..end]);
        end
    } else if let Some(c) = p[i..].chars().next() {
        out.push(c);
        i + c.len_utf8()
    } else {
        i
    }
}

fn translate(p: &str) -> Result<String, GoErr> {
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut last_repeat: Option<usize> = None;
    while i < p.len() {
        let Some(c) = p[i..].chars().next() else { break };
        let mut repeat_start = None;
        match c {
            '\\' => {
                let Some(e) = p[i + 1..].chars().next() else {
                    return Err(("trailing backslash at end of expression", String::new()));
                };
                let after = i + 1 + e.len_utf8();
                i = match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                        out.push_str(perl_class(e, false));
                        after
                    }
                    'b' => {
                        out.push_str("(?-u:\\b)");
                        after
                    }
                    'B' => {
                        out.push_str("(?-u:\\B)");
                        after
                    }
                    'Q' => {
                        let end = p[after..].find("\\E").map_or(p.len(), |j| after + j);
                        out.push_str(&regex::escape(&p[after..end]));
                        (end + 2).min(p.len())
                    }
                    'p' | 'P' | 'x' => {
                        out.push('\\');
                        out.push(e);
                        push_escape_tail(p, after, &mut out)
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                        after
                    }
                };
            }
            '[' => i = translate_class(p, i, &mut out)?,
            '{' => match parse_repeat(&p[i..]) {
                Some((min, max, len)) => {
                    let mut end = i + len;
                    if p[end..].starts_with('?') {
                        end += 1;
                    }
                    if min > 1000 || max > 1000 || (max >= 0 && min > max) {
                        return Err(("invalid repeat count", p[i..i + len].to_string()));
                    }
                    if let Some(s) = last_repeat {
                        return Err(("invalid nested repetition operator", p[s..end].to_string()));
                    }
                    out.push_str(&p[i..end]);
                    repeat_start = Some(i);
                    i = end;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '*' | '+' | '?' => {
                let mut end = i + 1;
                if p[end..].starts_with('?') {
                    end += 1;
                }
                if let Some(s) = last_repeat {
                    return Err(("invalid nested repetition operator", p[s..end].to_string()));
                }
                out.push_str(&p[i..end]);
                repeat_start = Some(i);
                i = end;
            }
            '(' => {
                if p[i..].starts_with("(?<") && !p[i..].starts_with("(?<=") && !p[i..].starts_with("(?<!") {
                    return Err(("invalid or unsupported Perl syntax", "(?<".to_string()));
                }
                out.push('(');
                i += 1;
            }
            c => {
                out.push(c);
                i += c.len_utf8();
            }
        }
        last_repeat = repeat_start;
    }
    Ok(out)
}

fn perl_class(e: char, inside: bool) -> &'static str {
    match (e, inside) {
        ('d', false) => "[0-9]",
        ('d', true) => "0-9",
        ('D', _) => "[^0-9]",
        ('w', false) => "[0-9A-Za-z_]",
        ('w', true) => "0-9A-Za-z_",
        ('W', _) => "[^0-9A-Za-z_]",
        ('s', false) => "[\\t\\n\\f\\r ]",
        ('s', true) => "\\t\\n\\f\\r ",
        _ => "[^\\t\\n\\f\\r ]",
    }
}

fn translate_class(p: &str, start: usize, out: &mut String) -> Result<usize, GoErr> {
    let mut i = start + 1;
    out.push('[');
    if p[i..].starts_with('^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(c) = p[i..].chars().next() else {
            return Err(("missing closing ]", p[start..].to_string()));
        };
        match c {
            ']' if !first => {
                out.push(']');
                return Ok(i + 1);
            }
            '[' if p[i..].starts_with("[:") => match p[i..].find(":]") {
                Some(j) => {
                    out.push_str(&p[i..i + j + 2]);
                    i += j + 2;
                }
                None => {
                    out.push_str("\\[");
                    i += 1;
                }
            },
            '\\' => {
                let Some(e) = p[i + 1..].chars().next() else {
                    return Err(("missing closing ]", p[start..].to_string()));
                };
                let after = i + 1 + e.len_utf8();
                i = match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                        out.push_str(perl_class(e, true));
                        after
                    }
                    'p' | 'P' | 'x' => {
                        out.push('\\');
                        out.push(e);
                        push_escape_tail(p, after, out)
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                        after
                    }
                };
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if p[i + 1..].starts_with('-') => {
                out.push_str("\\-");
                i += 1;
            }
            c => {
                out.push(c);
                i += c.len_utf8();
            }
        }
        first = false;
    }
}

/// Go's `extract` for `$name` / `${name}` in a replacement template.
fn extract(s: &str) -> Option<(&str, i64, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c == '_' || super::gostr::is_letter(c) || super::gostr::is_digit(c)))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let mut rest_at = end;
    if brace {
        if !body[end..].starts_with('}') {
            return None;
        }
        rest_at += 1;
    }
    let mut num: i64 = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || num >= 100_000_000 {
            num = -1;
            break;
        }
        num = num * 10 + i64::from(b - b'0');
    }
    if name.starts_with('0') && name.len() > 1 {
        num = -1;
    }
    Some((name, num, &body[rest_at..]))
}

fn expand(re: &Regex, out: &mut String, template: &str, src: &str, caps: &regex::Captures) {
    let mut t = template;
    while let Some(i) = t.find('$') {
        out.push_str(&t[..i]);
        t = &t[i + 1..];
        if let Some(rest) = t.strip_prefix('$') {
            out.push('$');
            t = rest;
            continue;
        }
        let Some((name, num, rest)) = extract(t) else {
            out.push('$');
            continue;
        };
        t = rest;
        let group = if num >= 0 {
            caps.get(num as usize)
        } else {
            re.capture_names().position(|n| n == Some(name)).and_then(|i| caps.get(i))
        };
        if let Some(m) = group {
            out.push_str(&src[m.start()..m.end()]);
        }
    }
    out.push_str(t);
}

/// Go's `(*Regexp).ReplaceAllString`.
pub(super) fn replace_all(re: &Regex, src: &str, repl: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= src.len() {
        let Some(caps) = re.captures_at(src, search) else { break };
        let Some(m) = caps.get(0) else { break };
        out.push_str(&src[last_end..m.start()]);
        if m.end() > last_end || m.start() == 0 {
            expand(re, &mut out, repl, src, &caps);
        }
        last_end = m.end();
        let width = src[search..].chars().next().map_or(0, char::len_utf8);
        if search + width > m.end() {
            search += width;
        } else if search + 1 > m.end() {
            search += 1;
        } else {
            search = m.end();
        }
    }
    out.push_str(&src[last_end.min(src.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &str) -> String {
        compile(p).err().unwrap_or_default()
    }

    fn rep(p: &str, r: &str, s: &str) -> String {
        compile(p).map(|re| replace_all(&re, s, r)).unwrap_or_else(|e| e)
    }

    #[test]
    fn go_semantics() {
        assert_eq!(rep("a*", "X", "baaac"), "XbXcX");
        assert_eq!(rep("(\\w+):(\\d+)", "$2-${1}x$3$", "host:9090"), "9090-hostx$");
        assert_eq!(rep("\\d", "D", "1٣"), "D٣");
        assert_eq!(rep("", "-", "abc"), "-a-b-c-");
        assert_eq!(rep("b*", "-", "abc"), "-a-c-");
        assert_eq!(rep("x", "$", "axb"), "a$b");
        assert_eq!(rep("(x)", "${1", "axb"), "a${1b");
        assert_eq!(rep("(?P<n>x)", "$n$1$2$$", "axb"), "axx$b");
        assert_eq!(rep("^(\\S+)\\b.*", "[$1]", "héllo wörld"), "[héllo]");
        assert_eq!(rep("a{x}", "-", "a{x}"), "-");
        assert!(!compile("\\w").is_ok_and(|re| re.is_match("é")));
        assert!(!compile("\\s").is_ok_and(|re| re.is_match("\u{a0}")));
    }

    #[test]
    fn go_error_texts() {
        assert_eq!(err("("), "error parsing regexp: missing closing ): `(`");
        assert_eq!(err("a)"), "error parsing regexp: unexpected ): `a)`");
        assert_eq!(err("a**"), "error parsing regexp: invalid nested repetition operator: `**`");
        assert_eq!(err("[z-a]"), "error parsing regexp: invalid character class range: `z-a`");
        assert_eq!(err("\\q"), "error parsing regexp: invalid escape sequence: `\\q`");
        assert_eq!(err("a{2,1}"), "error parsing regexp: invalid repeat count: `{2,1}`");
        assert_eq!(err("x\\"), "error parsing regexp: trailing backslash at end of expression: ``");
        assert_eq!(err("(?<n>x)"), "error parsing regexp: invalid or unsupported Perl syntax: `(?<`");
        assert_eq!(err("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(err("*"), "error parsing regexp: missing argument to repetition operator: `*`");
        assert_eq!(err("\\pX"), "error parsing regexp: invalid character class range: `\\pX`");
        assert_eq!(err("(?z)"), "error parsing regexp: invalid or unsupported Perl syntax: `(?z`");
        assert_eq!(err("a{1001}"), "error parsing regexp: invalid repeat count: `{1001}`");
    }
}

//! The pieces of Go's `strconv` and `unicode` that templates see: quoting (`%q`, error
//! messages), unquoting string and character constants, Go's number syntax for literals and
//! `strconv.ParseFloat`, and float formatting digit for digit (`%e`, `%f`, `%g`, `%v`).

use std::sync::LazyLock;

/// `unicode.IsPrint` beyond ASCII: letters, marks, numbers, punctuation and symbols.
static PRINT: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").ok());
static LETTER: LazyLock<Option<regex::Regex>> = LazyLock::new(|| regex::Regex::new(r"^\p{L}$").ok());
static DIGIT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| regex::Regex::new(r"^\p{Nd}$").ok());

fn in_class(re: &LazyLock<Option<regex::Regex>>, c: char) -> bool {
    let mut buf = [0u8; 4];
    re.as_ref().is_some_and(|re| re.is_match(c.encode_utf8(&mut buf)))
}

/// `strconv.IsPrint`.
pub(super) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    in_class(&PRINT, c)
}

/// `unicode.IsLetter`.
pub(super) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_class(&LETTER, c)
}

/// `unicode.IsDigit`.
pub(super) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_class(&DIGIT, c)
}

/// `unicode.IsSpace`.
pub(super) fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}')
        || (!c.is_ascii() && c.is_whitespace())
}

/// `unicode.ToUpper`: the simple (one rune to one rune) mapping, so `ß` stays `ß`.
pub(super) fn to_upper(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    match c as u32 {
        // Greek with ypogegrammeni: the simple mapping is the prosgegrammeni form.
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => char::from_u32(c as u32 + 8).unwrap_or(c),
        0x1FB3 => '\u{1FBC}',
        0x1FC3 => '\u{1FCC}',
        0x1FF3 => '\u{1FFC}',
        _ => single(c.to_uppercase()).unwrap_or(c),
    }
}

/// `unicode.ToLower` (simple mapping: `İ` becomes `i`).
pub(super) fn to_lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{130}' {
        return 'i';
    }
    single(c.to_lowercase()).unwrap_or(c)
}

/// `unicode.ToTitle`: as `ToUpper` except for the digraphs and Georgian letters, whose title
/// case differs from their upper case.
pub(super) fn to_title(c: char) -> char {
    match c as u32 {
        0x1C4..=0x1C6 => '\u{1C5}',
        0x1C7..=0x1C9 => '\u{1C8}',
        0x1CA..=0x1CC => '\u{1CB}',
        0x1F1..=0x1F3 => '\u{1F2}',
        0x10D0..=0x10FA | 0x10FD..=0x10FF => c,
        _ => to_upper(c),
    }
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let c = it.next()?;
    if it.next().is_some() { None } else { Some(c) }
}

const LOWERHEX: &[u8; 16] = b"0123456789abcdef";

fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ => {
            let r = c as u32;
            if r < 0x20 || r == 0x7f {
                out.push_str("\\x");
                out.push(LOWERHEX[(r >> 4) as usize] as char);
                out.push(LOWERHEX[(r & 0xf) as usize] as char);
            } else if r < 0x10000 {
                out.push_str(&format!("\\u{r:04x}"));
            } else {
                out.push_str(&format!("\\U{r:08x}"));
            }
        }
    }
}

/// `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    quote_with(s, false)
}

/// `strconv.QuoteToASCII`.
pub(super) fn quote_ascii(s: &str) -> String {
    quote_with(s, true)
}

fn quote_with(s: &str, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune` / `QuoteRuneToASCII`; an invalid code point quotes as U+FFFD.
pub(super) fn quote_rune(r: u32, ascii_only: bool) -> String {
    let c = char::from_u32(r).unwrap_or('\u{FFFD}');
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// `strconv.CanBackquote`.
pub(super) fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| {
        if c.len_utf8() > 1 {
            return c != '\u{feff}';
        }
        !((c < ' ' && c != '\t') || c == '`' || c == '\u{7f}')
    })
}

/// Why a string or character constant does not unquote.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum UnquoteError {
    /// Go's `strconv.ErrSyntax`: "invalid syntax".
    Syntax,
    /// Valid Go, but the value is not UTF-8 (a `\x` or octal escape of a lone byte), which a
    /// Rust string cannot hold.
    NotUtf8,
}

/// `strconv.UnquoteChar`: one (possibly escaped) character at the start of `s`, as a code
/// point or a lone byte (`Err` when not `Some`), and the rest of `s`.
fn unquote_char(s: &str, quote: char) -> Result<(UnquotedUnit, &str), UnquoteError> {
    let mut chars = s.chars();
    let c = chars.next().ok_or(UnquoteError::Syntax)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(UnquoteError::Syntax);
    }
    if c != '\\' {
        return Ok((UnquotedUnit::Char(c), chars.as_str()));
    }
    let rest = chars.as_str();
    let mut chars = rest.chars();
    let e = chars.next().ok_or(UnquoteError::Syntax)?;
    let after = chars.as_str();
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if e != quote {
                return Err(UnquoteError::Syntax);
            }
            Some(e)
        }
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((UnquotedUnit::Char(c), after));
    }
    match e {
        'x' | 'u' | 'U' => {
            let n = match e {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            if after.len() < n || !after.is_char_boundary(n) {
                return Err(UnquoteError::Syntax);
            }
            let v = u32::from_str_radix(&after[..n], 16).map_err(|_| UnquoteError::Syntax)?;
            if after[..n].starts_with(['+', '-']) {
                return Err(UnquoteError::Syntax);
            }
            if e == 'x' {
                return Ok((UnquotedUnit::Byte(v as u8), &after[n..]));
            }
            let c = char::from_u32(v).ok_or(UnquoteError::Syntax)?;
            Ok((UnquotedUnit::Char(c), &after[n..]))
        }
        '0'..='7' => {
            let b = rest.as_bytes();
            if b.len() < 3 || !b[..3].iter().all(|b| (b'0'..=b'7').contains(b)) {
                return Err(UnquoteError::Syntax);
            }
            let v = b[..3].iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            if v > 255 {
                return Err(UnquoteError::Syntax);
            }
            Ok((UnquotedUnit::Byte(v as u8), &rest[3..]))
        }
        _ => Err(UnquoteError::Syntax),
    }
}

enum UnquotedUnit {
    Char(char),
    Byte(u8),
}

/// `strconv.Unquote` for the two string forms a template has: `"..."` and `` `...` ``.
pub(super) fn unquote(s: &str) -> Result<String, UnquoteError> {
    if s.len() < 2 {
        return Err(UnquoteError::Syntax);
    }
    let q = s.as_bytes()[0];
    if q != s.as_bytes()[s.len() - 1] {
        return Err(UnquoteError::Syntax);
    }
    let inner = &s[1..s.len() - 1];
    match q {
        b'`' => {
            if inner.contains('`') {
                return Err(UnquoteError::Syntax);
            }
            Ok(inner.replace('\r', ""))
        }
        b'"' => {
            if inner.contains('\n') {
                return Err(UnquoteError::Syntax);
            }
            let mut bytes = Vec::with_capacity(inner.len());
            let mut rest = inner;
            while !rest.is_empty() {
                let (unit, r) = unquote_char(rest, '"')?;
                match unit {
                    UnquotedUnit::Char(c) => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    UnquotedUnit::Byte(b) => bytes.push(b),
                }
                rest = r;
            }
            String::from_utf8(bytes).map_err(|_| UnquoteError::NotUtf8)
        }
        _ => Err(UnquoteError::Syntax),
    }
}

/// A character constant `'x'` as its code point. `Err(None)` is Go's "invalid syntax",
/// `Err(Some(()))` a constant with more than one character ("malformed character constant").
pub(super) fn unquote_char_constant(text: &str) -> Result<u32, Option<()>> {
    let body = text.strip_prefix('\'').ok_or(None)?;
    let (unit, tail) = unquote_char(body, '\'').map_err(|_| None)?;
    if tail != "'" {
        return Err(Some(()));
    }
    Ok(match unit {
        UnquotedUnit::Char(c) => c as u32,
        UnquotedUnit::Byte(b) => b as u32,
    })
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// `strconv.ParseUint(s, 0, 64)`; `None` on any error.
pub(super) fn parse_uint0(s: &str) -> Option<u64> {
    if s.is_empty() || s.starts_with(['+', '-']) {
        return None;
    }
    let (digits, radix) = base_prefix(s);
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

fn base_prefix(s: &str) -> (&str, u32) {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'0' {
        match b[1].to_ascii_lowercase() {
            b'x' => return (&s[2..], 16),
            b'o' => return (&s[2..], 8),
            b'b' => return (&s[2..], 2),
            _ => return (&s[1..], 8),
        }
    }
    (s, 10)
}

/// `strconv.ParseInt(s, 0, 64)`; `None` on any error.
pub(super) fn parse_int0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint0(body)?;
    if neg {
        if u > (i64::MAX as u64) + 1 { None } else { Some((u as i64).wrapping_neg()) }
    } else if u > i64::MAX as u64 {
        None
    } else {
        Some(u as i64)
    }
}

/// Why `strconv.ParseFloat` failed.
#[derive(Debug, PartialEq)]
pub(super) enum FloatError {
    Syntax,
    /// Out of range; Go returns ±Inf with the error.
    Range,
}

/// `strconv.ParseFloat(s, 64)`.
pub(super) fn parse_float(s: &str) -> Result<f64, FloatError> {
    if let Some(v) = special_float(s) {
        return Ok(v);
    }
    if s.contains('_') && !underscore_ok(s) {
        return Err(FloatError::Syntax);
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'+') => (false, &clean[1..]),
        Some(b'-') => (true, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let v = if body.len() > 2 && body.as_bytes()[0] == b'0' && body.as_bytes()[1].eq_ignore_ascii_case(&b'x')
    {
        parse_hex_float(&body[2..])?
    } else {
        if !decimal_syntax_ok(body) {
            return Err(FloatError::Syntax);
        }
        body.parse::<f64>().map_err(|_| FloatError::Syntax)?
    };
    if v.is_infinite() {
        return Err(FloatError::Range);
    }
    Ok(if neg { -v } else { v })
}

fn special_float(s: &str) -> Option<f64> {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (0.0, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if sign < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if sign == 0.0 && lower == "nan" {
        return Some(f64::NAN);
    }
    None
}

/// Digits with an optional point and an optional exponent, as Go's `readFloat` accepts.
fn decimal_syntax_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// A hex float's mantissa and mandatory `p` exponent (after the `0x`).
fn parse_hex_float(s: &str) -> Result<f64, FloatError> {
    let (mant, exp) = s.split_once(['p', 'P']).ok_or(FloatError::Syntax)?;
    let exp: i32 = exp.parse().map_err(|_| FloatError::Syntax)?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(FloatError::Syntax);
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + c.to_digit(16).ok_or(FloatError::Syntax)? as f64;
    }
    let shift = exp - 4 * frac.len() as i32;
    Ok(v * 2f64.powi(shift))
}

/// A float's exact decimal digits (no leading or trailing zeros) and decimal point position:
/// the value is `0.d1d2d3… × 10^dp`. Zero has no digits.
fn exact_digits(v: f64) -> (Vec<u8>, i32) {
    digits_from_sci(&format!("{:.800e}", v.abs()))
}

/// The shortest digits that read back as `v` (Go's and Rust's shortest formatting agree).
fn shortest_digits(v: f64) -> (Vec<u8>, i32) {
    digits_from_sci(&format!("{:e}", v.abs()))
}

fn digits_from_sci(s: &str) -> (Vec<u8>, i32) {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return (d, 0);
    }
    (d, exp + 1)
}

/// Rounds to `nd` digits, halfway cases to even, as Go's `decimal.Round`.
fn round_digits(d: &mut Vec<u8>, dp: &mut i32, nd: i32) {
    if nd < 0 || nd as usize >= d.len() {
        return;
    }
    let nd = nd as usize;
    let up = if d[nd] == b'5' && nd + 1 == d.len() {
        nd > 0 && (d[nd - 1] - b'0') % 2 == 1
    } else {
        d[nd] >= b'5'
    };
    if up {
        let mut i = nd;
        loop {
            if i == 0 {
                d.clear();
                d.push(b'1');
                *dp += 1;
                return;
            }
            i -= 1;
            if d[i] < b'9' {
                d[i] += 1;
                d.truncate(i + 1);
                return;
            }
        }
    }
    d.truncate(nd);
    while d.last() == Some(&b'0') {
        d.pop();
    }
}

/// `strconv.FormatFloat(v, fmt, prec, 64)` for the formats `e E f F g G`.
pub(super) fn format_float(v: f64, fmt: u8, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = v.is_sign_negative();
    let shortest = prec < 0;
    let (mut d, mut dp) = if shortest { shortest_digits(v) } else { exact_digits(v) };
    let mut prec = prec;
    let lower = fmt.to_ascii_lowercase();
    if shortest {
        prec = match lower {
            b'e' => (d.len() as i32 - 1).max(0),
            b'f' => (d.len() as i32 - dp).max(0),
            _ => d.len() as i32,
        };
    } else {
        match lower {
            b'e' => round_digits(&mut d, &mut dp, prec + 1),
            b'f' => {
                let nd = dp + prec;
                round_digits(&mut d, &mut dp, nd)
            }
            _ => {
                if prec == 0 {
                    prec = 1;
                }
                round_digits(&mut d, &mut dp, prec)
            }
        }
    }
    let nd = d.len() as i32;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    match lower {
        b'e' => fmt_e(&mut out, &d, dp, prec, fmt),
        b'f' => fmt_f(&mut out, &d, dp, prec),
        _ => {
            let mut eprec = prec;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                fmt_e(&mut out, &d, dp, prec - 1, if fmt == b'G' { b'E' } else { b'e' });
            } else {
                if prec > dp {
                    prec = nd;
                }
                fmt_f(&mut out, &d, dp, (prec - dp).max(0));
            }
        }
    }
    out
}

fn fmt_e(out: &mut String, d: &[u8], dp: i32, prec: i32, fmt: u8) {
    out.push(d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as usize {
            out.push(d.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(fmt as char);
    let mut exp = if d.is_empty() { 0 } else { dp - 1 };
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

fn fmt_f(out: &mut String, d: &[u8], dp: i32, prec: i32) {
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map_or('0', |&c| c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            let j = dp + i - 1;
            out.push(if j >= 0 { d.get(j as usize).map_or('0', |&c| c as char) } else { '0' });
        }
    }
}

/// `%v` of a float64: `strconv.FormatFloat(v, 'g', -1, 64)`.
pub(super) fn format_float_v(v: f64) -> String {
    format_float(v, b'g', -1)
}

/// 2^63: `float64(math.MaxInt64)`.
pub(super) const TWO_63: f64 = (1u64 << 63) as f64;

/// Go's `int64(f)` on amd64: out-of-range and NaN give the minimum int64.
pub(super) fn f64_to_i64(v: f64) -> i64 {
    if v.is_nan() || !(-TWO_63..TWO_63).contains(&v) { i64::MIN } else { v as i64 }
}

/// `url.QueryEscape`.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `%#U`-style rune description used in lexer errors: `U+0021 '!'`, or `U+00A0` when the rune
/// does not print.
pub(super) fn rune_desc(c: char) -> String {
    if is_print(c) { format!("U+{:04X} '{}'", c as u32, c) } else { format!("U+{:04X}", c as u32) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_formats_match_go() {
        assert_eq!(format_float(0.125, b'f', 2), "0.12");
        assert_eq!(format_float(0.25, b'f', 1), "0.2");
        assert_eq!(format_float(0.5, b'f', 0), "0");
        assert_eq!(format_float(1234.5, b'g', 3), "1.23e+03");
        assert_eq!(format_float(1e-7, b'g', -1), "1e-07");
        assert_eq!(format_float(1_234_567.0 / 1e6, b'g', 4), "1.235");
        assert_eq!(format_float(0.0, b'e', 6), "0.000000e+00");
        assert_eq!(format_float(1e21, b'G', -1), "1E+21");
        assert_eq!(format_float(12345.0, b'e', 0), "1e+04");
        assert_eq!(format_float(100000.0, b'g', -1), "100000");
        assert_eq!(format_float(1e6, b'g', 4), "1e+06");
        assert_eq!(format_float(999.95, b'g', 4), "1000");
        assert_eq!(format_float(-0.0, b'g', -1), "-0");
        assert_eq!(format_float(3720.01, b'f', 2), "3720.01");
        assert_eq!(format_float(123456789.0, b'g', -1), "1.23456789e+08");
        for v in [0.1, 42.0, 1e21, 1e-5, 123456.0, 1234567.0, 5e-324, f64::MAX, -2.5e-8] {
            assert_eq!(format_float_v(v), crate::exposition::format_go_float(v), "{v}");
        }
    }

    #[test]
    fn parses_go_numbers() {
        assert_eq!(parse_int0("0x10"), Some(16));
        assert_eq!(parse_int0("017"), Some(15));
        assert_eq!(parse_int0("0o17"), Some(15));
        assert_eq!(parse_int0("1_000"), Some(1000));
        assert_eq!(parse_int0("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int0("1__0"), None);
        assert_eq!(parse_uint0("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_float("1e400"), Err(FloatError::Range));
        assert_eq!(parse_float("one"), Err(FloatError::Syntax));
        assert_eq!(parse_float(".12"), Ok(0.12));
        assert_eq!(parse_float("0x1p-2"), Ok(0.25));
        assert!(parse_float("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_float("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_float("+nan"), Err(FloatError::Syntax));
        assert_eq!(parse_float(" 1"), Err(FloatError::Syntax));
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("q\""), "\"q\\\"\"");
        assert_eq!(quote("\u{1}\u{a0}é"), "\"\\x01\\u00a0é\"");
        assert_eq!(quote_ascii("é"), "\"\\u00e9\"");
        assert_eq!(quote_rune(0x110000, false), "'\u{FFFD}'");
        assert_eq!(unquote("\"a\\tb\\u00e9\""), Ok("a\tbé".into()));
        assert_eq!(unquote("\"\\xff\""), Err(UnquoteError::NotUtf8));
        assert_eq!(unquote("\"\\'\""), Err(UnquoteError::Syntax));
        assert_eq!(unquote_char_constant("'ab'"), Err(Some(())));
        assert_eq!(unquote_char_constant("'\\n'"), Ok(10));
    }

    #[test]
    fn simple_case_mappings() {
        let up: String = "straße ǆ ᾳ".chars().map(to_upper).collect();
        assert_eq!(up, "STRAßE Ǆ ᾼ");
        let low: String = "İSTANBUL ΣΑΣ".chars().map(to_lower).collect();
        assert_eq!(low, "istanbul σασ");
        assert_eq!(to_title('ǆ'), 'ǅ');
    }
}

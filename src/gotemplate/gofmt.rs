//! Go's `fmt` for template values: `printf`, `print`, `println` and the printing of an
//! action's result, with Go's verbs, flags, widths, precisions, argument indexes and error
//! markers (`%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA …)`).
//!
//! Not reproduced (an execution error names them): anything that prints a memory address
//! (`%v` of a query result's elements, `%p`), `%#v` of maps and structs, `%#` on floats and
//! the float verbs `%b`, `%x`, `%X`.

use super::gostr::{can_backquote, format_float, quote, quote_ascii, quote_rune};
use super::gotime;
use super::value::{Sample, Value};
use std::rc::Rc;

/// The printing hit a case this port does not reproduce.
pub(super) type Unsupported = String;

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: usize,
    wid_present: bool,
    prec: usize,
    prec_present: bool,
}

struct Printer {
    buf: String,
    f: Flags,
    erroring: bool,
    unsupported: Option<Unsupported>,
}

const LDIGITS: &[u8] = b"0123456789abcdefx";
const UDIGITS: &[u8] = b"0123456789ABCDEFX";

impl Printer {
    fn new() -> Self {
        Printer { buf: String::new(), f: Flags::default(), erroring: false, unsupported: None }
    }

    fn unsupported(&mut self, what: &str) {
        if self.unsupported.is_none() {
            self.unsupported = Some(what.to_string());
        }
    }

    fn finish(self) -> Result<String, Unsupported> {
        match self.unsupported {
            Some(u) => Err(u),
            None => Ok(self.buf),
        }
    }

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.f.wid.saturating_sub(s.chars().count());
        if !self.f.minus {
            self.write_padding(width);
            self.buf.push_str(s);
        } else {
            self.buf.push_str(s);
            self.write_padding(width);
        }
    }

    fn truncate<'a>(&self, s: &'a str) -> &'a str {
        if self.f.prec_present
            && let Some((i, _)) = s.char_indices().nth(self.f.prec)
        {
            return &s[..i];
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s).to_string();
        self.pad(&s);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        let q = if self.f.sharp && can_backquote(s) {
            format!("`{s}`")
        } else if self.f.plus {
            quote_ascii(s)
        } else {
            quote(s)
        };
        self.pad(&q);
    }

    fn fmt_sx(&mut self, s: &str, digits: &[u8]) {
        let b = s.as_bytes();
        let mut length = b.len();
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.f.wid);
            }
            return;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding(self.f.wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(digits[16] as char);
        }
        for (i, &c) in b[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(digits[16] as char);
                }
            }
            self.buf.push(digits[(c >> 4) as usize] as char);
            self.buf.push(digits[(c & 0xf) as usize] as char);
        }
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding(self.f.wid - width);
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, arg: &Value) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LDIGITS),
            'X' => self.fmt_sx(s, UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_bool(&mut self, b: bool, verb: char, arg: &Value) {
        match verb {
            't' | 'v' => self.fmt_s_plain(if b { "true" } else { "false" }),
            _ => self.bad_verb(verb, arg),
        }
    }

    /// `padString` without precision truncation.
    fn fmt_s_plain(&mut self, s: &str) {
        self.pad(s);
    }

    fn fmt_integer(&mut self, u: u64, signed: bool, verb: char, arg: &Value) {
        match verb {
            'v' if self.f.sharp_v && !signed => self.fmt_0x64(u, true),
            'v' | 'd' => self.fmt_int(u, 10, signed, verb, LDIGITS),
            'b' => self.fmt_int(u, 2, signed, verb, LDIGITS),
            'o' | 'O' => self.fmt_int(u, 8, signed, verb, LDIGITS),
            'x' => self.fmt_int(u, 16, signed, verb, LDIGITS),
            'X' => self.fmt_int(u, 16, signed, verb, UDIGITS),
            'c' => {
                let c = u32::try_from(u).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
                let s = c.to_string();
                self.pad(&s);
            }
            'q' => {
                let r = u32::try_from(u).unwrap_or(0xFFFD);
                let s = quote_rune(r, self.f.plus);
                self.pad(&s);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_0x64(&mut self, u: u64, leading0x: bool) {
        let sharp = self.f.sharp;
        self.f.sharp = leading0x;
        self.fmt_int(u, 16, false, 'v', LDIGITS);
        self.f.sharp = sharp;
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut s = format!("U+{u:04X}");
        if self.f.prec_present && self.f.prec > 4 {
            s = format!("U+{u:0width$X}", width = self.f.prec);
        }
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && super::gostr::is_print(c)
        {
            s.push_str(&format!(" '{c}'"));
        }
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = zero;
    }

    fn fmt_int(&mut self, u: u64, base: u64, signed: bool, verb: char, digits: &[u8]) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative { (u as i64).unsigned_abs() } else { u };
        let mut prec = 0usize;
        if self.f.prec_present {
            prec = self.f.prec;
            if prec == 0 && u == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.f.wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut out: Vec<u8> = Vec::new();
        while u >= base {
            out.push(digits[(u % base) as usize]);
            u /= base;
        }
        out.push(digits[u as usize]);
        while out.len() < prec {
            out.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => out.extend_from_slice(b"b0"),
                8 if out.last() != Some(&b'0') => out.push(b'0'),
                16 => {
                    out.push(digits[16]);
                    out.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            out.extend_from_slice(b"o0");
        }
        if negative {
            out.push(b'-');
        } else if self.f.plus {
            out.push(b'+');
        } else if self.f.space {
            out.push(b' ');
        }
        out.reverse();
        let s = String::from_utf8(out).unwrap_or_default();
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = zero;
    }

    fn fmt_float(&mut self, v: f64, verb: char, arg: &Value) {
        let (fmt, mut prec) = match verb {
            'v' => (b'g', -1),
            'g' | 'G' => (verb as u8, -1),
            'e' | 'E' | 'f' | 'F' => (verb as u8, 6),
            'b' | 'x' | 'X' => {
                self.unsupported(&format!("%{verb} of a float"));
                return;
            }
            _ => return self.bad_verb(verb, arg),
        };
        if self.f.prec_present {
            prec = self.f.prec as i32;
        }
        if self.f.sharp {
            self.unsupported("the # flag on a float");
            return;
        }
        let fmt = if fmt == b'F' { b'f' } else { fmt };
        let formatted = format_float(v, fmt, prec);
        let mut num = if formatted.starts_with(['-', '+']) { formatted } else { format!("+{formatted}") };
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(..1, " ");
        }
        let second = num.as_bytes().get(1).copied();
        if second == Some(b'I') || second == Some(b'N') {
            let zero = self.f.zero;
            self.f.zero = false;
            if second == Some(b'N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = zero;
            return;
        }
        if self.f.plus || !num.starts_with('+') {
            if self.f.zero && self.f.wid_present && self.f.wid > num.len() {
                let (sign, rest) = num.split_at(1);
                self.buf.push_str(sign);
                self.write_padding(self.f.wid - num.len());
                self.buf.push_str(rest);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }

    /// `%!verb(type=value)`.
    fn bad_verb(&mut self, verb: char, arg: &Value) {
        self.erroring = true;
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match arg {
            Value::Invalid | Value::NilIface => self.buf.push_str("<nil>"),
            _ => {
                self.buf.push_str(arg.type_name());
                self.buf.push('=');
                self.print_arg(arg, 'v');
            }
        }
        self.buf.push(')');
        self.erroring = false;
    }

    /// Go's `handleMethods`: the `String()` of the types that have one.
    fn handle_methods(&mut self, v: &Value, verb: char) -> bool {
        if self.erroring {
            return false;
        }
        let s = match v {
            Value::Time { t, .. } => gotime::string(*t),
            Value::Month(m) => match usize::try_from(*m - 1).ok().and_then(|i| gotime::MONTHS.get(i)) {
                Some(name) => (*name).to_string(),
                None => format!("%!Month({m})"),
            },
            Value::Weekday(d) => match usize::try_from(*d).ok().and_then(|i| gotime::DAYS.get(i)) {
                Some(name) => (*name).to_string(),
                None => format!("%!Weekday({d})"),
            },
            _ => return false,
        };
        if self.f.sharp_v {
            self.unsupported("%#v of a time value");
            return true;
        }
        match verb {
            'v' | 's' | 'x' | 'X' | 'q' => {
                self.fmt_string(&s, verb, &Value::str(&s));
                true
            }
            _ => false,
        }
    }

    fn print_arg(&mut self, arg: &Value, verb: char) {
        if matches!(arg, Value::Invalid | Value::NilIface) {
            match verb {
                'T' | 'v' => self.fmt_s_plain("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        match verb {
            'T' => {
                let t = arg.type_name();
                return self.fmt_s(t);
            }
            'p' => return self.fmt_pointer(arg, 'p'),
            _ => {}
        }
        match arg {
            Value::Bool(b) => self.fmt_bool(*b, verb, arg),
            Value::Float(f) => self.fmt_float(*f, verb, arg),
            Value::Int(i) | Value::Int64(i) => self.fmt_integer(*i as u64, true, verb, arg),
            Value::Uint8(u) => self.fmt_integer(u64::from(*u), false, verb, arg),
            Value::Str(s) => self.fmt_string(s, verb, arg),
            _ => {
                if !self.handle_methods(arg, verb) {
                    self.print_value(arg, verb, 0);
                }
            }
        }
    }

    fn fmt_pointer(&mut self, v: &Value, verb: char) {
        let nil = matches!(v, Value::Sample(None));
        let pointer_like = matches!(
            v,
            Value::Sample(_)
                | Value::Time { ptr: true, .. }
                | Value::Query(_)
                | Value::StrMap(_)
                | Value::IfaceMap(_)
        );
        if !pointer_like {
            return self.bad_verb(verb, v);
        }
        match verb {
            'v' if nil => self.fmt_s_plain("<nil>"),
            'p' if nil => self.fmt_0x64(0, !self.f.sharp),
            'b' | 'o' | 'd' | 'x' | 'X' if nil => self.fmt_integer(0, false, verb, v),
            'v' | 'p' | 'b' | 'o' | 'd' | 'x' | 'X' => self.unsupported("printing a memory address"),
            _ => self.bad_verb(verb, v),
        }
    }

    fn print_value(&mut self, v: &Value, verb: char, depth: usize) {
        if depth > 0 && v.is_valid() && self.handle_methods(v, verb) {
            return;
        }
        match v {
            Value::Invalid => {
                if depth == 0 {
                    self.buf.push_str("<invalid reflect.Value>");
                } else if verb == 'v' {
                    self.fmt_s_plain("<nil>");
                } else {
                    self.bad_verb(verb, v);
                }
            }
            Value::NilIface => self.fmt_s("<nil>"),
            Value::Bool(b) => self.fmt_bool(*b, verb, v),
            Value::Int(i) | Value::Int64(i) | Value::Month(i) | Value::Weekday(i) => {
                self.fmt_integer(*i as u64, true, verb, v)
            }
            Value::Uint8(u) => self.fmt_integer(u64::from(*u), false, verb, v),
            Value::Float(f) => self.fmt_float(*f, verb, v),
            Value::Str(s) | Value::Html(s) => {
                let s = s.clone();
                self.fmt_string(&s, verb, v)
            }
            Value::StrMap(m) | Value::Kv(m) => {
                self.print_map(m.iter().map(|(k, v)| (k, Value::str(v))), verb, depth);
            }
            // A nil interface in the map prints as <nil>, as a nil interface anywhere does.
            Value::IfaceMap(m) => self.print_map(
                m.iter().map(|(k, v)| (k, if v.is_valid() { v.clone() } else { Value::NilIface })),
                verb,
                depth,
            ),
            Value::Root(r) => {
                if self.f.sharp_v {
                    return self.unsupported("%#v of a struct");
                }
                let fields: [(&str, Value); 4] = [
                    ("Labels", Value::StrMap(r.labels.clone())),
                    ("ExternalLabels", Value::StrMap(r.external_labels.clone())),
                    ("ExternalURL", Value::Str(r.external_url.clone())),
                    ("Value", Value::Float(r.value)),
                ];
                self.print_struct(&fields, verb, depth);
            }
            Value::Sample(Some(s)) if depth == 0 => {
                self.buf.push('&');
                self.print_sample(s, verb, depth + 1);
            }
            Value::Sample(_) => self.fmt_pointer(v, verb),
            Value::Time { t, ptr, .. } => {
                if *ptr && depth > 0 {
                    return self.fmt_pointer(v, verb);
                }
                if *ptr {
                    self.buf.push('&');
                }
                if verb != 'd' && verb != 'v' {
                    return self.unsupported("this verb on a time value");
                }
                // time.Time's fields: wall (nanoseconds here), ext (seconds since year 1), loc.
                self.buf.push('{');
                self.fmt_integer(u64::from(t.nanos), false, verb, v);
                self.buf.push(' ');
                self.fmt_integer(t.secs.wrapping_add(62_135_596_800) as u64, true, verb, v);
                self.buf.push(' ');
                if verb == 'v' {
                    self.fmt_s_plain("<nil>");
                } else {
                    self.fmt_integer(0, false, verb, v);
                }
                self.buf.push('}');
            }
            Value::StrSlice(items) => self.print_slice(items.iter().map(|i| Value::str(i)), verb, depth),
            Value::Pair(p) => {
                if self.f.sharp_v {
                    return self.unsupported("%#v of a struct");
                }
                let fields = [("Name", Value::str(&p.0)), ("Value", Value::str(&p.1))];
                self.print_struct(&fields, verb, depth);
            }
            Value::Pairs(pairs) => {
                self.print_slice(pairs.iter().map(|p| Value::Pair(Rc::new(p.clone()))), verb, depth)
            }
            Value::AmData(_) | Value::AmAlert(_) | Value::Alerts(_) => {
                self.unsupported("printing an Alertmanager template data struct")
            }
            Value::Query(q) => {
                self.print_slice(q.items().into_iter().map(|s| Value::Sample(Some(s))), verb, depth)
            }
        }
    }

    /// A slice as `%v` prints it: `[a b c]`.
    fn print_slice(&mut self, items: impl Iterator<Item = Value>, verb: char, depth: usize) {
        if self.f.sharp_v {
            return self.unsupported("%#v of a slice");
        }
        self.buf.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.buf.push(' ');
            }
            self.print_value(&item, verb, depth + 1);
        }
        self.buf.push(']');
    }

    /// A map with string keys as `%v` prints it: `map[k:v k:v]`, keys in order.
    fn print_map<'k>(
        &mut self,
        entries: impl Iterator<Item = (&'k String, Value)>,
        verb: char,
        depth: usize,
    ) {
        if self.f.sharp_v {
            return self.unsupported("%#v of a map");
        }
        self.buf.push_str("map[");
        for (i, (k, val)) in entries.enumerate() {
            if i > 0 {
                self.buf.push(' ');
            }
            self.print_value(&Value::str(k), verb, depth + 1);
            self.buf.push(':');
            self.print_value(&val, verb, depth + 1);
        }
        self.buf.push(']');
    }

    fn print_sample(&mut self, s: &Sample, verb: char, depth: usize) {
        if self.f.sharp_v {
            return self.unsupported("%#v of a struct");
        }
        let fields = [("Labels", Value::StrMap(s.labels.clone())), ("Value", Value::Float(s.value))];
        self.print_struct(&fields, verb, depth);
    }

    fn print_struct(&mut self, fields: &[(&str, Value)], verb: char, depth: usize) {
        self.buf.push('{');
        for (i, (name, val)) in fields.iter().enumerate() {
            if i > 0 {
                self.buf.push(' ');
            }
            if self.f.plus_v {
                self.buf.push_str(name);
                self.buf.push(':');
            }
            self.print_value(val, verb, depth + 1);
        }
        self.buf.push('}');
    }
}

fn parsenum(s: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num = 0usize;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if num > 1_000_000 {
            return (0, false, end);
        }
        num = num * 10 + (s[i] - b'0') as usize;
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

/// Go's `argNumber`: an explicit `[n]` argument index at `i`: (argument, position, found, ok).
fn arg_number(
    b: &[u8],
    nargs: usize,
    arg_num: usize,
    i: usize,
    reordered: &mut bool,
) -> (usize, usize, bool, bool) {
    if i >= b.len() || b[i] != b'[' {
        return (arg_num, i, false, true);
    }
    *reordered = true;
    let rest = &b[i..];
    let (index, wid, ok) = if rest.len() < 3 {
        (0usize, 1usize, false)
    } else {
        let mut found = None;
        for (j, &c) in rest.iter().enumerate().skip(1) {
            if c == b']' {
                let (width, ok, newi) = parsenum(rest, 1, j);
                found = Some(if !ok || newi != j {
                    (0, j + 1, false)
                } else {
                    (width.wrapping_sub(1), j + 1, true)
                });
                break;
            }
        }
        found.unwrap_or((0, 1, false))
    };
    if ok && index < nargs {
        return (index, i + wid, true, true);
    }
    (arg_num, i + wid, ok, false)
}

fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    if arg_num >= args.len() {
        return (0, false, arg_num);
    }
    let (num, ok) = match &args[arg_num] {
        Value::Int(i) | Value::Int64(i) | Value::Month(i) | Value::Weekday(i) => (*i, true),
        Value::Uint8(u) => (i64::from(*u), true),
        _ => (0, false),
    };
    if !(-1_000_000..=1_000_000).contains(&num) {
        return (0, false, arg_num + 1);
    }
    (num, ok, arg_num + 1)
}

/// `fmt.Sprintf`.
pub(super) fn sprintf(format: &str, args: &[Value]) -> Result<String, Unsupported> {
    let mut p = Printer::new();
    let b = format.as_bytes();
    let end = b.len();
    let mut arg_num = 0usize;
    let mut after_index;
    let mut reordered = false;
    let mut i = 0usize;
    'format: while i < end {
        let mut good_arg_num = true;
        let lasti = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        if i > lasti {
            p.buf.push_str(&format[lasti..i]);
        }
        if i >= end {
            break;
        }
        i += 1;
        p.f = Flags::default();
        while i < end {
            let c = b[i];
            match c {
                b'#' => p.f.sharp = true,
                b'0' => p.f.zero = !p.f.minus,
                b'+' => p.f.plus = true,
                b'-' => {
                    p.f.minus = true;
                    p.f.zero = false;
                }
                b' ' => p.f.space = true,
                _ => {
                    if c.is_ascii_lowercase() && arg_num < args.len() {
                        if c == b'v' {
                            p.f.sharp_v = p.f.sharp;
                            p.f.sharp = false;
                            p.f.plus_v = p.f.plus;
                            p.f.plus = false;
                        }
                        p.print_arg(&args[arg_num], c as char);
                        arg_num += 1;
                        i += 1;
                        continue 'format;
                    }
                    break;
                }
            }
            i += 1;
        }
        // Argument index, width, precision.
        let arg_number =
            |arg_num: usize, i: usize, reordered: &mut bool| arg_number(b, args.len(), arg_num, i, reordered);
        let (n, ni, found, good) = arg_number(arg_num, i, &mut reordered);
        arg_num = n;
        i = ni;
        after_index = found;
        good_arg_num &= good;
        if i < end && b[i] == b'*' {
            i += 1;
            let (w, ok, n) = int_from_arg(args, arg_num);
            arg_num = n;
            p.f.wid_present = ok;
            if !ok {
                p.buf.push_str("%!(BADWIDTH)");
            }
            if w < 0 {
                p.f.wid = w.unsigned_abs() as usize;
                p.f.minus = true;
                p.f.zero = false;
            } else {
                p.f.wid = w as usize;
            }
            after_index = false;
        } else {
            let (w, ok, ni) = parsenum(b, i, end);
            p.f.wid = w;
            p.f.wid_present = ok;
            i = ni;
            if after_index && p.f.wid_present {
                good_arg_num = false;
            }
        }
        if i + 1 < end && b[i] == b'.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            let (n, ni, found, good) = arg_number(arg_num, i, &mut reordered);
            arg_num = n;
            i = ni;
            after_index = found;
            good_arg_num &= good;
            if i < end && b[i] == b'*' {
                i += 1;
                let (pr, ok, n) = int_from_arg(args, arg_num);
                arg_num = n;
                if pr < 0 {
                    p.f.prec = 0;
                    p.f.prec_present = false;
                } else {
                    p.f.prec = pr as usize;
                    p.f.prec_present = ok;
                }
                if !p.f.prec_present {
                    p.buf.push_str("%!(BADPREC)");
                }
                after_index = false;
            } else {
                let (pr, ok, ni) = parsenum(b, i, end);
                i = ni;
                p.f.prec = if ok { pr } else { 0 };
                p.f.prec_present = true;
            }
        }
        if !after_index {
            let (n, ni, _found, good) = arg_number(arg_num, i, &mut reordered);
            arg_num = n;
            i = ni;
            good_arg_num &= good;
        }
        if i >= end {
            p.buf.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('?');
        i += verb.len_utf8();
        if verb == '%' {
            p.buf.push('%');
        } else if !good_arg_num {
            p.buf.push_str(&format!("%!{verb}(BADINDEX)"));
        } else if arg_num >= args.len() {
            p.buf.push_str(&format!("%!{verb}(MISSING)"));
        } else {
            if verb == 'v' {
                p.f.sharp_v = p.f.sharp;
                p.f.sharp = false;
                p.f.plus_v = p.f.plus;
                p.f.plus = false;
            }
            p.print_arg(&args[arg_num], verb);
            arg_num += 1;
        }
    }
    if !reordered && arg_num < args.len() {
        p.f = Flags::default();
        p.buf.push_str("%!(EXTRA ");
        for (i, arg) in args[arg_num..].iter().enumerate() {
            if i > 0 {
                p.buf.push_str(", ");
            }
            if matches!(arg, Value::Invalid | Value::NilIface) {
                p.buf.push_str("<nil>");
            } else {
                p.buf.push_str(arg.type_name());
                p.buf.push('=');
                p.print_arg(arg, 'v');
            }
        }
        p.buf.push(')');
    }
    p.finish()
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub(super) fn sprint(args: &[Value]) -> Result<String, Unsupported> {
    let mut p = Printer::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = arg.as_str().is_some();
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.f = Flags::default();
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.finish()
}

/// `fmt.Sprintln`: spaces between all operands and a newline.
pub(super) fn sprintln(args: &[Value]) -> Result<String, Unsupported> {
    let mut p = Printer::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.f = Flags::default();
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.finish()
}

/// What an action prints: `fmt.Fprint` of the value after text/template's `printableValue`
/// (pointers are followed, a missing value prints `<no value>`).
pub(super) fn print_action(v: &Value) -> Result<String, Unsupported> {
    match v {
        Value::Invalid => Ok("<no value>".into()),
        Value::Sample(Some(s)) => {
            let mut p = Printer::new();
            p.print_sample(s, 'v', 0);
            p.finish()
        }
        Value::Sample(None) | Value::NilIface => Ok("<nil>".into()),
        _ => sprint(std::slice::from_ref(v)),
    }
}

#[cfg(test)]
#[allow(clippy::approx_constant)] // Go's printf outputs were recorded for 3.14159.
mod tests {
    use super::*;

    fn s(format: &str, args: &[Value]) -> String {
        sprintf(format, args).unwrap_or_else(|e| format!("UNSUPPORTED {e}"))
    }

    #[test]
    fn printf_matches_go() {
        use Value::*;
        assert_eq!(
            s(
                "%d %s %v %5.2f|%-6s|%q %x",
                &[
                    Int(42),
                    Value::str("s"),
                    Float(1.5),
                    Float(3.14159),
                    Value::str("ab"),
                    Value::str("q\""),
                    Value::str("hi")
                ]
            ),
            "42 s 1.5  3.14|ab    |\"q\\\"\" 6869"
        );
        assert_eq!(s("%d", &[Float(0.0)]), "%!d(float64=0)");
        assert_eq!(s("%d", &[]), "%!d(MISSING)");
        assert_eq!(s("%d", &[Int(1), Int(2)]), "1%!(EXTRA int=2)");
        assert_eq!(
            s(
                "%6.2f|%-8.3e|%+d|% d|%05d|%-5d|%x|%o|%b|%08.3f|%+.1e",
                &[
                    Float(3.14159),
                    Float(1234.5678),
                    Int(5),
                    Int(5),
                    Int(-42),
                    Int(7),
                    Int(-255),
                    Int(8),
                    Int(5),
                    Float(-3.14159),
                    Float(0.000123)
                ]
            ),
            "  3.14|1.235e+03|+5| 5|-0042|7    |-ff|10|101|-003.142|+1.2e-04"
        );
        assert_eq!(
            s("%[2]d %[1]d %d %*d %.*f %[5]d", &[Int(1), Int(2), Int(3), Int(5), Int(2), Float(3.14159)]),
            "2 1 2   5 3.14 2"
        );
        assert_eq!(s("%!", &[]), "%!!(MISSING)");
        assert_eq!(s("%", &[]), "%!(NOVERB)");
        assert_eq!(s("%z", &[Int(1)]), "%!z(int=1)");
        assert_eq!(
            s(
                "%.2s|%5.1s|%-4s|%q",
                &[Value::str("hello"), Value::str("abc"), Value::str("é"), Value::str("\u{1}\u{a0}")]
            ),
            "he|    a|é   |\"\\x01\\u00a0\""
        );
        assert_eq!(
            s(
                "%x %X % x %#x %q %+q %#q %U %#U %c",
                &[
                    Int(255),
                    Value::str("hi"),
                    Value::str("hi"),
                    Value::str("hi"),
                    Int(120),
                    Value::str("é"),
                    Value::str("a`b"),
                    Int(0x1F600),
                    Int(0x1F600),
                    Int(65)
                ]
            ),
            "ff 6869 68 69 0x6869 'x' \"\\u00e9\" \"a`b\" U+1F600 U+1F600 '😀' A"
        );
        assert_eq!(
            s(
                "%.3v|%10.4v|%-10v|%e|%E|%G|%.0e|%g|%g|%g|%v",
                &[
                    Float(3.14159),
                    Float(2.0),
                    Float(1.5),
                    Float(0.0),
                    Float(1e-10),
                    Float(1e21),
                    Float(12345.0),
                    Float(100000.0),
                    Float(1e6),
                    Float(0.0001),
                    Float(-0.0)
                ]
            ),
            "3.14|         2|1.5       |0.000000e+00|1.000000E-10|1E+21|1e+04|100000|1e+06|0.0001|-0"
        );
        assert_eq!(
            s("%5t|%-7v|%q|%v|%d", &[Bool(true), Bool(false), Int(65), Invalid, Invalid]),
            " true|false  |'A'|<nil>|%!d(<nil>)"
        );
        assert_eq!(
            s(
                "%08.3f|%+08d|%-08d|% 8.2f|%x|%.3x|%5.1q",
                &[
                    Float(-1.5),
                    Int(42),
                    Int(42),
                    Float(3.14159),
                    Value::str("héllo"),
                    Value::str("héllo"),
                    Value::str("héllo")
                ]
            ),
            "-001.500|+0000042|42      |    3.14|68c3a96c6c6f|68c3a9|  \"h\""
        );
        assert_eq!(
            s("%x|%o|%O|%#o|%#b|%c|%q", &[Int(-1), Int(8), Int(8), Int(8), Int(5), Int(0x110000), Int(-1)]),
            "-1|10|0o10|010|0b101|\u{FFFD}|'\u{FFFD}'"
        );
    }

    #[test]
    fn print_spacing() {
        use Value::*;
        assert_eq!(
            sprint(&[Int(1), Int(2), Value::str("a"), Value::str("b"), Int(3), Invalid]).unwrap(),
            "1 2ab3 <nil>"
        );
        assert_eq!(sprintln(&[Int(1), Value::str("a")]).unwrap(), "1 a\n");
    }
}

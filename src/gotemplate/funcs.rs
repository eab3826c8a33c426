//! The functions a template calls: text/template's builtins (Go 1.19) and Prometheus 2.42's
//! `FuncMap`, each with its Go parameter types (so argument errors read as Go's) and its Go
//! error texts.

use super::QueryFn;
use super::exec::State;
use super::gofmt;
use super::goregex;
use super::gostr::{self, f64_to_i64, format_float, format_float_v, query_escape};
use super::gotime;
use super::value::{GoTime, Kind, Param, QueryResult, Sample, StrMap, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

/// What the functions see of the rule being evaluated.
pub(super) struct Env<'a> {
    pub query: QueryFn<'a>,
    /// `externalURL` / `$externalURL`, Prometheus's `--web.external-url` as `url.URL.String()`.
    pub external_url: Rc<str>,
    /// Whose function map the template runs with.
    pub dialect: super::Dialect,
    /// html/template's escaping of what an action prints in HTML text (Alertmanager's email
    /// bodies); a `safeHtml` value prints as it is.
    pub escape_html: bool,
}

/// A function's Go signature: fixed parameters, the element type of a variadic tail, and the
/// number of results other than a trailing `error` (Go calls only functions with one).
#[derive(Clone, Copy)]
pub(super) struct Sig {
    pub params: &'static [Param],
    pub variadic: Option<Param>,
    pub results: usize,
}

const fn sig(params: &'static [Param], variadic: Option<Param>) -> Sig {
    Sig { params, variadic, results: 1 }
}

use Param::{Any, Query as Q, Reflect as R, Sample as S, StrSlice as SS, String as Str};

pub(super) fn signature(dialect: super::Dialect, name: &str) -> Option<Sig> {
    if !dialect.has_function(name) {
        return None;
    }
    Some(match name {
        "and" | "or" | "call" | "index" | "slice" | "eq" => sig(&[R], Some(R)),
        "not" | "len" => sig(&[R], None),
        "ne" | "lt" | "le" | "gt" | "ge" => sig(&[R, R], None),
        "html" | "js" | "urlquery" | "print" | "println" | "args" => sig(&[], Some(Any)),
        "printf" => sig(&[Str], Some(Any)),
        "query" | "safeHtml" | "title" | "toUpper" | "toLower" | "graphLink" | "tableLink" | "stripPort"
        | "stripDomain" | "parseDuration" => sig(&[Str], None),
        "first" => sig(&[Q], None),
        "label" => sig(&[Str, S], None),
        "value" | "strvalue" => sig(&[S], None),
        "reReplaceAll" => sig(&[Str, Str, Str], None),
        "match" => sig(&[Str, Str], None),
        "sortByLabel" => sig(&[Str, Q], None),
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage" | "humanizeTimestamp"
        | "toTime" => sig(&[Any], None),
        "pathPrefix" | "externalURL" => sig(&[], None),
        "join" => sig(&[Str, SS], None),
        "stringSlice" => sig(&[], Some(Str)),
        _ => return None,
    })
}

pub(super) fn is_builtin(name: &str) -> bool {
    super::parse::BUILTINS.contains(&name)
}

/// Why a call failed.
pub(super) enum CallError {
    /// The function's Go error (or recovered panic) text: "error calling NAME: <this>".
    Go(String),
    /// Something this port does not reproduce.
    Unsupported(String),
}

type CResult = Result<Value, CallError>;

fn go<T>(msg: impl Into<String>) -> Result<T, CallError> {
    Err(CallError::Go(msg.into()))
}

fn fmt_result(r: Result<String, gofmt::Unsupported>) -> CResult {
    r.map(|s| Value::Str(Rc::from(s))).map_err(CallError::Unsupported)
}

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

fn string_arg(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Calls function `name` with arguments already checked against [`signature`].
pub(super) fn call(st: &mut State, name: &str, args: Vec<Value>) -> CResult {
    let a = &args;
    match name {
        "not" => Ok(Value::Bool(!indirect_iface(&a[0]).truth())),
        "call" => match indirect_iface(&a[0]) {
            Value::Invalid => go("call of nil"),
            v => go(format!("non-function of type {}", v.type_name())),
        },
        "html" => Ok(Value::str(&html_escape(&eval_args(a)?))),
        "js" => Ok(Value::str(&js_escape(&eval_args(a)?))),
        "urlquery" => Ok(Value::str(&query_escape(&eval_args(a)?))),
        "index" => index(&a[0], &a[1..]),
        "slice" => slice(&a[0], &a[1..]),
        "len" => length(&a[0]),
        "print" => fmt_result(gofmt::sprint(a)),
        "println" => fmt_result(gofmt::sprintln(a)),
        "printf" => fmt_result(gofmt::sprintf(string_arg(&a[0]), &a[1..])),
        "eq" => eq(&a[0], &a[1..]).map(Value::Bool),
        "ne" => eq(&a[0], &a[1..2]).map(|b| Value::Bool(!b)),
        "lt" => lt(&a[0], &a[1]).map(Value::Bool),
        "le" => le(&a[0], &a[1]).map(Value::Bool),
        "gt" => le(&a[0], &a[1]).map(|b| Value::Bool(!b)),
        "ge" => lt(&a[0], &a[1]).map(|b| Value::Bool(!b)),
        "query" => query(st, string_arg(&a[0])),
        "first" => match &a[0] {
            Value::Query(q) if q.len > 0 => Ok(Value::Sample(q.get(0))),
            _ => go("first() called on vector with no elements"),
        },
        "label" => match &a[1] {
            Value::Sample(Some(s)) => {
                Ok(Value::str(s.labels.get(string_arg(&a[0])).map_or("", String::as_str)))
            }
            _ => go(NIL_DEREF),
        },
        "value" => match &a[0] {
            Value::Sample(Some(s)) => Ok(Value::Float(s.value)),
            _ => go(NIL_DEREF),
        },
        "strvalue" => match &a[0] {
            Value::Sample(Some(s)) => Ok(Value::str(s.labels.get("__value__").map_or("", String::as_str))),
            _ => go(NIL_DEREF),
        },
        "args" => {
            let m: BTreeMap<String, Value> = a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), if v.is_valid() { v.clone() } else { Value::NilIface }))
                .collect();
            Ok(Value::IfaceMap(Rc::new(m)))
        }
        "reReplaceAll" => {
            let pattern = string_arg(&a[0]);
            let re = goregex::compile(pattern).map_err(|e| {
                CallError::Go(format!("regexp: Compile({}): {e}", goregex::quote_pattern(pattern)))
            })?;
            Ok(Value::str(&goregex::replace_all(&re, string_arg(&a[2]), string_arg(&a[1]))))
        }
        "safeHtml" => Ok(Value::Html(Rc::from(string_arg(&a[0])))),
        "join" => match &a[1] {
            Value::StrSlice(items) => Ok(Value::str(&items.join(string_arg(&a[0])))),
            _ => Ok(Value::str("")),
        },
        "stringSlice" => Ok(Value::StrSlice(Rc::new(a.iter().map(|v| string_arg(v).to_string()).collect()))),
        "match" => {
            let re = goregex::compile(string_arg(&a[0])).map_err(CallError::Go)?;
            Ok(Value::Bool(re.is_match(string_arg(&a[1]))))
        }
        "title" => Ok(Value::str(&title(string_arg(&a[0])))),
        "toUpper" => Ok(Value::str(&string_arg(&a[0]).chars().map(gostr::to_upper).collect::<String>())),
        "toLower" => Ok(Value::str(&string_arg(&a[0]).chars().map(gostr::to_lower).collect::<String>())),
        "graphLink" => {
            Ok(Value::str(&format!("/graph?g0.expr={}&g0.tab=0", query_escape(string_arg(&a[0])))))
        }
        "tableLink" => {
            Ok(Value::str(&format!("/graph?g0.expr={}&g0.tab=1", query_escape(string_arg(&a[0])))))
        }
        "sortByLabel" => {
            if let Value::Query(q) = &a[1] {
                let label = string_arg(&a[0]);
                let mut b = q.backing.borrow_mut();
                if let Some(window) = b.get_mut(q.off..q.off + q.len) {
                    window.sort_by(|x, y| {
                        let kx = x.labels.get(label).map_or("", String::as_str);
                        let ky = y.labels.get(label).map_or("", String::as_str);
                        kx.cmp(ky)
                    });
                }
            }
            Ok(a[1].clone())
        }
        "stripPort" => {
            let hp = string_arg(&a[0]);
            Ok(Value::str(split_host_port(hp).map_or(hp, |(h, _)| h)))
        }
        "stripDomain" => Ok(Value::str(&strip_domain(string_arg(&a[0])))),
        "humanize" => humanize(to_float(&a[0])?).map(|s| Value::str(&s)),
        "humanize1024" => Ok(Value::str(&humanize1024(to_float(&a[0])?))),
        "humanizeDuration" => Ok(Value::str(&humanize_duration(to_float(&a[0])?))),
        "humanizePercentage" => {
            Ok(Value::str(&format!("{}%", format_float(to_float(&a[0])? * 100.0, b'g', 4))))
        }
        "humanizeTimestamp" => {
            let v = to_float(&a[0])?;
            if v.is_nan() || v.is_infinite() {
                return Ok(Value::str(&format_float(v, b'g', 4)));
            }
            Ok(Value::str(&gotime::string(float_to_time(v)?)))
        }
        "toTime" => {
            let v = to_float(&a[0])?;
            if v.is_nan() || v.is_infinite() {
                return go("value is NaN or Inf");
            }
            let t = float_to_time(v)?;
            Ok(Value::Time { t, ptr: true, id: st.new_id() })
        }
        "pathPrefix" => Ok(Value::str(&url_path(&st.env.external_url))),
        "externalURL" => Ok(Value::Str(st.env.external_url.clone())),
        "parseDuration" => parse_duration(string_arg(&a[0])).map(Value::Float),
        _ => Err(CallError::Unsupported(format!("function {name}"))),
    }
}

/// `indirectInterface`: a nil interface is the zero value.
fn indirect_iface(v: &Value) -> Value {
    match v {
        Value::NilIface => Value::Invalid,
        v => v.clone(),
    }
}

fn query(st: &mut State, q: &str) -> CResult {
    let samples = (st.env.query)(q).map_err(CallError::Go)?;
    let samples = samples
        .into_iter()
        .map(|s| {
            let labels: StrMap = s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Rc::new(Sample { labels: Rc::new(labels), value: s.value })
        })
        .collect();
    Ok(Value::Query(QueryResult::new(samples)))
}

/// text/template's `evalArgs`: the arguments as `fmt.Sprint` prints them, a lone string as is.
fn eval_args(args: &[Value]) -> Result<String, CallError> {
    if let [Value::Str(s)] = args {
        return Ok(s.to_string());
    }
    let mut printable = Vec::with_capacity(args.len());
    for a in args {
        printable.push(match a {
            Value::Invalid | Value::NilIface => Value::str("<no value>"),
            Value::Sample(Some(_)) => {
                return Err(CallError::Unsupported("html, js or urlquery of a query sample".into()));
            }
            other => other.clone(),
        });
    }
    gofmt::sprint(&printable).map_err(CallError::Unsupported)
}

/// html/template's escaper for HTML text, which also escapes `+`.
pub(super) fn html_text_escape(s: &str) -> String {
    html_escape(s).replace('+', "&#43;")
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    const HEX: &[u8] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
            c if c.is_ascii() || gostr::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `indexArg`.
fn index_arg(index: &Value, cap: usize) -> Result<usize, CallError> {
    let x = match indirect_iface(index) {
        Value::Int(i) | Value::Int64(i) | Value::Month(i) | Value::Weekday(i) => i,
        Value::Uint8(u) => i64::from(u),
        Value::Invalid => return go("cannot index slice/array with nil"),
        other => return go(format!("cannot index slice/array with type {}", other.type_name())),
    };
    if x < 0 || x as u64 > cap as u64 {
        return go(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// The type `indirect` reaches: a pointer's element type.
fn elem_type(v: &Value) -> &'static str {
    match v {
        Value::Sample(Some(_)) => "template.sample",
        Value::Time { .. } => "time.Time",
        other => other.type_name(),
    }
}

fn index(item: &Value, indexes: &[Value]) -> CResult {
    let mut v = indirect_iface(item);
    if !v.is_valid() {
        return go("index of untyped nil");
    }
    for idx in indexes {
        if matches!(v, Value::Sample(None) | Value::NilIface) {
            return go("index of nil pointer");
        }
        v = match &v {
            Value::Str(s) | Value::Html(s) => {
                let x = index_arg(idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Uint8(*b),
                    None => return go("reflect: string index out of range"),
                }
            }
            Value::Query(q) => {
                let x = index_arg(idx, q.len)?;
                match q.get(x) {
                    Some(s) => Value::Sample(Some(s)),
                    None => return go("reflect: slice index out of range"),
                }
            }
            Value::StrSlice(items) => {
                let x = index_arg(idx, items.len())?;
                match items.get(x) {
                    Some(item) => Value::str(item),
                    None => return go("reflect: slice index out of range"),
                }
            }
            Value::Pairs(pairs) => {
                let x = index_arg(idx, pairs.len())?;
                match pairs.get(x) {
                    Some(pair) => Value::Pair(Rc::new(pair.clone())),
                    None => return go("reflect: slice index out of range"),
                }
            }
            Value::Alerts(alerts) => {
                let x = index_arg(idx, alerts.len())?;
                match alerts.get(x) {
                    Some(alert) => Value::AmAlert(alert.clone()),
                    None => return go("reflect: slice index out of range"),
                }
            }
            Value::StrMap(m) | Value::Kv(m) => match indirect_iface(idx) {
                Value::Str(k) => Value::str(m.get(&*k).map_or("", String::as_str)),
                Value::Invalid => return go("value is nil; should be of type string"),
                other => return go(format!("value has type {}; should be string", other.type_name())),
            },
            Value::IfaceMap(m) => match indirect_iface(idx) {
                Value::Str(k) => match m.get(&*k) {
                    Some(Value::Invalid | Value::NilIface) | None => Value::NilIface,
                    Some(x) => x.clone(),
                },
                _ => Value::NilIface,
            },
            other => return go(format!("can't index item of type {}", elem_type(other))),
        };
    }
    Ok(v)
}

fn slice(item: &Value, indexes: &[Value]) -> CResult {
    let v = indirect_iface(item);
    if !v.is_valid() {
        return go("slice of untyped nil");
    }
    if indexes.len() > 3 {
        return go(format!("too many slice indexes: {}", indexes.len()));
    }
    let (len, cap) = match &v {
        Value::Str(s) | Value::Html(s) => {
            if indexes.len() == 3 {
                return go("cannot 3-index slice a string");
            }
            (s.len(), s.len())
        }
        Value::Query(q) => (q.len, q.cap),
        other => return go(format!("can't slice item of type {}", elem_type(other))),
    };
    let mut idx = [0, len, 0];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, cap)?;
    }
    if idx[0] > idx[1] {
        return go(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return go(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    match v {
        Value::Str(s) | Value::Html(s) => match s.get(idx[0]..idx[1]) {
            Some(sub) => {
                Ok(if matches!(item, Value::Html(_)) { Value::Html(Rc::from(sub)) } else { Value::str(sub) })
            }
            None => Err(CallError::Unsupported("slicing a string inside a UTF-8 character".into())),
        },
        Value::Query(q) => {
            let new_cap = if indexes.len() == 3 { idx[2] - idx[0] } else { q.cap - idx[0] };
            Ok(Value::Query(QueryResult {
                backing: q.backing.clone(),
                off: q.off + idx[0],
                len: idx[1] - idx[0],
                cap: new_cap,
            }))
        }
        _ => go("can't slice"),
    }
}

fn length(item: &Value) -> CResult {
    match item {
        Value::Invalid => go("reflect: call of reflect.Value.Type on zero Value"),
        Value::NilIface | Value::Sample(None) => go("len of nil pointer"),
        Value::Str(s) | Value::Html(s) => Ok(Value::Int(s.len() as i64)),
        Value::StrMap(m) | Value::Kv(m) => Ok(Value::Int(m.len() as i64)),
        Value::IfaceMap(m) => Ok(Value::Int(m.len() as i64)),
        Value::Alerts(a) => Ok(Value::Int(a.len() as i64)),
        Value::Pairs(p) => Ok(Value::Int(p.len() as i64)),
        Value::StrSlice(s) => Ok(Value::Int(s.len() as i64)),
        Value::Query(q) => Ok(Value::Int(q.len as i64)),
        other => go(format!("len of type {}", elem_type(other))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BasicKind {
    Bool,
    Int,
    Uint,
    Float,
    String,
}

fn basic_kind(v: &Value) -> Option<BasicKind> {
    Some(match v.kind() {
        Kind::Bool => BasicKind::Bool,
        Kind::Int => BasicKind::Int,
        Kind::Uint => BasicKind::Uint,
        Kind::Float => BasicKind::Float,
        Kind::String => BasicKind::String,
        _ => return None,
    })
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) | Value::Month(i) | Value::Weekday(i) => *i,
        _ => 0,
    }
}

fn uint_of(v: &Value) -> u64 {
    match v {
        Value::Uint8(u) => u64::from(*u),
        _ => 0,
    }
}

fn float_of(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn is_nil(v: &Value) -> bool {
    matches!(v, Value::Invalid | Value::NilIface | Value::Sample(None))
}

fn comparable(v: &Value) -> bool {
    !matches!(
        v,
        Value::StrMap(_)
            | Value::IfaceMap(_)
            | Value::Query(_)
            | Value::Root(_)
            | Value::Kv(_)
            | Value::Alerts(_)
            | Value::Pairs(_)
            | Value::StrSlice(_)
            | Value::AmAlert(_)
    )
}

fn same_pointer(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Sample(Some(x)), Value::Sample(Some(y))) => Rc::ptr_eq(x, y),
        (Value::Time { id: x, ptr: true, .. }, Value::Time { id: y, ptr: true, .. }) => x == y,
        (Value::Time { t: x, ptr: false, .. }, Value::Time { t: y, ptr: false, .. }) => x == y,
        (Value::AmData(x), Value::AmData(y)) => Rc::ptr_eq(x, y),
        (Value::Pair(x), Value::Pair(y)) => x == y,
        _ => false,
    }
}

fn shown(verb: &str, v: &Value) -> Result<String, CallError> {
    gofmt::sprintf(verb, std::slice::from_ref(v)).map_err(CallError::Unsupported)
}

fn eq(arg1: &Value, rest: &[Value]) -> Result<bool, CallError> {
    let a1 = indirect_iface(arg1);
    if rest.is_empty() {
        return go("missing argument for comparison");
    }
    let k1 = basic_kind(&a1);
    for arg in rest {
        let a = indirect_iface(arg);
        let k2 = basic_kind(&a);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Some(BasicKind::Int), Some(BasicKind::Uint)) => {
                    int_of(&a1) >= 0 && int_of(&a1) as u64 == uint_of(&a)
                }
                (Some(BasicKind::Uint), Some(BasicKind::Int)) => {
                    int_of(&a) >= 0 && uint_of(&a1) == int_of(&a) as u64
                }
                _ => {
                    if a1.is_valid() && a.is_valid() {
                        return go("incompatible types for comparison");
                    }
                    false
                }
            }
        } else {
            match k1 {
                Some(BasicKind::Bool) => a1.truth() == a.truth(),
                Some(BasicKind::Float) => float_of(&a1) == float_of(&a),
                Some(BasicKind::Int) => int_of(&a1) == int_of(&a),
                Some(BasicKind::Uint) => uint_of(&a1) == uint_of(&a),
                Some(BasicKind::String) => a1.as_str() == a.as_str(),
                None => {
                    let same_kind = a1.kind() == a.kind() || !a1.is_valid() || !a.is_valid();
                    if !same_kind {
                        return go(format!(
                            "non-comparable types {}: {}, {}: {}",
                            shown("%s", &a1)?,
                            a1.type_name(),
                            a.type_name(),
                            shown("%v", &a)?
                        ));
                    }
                    if is_nil(&a1) || is_nil(&a) {
                        is_nil(&a) == is_nil(&a1)
                    } else if !comparable(&a) {
                        return go(format!("non-comparable type {}: {}", shown("%s", &a)?, a.type_name()));
                    } else {
                        same_pointer(&a1, &a)
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(arg1: &Value, arg2: &Value) -> Result<bool, CallError> {
    let a1 = indirect_iface(arg1);
    let a2 = indirect_iface(arg2);
    let (Some(k1), Some(k2)) = (basic_kind(&a1), basic_kind(&a2)) else {
        return go("invalid type for comparison");
    };
    if k1 != k2 {
        return match (k1, k2) {
            (BasicKind::Int, BasicKind::Uint) => Ok(int_of(&a1) < 0 || (int_of(&a1) as u64) < uint_of(&a2)),
            (BasicKind::Uint, BasicKind::Int) => Ok(int_of(&a2) >= 0 && uint_of(&a1) < int_of(&a2) as u64),
            _ => go("incompatible types for comparison"),
        };
    }
    Ok(match k1 {
        BasicKind::Bool => return go("invalid type for comparison"),
        BasicKind::Float => float_of(&a1) < float_of(&a2),
        BasicKind::Int => int_of(&a1) < int_of(&a2),
        BasicKind::String => a1.as_str() < a2.as_str(),
        BasicKind::Uint => uint_of(&a1) < uint_of(&a2),
    })
}

fn le(arg1: &Value, arg2: &Value) -> Result<bool, CallError> {
    if lt(arg1, arg2)? {
        return Ok(true);
    }
    eq(arg1, std::slice::from_ref(arg2))
}

/// Prometheus's `convertToFloat`.
fn to_float(v: &Value) -> Result<f64, CallError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) | Value::Int64(i) => Ok(*i as f64),
        Value::Str(s) => match gostr::parse_float(s) {
            Ok(f) => Ok(f),
            Err(gostr::FloatError::Syntax) => {
                go(format!("strconv.ParseFloat: parsing {}: invalid syntax", gostr::quote(s)))
            }
            Err(gostr::FloatError::Range) => {
                go(format!("strconv.ParseFloat: parsing {}: value out of range", gostr::quote(s)))
            }
        },
        other => go(format!("can't convert {} to float", other.type_name())),
    }
}

fn humanize(mut v: f64) -> Result<String, CallError> {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return Ok(format_float(v, b'g', 4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    Ok(format!("{}{prefix}", format_float(v, b'g', 4)))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_float(v, b'g', 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_float(v, b'g', 4))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_float(v, b'g', 4);
    }
    if v == 0.0 {
        return format!("{}s", format_float(v, b'g', 4));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let duration = f64_to_i64(v);
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 60 / 60) % 24;
        let days = duration / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", format_float(v, b'g', 4));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_float(v, b'g', 4))
}

/// Prometheus's `floatToTime` for a finite value (millisecond precision, UTC).
fn float_to_time(v: f64) -> Result<GoTime, CallError> {
    let ts = v * 1e9;
    if !(-gostr::TWO_63..=gostr::TWO_63).contains(&ts) {
        return go(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float_v(v)
        ));
    }
    Ok(gotime::from_unix_nanos_ms(f64_to_i64(ts)))
}

/// `strings.Title`.
fn title(s: &str) -> String {
    fn is_separator(c: char) -> bool {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if gostr::is_letter(c) || gostr::is_digit(c) {
            return false;
        }
        gostr::is_space(c)
    }
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) { gostr::to_title(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k) = if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hp[1..end], 1, end + 1)
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        return host.to_string();
    }
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The path of a URL, percent-decoded, as Go's `url.URL.Path`.
fn url_path(url: &str) -> String {
    let after_scheme = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url,
    };
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let path = &after_scheme[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&path[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prometheus's `model.ParseDuration`, in seconds.
fn parse_duration(s: &str) -> Result<f64, CallError> {
    match s {
        "0" => return Ok(0.0),
        "" => return go("empty duration string"),
        _ => {}
    }
    let invalid = || CallError::Go(format!("not a valid duration string: {}", gostr::quote(s)));
    const UNITS: [(&str, i64); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365),
        ("w", 1000 * 60 * 60 * 24 * 7),
        ("d", 1000 * 60 * 60 * 24),
        ("h", 1000 * 60 * 60),
        ("m", 1000 * 60),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut next_unit = 0;
    let mut dur: i64 = 0;
    let mut overflow = false;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number = &rest[..digits];
        rest = &rest[digits..];
        let unit = UNITS[next_unit..]
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
            .map(|(i, u)| (i + next_unit, *u))
            .next();
        let Some((idx, (u, mult))) = unit else { return Err(invalid()) };
        rest = &rest[u.len()..];
        next_unit = idx + 1;
        let n: i64 = number.parse().unwrap_or(i64::MAX);
        if n > i64::MAX / mult / 1_000_000 {
            overflow = true;
        }
        dur = dur.wrapping_add(n.wrapping_mul(1_000_000).wrapping_mul(mult));
        if dur < 0 {
            overflow = true;
        }
    }
    if overflow {
        return go("duration out of range");
    }
    Ok(dur as f64 / 1e9)
}

/// The methods of a `toTime` result this port implements (with their Go signatures), and
/// those Go cannot call from a template (more than one result).
pub(super) fn time_method(name: &str) -> Option<Sig> {
    let multi = |n: usize| Some(Sig { params: &[], variadic: None, results: n });
    match name {
        "Format" => Some(sig(&[Str], None)),
        "String" | "Unix" | "UnixMilli" | "UnixMicro" | "UnixNano" | "Year" | "YearDay" | "Month" | "Day"
        | "Weekday" | "Hour" | "Minute" | "Second" | "Nanosecond" | "UTC" | "IsZero" => Some(sig(&[], None)),
        "Date" | "Clock" => multi(3),
        "ISOWeek" | "Zone" | "ZoneBounds" => multi(2),
        _ => None,
    }
}

/// Other `time.Time` methods Go 1.19 has, which this port does not implement.
pub(super) fn is_other_time_method(name: &str) -> bool {
    matches!(
        name,
        "Add"
            | "AddDate"
            | "After"
            | "AppendFormat"
            | "Before"
            | "Equal"
            | "GoString"
            | "GobEncode"
            | "GobDecode"
            | "In"
            | "IsDST"
            | "Local"
            | "Location"
            | "MarshalBinary"
            | "MarshalJSON"
            | "MarshalText"
            | "Round"
            | "Sub"
            | "Truncate"
            | "UnmarshalBinary"
            | "UnmarshalJSON"
            | "UnmarshalText"
    )
}

pub(super) fn call_time_method(st: &mut State, t: GoTime, name: &str, args: Vec<Value>) -> CResult {
    let c = gotime::civil(t);
    Ok(match name {
        "Format" => Value::str(&gotime::format(t, args.first().and_then(Value::as_str).unwrap_or(""))),
        "String" => Value::str(&gotime::string(t)),
        "Unix" => Value::Int64(t.secs),
        "UnixMilli" => Value::Int64(t.secs.wrapping_mul(1000).wrapping_add(i64::from(t.nanos / 1_000_000))),
        "UnixMicro" => Value::Int64(t.secs.wrapping_mul(1_000_000).wrapping_add(i64::from(t.nanos / 1000))),
        "UnixNano" => Value::Int64(t.secs.wrapping_mul(1_000_000_000).wrapping_add(i64::from(t.nanos))),
        "Year" => Value::Int(c.year),
        "YearDay" => Value::Int(c.yday),
        "Month" => Value::Month(c.month),
        "Day" => Value::Int(c.day),
        "Weekday" => Value::Weekday(c.weekday),
        "Hour" => Value::Int(c.hour),
        "Minute" => Value::Int(c.minute),
        "Second" => Value::Int(c.second),
        "Nanosecond" => Value::Int(i64::from(c.nanos)),
        "UTC" => Value::Time { t, ptr: false, id: st.new_id() },
        "IsZero" => Value::Bool(t.secs == -62_135_596_800 && t.nanos == 0),
        _ => return Err(CallError::Unsupported(format!("the time.Time method {name}"))),
    })
}

/// The methods of Alertmanager's template types (`template.Alerts`, `template.KV`,
/// `template.Pairs`).
pub(super) fn am_method(receiver: &Value, name: &str) -> Option<Sig> {
    match (receiver, name) {
        (Value::Alerts(_), "Firing" | "Resolved")
        | (Value::Kv(_), "SortedPairs" | "Names" | "Values")
        | (Value::Pairs(_), "Names" | "Values") => Some(sig(&[], None)),
        (Value::Kv(_), "Remove") => Some(sig(&[SS], None)),
        _ => None,
    }
}

/// `KV.SortedPairs`: by name, with `alertname` first.
pub(super) fn sorted_pairs(kv: &StrMap) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(kv.len());
    if let Some(v) = kv.get("alertname") {
        pairs.push(("alertname".to_string(), v.clone()));
    }
    pairs.extend(kv.iter().filter(|(k, _)| *k != "alertname").map(|(k, v)| (k.clone(), v.clone())));
    pairs
}

pub(super) fn call_am_method(receiver: &Value, name: &str, args: Vec<Value>) -> CResult {
    let names = |pairs: &[(String, String)]| pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let values = |pairs: &[(String, String)]| pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
    Ok(match (receiver, name) {
        (Value::Alerts(alerts), "Firing" | "Resolved") => {
            let want = if name == "Firing" { "firing" } else { "resolved" };
            Value::Alerts(Rc::new(alerts.iter().filter(|a| &*a.status == want).cloned().collect()))
        }
        (Value::Kv(kv), "SortedPairs") => Value::Pairs(Rc::new(sorted_pairs(kv))),
        (Value::Kv(kv), "Names") => Value::StrSlice(Rc::new(names(&sorted_pairs(kv)))),
        (Value::Kv(kv), "Values") => Value::StrSlice(Rc::new(values(&sorted_pairs(kv)))),
        (Value::Kv(kv), "Remove") => {
            let drop: &[String] = match args.first() {
                Some(Value::StrSlice(keys)) => keys,
                _ => &[],
            };
            Value::Kv(Rc::new(
                kv.iter().filter(|(k, _)| !drop.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
            ))
        }
        (Value::Pairs(pairs), "Names") => Value::StrSlice(Rc::new(names(pairs))),
        (Value::Pairs(pairs), "Values") => Value::StrSlice(Rc::new(values(pairs))),
        _ => return go(format!("no method {name} on {}", receiver.type_name())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_hosts() {
        assert!(matches!(parse_duration("1h2m10ms"), Ok(v) if (v - 3720.01).abs() < 1e-9));
        assert!(
            matches!(parse_duration("1m1h"), Err(CallError::Go(e)) if e == "not a valid duration string: \"1m1h\"")
        );
        assert!(matches!(parse_duration("1y2w3d4h5m6s7ms"), Ok(v) if (v - 33_019_506.007).abs() < 1e-6));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("[2001:0DB8::1]::12345"), None);
        assert_eq!(split_host_port("a:b:c"), None);
        assert_eq!(strip_domain("foo.example.com:12345"), "foo:12345");
        assert_eq!(strip_domain("[fe80::1]:80"), "[fe80::1]:80");
        assert_eq!(url_path("http://testhost:9090/path/prefix"), "/path/prefix");
        assert_eq!(url_path("http://h/a%20b?x=1"), "/a b");
        assert_eq!(title("hello_world o'neil x.y 1st éa ǆx"), "Hello_world O'Neil X.Y 1st Éa ǅx");
        assert_eq!(js_escape("<a href='x'>&=\""), "\\u003Ca href\\u003D\\'x\\'\\u003E\\u0026\\u003D\\\"");
        assert_eq!(js_escape("é\u{1}\u{2028}x"), "é\\u0001\\u2028x");
    }
}

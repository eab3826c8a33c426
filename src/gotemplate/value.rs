//! The values a template computes with, standing in for the Go values Prometheus hands to
//! `text/template`: each variant is one Go type, and [`Value::type_name`] is that type's
//! `reflect.Type.String()`, which error messages and `%T` print.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// `map[string]string`, sorted by key as Go prints and ranges over it.
pub(super) type StrMap = BTreeMap<String, String>;

/// Prometheus's `template.sample`: one element of a query result.
#[derive(Debug)]
pub(super) struct Sample {
    pub labels: Rc<StrMap>,
    pub value: f64,
}

/// The template's data (`.`): Prometheus's anonymous struct from `AlertTemplateData`.
#[derive(Debug)]
pub(super) struct Root {
    pub labels: Rc<StrMap>,
    pub external_labels: Rc<StrMap>,
    pub external_url: Rc<str>,
    pub value: f64,
}

pub(super) const ROOT_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";

/// A Go slice of `*sample` (`template.queryResult`): a window on a shared backing array, so
/// `sortByLabel` sorts in place what every slice of the same result sees, as in Go.
#[derive(Debug, Clone)]
pub(super) struct QueryResult {
    pub backing: Rc<RefCell<Vec<Rc<Sample>>>>,
    pub off: usize,
    pub len: usize,
    pub cap: usize,
}

impl QueryResult {
    pub fn new(samples: Vec<Rc<Sample>>) -> Self {
        let len = samples.len();
        QueryResult { backing: Rc::new(RefCell::new(samples)), off: 0, len, cap: len }
    }

    pub fn get(&self, i: usize) -> Option<Rc<Sample>> {
        if i >= self.len {
            return None;
        }
        self.backing.borrow().get(self.off + i).cloned()
    }

    pub fn items(&self) -> Vec<Rc<Sample>> {
        let b = self.backing.borrow();
        b.get(self.off..self.off + self.len).map(<[_]>::to_vec).unwrap_or_default()
    }
}

/// Alertmanager's `template.Data`, what a notification template sees as `.`.
#[derive(Debug)]
pub(super) struct AmData {
    pub receiver: Rc<str>,
    pub status: Rc<str>,
    pub alerts: Rc<Vec<Rc<AmAlert>>>,
    pub group_labels: Rc<StrMap>,
    pub common_labels: Rc<StrMap>,
    pub common_annotations: Rc<StrMap>,
    pub external_url: Rc<str>,
}

/// Alertmanager's `template.Alert`.
#[derive(Debug)]
pub(super) struct AmAlert {
    pub status: Rc<str>,
    pub labels: Rc<StrMap>,
    pub annotations: Rc<StrMap>,
    pub starts_at: GoTime,
    pub ends_at: GoTime,
    pub generator_url: Rc<str>,
    pub fingerprint: Rc<str>,
}

/// A point in time as Go's `time.Time` in UTC: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GoTime {
    pub secs: i64,
    pub nanos: u32,
}

/// A template value. Variants map to the Go types Prometheus's templates can produce.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// The zero `reflect.Value` (untyped nil, a missing value): prints `<no value>`.
    Invalid,
    /// A nil `interface{}` read from a `map[string]interface{}` (`args`) by field access.
    NilIface,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (what `time.Time.Unix` and friends return).
    Int64(i64),
    /// Go `uint8` (a byte from `index` on a string).
    Uint8(u8),
    Float(f64),
    Str(Rc<str>),
    /// `html/template.HTML` from `safeHtml`.
    Html(Rc<str>),
    StrMap(Rc<StrMap>),
    /// `map[string]interface{}` from `args`.
    IfaceMap(Rc<BTreeMap<String, Value>>),
    Query(QueryResult),
    /// `*template.sample`; `None` is a nil pointer.
    Sample(Option<Rc<Sample>>),
    /// `*time.Time` from `toTime` (`ptr`), or a `time.Time` from one of its methods.
    Time {
        t: GoTime,
        ptr: bool,
        id: usize,
    },
    /// `time.Month`.
    Month(i64),
    /// `time.Weekday`.
    Weekday(i64),
    Root(Rc<Root>),
    /// `*template.Data` (Alertmanager).
    AmData(Rc<AmData>),
    /// `template.Alerts`: a slice with the methods `Firing` and `Resolved`.
    Alerts(Rc<Vec<Rc<AmAlert>>>),
    /// `template.Alert`.
    AmAlert(Rc<AmAlert>),
    /// `template.KV`: a `map[string]string` with the methods `SortedPairs`, `Remove`,
    /// `Names` and `Values`.
    Kv(Rc<StrMap>),
    /// `template.Pairs`: `[]template.Pair` with the methods `Names` and `Values`.
    Pairs(Rc<Vec<(String, String)>>),
    /// `template.Pair`: `Name` and `Value`.
    Pair(Rc<(String, String)>),
    /// `[]string`.
    StrSlice(Rc<Vec<String>>),
}

/// Go's `reflect.Kind` groups that the interpreter distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Invalid,
    Interface,
    Bool,
    Int,
    Uint,
    Float,
    String,
    Map,
    Slice,
    Ptr,
    Struct,
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Value::Invalid => Kind::Invalid,
            Value::NilIface => Kind::Interface,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) | Value::Int64(_) | Value::Month(_) | Value::Weekday(_) => Kind::Int,
            Value::Uint8(_) => Kind::Uint,
            Value::Float(_) => Kind::Float,
            Value::Str(_) | Value::Html(_) => Kind::String,
            Value::StrMap(_) | Value::IfaceMap(_) | Value::Kv(_) => Kind::Map,
            Value::Query(_) | Value::Alerts(_) | Value::Pairs(_) | Value::StrSlice(_) => Kind::Slice,
            Value::AmData(_) => Kind::Ptr,
            Value::AmAlert(_) | Value::Pair(_) => Kind::Struct,
            Value::Sample(_) => Kind::Ptr,
            Value::Time { ptr, .. } => {
                if *ptr {
                    Kind::Ptr
                } else {
                    Kind::Struct
                }
            }
            Value::Root(_) => Kind::Struct,
        }
    }

    /// `reflect.Type.String()`; `<nil>` for the zero value (as `%T` prints it).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<nil>",
            Value::NilIface => "interface {}",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Uint8(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::StrMap(_) => "map[string]string",
            Value::IfaceMap(_) => "map[string]interface {}",
            Value::Query(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Time { ptr: true, .. } => "*time.Time",
            Value::Time { ptr: false, .. } => "time.Time",
            Value::Month(_) => "time.Month",
            Value::Weekday(_) => "time.Weekday",
            Value::Root(_) => ROOT_TYPE,
            Value::AmData(_) => "*template.Data",
            Value::Alerts(_) => "template.Alerts",
            Value::AmAlert(_) => "template.Alert",
            Value::Kv(_) => "template.KV",
            Value::Pairs(_) => "template.Pairs",
            Value::Pair(_) => "template.Pair",
            Value::StrSlice(_) => "[]string",
        }
    }

    pub fn is_valid(&self) -> bool {
        !matches!(self, Value::Invalid)
    }

    /// Go's `isTrue`: the zero of its type is false. Every value here has a truth.
    pub fn truth(&self) -> bool {
        match self {
            Value::Invalid | Value::NilIface => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) | Value::Month(i) | Value::Weekday(i) => *i != 0,
            Value::Uint8(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::StrMap(m) | Value::Kv(m) => !m.is_empty(),
            Value::Alerts(a) => !a.is_empty(),
            Value::Pairs(p) => !p.is_empty(),
            Value::StrSlice(s) => !s.is_empty(),
            Value::AmData(_) | Value::AmAlert(_) | Value::Pair(_) => true,
            Value::IfaceMap(m) => !m.is_empty(),
            Value::Query(q) => q.len > 0,
            Value::Sample(s) => s.is_some(),
            Value::Time { .. } | Value::Root(_) => true,
        }
    }

    /// The string of a string-kind value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Html(s) => Some(s),
            _ => None,
        }
    }
}

/// The parameter types of the functions templates call (`reflect.Type` of a parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Param {
    String,
    /// `interface{}`.
    Any,
    /// `reflect.Value`: the builtins since Go 1.18 take their arguments unconverted.
    Reflect,
    Query,
    Sample,
    /// `[]string` (Alertmanager's `join` and `KV.Remove`).
    StrSlice,
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Param::String => "string",
            Param::Any => "interface {}",
            Param::Reflect => "reflect.Value",
            Param::Query => "template.queryResult",
            Param::Sample => "*template.sample",
            Param::StrSlice => "[]string",
        }
    }

    /// Go's `canBeNil`.
    pub fn can_be_nil(self) -> bool {
        matches!(self, Param::Any | Param::Reflect | Param::Query | Param::Sample | Param::StrSlice)
    }

    /// `reflect.Zero(typ)` for a nillable type.
    pub fn zero(self) -> Value {
        match self {
            Param::Query => Value::Query(QueryResult::new(Vec::new())),
            Param::Sample => Value::Sample(None),
            Param::StrSlice => Value::StrSlice(Rc::new(Vec::new())),
            _ => Value::Invalid,
        }
    }

    /// Whether a value of this dynamic type is assignable to the parameter.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Param::Any | Param::Reflect => true,
            Param::String => matches!(v, Value::Str(_)),
            Param::Query => matches!(v, Value::Query(_)),
            Param::Sample => matches!(v, Value::Sample(_)),
            Param::StrSlice => matches!(v, Value::StrSlice(_)),
        }
    }
}

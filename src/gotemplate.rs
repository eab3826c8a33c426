//! Go templates: alert label and annotation templates, expanded as Prometheus 2.42 expands them
//! (`template/template.go`, `rules/alerting.go`): Go 1.19's `text/template` with
//! `missingkey=zero` and Prometheus's functions, written here as an interpreter because no
//! Rust crate reproduces Go's output and error texts (see Cargo.toml).
//!
//! Like Prometheus, [`expand`] and [`check`] put
//! `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`
//! in front of the text, on the same line, so line numbers in errors are the text's own and
//! columns on its first line are shifted by the 112 bytes of that prefix, as in Prometheus.
//!
//! Supported, matched against Prometheus 2.42 (`tests/rule_templates.rs` runs `promtool`):
//! - Syntax: text and actions, `{{-`/`-}}` trimming, comments, pipelines, parenthesized
//!   pipelines, field chains (`.Labels.job`, `$labels.job`, `(query "x" | first).Value`),
//!   variables (`$x := …`, `$x = …`, `$`), `if`/`else if`/`else`, `with`, `range` over query
//!   results and maps with `$i, $v :=` and `else`, `break`, `continue`, `define`, `template`,
//!   `block`; string, raw string, character, integer (decimal, hex, octal, binary, `_`),
//!   float, bool and `nil` constants. Parse errors are Go's texts and line numbers.
//! - Data: `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value` (and the `$` variables);
//!   a missing map key is `""` (`missingkey=zero`).
//! - Go builtins: `and or not len index slice print printf println html js urlquery call
//!   eq ne lt le gt ge`, Go 1.19's versions, with `printf`'s verbs `%v %+v %T %s %q %x %X %d
//!   %b %o %O %c %U %e %E %f %F %g %G %t %%`, flags, widths, precisions, `*` and `[n]`, and
//!   Go's error markers.
//! - Prometheus functions: `query first label value strvalue args reReplaceAll safeHtml match
//!   title toUpper toLower graphLink tableLink sortByLabel stripPort stripDomain humanize
//!   humanize1024 humanizeDuration humanizePercentage humanizeTimestamp toTime pathPrefix
//!   externalURL parseDuration`, digit for digit (Go's `%.4g`, `time.Time.String()`).
//!   A `toTime` result has the methods `Format` (Go layouts) `String Unix UnixMilli UnixMicro
//!   UnixNano Year YearDay Month Day Weekday Hour Minute Second Nanosecond UTC IsZero`.
//! - Execution errors: Go's text, position and node (`template: __alert_X:1:115: executing
//!   "__alert_X" at <index $labels 1>: error calling index: …`).
//!
//! Not supported; each is reported, never rendered differently:
//! - Complex number constants and string constants that are not UTF-8 (`"\xff"`): [`check`]
//!   rejects them.
//! - Printing a memory address (`{{ query "x" }}`, `%p`, `%v` of `args` holding a sample),
//!   `%#v` of maps and structs, `%b`/`%x` and the `#` flag on floats, `slice` of a string
//!   inside a UTF-8 character, the `time.Time` methods not listed above: execution errors
//!   reading "unsupported by obsd's template engine: …".
//! - Go allows 100000 nested `{{template}}` calls; 1000 here. Control structures nested more
//!   than 500 deep do not parse.
//! - Regular expressions are Go's syntax and semantics on the `regex` crate (see
//!   `goregex`); the error text of a malformed pattern may quote a different fragment of it.

mod exec;
mod funcs;
mod gofmt;
mod goregex;
mod gostr;
mod gotime;
mod lex;
mod parse;
mod value;

pub mod notification;
pub use parse::Dialect;

use crate::model::Labels;
use std::collections::BTreeMap;
use std::rc::Rc;

/// One sample a template's `query` function returns.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: Labels,
    pub value: f64,
}

/// What `query "..."` runs: an instant query at the rule's evaluation time. Prometheus's
/// `EngineQueryFunc` turns a scalar result into one sample without labels and fails with
/// "rule result is not a vector or scalar" for other types; the `Err` text is what the
/// annotation shows after "error calling query: ".
pub type QueryFn<'a> = &'a dyn Fn(&str) -> Result<Vec<QuerySample>, String>;

/// The data a template sees.
pub struct TemplateData<'a> {
    /// `$labels` / `.Labels`. Prometheus 2.42 passes the labels of the sample the alert came
    /// from, `__name__` included when the expression kept it (e.g. `up == 0`), and neither
    /// the rule's `labels:` nor `alertname`.
    pub labels: &'a Labels,
    /// `$externalLabels`: the global `external_labels`.
    pub external_labels: &'a Labels,
    /// `$externalURL`, and what `externalURL` returns; `pathPrefix` returns its path.
    pub external_url: &'a str,
    /// `$value`: the sample's value.
    pub value: f64,
}

/// Runs one level of a recursive walk (parser, execution) on a stack that grows on demand, so
/// the nesting limits, not the caller's thread, decide how deep a template may go.
fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 * 1024, 4 * 1024 * 1024, f)
}

/// The definitions Prometheus puts in front of every alert template.
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Parse-only check used when rule files load (`promtool check rules` rejects a template that
/// does not parse). `Err` is Go's parse error text, e.g.
/// `template: __alert_HighLoad:1: function "foo" not defined`; Prometheus prefixes it with
/// `annotation "summary": ` (or `label "severity": `).
pub fn check(name: &str, text: &str) -> Result<(), String> {
    parse::parse(name, &format!("{DEFS}{text}"), Dialect::Prometheus).map(|_| ())
}

fn label_map(l: &Labels) -> Rc<BTreeMap<String, String>> {
    Rc::new(l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Expands `text` as template `name` (Prometheus names it `__alert_<alertname>`).
///
/// `Err` is exactly the value Prometheus 2.42 puts in the label or annotation when expansion
/// fails: `<error expanding template: error executing template NAME: template: NAME:L:C:
/// executing "NAME" at <NODE>: MESSAGE>` for an execution error, `<error expanding template:
/// error parsing template NAME: template: NAME:L: MESSAGE>` for a parse error. Prometheus
/// still sends the alert with that text, logs "Expanding alert template failed" and counts
/// `prometheus_template_text_expansion_failures_total`; that is the caller's to do.
///
/// `timestamp_ms` is the evaluation time, which `query` runs at; `query` is expected to close
/// over it, so expansion itself does not read it.
pub fn expand(
    name: &str,
    text: &str,
    data: &TemplateData,
    query: QueryFn,
    timestamp_ms: i64,
) -> Result<String, String> {
    let _ = timestamp_ms;
    let full = format!("{DEFS}{text}");
    let trees = parse::parse(name, &full, Dialect::Prometheus)
        .map_err(|e| format!("<error expanding template: error parsing template {name}: {e}>"))?;
    let root = value::Root {
        labels: label_map(data.labels),
        external_labels: label_map(data.external_labels),
        external_url: Rc::from(data.external_url),
        value: data.value,
    };
    let env = funcs::Env {
        query,
        external_url: Rc::from(data.external_url),
        dialect: Dialect::Prometheus,
        escape_html: false,
    };
    let sources = [exec::Source { trees: &trees, text: &full, name }];
    exec::execute(&sources, name, value::Value::Root(Rc::new(root)), &env)
        .map_err(|e| format!("<error expanding template: error executing template {name}: {e}>"))
}

#[cfg(test)]
mod tests;

/// Go's `strconv.Quote` (`%q`), for the places outside templates that print as Go does.
pub fn go_quote(s: &str) -> String {
    gostr::quote(s)
}

/// Go's `url.QueryEscape`: spaces as `+`, everything but unreserved characters %-escaped.
pub fn query_escape(s: &str) -> String {
    gostr::query_escape(s)
}

//! Rule files as Prometheus 2.42 reads them (`model/rulefmt`): the schema with unknown keys
//! refused, and every check `promtool check rules` makes, with its messages and its
//! `line:column` positions (`<file>: L:C: group "g", rule N, "name": <message>`).

use crate::config::prometheus::expand_pattern;
use crate::config::prometheus_common::PromDuration;
use crate::model::labels::{METRIC_NAME, is_valid_label_name};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A rule group as loaded: groups are keyed by `file;name`, as Prometheus keys them.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub file: String,
    pub name: String,
    /// `None`: the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// 0: no limit.
    pub limit: usize,
    pub rules: Vec<RuleSpec>,
}

impl GroupSpec {
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// The `record` or `alert` name.
    pub name: String,
    pub expr: String,
    /// Sorted by name. Alerting rules' values are templates.
    pub labels: Vec<(String, String)>,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Recording,
    Alerting {
        hold: Duration,
        keep_firing_for: Duration,
        /// Sorted by name; values are templates.
        annotations: Vec<(String, String)>,
    },
}

impl RuleSpec {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }
}

/// A scalar YAML value read as text, as Go's yaml decodes `expr: 1` or `severity: 2` into a
/// string field.
#[derive(Debug, Clone, Default, PartialEq)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_norway::Value;
        match Value::deserialize(d)? {
            Value::Null => Ok(Text(String::new())),
            Value::String(s) => Ok(Text(s)),
            Value::Number(n) => Ok(Text(n.to_string())),
            Value::Bool(b) => Ok(Text(b.to_string())),
            _ => Err(serde::de::Error::custom("cannot unmarshal a sequence or mapping into a string")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Option<Vec<RawGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Text,
    interval: Option<PromDuration>,
    #[serde(default)]
    limit: i64,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Text,
    #[serde(default)]
    alert: Text,
    #[serde(default)]
    expr: Text,
    #[serde(rename = "for")]
    hold: Option<PromDuration>,
    keep_firing_for: Option<PromDuration>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Text>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Text>>,
}

/// Where a YAML node starts, 1-based as Go's yaml.v3 reports it; `(0, 0)` for a node that is
/// not there.
type Pos = (usize, usize);

/// The parts of the YAML tree whose positions promtool reports.
#[derive(Debug)]
enum Node {
    Scalar(Pos),
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(String, Node)>),
}

impl Node {
    fn pos(&self) -> Pos {
        match self {
            Node::Scalar(p) | Node::Seq(p, _) | Node::Map(p, _) => *p,
        }
    }
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(_, entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn at(&self, i: usize) -> Option<&Node> {
        match self {
            Node::Seq(_, items) => items.get(i),
            _ => None,
        }
    }
}

/// Builds a [`Node`] tree from the parser's events, placing nodes where Go's yaml.v3 does: a
/// mapping at its first key, a block scalar (`|`, `>`) at its indicator, not its first line.
struct TreeBuilder {
    text: Vec<char>,
    /// Open collections: the node being filled and, for a mapping, a key waiting for its value
    /// (with where the key starts).
    stack: Vec<(Node, Option<(String, Marker)>)>,
    root: Option<Node>,
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node, key: Option<(String, Marker)>) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Node::Seq(_, items), _)) => items.push(node),
            Some((Node::Map(pos, entries), pending)) => match pending.take() {
                Some((key, _)) => entries.push((key, node)),
                None => {
                    if entries.is_empty() {
                        *pos = node.pos();
                    }
                    *pending = key;
                }
            },
            Some((Node::Scalar(_), _)) => {}
        }
    }

    /// Where the value after a key starts on the key's line: past the `:` and blanks.
    fn after_key(&self, key: &Marker) -> Pos {
        let mut i = key.index();
        while i < self.text.len() && self.text[i] != ':' && self.text[i] != '\n' {
            i += 1;
        }
        i += 1;
        while i < self.text.len() && (self.text[i] == ' ' || self.text[i] == '\t') {
            i += 1;
        }
        (key.line(), key.col() + 1 + (i - key.index()))
    }

    fn pending_key(&self) -> Option<&Marker> {
        match self.stack.last() {
            Some((Node::Map(..), Some((_, mark)))) => Some(mark),
            _ => None,
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(text, style, ..) => {
                let block = matches!(style, TScalarStyle::Literal | TScalarStyle::Folded);
                let pos = match self.pending_key() {
                    Some(key) if block => self.after_key(key),
                    _ => pos,
                };
                self.push_value(Node::Scalar(pos), Some((text, mark)))
            }
            Event::Alias(_) => self.push_value(Node::Scalar(pos), None),
            Event::SequenceStart(..) => self.stack.push((Node::Seq(pos, Vec::new()), None)),
            Event::MappingStart(..) => self.stack.push((Node::Map(pos, Vec::new()), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node, None);
                }
            }
            _ => {}
        }
    }
}

fn positions(text: &str) -> Option<Node> {
    let mut builder = TreeBuilder { text: text.chars().collect(), stack: Vec::new(), root: None };
    Parser::new_from_str(text).load(&mut builder, false).ok()?;
    builder.root
}

/// Prometheus's metric name rule (`model.IsValidMetricName`).
fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Reads one rule file. `Err` holds every problem, each a whole line as promtool prints it.
pub fn parse_rule_file(path: &str, text: &str) -> Result<Vec<GroupSpec>, Vec<String>> {
    let empty = matches!(serde_norway::from_str::<serde_norway::Value>(text), Ok(serde_norway::Value::Null));
    if empty {
        return Ok(Vec::new());
    }
    let raw: RawFile = crate::config::prometheus::parse_prometheus_yaml(text)
        .map_err(|e| vec![format!("{path}: yaml: {e}")])?;
    let tree = positions(text);
    let groups_node = tree.as_ref().and_then(|t| t.get("groups"));
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (j, g) in raw.groups.unwrap_or_default().into_iter().enumerate() {
        let group_node = groups_node.and_then(|n| n.at(j));
        let gpos = group_node.map_or((0, 0), Node::pos);
        let name = g.name.0;
        if name.is_empty() {
            errors.push(format!("{path}: {}:{}: Groupname must not be empty", gpos.0, gpos.1));
        }
        if !seen.insert(name.clone()) {
            errors.push(format!(
                "{path}: {}:{}: groupname: \"{name}\" is repeated in the same file",
                gpos.0, gpos.1
            ));
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
            let rule_node = group_node.and_then(|n| n.get("rules")).and_then(|n| n.at(i));
            let at = |key: &str| rule_node.and_then(|n| n.get(key)).map_or((0, 0), Node::pos);
            let rule_name = if r.alert.0.is_empty() { r.record.0.clone() } else { r.alert.0.clone() };
            let prefix = format!("group {name:?}, rule {}, {rule_name:?}", i + 1);
            let mut problem = |pos: Option<Pos>, alt: Option<Pos>, message: String| {
                let place = match (pos, alt) {
                    (Some(p), Some(a)) => format!("{}:{}: {}:{}: ", p.0, p.1, a.0, a.1),
                    (Some(p), None) => format!("{}:{}: ", p.0, p.1),
                    _ => String::new(),
                };
                errors.push(format!("{path}: {place}{prefix}: {message}"));
            };
            let (record, alert) = (&r.record.0, &r.alert.0);
            if !record.is_empty() && !alert.is_empty() {
                problem(
                    Some(at("record")),
                    Some(at("alert")),
                    "only one of 'record' and 'alert' must be set".into(),
                );
            }
            if record.is_empty() && alert.is_empty() {
                problem(Some(at("record")), None, "one of 'record' or 'alert' must be set".into());
            }
            if r.expr.0.is_empty() {
                problem(Some(at("expr")), None, "field 'expr' must be set in rule".into());
            } else if let Err(e) = crate::promql::parse(&r.expr.0) {
                problem(Some(at("expr")), None, format!("could not parse expression: {e}"));
            }
            let annotations: Vec<(String, String)> =
                r.annotations.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            let labels: Vec<(String, String)> =
                r.labels.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            let hold = r.hold.map_or(Duration::ZERO, |d| d.0);
            let keep_firing_for = r.keep_firing_for.map_or(Duration::ZERO, |d| d.0);
            if !record.is_empty() {
                if !annotations.is_empty() {
                    problem(Some(at("record")), None, "invalid field 'annotations' in recording rule".into());
                }
                if !hold.is_zero() {
                    problem(Some(at("record")), None, "invalid field 'for' in recording rule".into());
                }
                if !keep_firing_for.is_zero() {
                    problem(
                        Some(at("record")),
                        None,
                        "invalid field 'keep_firing_for' in recording rule".into(),
                    );
                }
                if !is_valid_metric_name(record) {
                    problem(Some(at("record")), None, format!("invalid recording rule name: {record}"));
                }
            }
            for (k, _) in &labels {
                if !is_valid_label_name(k) || k == METRIC_NAME {
                    problem(None, None, format!("invalid label name: {k}"));
                }
            }
            for (k, _) in &annotations {
                if !is_valid_label_name(k) {
                    problem(None, None, format!("invalid annotation name: {k}"));
                }
            }
            if !alert.is_empty() {
                let template = format!("__alert_{alert}");
                for (what, pairs) in [("label", &labels), ("annotation", &annotations)] {
                    for (k, v) in pairs {
                        if let Err(e) = crate::gotemplate::check(&template, v) {
                            problem(None, None, format!("{what} {k:?}: {e}"));
                        }
                    }
                }
            }
            let kind = if alert.is_empty() {
                RuleKind::Recording
            } else {
                RuleKind::Alerting { hold, keep_firing_for, annotations }
            };
            rules.push(RuleSpec { name: rule_name, expr: r.expr.0, labels, kind });
        }
        out.push(GroupSpec {
            file: path.to_string(),
            name,
            interval: g.interval.map(|d| d.0),
            limit: usize::try_from(g.limit).unwrap_or(0),
            rules,
        });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Reads a rule file from disk.
pub fn read_rule_file(path: &Path) -> Result<Vec<GroupSpec>, Vec<String>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{shown}: {e}")])?;
    parse_rule_file(&shown, &text)
}

/// The files `rule_files` patterns name: relative ones from `base` (the configuration file's
/// directory), a `*` allowed in the last path element, globbed afresh on every load as
/// Prometheus does. A pattern that matches nothing is not an error (Prometheus's neither).
pub fn rule_file_paths(patterns: &[String], base: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        // A name that matches no file loads nothing, as Prometheus's glob does (config warns).
        for path in expand_pattern(&full.display().to_string()).into_iter().filter(|p| p.exists()) {
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// Loads every group of every file; any problem in any file refuses the whole set (a reload
/// then keeps the rules it had).
pub fn load_groups(paths: &[PathBuf]) -> Result<Vec<GroupSpec>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match read_rule_file(path) {
            Ok(g) => groups.extend(g),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(groups) } else { Err(errors) }
}

/// Recording rules that produce the same series (same name, same rule labels): promtool's
/// lint finding, `(metric, labels)` once per duplicated pair.
pub fn duplicate_recording_rules(groups: &[GroupSpec]) -> Vec<(String, Vec<(String, String)>)> {
    let mut seen: BTreeMap<(String, Vec<(String, String)>), usize> = BTreeMap::new();
    for rule in groups.iter().flat_map(|g| &g.rules).filter(|r| !r.is_alert()) {
        *seen.entry((rule.name.clone(), rule.labels.clone())).or_default() += 1;
    }
    seen.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_those_promtool_prints() {
        let text = "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up\n      - alert: A\n        record: B\n        expr: up == 0\n  - name: g\n    rules: []\n";
        let errors = parse_rule_file("f.yml", text).unwrap_err();
        assert!(
            errors[0].starts_with(
                "f.yml: 5:15: group \"g\", rule 1, \"job:up:sum\": could not parse expression: "
            ),
            "{errors:?}"
        );
        assert_eq!(
            errors[1],
            "f.yml: 7:17: 6:16: group \"g\", rule 2, \"A\": only one of 'record' and 'alert' must be set"
        );
        assert_eq!(errors[2], "f.yml: 9:5: groupname: \"g\" is repeated in the same file");
    }

    #[test]
    fn a_missing_name_is_placed_at_zero_and_block_scalars_at_their_indicator() {
        let text = "groups:\n- name: g\n  rules:\n  - expr: up\n  - record: b\n    expr: |\n      sum(\n        up\n";
        let errors = parse_rule_file("f.yml", text).unwrap_err();
        assert_eq!(
            errors[0],
            "f.yml: 0:0: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set"
        );
        assert!(
            errors[1].starts_with("f.yml: 6:11: group \"g\", rule 2, \"b\": could not parse expression: "),
            "{errors:?}"
        );
    }

    #[test]
    fn recording_rules_refuse_alert_fields_and_bad_names() {
        let text = "groups:\n  - name: g\n    rules:\n      - record: 'x{y}'\n        expr: up\n        for: 5m\n        labels: {__name__: x, ok: '1'}\n        annotations: {a: b}\n";
        let errors = parse_rule_file("f.yml", text).unwrap_err();
        let prefix = "f.yml: 4:17: group \"g\", rule 1, \"x{y}\": ";
        assert_eq!(
            errors,
            vec![
                format!("{prefix}invalid field 'annotations' in recording rule"),
                format!("{prefix}invalid field 'for' in recording rule"),
                format!("{prefix}invalid recording rule name: x{{y}}"),
                "f.yml: group \"g\", rule 1, \"x{y}\": invalid label name: __name__".to_string(),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_bad_durations_refuse_the_file() {
        assert!(
            parse_rule_file("f.yml", "groups:\n  - name: g\n    foo: 1\n").unwrap_err()[0].contains("foo")
        );
        assert!(parse_rule_file("f.yml", "groups:\n  - name: g\n    interval: 1x\n").is_err());
    }

    #[test]
    fn empty_files_hold_no_groups_and_scalars_read_as_text() {
        assert_eq!(parse_rule_file("f.yml", "").unwrap(), vec![]);
        assert_eq!(parse_rule_file("f.yml", "# nothing\n").unwrap(), vec![]);
        assert_eq!(parse_rule_file("f.yml", "groups:\n").unwrap(), vec![]);
        let g = parse_rule_file(
            "f.yml",
            "groups:\n  - name: g\n    interval: 30s\n    limit: 3\n    rules:\n      - alert: A\n        expr: 1\n        for: 5m\n        labels: {severity: 2}\n",
        )
        .unwrap();
        assert_eq!(g[0].interval, Some(Duration::from_secs(30)));
        assert_eq!(g[0].limit, 3);
        assert_eq!(g[0].rules[0].expr, "1");
        assert_eq!(g[0].rules[0].labels, vec![("severity".to_string(), "2".to_string())]);
        assert_eq!(g[0].key(), "f.yml;g");
    }

    #[test]
    fn duplicate_recording_rules_are_found() {
        let g = parse_rule_file(
            "f.yml",
            "groups:\n  - name: g\n    rules:\n      - {record: a, expr: up, labels: {t: x}}\n      - {record: a, expr: up, labels: {t: x}}\n      - {record: a, expr: up}\n",
        )
        .unwrap();
        assert_eq!(
            duplicate_recording_rules(&g),
            vec![("a".to_string(), vec![("t".to_string(), "x".to_string())])]
        );
    }
}

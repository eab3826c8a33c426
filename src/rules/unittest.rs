//! `obsd rules test`: promtool 2.42's rule unit tests (`cmd/promtool/unittest.go`) run by
//! obsd's own rule engine — the same file format, the expanding series notation, evaluation
//! from time 0 at `evaluation_interval`, alert checks that see only firing alerts, and the
//! same verdicts and messages.

use super::alert::{ALERT_NAME_LABEL, AlertState};
use super::file::{GroupSpec, read_rule_file, rule_file_paths};
use super::group::{EvalContext, GroupState};
use crate::config::prometheus_common::PromDuration;
use crate::model::labels::Labels;
use crate::model::{MatchOp, stale_nan};
use crate::promql::store_source::StoreSource;
use crate::promql::{Engine, EngineOptions, QueryValue};
use crate::store::{Store, StoreOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<PromDuration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<PromDuration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: PromDuration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: PromDuration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// One value of the expanding notation: a number, a stale marker, or nothing at that step.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Value(f64),
    Omitted,
}

fn parse_number(text: &str) -> Result<f64, String> {
    match text {
        "stale" => Ok(stale_nan()),
        "Inf" | "+Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => text.parse::<f64>().map_err(|_| format!("invalid value {text:?}")),
    }
}

/// The series notation of Prometheus's test language: `1 2 _ 3`, `_x3` (three gaps),
/// `5x3` (four fives), `1+2x3` / `1-2x3` (four values stepping by 2), `stale`.
fn expand_values(text: &str) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        if item == "_" {
            out.push(Step::Omitted);
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("invalid repetition in {item:?}"))?;
            out.extend(std::iter::repeat_n(Step::Omitted, n));
            continue;
        }
        let Some((head, times)) = item.rsplit_once('x') else {
            out.push(Step::Value(parse_number(item)?));
            continue;
        };
        let n: u64 = times.parse().map_err(|_| format!("invalid repetition in {item:?}"))?;
        // `a+b` or `a-b`: the sign after the first character splits start and step.
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| (c == '+' || c == '-') && !head[..i].ends_with(['e', 'E']));
        let (start, step) = match split {
            Some((i, _)) => (parse_number(&head[..i])?, parse_number(&head[i..])?),
            None => (parse_number(head)?, 0.0),
        };
        let mut v = start;
        out.push(Step::Value(v));
        for _ in 0..n {
            v += step;
            out.push(Step::Value(v));
        }
    }
    Ok(out)
}

/// A series written as `name{a="b"}`: equality matchers only, as Prometheus's `ParseMetric`.
fn parse_metric(text: &str) -> Result<Labels, String> {
    if text.trim().is_empty() || text.trim() == "{}" {
        return Ok(Labels::new());
    }
    let matchers = crate::promql::parse_selector(text).map_err(|e| e.to_string())?;
    let mut pairs = Vec::new();
    for m in matchers {
        if m.op != MatchOp::Equal {
            return Err(format!("{text}: only equality matchers can name a series"));
        }
        pairs.push((m.name.clone(), m.value.clone()));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Go's `time.Duration.String()` for whole milliseconds: `3m0s`, `1h0m30s`, `0s`, `1.5s`.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let secs =
        if rest % 1000 == 0 { format!("{}s", rest / 1000) } else { format!("{}s", rest as f64 / 1000.0) };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// `model.Duration.String()`: the largest units, no zero parts (`3m`, `1h30s`, `0s`).
fn prom_duration(d: Duration) -> String {
    crate::model::units::format_duration(d)
}

fn labels_text(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

type LabelsAndAnnotations = Vec<(Labels, Labels)>;

/// promtool's `labelsAndAnnotations.String()`.
fn alerts_text(alerts: &LabelsAndAnnotations) -> String {
    if alerts.is_empty() {
        return "[]".into();
    }
    let inner: Vec<String> = alerts
        .iter()
        .enumerate()
        .map(|(i, (l, a))| format!("{i}:\n  Labels:{}\n  Annotations:{}", labels_text(l), labels_text(a)))
        .collect();
    format!("[\n{}\n]", inner.join(",\n"))
}

/// promtool's `parsedSamplesString`: values as Go's `%E` shortest form.
fn samples_text(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return "nil".into();
    }
    let inner: Vec<String> = samples
        .iter()
        .map(|(l, v)| {
            format!("{} {}", labels_text(l), crate::exposition::format_go_float_e(*v).to_uppercase())
        })
        .collect();
    inner.join(", ")
}

/// Runs one test file; returns whether every test passed. A report on `out`, failures on `err`.
pub fn run_file(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let _ = writeln!(out, "Unit Testing:  {}", path.display());
    let errors = match test_file(path) {
        Ok(errors) => errors,
        Err(e) => vec![e],
    };
    if errors.is_empty() {
        let _ = writeln!(out, "  SUCCESS");
    } else {
        let _ = writeln!(err, "  FAILED:");
        for e in &errors {
            let _ = writeln!(err, "{e}");
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out);
    errors.is_empty()
}

fn test_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("  {}: {e}", path.display()))?;
    let file: TestFile =
        crate::config::prometheus::parse_prometheus_yaml(&text).map_err(|e| format!("  {e}"))?;
    let eval_interval = file.evaluation_interval.map_or(Duration::from_secs(60), |d| d.0);
    let base = path.parent().unwrap_or(Path::new("."));
    let paths = rule_file_paths(&file.rule_files, base);
    let mut groups: Vec<GroupSpec> = Vec::new();
    for p in &paths {
        groups.extend(read_rule_file(p).map_err(|e| format!("  {}", e.join("\n  ")))?);
    }
    // `group_eval_order` first, in its order; the rest as loaded.
    let order: BTreeMap<&str, usize> =
        file.group_eval_order.iter().enumerate().map(|(i, g)| (g.as_str(), i)).collect();
    groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(usize::MAX));
    let mut errors = Vec::new();
    for test in &file.tests {
        errors.extend(test_group(test, &groups, eval_interval)?);
    }
    Ok(errors)
}

fn test_group(tg: &TestGroup, specs: &[GroupSpec], eval_interval: Duration) -> Result<Vec<String>, String> {
    let mut errors = Vec::new();
    let interval_ms = tg.interval.map_or(0, |d| d.0.as_millis() as i64);
    let mut input: Vec<(i64, Labels, f64)> = Vec::new();
    for s in &tg.input_series {
        let labels = parse_metric(&s.series).map_err(|e| format!("    {e}"))?;
        for (i, step) in
            expand_values(&s.values).map_err(|e| format!("    {}: {e}", s.series))?.into_iter().enumerate()
        {
            if let Step::Value(v) = step {
                input.push((i as i64 * interval_ms, labels.clone(), v));
            }
        }
    }
    input.sort_by_key(|s| s.0);
    let dir = tempfile::tempdir().map_err(|e| format!("    temporary store: {e}"))?;
    let store =
        Store::open(dir.path(), StoreOptions::default()).map_err(|e| format!("    temporary store: {e}"))?;
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let ctx = EvalContext {
        engine: engine.clone(),
        queryable: Arc::new(StoreSource(store.clone())),
        store: store.clone(),
        external_labels: Labels::from_pairs(tg.external_labels.clone()),
        external_url: tg.external_url.clone(),
        notifier: None,
        template_failures: Arc::default(),
        timing: Default::default(),
        forward: None,
    };
    let mut groups: Vec<GroupState> =
        specs.iter().map(|s| GroupState::new(s.clone(), eval_interval, true)).collect();

    let mut alert_times: Vec<i64> = Vec::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            errors.push(format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}",
                prom_duration(a.eval_time.0)
            ));
            continue;
        }
        alert_times.push(a.eval_time.0.as_millis() as i64);
    }
    if !errors.is_empty() {
        return Ok(errors);
    }
    alert_times.sort_unstable();
    alert_times.dedup();
    let max_eval = alert_times
        .iter()
        .copied()
        .chain(tg.promql_expr_test.iter().map(|t| t.eval_time.0.as_millis() as i64))
        .max()
        .unwrap_or(0);
    let step = (eval_interval.as_millis() as i64).max(1);
    let mut next_input = 0;
    let mut curr = 0;
    let mut ts = 0i64;
    while ts <= max_eval {
        let mut app = store.appender();
        while next_input < input.len() && input[next_input].0 <= ts {
            let (t, labels, v) = &input[next_input];
            app.append(labels, *t, *v).map_err(|e| format!("    loading input series {labels}: {e}"))?;
            next_input += 1;
        }
        app.commit().map_err(|e| format!("    loading input series: {e}"))?;
        let mut eval_errors = Vec::new();
        for g in &mut groups {
            g.eval(ts, &ctx);
            for r in &g.rules {
                if !r.last_error.is_empty() {
                    eval_errors.push(format!(
                        "    rule: {}, time: {}, err: {}",
                        r.spec.name,
                        go_duration(ts),
                        r.last_error
                    ));
                }
            }
        }
        if !eval_errors.is_empty() {
            errors.extend(eval_errors);
            return Ok(errors);
        }
        while curr < alert_times.len() && ts <= alert_times[curr] && alert_times[curr] < ts + step {
            let t = alert_times[curr];
            for case in tg.alert_rule_test.iter().filter(|a| a.eval_time.0.as_millis() as i64 == t) {
                let mut got: LabelsAndAnnotations = groups
                    .iter()
                    .flat_map(|g| &g.rules)
                    .filter(|r| r.spec.is_alert() && r.spec.name == case.alertname)
                    .flat_map(|r| r.alerts.unresolved())
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| (a.labels.clone(), a.annotations.clone()))
                    .collect();
                let mut exp: LabelsAndAnnotations = case
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = Labels::from_pairs(a.exp_labels.clone());
                        l.set(ALERT_NAME_LABEL, &case.alertname);
                        (l, Labels::from_pairs(a.exp_annotations.clone()))
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    let name =
                        if tg.name.is_empty() { String::new() } else { format!("    name: {},\n", tg.name) };
                    errors.push(format!(
                        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        prom_duration(case.eval_time.0),
                        indent(&alerts_text(&exp)),
                        indent(&alerts_text(&got))
                    ));
                }
            }
            curr += 1;
        }
        ts += step;
    }
    // Input samples after the last evaluation still count for the expression tests.
    let mut app = store.appender();
    for (t, labels, v) in &input[next_input..] {
        app.append(labels, *t, *v).map_err(|e| format!("    loading input series {labels}: {e}"))?;
    }
    app.commit().map_err(|e| format!("    loading input series: {e}"))?;
    'cases: for case in &tg.promql_expr_test {
        let at = case.eval_time.0.as_millis() as i64;
        let when = prom_duration(case.eval_time.0);
        let got = match engine.instant_query(&StoreSource(store.clone()), &case.expr, at) {
            Ok(QueryValue::Vector(v)) => {
                v.into_iter().map(|s| (Arc::unwrap_or_clone(s.labels), s.v)).collect()
            }
            Ok(QueryValue::Scalar { v, .. }) => vec![(Labels::new(), v)],
            Ok(_) => {
                errors.push(format!(
                    "    expr: {:?}, time: {when}, err: rule result is not a vector or scalar",
                    case.expr
                ));
                continue;
            }
            Err(e) => {
                errors.push(format!("    expr: {:?}, time: {when}, err: {e}", case.expr));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = got;
        let mut exp = Vec::new();
        for s in &case.exp_samples {
            match parse_metric(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errors.push(format!(
                        "    expr: {:?}, time: {when}, err: labels {:?}: {e}",
                        case.expr, s.labels
                    ));
                    continue 'cases;
                }
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && g.1.to_bits() == e.1.to_bits());
        if !same {
            errors.push(format!(
                "    expr: {:?}, time: {when},\n        exp: {}\n        got: {}",
                case.expr,
                samples_text(&exp),
                samples_text(&got)
            ));
        }
    }
    Ok(errors)
}

fn indent(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n            ")
}

/// Runs every file; exit status 0 when all pass, 1 otherwise, as promtool.
pub fn run_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut failed = false;
    for f in files {
        failed |= !run_file(f, out, err);
    }
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expanding_notation_is_prometheus_s() {
        use Step::{Omitted as O, Value as V};
        assert_eq!(expand_values("1+1x3").unwrap(), vec![V(1.0), V(2.0), V(3.0), V(4.0)]);
        assert_eq!(expand_values("10-2x2").unwrap(), vec![V(10.0), V(8.0), V(6.0)]);
        assert_eq!(expand_values("5x2").unwrap(), vec![V(5.0), V(5.0), V(5.0)]);
        assert_eq!(expand_values("_ 1 _x2 -1").unwrap(), vec![O, V(1.0), O, O, V(-1.0)]);
        assert_eq!(expand_values("-1+1x1").unwrap(), vec![V(-1.0), V(0.0)]);
        assert_eq!(expand_values("1e3+1e2x1").unwrap(), vec![V(1000.0), V(1100.0)]);
        assert!(matches!(expand_values("stale").unwrap()[0], V(v) if crate::model::is_stale_nan(v)));
        assert!(expand_values("1+x").is_err());
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(go_duration(180_000), "3m0s");
        assert_eq!(go_duration(3_630_000), "1h0m30s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(0), "0s");
    }
}

//! Aggregation operators (`sum`, `topk`, `count_values`, …) with Prometheus 2.42's float
//! arithmetic (`aggregation()` in `promql/engine.go`).

use super::QueryError;
use super::eval::{Ctx, Range, StepArg};
use super::functions::{quantile, valid_label_name};
use super::storage::Labels;
use super::value::{Sample, Val};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn eval_aggregate(ctx: &Ctx<'_>, agg: &AggregateExpr, range: Range) -> Result<Val, QueryError> {
    let op_name = agg.op.to_string();
    let op = op_name.as_str();
    let (without, mut grouping): (bool, Vec<String>) = match &agg.modifier {
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
        None => (false, Vec::new()),
    };
    grouping.sort();
    grouping.dedup();
    let param = match agg.param.as_deref().map(super::eval::unwrap_parens) {
        None => Val::Scalar(Vec::new()),
        Some(Expr::StringLiteral(s)) => Val::Str(s.val.clone()),
        Some(p) => ctx.eval(p, range)?,
    };
    if let (true, Val::Str(l)) = (op == "count_values", &param)
        && !valid_label_name(l)
    {
        return Err(QueryError::Execution(format!("invalid label name {l:?}")));
    }
    let inner = ctx.eval(&agg.expr, range)?;
    let vals = [param, inner];
    let series = ctx.range_eval(range, &vals, |_ts, args| {
        let param = match &args[0] {
            StepArg::Scalar(v) => Param::Num(*v),
            StepArg::Str(s) => Param::Str(s.clone()),
            _ => Param::Num(0.0),
        };
        let input = args[1].take_vector();
        aggregate(op, &grouping, without, param, input)
    })?;
    Ok(Val::Vector(series))
}

enum Param {
    Num(f64),
    Str(String),
}

struct Group {
    labels: Arc<Labels>,
    value: f64,
    mean: f64,
    count: u64,
    members: Vec<Sample>,
}

fn in_group(n: &str, grouping: &[String], without: bool) -> bool {
    if without {
        n != "__name__" && !grouping.iter().any(|g| g == n)
    } else {
        grouping.iter().any(|g| g == n)
    }
}

/// The grouping key of one input series, written into `key` to reuse its allocation.
fn group_key(key: &mut String, labels: &Labels, grouping: &[String], without: bool) {
    key.clear();
    for (n, v) in labels {
        if in_group(n, grouping, without) {
            key.push_str(n);
            key.push('\u{ff}');
            key.push_str(v);
            key.push('\u{ff}');
        }
    }
}

/// The output labels of a new group.
fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    labels.iter().filter(|(n, _)| in_group(n, grouping, without)).cloned().collect()
}

fn aggregate(
    op: &str,
    grouping: &[String],
    without: bool,
    param: Param,
    input: Vec<Sample>,
) -> Result<Vec<Sample>, QueryError> {
    let mut k: usize = 0;
    let mut q = 0.0;
    if op == "topk" || op == "bottomk" {
        let f = match param {
            Param::Num(f) => f,
            Param::Str(_) => f64::NAN,
        };
        if !(f.is_finite() && (-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&f)) {
            return Err(QueryError::Execution(format!("Scalar value {} overflows int64", go_v(f))));
        }
        let ki = f as i64;
        if ki < 1 {
            return Ok(Vec::new());
        }
        k = usize::try_from(ki).unwrap_or(usize::MAX);
    }
    if let (true, Param::Num(f)) = (op == "quantile", &param) {
        q = *f;
    }
    let value_label = match (&param, op) {
        (Param::Str(s), "count_values") => Some(s.clone()),
        _ => None,
    };
    let mut grouping_cv: Vec<String> = grouping.to_vec();
    if let (Some(l), false) = (&value_label, without) {
        grouping_cv.push(l.clone());
        grouping_cv.sort();
    }
    let grouping = if value_label.is_some() { &grouping_cv[..] } else { grouping };

    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut key = String::new();
    for s in input {
        let labels_for_group: Arc<Labels> = match &value_label {
            Some(l) => Arc::new(super::functions::set_label(&s.labels, l, &format_f(s.v))),
            None => s.labels.clone(),
        };
        group_key(&mut key, &labels_for_group, grouping, without);
        match groups.get_mut(&key) {
            None => {
                let mut g = Group {
                    labels: Arc::new(group_labels(&labels_for_group, grouping, without)),
                    value: s.v,
                    mean: s.v,
                    count: 1,
                    members: Vec::new(),
                };
                match op {
                    "stddev" | "stdvar" => g.value = 0.0,
                    "group" => g.value = 1.0,
                    "topk" | "bottomk" | "quantile" => g.members.push(s),
                    _ => {}
                }
                order.push(key.clone());
                groups.insert(key.clone(), g);
            }
            Some(g) => match op {
                "sum" => g.value += s.v,
                "avg" => {
                    g.count += 1;
                    let c = g.count as f64;
                    if g.mean.is_infinite() {
                        if s.v.is_infinite() && (g.mean > 0.0) == (s.v > 0.0) {
                            continue;
                        }
                        if !s.v.is_infinite() && !s.v.is_nan() {
                            continue;
                        }
                    }
                    g.mean += s.v / c - g.mean / c;
                }
                "group" => {}
                "max" => {
                    if g.value < s.v || g.value.is_nan() {
                        g.value = s.v;
                    }
                }
                "min" => {
                    if g.value > s.v || g.value.is_nan() {
                        g.value = s.v;
                    }
                }
                "count" | "count_values" => g.count += 1,
                "stddev" | "stdvar" => {
                    g.count += 1;
                    let delta = s.v - g.mean;
                    g.mean += delta / g.count as f64;
                    g.value += delta * (s.v - g.mean);
                }
                "topk" => push_bounded(&mut g.members, s, k, false),
                "bottomk" => push_bounded(&mut g.members, s, k, true),
                "quantile" => g.members.push(s),
                other => return Err(QueryError::Execution(format!("unknown aggregation {other:?}"))),
            },
        }
    }

    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let Some(mut g) = groups.remove(&key) else { continue };
        let v = match op {
            "avg" => g.mean,
            "count" | "count_values" => g.count as f64,
            "stdvar" => g.value / g.count as f64,
            "stddev" => (g.value / g.count as f64).sqrt(),
            "topk" | "bottomk" => {
                let desc = op == "topk";
                g.members.sort_by(|a, b| heap_order(a.v, b.v, !desc).reverse());
                out.append(&mut g.members);
                continue;
            }
            "quantile" => {
                let mut vals: Vec<f64> = g.members.iter().map(|s| s.v).collect();
                quantile(q, &mut vals)
            }
            _ => g.value,
        };
        out.push(Sample { labels: g.labels, v });
    }
    Ok(out)
}

/// Order of Prometheus's value heaps: for topk the root is the smallest value (NaN counts as
/// smallest); for bottomk (`reverse`) the root is the largest (NaN counts as largest).
fn heap_order(a: f64, b: f64, reverse: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Less,
        (false, true) => Greater,
        _ if reverse => b.total_cmp(&a),
        _ => a.total_cmp(&b),
    }
}

/// Keeps the k best samples; replaces the heap root (worst kept) when the new one beats it,
/// as Prometheus's heap does (so ties keep the earlier sample).
fn push_bounded(members: &mut Vec<Sample>, s: Sample, k: usize, reverse: bool) {
    if members.len() < k {
        members.push(s);
        return;
    }
    // Find the root: the minimum under heap order.
    let mut root = 0;
    for (i, m) in members.iter().enumerate() {
        if heap_order(m.v, members[root].v, reverse) == std::cmp::Ordering::Less {
            root = i;
        }
    }
    let rv = members[root].v;
    let beats = if reverse { rv > s.v } else { rv < s.v };
    if beats || rv.is_nan() {
        members[root] = s;
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, the label value `count_values` writes.
fn format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn go_v(v: f64) -> String {
    crate::exposition::format_go_float(v)
}

//! Binary operators: arithmetic, comparisons (with `bool`), set operators, and vector matching
//! with `on`/`ignoring`/`group_left`/`group_right` (`VectorBinop` and friends in 2.42).

use super::QueryError;
use super::eval::{Ctx, Range};
use super::value::{Sample, Val, drop_metric_name, labels_to_string};
use crate::model::{Labels, METRIC_NAME};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

struct Matching {
    card: Card,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
}

/// Arithmetic drops the metric name; comparisons and (in 2.42) atan2 keep it.
fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "^" | "%")
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// Go's `vectorElemBinop` for floats: the value and whether a comparison keeps the element.
fn elem_binop(op: &str, l: f64, r: f64) -> (f64, bool) {
    match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "^" => (l.powf(r), true),
        "%" => (l % r, true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

fn scalar_binop(op: &str, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    if is_comparison(op) { if keep { 1.0 } else { 0.0 } } else { v }
}

pub(crate) fn eval_binary(ctx: &Ctx<'_>, b: &BinaryExpr, range: Range) -> Result<Val, QueryError> {
    let op_name = b.op.to_string();
    let op = op_name.as_str();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lt = b.lhs.value_type();
    let rt = b.rhs.value_type();
    let lhs = ctx.eval(&b.lhs, range)?;
    let rhs = ctx.eval(&b.rhs, range)?;
    match (lt, rt) {
        (ValueType::Scalar, ValueType::Scalar) => {
            let (Val::Scalar(l), Val::Scalar(r)) = (&lhs, &rhs) else {
                return Err(QueryError::Execution("expected scalars".into()));
            };
            Ok(Val::Scalar(l.iter().zip(r).map(|(a, b)| scalar_binop(op, *a, *b)).collect()))
        }
        (ValueType::Vector, ValueType::Scalar) | (ValueType::Scalar, ValueType::Vector) => {
            let swap = lt == ValueType::Scalar;
            let vals = if swap { [rhs, lhs] } else { [lhs, rhs] };
            let series = ctx.range_eval(range, &vals, |_ts, args| {
                let s = args[1].scalar();
                let vec = args[0].take_vector();
                Ok(vector_scalar(op, vec, s, swap, return_bool))
            })?;
            Ok(Val::Vector(series))
        }
        (ValueType::Vector, ValueType::Vector) => {
            let matching = matching_of(b, op);
            let vals = [lhs, rhs];
            let series = ctx.range_eval(range, &vals, |_ts, args| {
                let l = args[0].take_vector();
                let r = args[1].take_vector();
                match op {
                    "and" => Ok(vector_and(l, r, &matching)),
                    "or" => Ok(vector_or(l, r, &matching)),
                    "unless" => Ok(vector_unless(l, r, &matching)),
                    _ => vector_binop(op, l, r, &matching, return_bool),
                }
            })?;
            Ok(Val::Vector(series))
        }
        _ => Err(QueryError::Execution(
            "binary expression must contain only scalar and instant vector types".into(),
        )),
    }
}

fn matching_of(b: &BinaryExpr, op: &str) -> Matching {
    let set_op = matches!(op, "and" | "or" | "unless");
    let mut m = Matching {
        card: if set_op { Card::ManyToMany } else { Card::OneToOne },
        on: false,
        labels: Vec::new(),
        include: Vec::new(),
    };
    if let Some(modi) = &b.modifier {
        match &modi.matching {
            Some(LabelModifier::Include(l)) => {
                m.on = true;
                m.labels = l.labels.clone();
            }
            Some(LabelModifier::Exclude(l)) => m.labels = l.labels.clone(),
            None => {}
        }
        if !set_op {
            match &modi.card {
                VectorMatchCardinality::ManyToOne(l) => {
                    m.card = Card::ManyToOne;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::OneToMany(l) => {
                    m.card = Card::OneToMany;
                    m.include = l.labels.clone();
                }
                _ => {}
            }
        }
    }
    m
}

/// The join key: the `on` labels, or every label except the `ignoring` ones and the name.
fn signature(labels: &Labels, m: &Matching) -> String {
    let mut key = String::new();
    if m.on {
        for name in &m.labels {
            key.push_str(labels.get(name).unwrap_or(""));
            key.push('\u{ff}');
        }
    } else {
        for (n, v) in labels.iter() {
            if n == METRIC_NAME || m.labels.iter().any(|l| l == n) {
                continue;
            }
            key.push_str(n);
            key.push('\u{ff}');
            key.push_str(v);
            key.push('\u{ff}');
        }
    }
    key
}

fn match_labels(labels: &Labels, m: &Matching) -> Labels {
    let listed = |n: &str| m.labels.iter().any(|l| l == n);
    labels.filtered(|n| if m.on { listed(n) } else { n != METRIC_NAME && !listed(n) })
}

fn vector_scalar(op: &str, vec: Vec<Sample>, s: f64, swap: bool, return_bool: bool) -> Vec<Sample> {
    let mut out = Vec::with_capacity(vec.len());
    let drop = drops_name(op) || return_bool;
    for mut smp in vec {
        let (l, r) = if swap { (s, smp.v) } else { (smp.v, s) };
        let (mut v, mut keep) = elem_binop(op, l, r);
        // A scalar on the left of a comparison still yields the vector element's value.
        if is_comparison(op) && swap {
            v = r;
        }
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            smp.v = v;
            if drop {
                smp.labels = drop_metric_name(&smp.labels);
            }
            out.push(smp);
        }
    }
    out
}

fn vector_and(l: Vec<Sample>, r: Vec<Sample>, m: &Matching) -> Vec<Sample> {
    if l.is_empty() || r.is_empty() {
        return Vec::new();
    }
    let right: HashSet<String> = r.iter().map(|s| signature(&s.labels, m)).collect();
    l.into_iter().filter(|s| right.contains(&signature(&s.labels, m))).collect()
}

fn vector_or(l: Vec<Sample>, r: Vec<Sample>, m: &Matching) -> Vec<Sample> {
    if l.is_empty() {
        return r;
    }
    if r.is_empty() {
        return l;
    }
    let left: HashSet<String> = l.iter().map(|s| signature(&s.labels, m)).collect();
    let mut out = l;
    out.extend(r.into_iter().filter(|s| !left.contains(&signature(&s.labels, m))));
    out
}

fn vector_unless(l: Vec<Sample>, r: Vec<Sample>, m: &Matching) -> Vec<Sample> {
    if l.is_empty() || r.is_empty() {
        return l;
    }
    let right: HashSet<String> = r.iter().map(|s| signature(&s.labels, m)).collect();
    l.into_iter().filter(|s| !right.contains(&signature(&s.labels, m))).collect()
}

fn vector_binop(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: &Matching,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    // One-to-many is many-to-one with the sides swapped; values are swapped back below.
    let (lhs, rhs) = if m.card == Card::OneToMany { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: HashMap<String, Sample> = HashMap::with_capacity(rhs.len());
    for rs in rhs {
        let sig = signature(&rs.labels, m);
        if let Some(dup) = right.get(&sig) {
            let side = if m.card == Card::OneToMany { "left" } else { "right" };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                labels_to_string(&match_labels(&rs.labels, m)),
                labels_to_string(&rs.labels),
                labels_to_string(&dup.labels),
            )));
        }
        right.insert(sig, rs);
    }
    let mut matched: HashMap<String, HashSet<Arc<Labels>>> = HashMap::new();
    let mut out = Vec::new();
    for ls in lhs {
        let sig = signature(&ls.labels, m);
        let Some(rs) = right.get(&sig) else { continue };
        let (vl, vr) = if m.card == Card::OneToMany { (rs.v, ls.v) } else { (ls.v, rs.v) };
        let (mut v, keep) = elem_binop(op, vl, vr);
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, m);
        if return_bool {
            metric = drop_metric_name(&metric);
        }
        match matched.get_mut(&sig) {
            Some(inserted) => {
                if m.card == Card::OneToOne {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                if !inserted.insert(metric.clone()) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique results".into(),
                    ));
                }
            }
            None => {
                let mut set = HashSet::new();
                if m.card != Card::OneToOne {
                    set.insert(metric.clone());
                }
                matched.insert(sig, set);
            }
        }
        out.push(Sample { labels: metric, v });
    }
    Ok(out)
}

fn result_metric(l: &Arc<Labels>, r: &Labels, op: &str, m: &Matching) -> Arc<Labels> {
    let drop_name = drops_name(op);
    let listed = |n: &str| m.labels.iter().any(|l| l == n);
    let mut out = l.filtered(|n| {
        if drop_name && n == METRIC_NAME {
            return false;
        }
        if m.card == Card::OneToOne {
            return m.on == listed(n);
        }
        true
    });
    for name in &m.include {
        // An include label the other side lacks is removed, as Prometheus's `Builder.Del`.
        out.set(name, r.get(name).unwrap_or(""));
    }
    if out == **l {
        return l.clone();
    }
    Arc::new(out)
}

//! Aggregation operators (`sum`, `topk`, `count_values`, …) with Prometheus 2.42's float
//! arithmetic (`aggregation()` in `promql/engine.go`).

use super::QueryError;
use super::eval::{Ctx, Range, StepArg};
use super::functions::{self, quantile};
use super::value::{Sample, Series, Val};
use crate::model::Labels;
use crate::model::labels::is_valid_label_name;
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};
use std::collections::{HashMap, HashSet};
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
        && !is_valid_label_name(l)
    {
        return Err(QueryError::Execution(format!("invalid label name {l:?}")));
    }
    if let Some(op) = FoldOp::of(op) {
        let mut fold = GroupFold::new(op, &grouping, without, range);
        // A range-vector function feeds the fold series by series: its per-series output is
        // never collected, so a query over many series holds only the groups.
        if let Expr::Call(call) = super::eval::unwrap_parens(&agg.expr)
            && functions::is_streamable_matrix_call(call.func.name)
        {
            let args: Vec<&Expr> = call.args.args.iter().map(|a| super::eval::unwrap_parens(a)).collect();
            let unique = args.iter().any(|a| functions::matrix_output_unique(a));
            let mut seen: HashSet<Arc<Labels>> = HashSet::new();
            functions::matrix_call_each(ctx, call.func.name, &args, range, &mut |s| {
                if !unique && !seen.insert(s.labels.clone()) {
                    return Err(QueryError::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
                fold.add(&s);
                // The output points were counted when produced; the fold keeps only groups.
                ctx.release_samples(s.points.len());
                Ok(())
            })?;
            return Ok(Val::Vector(fold.finish()));
        }
        match ctx.eval(&agg.expr, range)? {
            Val::Vector(series) => {
                for s in &series {
                    ctx.check("expression evaluation")?;
                    fold.add(s);
                }
            }
            _ => return Err(QueryError::Execution("expected instant vector".into())),
        }
        return Ok(Val::Vector(fold.finish()));
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

/// The aggregations whose result per group and step is a running fold of the members, which
/// [`GroupFold`] computes series by series instead of step by step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FoldOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
}

impl FoldOp {
    fn of(op: &str) -> Option<Self> {
        Some(match op {
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "count" => Self::Count,
            "group" => Self::Group,
            "stddev" => Self::Stddev,
            "stdvar" => Self::Stdvar,
            _ => return None,
        })
    }
}

/// One output group of a [`GroupFold`]: per-step accumulators, `count == 0` meaning no member
/// had a point at that step.
struct FoldGroup {
    labels: Arc<Labels>,
    /// (step, input index) of the first member point: the order `range_eval` would have
    /// created the group in, kept so results come out in the same order as the step-wise path.
    first: (usize, usize),
    value: Vec<f64>,
    mean: Vec<f64>,
    count: Vec<u64>,
}

/// Folds input series into their groups: the grouping key is computed once per series, and
/// each point lands in its group's accumulator for its step. Members are folded in input
/// order at every step, so the float results are bit-identical to Prometheus's per-step loop.
pub(crate) struct GroupFold<'a> {
    op: FoldOp,
    grouping: &'a [String],
    without: bool,
    range: Range,
    steps: usize,
    index: HashMap<String, usize>,
    groups: Vec<FoldGroup>,
    key: String,
    seen: usize,
}

impl<'a> GroupFold<'a> {
    pub(crate) fn new(op: FoldOp, grouping: &'a [String], without: bool, range: Range) -> Self {
        Self {
            op,
            grouping,
            without,
            range,
            steps: range.steps(),
            index: HashMap::new(),
            groups: Vec::new(),
            key: String::new(),
            seen: 0,
        }
    }

    pub(crate) fn add(&mut self, s: &Series) {
        let seq = self.seen;
        self.seen += 1;
        let Some(&(t0, _)) = s.points.first() else { return };
        group_key(&mut self.key, &s.labels, self.grouping, self.without);
        let gi = match self.index.get(&self.key) {
            Some(&i) => i,
            None => {
                let i = self.groups.len();
                let steps = self.steps;
                let with_mean = matches!(self.op, FoldOp::Avg | FoldOp::Stddev | FoldOp::Stdvar);
                self.groups.push(FoldGroup {
                    labels: Arc::new(group_labels(&s.labels, self.grouping, self.without)),
                    first: (usize::MAX, usize::MAX),
                    value: if self.op == FoldOp::Avg { Vec::new() } else { vec![0.0; steps] },
                    mean: if with_mean { vec![0.0; steps] } else { Vec::new() },
                    count: vec![0; steps],
                });
                self.index.insert(self.key.clone(), i);
                i
            }
        };
        let g = &mut self.groups[gi];
        let first_step = self.range.step_of(t0);
        if (first_step, seq) < g.first {
            g.first = (first_step, seq);
        }
        for &(t, v) in &s.points {
            let i = self.range.step_of(t);
            if i >= self.steps {
                continue;
            }
            let c = g.count[i];
            g.count[i] = c + 1;
            if c == 0 {
                match self.op {
                    FoldOp::Avg => g.mean[i] = v,
                    FoldOp::Stddev | FoldOp::Stdvar => {
                        g.value[i] = 0.0;
                        g.mean[i] = v;
                    }
                    FoldOp::Group => g.value[i] = 1.0,
                    _ => g.value[i] = v,
                }
                continue;
            }
            match self.op {
                FoldOp::Sum => g.value[i] += v,
                FoldOp::Avg => {
                    let c = (c + 1) as f64;
                    let mean = g.mean[i];
                    if mean.is_infinite() {
                        if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                            continue;
                        }
                        if !v.is_infinite() && !v.is_nan() {
                            continue;
                        }
                    }
                    g.mean[i] = mean + (v / c - mean / c);
                }
                FoldOp::Group | FoldOp::Count => {}
                FoldOp::Max => {
                    if g.value[i] < v || g.value[i].is_nan() {
                        g.value[i] = v;
                    }
                }
                FoldOp::Min => {
                    if g.value[i] > v || g.value[i].is_nan() {
                        g.value[i] = v;
                    }
                }
                FoldOp::Stddev | FoldOp::Stdvar => {
                    let delta = v - g.mean[i];
                    g.mean[i] += delta / (c + 1) as f64;
                    g.value[i] += delta * (v - g.mean[i]);
                }
            }
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Series> {
        self.groups.sort_by_key(|g| g.first);
        let mut out = Vec::with_capacity(self.groups.len());
        for g in self.groups {
            let mut points = Vec::new();
            for (i, &c) in g.count.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                let v = match self.op {
                    FoldOp::Avg => g.mean[i],
                    FoldOp::Count => c as f64,
                    FoldOp::Stdvar => g.value[i] / c as f64,
                    FoldOp::Stddev => (g.value[i] / c as f64).sqrt(),
                    _ => g.value[i],
                };
                points.push((self.range.ts(i), v));
            }
            out.push(Series { labels: g.labels, points });
        }
        out
    }
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
    for (n, v) in labels.iter() {
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
    labels.filtered(|n| in_group(n, grouping, without))
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
            Some(l) => Arc::new(s.labels.with_label(l, &format_f(s.v))),
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

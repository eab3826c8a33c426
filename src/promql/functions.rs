//! Every function of Prometheus 2.42, with its exact float semantics
//! (`promql/functions.go` of that release).

use super::QueryError;
use super::eval::{Ctx, Range, StepArg, Window, check_series_unique, unwrap_parens};
use super::storage::Labels;
use super::value::{Sample, Series, Val, drop_metric_name};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;

/// Go's `math.Max`: +Inf wins over NaN, then NaN wins, unlike `f64::max`.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: -Inf wins over NaN, then NaN wins.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

const MATRIX_FUNCS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "holt_winters",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
];

pub(crate) fn eval_call(ctx: &Ctx<'_>, call: &Call, range: Range) -> Result<Val, QueryError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
    if MATRIX_FUNCS.contains(&name) {
        return eval_matrix_call(ctx, name, &args, range);
    }
    match name {
        "pi" => return Ok(Val::Scalar(vec![std::f64::consts::PI; range.steps()])),
        "time" => return Ok(Val::Scalar((0..range.steps()).map(|i| range.ts(i) as f64 / 1000.0).collect())),
        "scalar" => {
            let series = ctx.eval_vector(args[0], range)?;
            let mut out = vec![f64::NAN; range.steps()];
            let mut count = vec![0u32; range.steps()];
            for s in &series {
                for &(t, v) in &s.points {
                    let i = usize::try_from((t - range.start) / range.interval).unwrap_or(0);
                    if i < out.len() {
                        count[i] += 1;
                        out[i] = v;
                    }
                }
            }
            for (o, c) in out.iter_mut().zip(count) {
                if c != 1 {
                    *o = f64::NAN;
                }
            }
            return Ok(Val::Scalar(out));
        }
        "timestamp" => {
            // On a plain selector the sample's own time counts, not the step's.
            if let Expr::VectorSelector(vs) = args[0] {
                let series = ctx.eval_vector_selector(vs, range, true)?;
                check_series_unique(&series)?;
                return Ok(Val::Vector(series));
            }
        }
        _ => {}
    }
    let mut vals = Vec::with_capacity(args.len());
    for a in &args {
        vals.push(match a {
            Expr::StringLiteral(s) => Val::Str(s.val.clone()),
            _ => ctx.eval(a, range)?,
        });
    }
    let absent_labels = if name == "absent" { Some(Arc::new(absent_labels(args[0]))) } else { None };
    let mut label_regex: Option<Regex> = None;
    if name == "label_replace" {
        let re = string_arg(&args, 4);
        label_regex = Some(Regex::new(&format!("^(?:{re})$")).map_err(|_| {
            QueryError::Execution(format!("invalid regular expression in label_replace(): {re}"))
        })?);
        let dst = string_arg(&args, 1);
        if !valid_label_name(&dst) {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
    }
    if name == "label_join" {
        for i in 3..args.len() {
            let src = string_arg(&args, i);
            if !valid_label_name(&src) {
                return Err(QueryError::Execution(format!(
                    "invalid source label name in label_join(): {src}"
                )));
            }
        }
        let dst = string_arg(&args, 1);
        if !valid_label_name(&dst) {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
    }
    let mut relabel_cache: HashMap<Arc<Labels>, Arc<Labels>> = HashMap::new();
    let series = ctx.range_eval(range, &vals, |ts, step_args| {
        instant_fn(
            name,
            ts,
            step_args,
            &args,
            absent_labels.as_ref(),
            label_regex.as_ref(),
            &mut relabel_cache,
        )
    })?;
    Ok(Val::Vector(series))
}

fn string_arg(args: &[&Expr], i: usize) -> String {
    match args.get(i).map(|a| unwrap_parens(a)) {
        Some(Expr::StringLiteral(s)) => s.val.clone(),
        _ => String::new(),
    }
}

pub(crate) use crate::model::labels::is_valid_label_name as valid_label_name;

/// Labels `absent()` invents from the selector: equality matchers only, minus any label also
/// matched otherwise or twice (Prometheus's `createLabelsForAbsentFunction`).
fn absent_labels(expr: &Expr) -> Labels {
    let vs = match unwrap_parens(expr) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Vec::new(),
    };
    let mut set: Vec<(String, String)> = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == "__name__" {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !set.iter().any(|(n, _)| *n == m.name) {
            set.push((m.name.clone(), m.value.clone()));
        } else {
            remove.push(m.name.clone());
        }
    }
    set.retain(|(n, v)| !remove.contains(n) && !v.is_empty());
    set.sort();
    set
}

#[allow(clippy::too_many_arguments)]
fn instant_fn(
    name: &str,
    ts: i64,
    a: &mut [StepArg],
    exprs: &[&Expr],
    absent: Option<&Arc<Labels>>,
    regex: Option<&Regex>,
    cache: &mut HashMap<Arc<Labels>, Arc<Labels>>,
) -> Result<Vec<Sample>, QueryError> {
    let simple = |a: &mut [StepArg], f: &dyn Fn(f64) -> f64| -> Vec<Sample> {
        a[0].take_vector()
            .into_iter()
            .map(|s| Sample { labels: drop_metric_name(&s.labels), v: f(s.v) })
            .collect()
    };
    Ok(match name {
        "abs" => simple(a, &f64::abs),
        "ceil" => simple(a, &f64::ceil),
        "floor" => simple(a, &f64::floor),
        "exp" => simple(a, &f64::exp),
        "sqrt" => simple(a, &f64::sqrt),
        "ln" => simple(a, &f64::ln),
        "log2" => simple(a, &f64::log2),
        "log10" => simple(a, &f64::log10),
        "sin" => simple(a, &f64::sin),
        "cos" => simple(a, &f64::cos),
        "tan" => simple(a, &f64::tan),
        "asin" => simple(a, &f64::asin),
        "acos" => simple(a, &f64::acos),
        "atan" => simple(a, &f64::atan),
        "sinh" => simple(a, &f64::sinh),
        "cosh" => simple(a, &f64::cosh),
        "tanh" => simple(a, &f64::tanh),
        "asinh" => simple(a, &f64::asinh),
        "acosh" => simple(a, &f64::acosh),
        "atanh" => simple(a, &f64::atanh),
        "deg" => simple(a, &|v| v * 180.0 / std::f64::consts::PI),
        "rad" => simple(a, &|v| v * std::f64::consts::PI / 180.0),
        "sgn" => simple(a, &|v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "timestamp" => simple(a, &|_| ts as f64 / 1000.0),
        "clamp" => {
            let (min, max) = (a[1].scalar(), a[2].scalar());
            if max < min {
                return Ok(Vec::new());
            }
            simple(a, &|v| go_max(min, go_min(max, v)))
        }
        "clamp_max" => {
            let max = a[1].scalar();
            simple(a, &|v| go_min(max, v))
        }
        "clamp_min" => {
            let min = a[1].scalar();
            simple(a, &|v| go_max(min, v))
        }
        "round" => {
            let to_nearest = if a.len() >= 2 { a[1].scalar() } else { 1.0 };
            // Inverting first matches Prometheus's floating-point results.
            let inv = 1.0 / to_nearest;
            simple(a, &|v| (v * inv + 0.5).floor() / inv)
        }
        "vector" => vec![Sample { labels: Arc::new(Vec::new()), v: a[0].scalar() }],
        "absent" => {
            if a[0].take_vector().is_empty() {
                vec![Sample { labels: absent.cloned().unwrap_or_default(), v: 1.0 }]
            } else {
                Vec::new()
            }
        }
        "sort" => {
            let mut v = a[0].take_vector();
            // NaN sorts last.
            v.sort_by(|x, y| match (x.v.is_nan(), y.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => x.v.total_cmp(&y.v),
            });
            v
        }
        "sort_desc" => {
            let mut v = a[0].take_vector();
            v.sort_by(|x, y| match (x.v.is_nan(), y.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => y.v.total_cmp(&x.v),
            });
            v
        }
        "histogram_count" | "histogram_sum" => {
            // Native histograms only; float samples give nothing in 2.42.
            Vec::new()
        }
        "histogram_fraction" => Vec::new(),
        "histogram_quantile" => {
            let q = a[0].scalar();
            histogram_quantile(q, a[1].take_vector())
        }
        "label_replace" => {
            let dst = string_arg(exprs, 1);
            let repl = string_arg(exprs, 2);
            let src = string_arg(exprs, 3);
            let Some(re) = regex else { return Ok(Vec::new()) };
            a[0].take_vector()
                .into_iter()
                .map(|s| {
                    let labels = cache
                        .entry(s.labels.clone())
                        .or_insert_with(|| {
                            let src_val =
                                s.labels.iter().find(|(n, _)| *n == src).map_or("", |(_, v)| v.as_str());
                            match re.captures(src_val) {
                                None => s.labels.clone(),
                                Some(caps) => {
                                    let mut res = String::new();
                                    caps.expand(&repl, &mut res);
                                    Arc::new(set_label(&s.labels, &dst, &res))
                                }
                            }
                        })
                        .clone();
                    Sample { labels, v: s.v }
                })
                .collect()
        }
        "label_join" => {
            let dst = string_arg(exprs, 1);
            let sep = string_arg(exprs, 2);
            let srcs: Vec<String> = (3..exprs.len()).map(|i| string_arg(exprs, i)).collect();
            a[0].take_vector()
                .into_iter()
                .map(|s| {
                    let labels = cache
                        .entry(s.labels.clone())
                        .or_insert_with(|| {
                            let vals: Vec<&str> = srcs
                                .iter()
                                .map(|src| {
                                    s.labels.iter().find(|(n, _)| n == src).map_or("", |(_, v)| v.as_str())
                                })
                                .collect();
                            Arc::new(set_label(&s.labels, &dst, &vals.join(&sep)))
                        })
                        .clone();
                    Sample { labels, v: s.v }
                })
                .collect()
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month" | "month"
        | "year" => {
            let f = |t: f64| date_part(name, t as i64);
            if a.is_empty() {
                vec![Sample { labels: Arc::new(Vec::new()), v: date_part(name, ts.div_euclid(1000)) }]
            } else {
                simple(a, &f)
            }
        }
        other => return Err(QueryError::Execution(format!("function {other:?} is not implemented"))),
    })
}

/// Sets (or, with an empty value, removes) one label, keeping the set sorted.
pub(crate) fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut out: Labels = labels.iter().filter(|(n, _)| n != name).cloned().collect();
    if !value.is_empty() {
        let pos = out.partition_point(|(n, _)| n.as_str() < name);
        out.insert(pos, (name.to_string(), value.to_string()));
    }
    out
}

// ---- dates (UTC), hand-rolled civil-from-days ----

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

pub(crate) fn date_part(name: &str, secs: i64) -> f64 {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_month" => d as f64,
        "day_of_year" => {
            let before: u32 = (1..m).map(|mm| days_in_month(y, mm)).sum();
            (before + d) as f64
        }
        "days_in_month" => days_in_month(y, m) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

// ---- histogram_quantile over classic buckets ----

fn histogram_quantile(q: f64, samples: Vec<Sample>) -> Vec<Sample> {
    struct Group {
        labels: Arc<Labels>,
        buckets: Vec<(f64, f64)>,
    }
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Group> = HashMap::new();
    for s in samples {
        let Some(le) = s.labels.iter().find(|(n, _)| n == "le").map(|(_, v)| v.as_str()) else { continue };
        let Some(upper) = parse_go_float(le) else { continue };
        let key: Labels = s.labels.iter().filter(|(n, _)| n != "le").cloned().collect();
        let g = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Group {
                labels: Arc::new(key.iter().filter(|(n, _)| n != "__name__").cloned().collect()),
                buckets: Vec::new(),
            }
        });
        g.buckets.push((upper, s.v));
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        if let Some(mut g) = groups.remove(&key) {
            let v = bucket_quantile(q, &mut g.buckets);
            out.push(Sample { labels: g.labels, v });
        }
    }
    out
}

/// Go's `strconv.ParseFloat` for the values a `le` label holds.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" {
        return if s.len() == 3 { Some(f64::NAN) } else { None };
    }
    s.parse::<f64>().ok()
}

pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some((ub, _)) if *ub == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce equal upper bounds (e.g. "1" and "1.0").
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Monotonicity fix: counts can dip through scrape skew or precision loss.
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = merged.len() - 1;
    let b = merged[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return merged[n - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut bucket_start = 0.0;
    let bucket_end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        bucket_start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

// ---- range-vector functions ----

fn eval_matrix_call(ctx: &Ctx<'_>, name: &str, args: &[&Expr], range: Range) -> Result<Val, QueryError> {
    let mut out: Vec<Series> = Vec::new();
    let matrix_idx = matrix_call_each(ctx, name, args, range, &mut |s| {
        out.push(s);
        Ok(())
    })?;
    let steps = range.steps();
    if name == "absent_over_time" {
        let mut found = vec![false; steps];
        for s in &out {
            for p in &s.points {
                if let Ok(i) = usize::try_from((p.0 - range.start) / range.interval)
                    && i < steps
                {
                    found[i] = true;
                }
            }
        }
        let points: Vec<(i64, f64)> = (0..steps).filter(|i| !found[*i]).map(|i| (range.ts(i), 1.0)).collect();
        if points.is_empty() {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Series { labels: Arc::new(absent_labels(args[matrix_idx])), points }]));
    }
    check_series_unique(&out)?;
    Ok(Val::Vector(out))
}

/// Whether `name(args)` is a range-vector function whose output series can be consumed one
/// at a time (all but `absent_over_time`, which needs every series to answer).
pub(crate) fn is_streamable_matrix_call(name: &str) -> bool {
    name != "absent_over_time" && MatrixFn::of(name).is_some()
}

/// Whether the outputs of a range-vector call over `expr` are unique by construction: a
/// selector of one metric name stays unique after the name is dropped.
pub(crate) fn matrix_output_unique(expr: &Expr) -> bool {
    match unwrap_parens(expr) {
        Expr::MatrixSelector(ms) => {
            ms.vs.name.is_some()
                || ms.vs.matchers.matchers.iter().any(|m| m.name == "__name__" && m.op == PMatchOp::Equal)
        }
        _ => false,
    }
}

/// Evaluates a range-vector function series by series, handing each output series (those
/// with at least one point) to `sink` as soon as it is computed; the raw samples of a series
/// are dropped before the next one is read. Returns the index of the range-vector argument.
pub(crate) fn matrix_call_each(
    ctx: &Ctx<'_>,
    name: &str,
    args: &[&Expr],
    range: Range,
    sink: &mut dyn FnMut(Series) -> Result<(), QueryError>,
) -> Result<usize, QueryError> {
    let f = MatrixFn::of(name)
        .ok_or_else(|| QueryError::Execution(format!("function {name:?} is not implemented")))?;
    let matrix_idx = args
        .iter()
        .position(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_)))
        .ok_or_else(|| QueryError::Execution(format!("{name}: expected a range vector argument")))?;
    let mut others: Vec<Vec<f64>> = vec![Vec::new(); args.len()];
    for (i, a) in args.iter().enumerate() {
        if i != matrix_idx {
            match ctx.eval(a, range)? {
                Val::Scalar(v) => others[i] = v,
                _ => return Err(QueryError::Execution(format!("{name}: expected a scalar argument"))),
            }
        }
    }
    let steps = range.steps();
    let mut scalars = vec![0.0; args.len()];
    let keep_name = f == MatrixFn::LastOverTime;
    ctx.for_each_range_series(args[matrix_idx], range, &mut |win: Window, s: Series| {
        ctx.check("expression evaluation")?;
        let pts = &s.points[..];
        let mut points = Vec::new();
        // Samples of this series counted against the limit so far: each raw sample once, when
        // it enters the sliding window (Prometheus's matrixIterSlice), not once per step.
        let mut counted_to = 0usize;
        let mut held = 0usize;
        // Window bounds only move forward with the steps, so both ends slide: every sample is
        // passed over once per series, not searched for at every step.
        let (mut lo, mut hi) = (0usize, 0usize);
        for step in 0..steps {
            ctx.check("expression evaluation")?;
            let ts = range.ts(step);
            let rend = win.at_ms.unwrap_or(ts) - win.offset_ms;
            let rstart = rend - win.range_ms;
            while hi < pts.len() && pts[hi].0 <= rend {
                hi += 1;
            }
            while lo < hi && pts[lo].0 < rstart {
                lo += 1;
            }
            if lo >= hi {
                continue;
            }
            let entering = hi.saturating_sub(lo.max(counted_to));
            ctx.add_samples(entering)?;
            held += entering;
            counted_to = counted_to.max(hi);
            for (i, o) in others.iter().enumerate() {
                if i != matrix_idx {
                    scalars[i] = o.get(step).copied().unwrap_or(f64::NAN);
                }
            }
            if let Some(v) = matrix_fn(f, &pts[lo..hi], &scalars, ts, rstart, rend, win.range_ms)? {
                if points.capacity() == 0 {
                    points.reserve_exact(steps - step);
                }
                points.push((ts, v));
            }
        }
        // The window is dropped; the output points stay held until the query ends.
        ctx.release_samples(held);
        if points.is_empty() {
            return Ok(());
        }
        ctx.add_samples(points.len())?;
        let labels = if keep_name { s.labels } else { drop_metric_name(&s.labels) };
        sink(Series { labels, points })
    })?;
    Ok(matrix_idx)
}

/// A range-vector function, resolved once per call rather than by name at every step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MatrixFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    HoltWinters,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    LastOverTime,
    PresentOverTime,
    AbsentOverTime,
}

impl MatrixFn {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "rate" => Self::Rate,
            "increase" => Self::Increase,
            "delta" => Self::Delta,
            "irate" => Self::Irate,
            "idelta" => Self::Idelta,
            "deriv" => Self::Deriv,
            "predict_linear" => Self::PredictLinear,
            "holt_winters" => Self::HoltWinters,
            "resets" => Self::Resets,
            "changes" => Self::Changes,
            "avg_over_time" => Self::AvgOverTime,
            "min_over_time" => Self::MinOverTime,
            "max_over_time" => Self::MaxOverTime,
            "sum_over_time" => Self::SumOverTime,
            "count_over_time" => Self::CountOverTime,
            "quantile_over_time" => Self::QuantileOverTime,
            "stddev_over_time" => Self::StddevOverTime,
            "stdvar_over_time" => Self::StdvarOverTime,
            "last_over_time" => Self::LastOverTime,
            "present_over_time" => Self::PresentOverTime,
            "absent_over_time" => Self::AbsentOverTime,
            _ => return None,
        })
    }
}

fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}

#[allow(clippy::too_many_arguments)]
fn matrix_fn(
    f: MatrixFn,
    w: &[(i64, f64)],
    scalars: &[f64],
    ts: i64,
    rstart: i64,
    rend: i64,
    range_ms: i64,
) -> Result<Option<f64>, QueryError> {
    let n = w.len();
    Ok(match f {
        MatrixFn::Rate => extrapolated_rate(w, rstart, rend, range_ms, true, true),
        MatrixFn::Increase => extrapolated_rate(w, rstart, rend, range_ms, true, false),
        MatrixFn::Delta => extrapolated_rate(w, rstart, rend, range_ms, false, false),
        MatrixFn::Irate | MatrixFn::Idelta => {
            if n < 2 {
                return Ok(None);
            }
            let (lt, lv) = w[n - 1];
            let (pt, pv) = w[n - 2];
            let is_rate = f == MatrixFn::Irate;
            let mut v = if is_rate && lv < pv { lv } else { lv - pv };
            let dt = lt - pt;
            if dt == 0 {
                return Ok(None);
            }
            if is_rate {
                v /= dt as f64 / 1000.0;
            }
            Some(v)
        }
        MatrixFn::Deriv => {
            if n < 2 {
                return Ok(None);
            }
            Some(linear_regression(w, w[0].0).0)
        }
        MatrixFn::PredictLinear => {
            if n < 2 {
                return Ok(None);
            }
            let (slope, intercept) = linear_regression(w, ts);
            Some(slope * scalars[1] + intercept)
        }
        MatrixFn::HoltWinters => {
            let (sf, tf) = (scalars[1], scalars[2]);
            if sf <= 0.0 || sf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(QueryError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                )));
            }
            if n < 2 {
                return Ok(None);
            }
            let (mut s0, mut s1) = (0.0, w[0].1);
            let mut b = w[1].1 - w[0].1;
            for (i, p) in w.iter().enumerate().skip(1) {
                let x = sf * p.1;
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let y = (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            Some(s1)
        }
        MatrixFn::Resets => Some(w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64),
        MatrixFn::Changes => {
            Some(w.windows(2).filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan())).count()
                as f64)
        }
        MatrixFn::AvgOverTime => {
            let (mut mean, mut count) = (0.0f64, 0.0f64);
            for &(_, v) in w {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                mean += v / count - mean / count;
            }
            Some(mean)
        }
        MatrixFn::SumOverTime => Some(w.iter().map(|p| p.1).sum()),
        MatrixFn::CountOverTime => Some(n as f64),
        MatrixFn::PresentOverTime | MatrixFn::AbsentOverTime => Some(1.0),
        MatrixFn::LastOverTime => Some(w[n - 1].1),
        MatrixFn::MaxOverTime => {
            let mut m = w[0].1;
            for &(_, v) in w {
                if v > m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        MatrixFn::MinOverTime => {
            let mut m = w[0].1;
            for &(_, v) in w {
                if v < m || m.is_nan() {
                    m = v;
                }
            }
            Some(m)
        }
        MatrixFn::QuantileOverTime => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(quantile(scalars[0], &mut vals))
        }
        MatrixFn::StddevOverTime | MatrixFn::StdvarOverTime => {
            let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for &(_, v) in w {
                count += 1.0;
                let delta = v - (mean + c_mean);
                (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
                (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
            }
            let var = (aux + c_aux) / count;
            Some(if f == MatrixFn::StddevOverTime { var.sqrt() } else { var })
        }
    })
}

/// Prometheus's `extrapolatedRate`: the increase between the first and last sample of the
/// window, extrapolated towards the window edges by at most half a sample interval (or to the
/// counter's zero point).
fn extrapolated_rate(
    w: &[(i64, f64)],
    rstart: i64,
    rend: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let n = w.len();
    if n < 2 {
        return None;
    }
    let (first_t, first_v) = w[0];
    let (last_t, last_v) = w[n - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut last = 0.0;
        for &(_, v) in w {
            if v < last {
                result += last;
            }
            last = v;
        }
    }
    let mut duration_to_start = (first_t - rstart) as f64 / 1000.0;
    let duration_to_end = (rend - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg_between = sampled / (n - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let duration_to_zero = sampled * (first_v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold { duration_to_start } else { avg_between / 2.0 };
    interval += if duration_to_end < threshold { duration_to_end } else { avg_between / 2.0 };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

fn linear_regression(w: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut sum_y, mut sum_xy, mut sum_x2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = w[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in w.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_time) as f64 / 1e3;
        sum_x += x;
        sum_y += v;
        sum_xy += x * v;
        sum_x2 += x * x;
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks; NaN sorts first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = go_max(0.0, rank.floor());
    let upper = go_min(n - 1.0, lower + 1.0);
    if lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_go_time() {
        // 2024-02-29T13:45:00Z, a Thursday.
        let t = 1_709_214_300;
        assert_eq!(date_part("year", t), 2024.0);
        assert_eq!(date_part("month", t), 2.0);
        assert_eq!(date_part("day_of_month", t), 29.0);
        assert_eq!(date_part("days_in_month", t), 29.0);
        assert_eq!(date_part("day_of_week", t), 4.0);
        assert_eq!(date_part("day_of_year", t), 60.0);
        assert_eq!(date_part("hour", t), 13.0);
        assert_eq!(date_part("minute", t), 45.0);
        // Before the epoch: 1969-12-31T23:59:59Z, a Wednesday.
        assert_eq!(date_part("year", -1), 1969.0);
        assert_eq!(date_part("day_of_week", -1), 3.0);
        assert_eq!(date_part("minute", -1), 59.0);
    }

    #[test]
    fn bucket_quantile_edge_cases() {
        let mut b = vec![(1.0, 10.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 0.5);
        // No +Inf bucket.
        assert!(bucket_quantile(0.5, &mut [(1.0, 10.0)]).is_nan());
        // Non-monotonic counts are fixed up, not rejected.
        let mut b = vec![(1.0, 10.0), (2.0, 8.0), (f64::INFINITY, 12.0)];
        assert_eq!(bucket_quantile(0.5, &mut b), 0.6);
        // The rank falls in the +Inf bucket: the highest finite bound.
        let mut b = vec![(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.99, &mut b), 1.0);
        assert_eq!(bucket_quantile(-1.0, &mut b), f64::NEG_INFINITY);
    }

    #[test]
    fn go_min_max_propagate_nan() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert!(go_min(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(-0.0, 0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(go_max(f64::INFINITY, f64::NAN), f64::INFINITY);
    }
}

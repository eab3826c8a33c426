//! Range-vector functions (`rate`, `increase`, `*_over_time`, `deriv`, …): the window each
//! step sees and what each function makes of it, streamed one series at a time when it can be.

use super::histogram::quantile;
use crate::model::Labels;
use crate::promql::QueryError;
use crate::promql::eval::{Ctx, Range, Window, check_series_unique, unwrap_parens};
use crate::promql::value::{Series, Val, drop_metric_name};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;
use std::sync::Arc;

pub(super) fn eval_matrix_call(
    ctx: &Ctx<'_>,
    name: &str,
    args: &[&Expr],
    range: Range,
) -> Result<Val, QueryError> {
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

/// Labels `absent()` invents from the selector: equality matchers only, minus any label also
/// matched otherwise or twice (Prometheus's `createLabelsForAbsentFunction`).
pub(super) fn absent_labels(expr: &Expr) -> Labels {
    let vs = match unwrap_parens(expr) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
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
    set.retain(|(n, _)| !remove.contains(n));
    // Names are unique here; from_pairs sorts them and drops empty values.
    Labels::from_pairs(set)
}

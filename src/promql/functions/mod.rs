//! Every function of Prometheus 2.42, with its exact float semantics
//! (`promql/functions.go` of that release).

use super::QueryError;
use super::eval::{Ctx, Range, StepArg, check_series_unique, unwrap_parens};
use super::value::{Sample, Val, drop_metric_name};
use crate::model::Labels;
use promql_parser::parser::{Call, Expr};
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;

mod dates;
mod histogram;
mod range;

pub(crate) use dates::date_part;
use histogram::histogram_quantile;
pub(crate) use histogram::quantile;

use range::{absent_labels, eval_matrix_call};
pub(crate) use range::{is_streamable_matrix_call, matrix_call_each, matrix_output_unique};

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
        if !is_valid_label_name(&dst) {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
    }
    if name == "label_join" {
        for i in 3..args.len() {
            let src = string_arg(&args, i);
            if !is_valid_label_name(&src) {
                return Err(QueryError::Execution(format!(
                    "invalid source label name in label_join(): {src}"
                )));
            }
        }
        let dst = string_arg(&args, 1);
        if !is_valid_label_name(&dst) {
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

use crate::model::labels::is_valid_label_name;

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
        "vector" => vec![Sample { labels: Arc::new(Labels::new()), v: a[0].scalar() }],
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
                            let src_val = s.labels.get(&src).unwrap_or("");
                            match re.captures(src_val) {
                                None => s.labels.clone(),
                                Some(caps) => {
                                    let mut res = String::new();
                                    caps.expand(&repl, &mut res);
                                    // An empty result removes the label, as in Prometheus.
                                    Arc::new(s.labels.with_label(&dst, &res))
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
                            let vals: Vec<&str> =
                                srcs.iter().map(|src| s.labels.get(src).unwrap_or("")).collect();
                            Arc::new(s.labels.with_label(&dst, &vals.join(&sep)))
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
                vec![Sample { labels: Arc::new(Labels::new()), v: date_part(name, ts.div_euclid(1000)) }]
            } else {
                simple(a, &f)
            }
        }
        other => return Err(QueryError::Execution(format!("function {other:?} is not implemented"))),
    })
}

#[cfg(test)]
mod tests {
    use super::histogram::bucket_quantile;
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

//! `histogram_quantile` over classic buckets and `quantile`, as Prometheus 2.42 computes them.

use super::{go_max, go_min};
use crate::model::{Labels, METRIC_NAME};
use crate::promql::value::Sample;
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn histogram_quantile(q: f64, samples: Vec<Sample>) -> Vec<Sample> {
    struct Group {
        labels: Arc<Labels>,
        buckets: Vec<(f64, f64)>,
    }
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: HashMap<Labels, Group> = HashMap::new();
    for s in samples {
        let Some(le) = s.labels.get("le") else { continue };
        let Some(upper) = parse_go_float(le) else { continue };
        let key = s.labels.without(&["le"]);
        match groups.get_mut(&key) {
            Some(g) => g.buckets.push((upper, s.v)),
            None => {
                let labels = Arc::new(key.without(&[METRIC_NAME]));
                order.push(key.clone());
                groups.insert(key, Group { labels, buckets: vec![(upper, s.v)] });
            }
        }
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

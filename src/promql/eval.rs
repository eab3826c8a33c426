//! The evaluator: selectors, subqueries, function calls and the step loop (`range_eval`).

use super::storage::{Queryable, SeriesData};
use super::value::{InstantSample, QueryValue, RangeSeries, Sample, Series, Val, drop_metric_name};
use super::{QueryError, aggregate, binary, duration_ms, functions};
use crate::model::{Labels, MatchOp, Matcher, is_stale_nan};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The time grid one node is evaluated on. Instant evaluation is `start == end`, `interval 1`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

impl Range {
    pub fn steps(&self) -> usize {
        usize::try_from(self.end.saturating_sub(self.start) / self.interval.max(1) + 1).unwrap_or(0)
    }
    pub fn ts(&self, step: usize) -> i64 {
        self.start + step as i64 * self.interval
    }
    /// The step a point of this grid sits at (points of evaluated vectors are at step times).
    pub fn step_of(&self, t: i64) -> usize {
        usize::try_from((t - self.start) / self.interval).unwrap_or(usize::MAX)
    }
    fn is_instant(&self) -> bool {
        self.start == self.end
    }
}

/// One step's view of an argument of `range_eval`.
pub(crate) enum StepArg {
    Scalar(f64),
    Vector(Vec<Sample>),
    Str(String),
    None,
}

impl StepArg {
    pub fn scalar(&self) -> f64 {
        match self {
            StepArg::Scalar(v) => *v,
            _ => f64::NAN,
        }
    }
    pub fn take_vector(&mut self) -> Vec<Sample> {
        match std::mem::replace(self, StepArg::None) {
            StepArg::Vector(v) => v,
            _ => Vec::new(),
        }
    }
}

/// Where the window of a range-vector argument sits relative to each step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at_ms: Option<i64>,
}

/// The raw samples a range-vector function reads, with the window geometry.
pub(crate) struct RangeSource {
    pub series: Vec<Series>,
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at_ms: Option<i64>,
}

pub(crate) struct Ctx<'a> {
    pub q: &'a dyn Queryable,
    pub lookback: i64,
    pub max_samples: usize,
    pub samples: Cell<usize>,
    pub deadline: Instant,
    pub cancel: Option<&'a AtomicBool>,
    pub query_start: i64,
    pub query_end: i64,
    pub default_subquery_step: i64,
    pub checks: Cell<u32>,
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(d),
        Err(e) => -duration_ms(e.duration()),
    }
}

impl Ctx<'_> {
    pub fn run(&self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<QueryValue, QueryError> {
        let instant = step == 0;
        let range = Range { start, end, interval: if instant { 1 } else { step } };
        let val = self.eval(expr, range)?;
        Ok(match val {
            Val::Scalar(vs) if instant => {
                QueryValue::Scalar { t_ms: start, v: vs.first().copied().unwrap_or(f64::NAN) }
            }
            Val::Scalar(vs) => QueryValue::Matrix(vec![RangeSeries {
                labels: Arc::new(Labels::new()),
                points: vs.into_iter().enumerate().map(|(i, v)| (range.ts(i), v)).collect(),
            }]),
            Val::Str(s) => QueryValue::String { t_ms: start, v: s },
            Val::Vector(series) if instant => QueryValue::Vector(
                series
                    .into_iter()
                    .filter_map(|s| {
                        s.points.first().map(|p| InstantSample { labels: s.labels, t_ms: start, v: p.1 })
                    })
                    .collect(),
            ),
            Val::Vector(mut series) => {
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                QueryValue::Matrix(
                    series.into_iter().map(|s| RangeSeries { labels: s.labels, points: s.points }).collect(),
                )
            }
            Val::Matrix(series) => QueryValue::Matrix(
                series.into_iter().map(|s| RangeSeries { labels: s.labels, points: s.points }).collect(),
            ),
        })
    }

    /// Checks the deadline and the cancel flag; cheap enough for inner loops.
    pub fn check(&self, stage: &'static str) -> Result<(), QueryError> {
        let n = self.checks.get().wrapping_add(1);
        self.checks.set(n);
        if !n.is_multiple_of(64) {
            return Ok(());
        }
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(QueryError::Canceled(stage));
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout(stage));
        }
        Ok(())
    }

    pub fn add_samples(&self, n: usize) -> Result<(), QueryError> {
        let total = self.samples.get().saturating_add(n);
        self.samples.set(total);
        if total > self.max_samples {
            return Err(QueryError::TooManySamples("query execution"));
        }
        Ok(())
    }

    /// Gives back samples counted by [`add_samples`](Self::add_samples) once they are no
    /// longer held (a range function's window after its series is done), so the limit bounds
    /// the samples held at once, as Prometheus's `currentSamples` does, not the total ever read.
    pub fn release_samples(&self, n: usize) {
        self.samples.set(self.samples.get().saturating_sub(n));
    }

    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    pub fn eval(&self, expr: &Expr, range: Range) -> Result<Val, QueryError> {
        super::depth::each_level(|| self.eval_node(expr, range))
    }

    fn eval_node(&self, expr: &Expr, range: Range) -> Result<Val, QueryError> {
        self.check("expression evaluation")?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; range.steps()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, range),
            Expr::Unary(u) => match self.eval(&u.expr, range)? {
                Val::Scalar(vs) => Ok(Val::Scalar(vs.into_iter().map(|v| -v).collect())),
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.labels = drop_metric_name(&s.labels);
                        for p in &mut s.points {
                            p.1 = -p.1;
                        }
                    }
                    check_series_unique(&series)?;
                    Ok(Val::Vector(series))
                }
                _ => Err(QueryError::Execution(
                    "unary expression only allowed on expressions of type scalar or instant vector".into(),
                )),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, range, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let src = self.range_source(expr, range)?;
                // A range vector is only a result at the top of an instant query.
                let ts = src.at_ms.unwrap_or(range.start) - src.offset_ms;
                let series = src
                    .series
                    .into_iter()
                    .filter_map(|s| {
                        let lo = s.points.partition_point(|p| p.0 < ts - src.range_ms);
                        let hi = s.points.partition_point(|p| p.0 <= ts);
                        (lo < hi).then(|| Series { labels: s.labels, points: s.points[lo..hi].to_vec() })
                    })
                    .collect();
                Ok(Val::Matrix(series))
            }
            Expr::Call(call) => functions::eval_call(self, call, range),
            Expr::Aggregate(agg) => aggregate::eval_aggregate(self, agg, range),
            Expr::Binary(b) => binary::eval_binary(self, b, range),
            Expr::Extension(_) => {
                Err(QueryError::Execution("extension expressions are not supported".into()))
            }
        }
    }

    pub fn eval_vector(&self, expr: &Expr, range: Range) -> Result<Vec<Series>, QueryError> {
        match self.eval(expr, range)? {
            Val::Vector(s) => Ok(s),
            _ => Err(QueryError::Execution("expected instant vector".into())),
        }
    }

    fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<SeriesData>, QueryError> {
        let matchers = selector_matchers(vs)?;
        let data = self.q.select(&matchers, mint, maxt)?;
        self.add_samples(data.iter().map(|s| s.samples.len()).sum())?;
        Ok(data)
    }

    /// Instant-vector selection at every step: the newest sample at or before the reference
    /// time, no older than the lookback delta (inclusive, as in 2.x), unless it is a stale
    /// marker. With `sample_time` the value is the sample's timestamp in seconds (for
    /// `timestamp()`), and the metric name is dropped.
    pub fn eval_vector_selector(
        &self,
        vs: &VectorSelector,
        range: Range,
        sample_time: bool,
    ) -> Result<Vec<Series>, QueryError> {
        let offset = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let (first_ref, last_ref) = match at {
            Some(a) => (a - offset, a - offset),
            None => (range.start - offset, range.end - offset),
        };
        let matchers = selector_matchers(vs)?;
        let steps = range.steps();
        let mut out = Vec::new();
        self.stream_series(&matchers, first_ref - self.lookback, last_ref, &mut |sd| {
            self.check("expression evaluation")?;
            let mut points = Vec::new();
            let mut cursor = 0usize; // index of the first sample after the reference time
            for step in 0..steps {
                self.check("expression evaluation")?;
                let ts = range.ts(step);
                let rt = at.unwrap_or(ts) - offset;
                while cursor < sd.samples.len() && sd.samples[cursor].0 <= rt {
                    cursor += 1;
                }
                if cursor == 0 {
                    continue;
                }
                let (t, v) = sd.samples[cursor - 1];
                if t < rt - self.lookback || is_stale_nan(v) {
                    continue;
                }
                if points.capacity() == 0 {
                    points.reserve_exact(steps - step);
                }
                points.push((ts, if sample_time { t as f64 / 1000.0 } else { v }));
            }
            if !points.is_empty() {
                self.add_samples(points.len())?;
                let labels = Arc::new(sd.labels);
                let labels = if sample_time { drop_metric_name(&labels) } else { labels };
                out.push(Series { labels, points });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Loads what a range-vector argument reads over the whole evaluation range.
    pub fn range_source(&self, expr: &Expr, range: Range) -> Result<RangeSource, QueryError> {
        match unwrap_parens(expr) {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let offset = offset_ms(&vs.offset);
                let at = self.at_ms(&vs.at);
                let range_ms = duration_ms(ms.range);
                let (first_ref, last_ref) = match at {
                    Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
                    None => (range.start.saturating_sub(offset), range.end.saturating_sub(offset)),
                };
                let data = self.select(vs, first_ref.saturating_sub(range_ms), last_ref)?;
                let series = data
                    .into_iter()
                    .map(|sd| Series {
                        labels: Arc::new(sd.labels),
                        // Stale markers only end instant selections; ranges skip them.
                        points: sd.samples.into_iter().filter(|(_, v)| !is_stale_nan(*v)).collect(),
                    })
                    .collect();
                Ok(RangeSource { series, range_ms, offset_ms: offset, at_ms: at })
            }
            Expr::Subquery(sq) => {
                let offset = offset_ms(&sq.offset);
                let range_ms = duration_ms(sq.range);
                let step = sq.step.map(duration_ms).filter(|s| *s > 0).unwrap_or(self.default_subquery_step);
                let at = self.at_ms(&sq.at);
                let (outer_start, outer_end) = match at {
                    Some(a) => (a, a),
                    None => (range.start, range.end),
                };
                let first = outer_start.saturating_sub(offset).saturating_sub(range_ms);
                // Inner steps are aligned to multiples of the step (Go's truncating division).
                let mut inner_start = step * (first / step);
                if inner_start < first {
                    inner_start = inner_start.saturating_add(step);
                }
                let inner =
                    Range { start: inner_start, end: outer_end.saturating_sub(offset), interval: step };
                // Every inner step holds at least one sample of the inner expression, and
                // per-step arrays are allocated before samples are counted: a range like
                // `[100y:1ms]` is refused here, as Prometheus refuses it by max_samples,
                // instead of asking for terabytes.
                if inner.steps() > self.max_samples {
                    return Err(QueryError::TooManySamples("query execution"));
                }
                let series =
                    if inner.end < inner.start { Vec::new() } else { self.eval_vector(&sq.expr, inner)? };
                Ok(RangeSource { series, range_ms, offset_ms: offset, at_ms: at })
            }
            _ => Err(QueryError::Execution("expected a range vector".into())),
        }
    }

    /// Hands the series a range-vector argument reads over the whole evaluation range to `f`
    /// one at a time. A matrix selector streams from the store, so only one series' raw
    /// samples are held (and counted against the sample limit) at once.
    pub fn for_each_range_series(
        &self,
        expr: &Expr,
        range: Range,
        f: &mut dyn FnMut(Window, Series) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let Expr::MatrixSelector(ms) = unwrap_parens(expr) else {
            let src = self.range_source(expr, range)?;
            let win = Window { range_ms: src.range_ms, offset_ms: src.offset_ms, at_ms: src.at_ms };
            for s in src.series {
                f(win, s)?;
            }
            return Ok(());
        };
        let vs = &ms.vs;
        let offset = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let win = Window { range_ms: duration_ms(ms.range), offset_ms: offset, at_ms: at };
        let (first_ref, last_ref) = match at {
            Some(a) => (a - offset, a - offset),
            None => (range.start - offset, range.end - offset),
        };
        let matchers = selector_matchers(vs)?;
        self.stream_series(&matchers, first_ref - win.range_ms, last_ref, &mut |mut sd| {
            // Stale markers only end instant selections; ranges skip them.
            sd.samples.retain(|(_, v)| !is_stale_nan(*v));
            f(win, Series { labels: Arc::new(sd.labels), points: sd.samples })
        })
    }

    /// Streams the selected series from the store to `f` one at a time, each one's raw samples
    /// counted against the sample limit while `f` holds them; `f`'s first error ends it.
    fn stream_series(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
        f: &mut dyn FnMut(SeriesData) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let mut failed: Option<QueryError> = None;
        self.q.for_each_series(matchers, mint_ms, maxt_ms, &mut |sd| {
            let n = sd.samples.len();
            let res = self.add_samples(n).and_then(|()| f(sd));
            self.release_samples(n);
            match res {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// Prometheus's `rangeEval`: evaluates a per-step function over all steps, gathering each
    /// argument's value at the step and collecting the outputs into series.
    pub fn range_eval<F>(&self, range: Range, vals: &[Val], mut f: F) -> Result<Vec<Series>, QueryError>
    where
        F: FnMut(i64, &mut [StepArg]) -> Result<Vec<Sample>, QueryError>,
    {
        let steps = range.steps();
        let mut cursors: Vec<Vec<usize>> = vals
            .iter()
            .map(|v| match v {
                Val::Vector(s) => vec![0; s.len()],
                _ => Vec::new(),
            })
            .collect();
        let mut out: Vec<Series> = Vec::new();
        let mut index: HashMap<Arc<Labels>, usize> = HashMap::new();
        let mut args: Vec<StepArg> = Vec::with_capacity(vals.len());
        for step in 0..steps {
            self.check("expression evaluation")?;
            let ts = range.ts(step);
            args.clear();
            for (i, v) in vals.iter().enumerate() {
                args.push(match v {
                    Val::Scalar(s) => StepArg::Scalar(s.get(step).copied().unwrap_or(f64::NAN)),
                    Val::Vector(series) => {
                        let mut vec = Vec::new();
                        for (si, s) in series.iter().enumerate() {
                            let c = &mut cursors[i][si];
                            if *c < s.points.len() && s.points[*c].0 == ts {
                                vec.push(Sample { labels: s.labels.clone(), v: s.points[*c].1 });
                                *c += 1;
                            }
                        }
                        StepArg::Vector(vec)
                    }
                    Val::Str(s) => StepArg::Str(s.clone()),
                    Val::Matrix(_) => StepArg::None,
                });
            }
            let result = f(ts, &mut args)?;
            check_samples_unique(&result)?;
            if range.is_instant() {
                return Ok(result
                    .into_iter()
                    .map(|s| Series { labels: s.labels, points: vec![(ts, s.v)] })
                    .collect());
            }
            for s in result {
                match index.get(&s.labels) {
                    Some(&i) => out[i].points.push((ts, s.v)),
                    None => {
                        index.insert(s.labels.clone(), out.len());
                        out.push(Series { labels: s.labels, points: vec![(ts, s.v)] });
                    }
                }
            }
        }
        Ok(out)
    }
}

fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal("__name__", name));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::Regex,
            PMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(Matcher::new(op, &m.name, &m.value).map_err(|e| QueryError::Parse(e.to_string()))?);
    }
    Ok(out)
}

/// Matchers of a selector, for the API's `match[]` parameters.
pub fn matchers_of(vs: &VectorSelector) -> Result<Vec<Matcher>, QueryError> {
    selector_matchers(vs)
}

pub(crate) fn check_samples_unique(v: &[Sample]) -> Result<(), QueryError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&*s.labels) {
            return Err(QueryError::Execution("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(())
}

pub(crate) fn check_series_unique(v: &[Series]) -> Result<(), QueryError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&*s.labels) {
            return Err(QueryError::Execution("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(())
}

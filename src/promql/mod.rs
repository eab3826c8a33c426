//! PromQL evaluation with the semantics of Prometheus 2.42 (float samples).
//!
//! Parsing is `promql-parser`'s; everything after the AST is ours. Entry points:
//! [`Engine::instant_query`], [`Engine::range_query`] and [`Engine::exec`]; the engine reads
//! samples only through the [`Queryable`] trait ([`storage`]), so any store can sit behind it.
//! Evaluation is step-wise like Prometheus's `rangeEval`: every node is evaluated once over all
//! steps of the query, instant-vector nodes yield series with one point per step.

mod aggregate;
mod binary;
mod depth;
mod eval;
mod functions;
pub mod memory;
pub mod storage;
pub mod store_source;
pub mod value;

pub use eval::matchers_of;
pub use memory::MemoryQueryable;
pub use storage::{ExemplarData, Queryable, SeriesData, StorageError};
pub use value::{InstantSample, QueryValue, RangeSeries};

use promql_parser::parser::{self, Expr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// Why a query failed. The HTTP mapping lives in `api::error`.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query text does not parse or does not type-check: the user's fault.
    #[error("{0}")]
    Parse(String),
    /// A well-formed query whose parameters are unusable (bad time range, wrong result type
    /// for a range query): the user's fault.
    #[error("{0}")]
    BadData(String),
    /// Evaluation hit a PromQL runtime error (many-to-many matching, duplicate label sets,
    /// invalid function argument): the query's fault, found only with the data.
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in {0}")]
    TooManySamples(&'static str),
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// The store failed: not the user's fault.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Engine limits, with Prometheus's command-line defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--query.lookback-delta`.
    pub lookback_delta: Duration,
    /// `--query.max-samples`.
    pub max_samples: usize,
    /// `--query.timeout`.
    pub timeout: Duration,
    /// `--query.max-concurrency`.
    pub max_concurrency: usize,
    /// Step of subqueries written without one (`[5m:]`): the global evaluation interval.
    pub default_subquery_step: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_concurrency: 20,
            default_subquery_step: Duration::from_secs(60),
        }
    }
}

/// One query to run: an instant query has `start_ms == end_ms` and `step_ms == 0`.
#[derive(Debug, Clone, Default)]
pub struct QuerySpec {
    pub query: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    /// Lowers the engine timeout for this query (the API's `timeout` parameter).
    pub timeout: Option<Duration>,
    /// Set by the caller to abandon the query (client went away).
    pub cancel: Option<Arc<AtomicBool>>,
}

pub struct Engine {
    options: EngineOptions,
    /// `max_concurrency` turns, taken (`admit`) before a query goes to a blocking thread:
    /// queries waiting their turn wait as tasks, not as threads, so a burst of queries
    /// cannot use up the blocking pool every role shares.
    admission: Arc<tokio::sync::Semaphore>,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Self {
        let admission = Arc::new(tokio::sync::Semaphore::new(options.max_concurrency.max(1)));
        Self { options, admission }
    }

    /// The query timeout: the one asked for, capped by the engine's `--query.timeout`.
    fn timeout(&self, asked: Option<Duration>) -> Duration {
        asked.map_or(self.options.timeout, |t| t.min(self.options.timeout))
    }

    /// Waits, as a task, for a turn to run a query, for at most its timeout. Returns the turn
    /// (it ends when dropped) and what is left of the timeout, which the query's evaluation
    /// gets: as in Prometheus, one deadline covers the queue and the evaluation.
    pub async fn admit(
        &self,
        timeout: Option<Duration>,
    ) -> Result<(tokio::sync::OwnedSemaphorePermit, Duration), QueryError> {
        let limit = self.timeout(timeout);
        let queued = Instant::now();
        match tokio::time::timeout(limit, self.admission.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok((permit, limit.saturating_sub(queued.elapsed()))),
            Ok(Err(_)) | Err(_) => Err(QueryError::Timeout("queue")),
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn instant_query(&self, q: &dyn Queryable, query: &str, t_ms: i64) -> Result<QueryValue, QueryError> {
        self.exec(q, &QuerySpec { query: query.into(), start_ms: t_ms, end_ms: t_ms, ..Default::default() })
    }

    pub fn range_query(
        &self,
        q: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryValue, QueryError> {
        self.exec(q, &QuerySpec { query: query.into(), start_ms, end_ms, step_ms, ..Default::default() })
    }

    /// Parses and evaluates; blocks (on the calling thread) while the engine is at its
    /// concurrency limit, and that wait counts against the timeout as in Prometheus.
    pub fn exec(&self, q: &dyn Queryable, spec: &QuerySpec) -> Result<QueryValue, QueryError> {
        // The tree is walked recursively (typing, evaluation, drop) within the depth limit.
        depth::on_deep_stack(|| self.exec_in_place(q, spec))
    }

    fn exec_in_place(&self, q: &dyn Queryable, spec: &QuerySpec) -> Result<QueryValue, QueryError> {
        let expr = parse(&spec.query)?;
        let instant = spec.step_ms == 0;
        if !instant {
            if spec.step_ms < 0 {
                return Err(QueryError::BadData(
                    "zero or negative query resolution step widths are not accepted. Try a positive integer"
                        .into(),
                ));
            }
            if spec.end_ms < spec.start_ms {
                return Err(QueryError::BadData("end timestamp must not be before start time".into()));
            }
            let vt = expr.value_type();
            if vt != parser::value::ValueType::Vector && vt != parser::value::ValueType::Scalar {
                return Err(QueryError::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    type_name(vt)
                )));
            }
        }
        let deadline = Instant::now() + self.timeout(spec.timeout);
        let ctx = eval::Ctx {
            q,
            lookback: duration_ms(self.options.lookback_delta),
            max_samples: self.options.max_samples,
            samples: std::cell::Cell::new(0),
            deadline,
            cancel: spec.cancel.as_deref(),
            query_start: spec.start_ms,
            query_end: spec.end_ms,
            default_subquery_step: duration_ms(self.options.default_subquery_step).max(1),
            checks: std::cell::Cell::new(0),
        };
        ctx.run(&expr, spec.start_ms, spec.end_ms, if instant { 0 } else { spec.step_ms })
    }
}

pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn type_name(vt: parser::value::ValueType) -> &'static str {
    use parser::value::ValueType;
    match vt {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "vector",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// The function set of Prometheus 2.42 (`promql/parser/functions.go`); the parser crate knows
/// newer ones, which 2.42 rejects at parse time.
const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_sum",
    "histogram_fraction",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

static REGISTER: Once = Once::new();

/// Parses a query and rejects what Prometheus 2.42 would not parse. Errors carry Prometheus's
/// `parse error:` wording so clients that pattern-match it keep working.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    REGISTER.call_once(|| {
        use parser::value::ValueType;
        // The crate follows Prometheus 3, where holt_winters became double_exponential_smoothing.
        let _ = parser::register_extra_functions(vec![parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
    if query.trim().is_empty() {
        return Err(QueryError::Parse("1:1: parse error: no expression found in input".into()));
    }
    depth::check_text(query)?;
    depth::on_deep_stack(|| parse_in_place(query))
}

/// Runs the parser crate, turning a panic inside it into a parse error: its grammar actions
/// assume some inputs cannot occur (`up[1e100011]` panics converting the range to a
/// `Duration`), and a query must never take down the thread that serves it.
fn crate_call<T>(f: impl FnOnce() -> T) -> Result<T, QueryError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "invalid input".into());
        QueryError::Parse(format!("1:1: parse error: {why}"))
    })
}

fn parse_in_place(query: &str) -> Result<Expr, QueryError> {
    let expr =
        crate_call(|| parser::parse(query))?.map_err(|e| QueryError::Parse(parse_error_text(query, &e)))?;
    let levels = depth::expr_depth(&expr);
    if levels > depth::MAX_EXPR_DEPTH {
        depth::dismantle(expr);
        return Err(QueryError::Parse(format!(
            "1:1: parse error: expression is nested {levels} levels deep; at most {} are allowed",
            depth::MAX_EXPR_DEPTH
        )));
    }
    check_2_42(&expr)?;
    Ok(expr)
}

/// Parses and formats a query as `/api/v1/format_query` returns it.
pub fn format_query(query: &str) -> Result<String, QueryError> {
    depth::on_deep_stack(|| parse(query).and_then(|e| crate_call(|| e.prettify())))
}

/// Parses a series selector as the API's `match[]` takes it (Prometheus's
/// `ParseMetricSelector`): a plain vector selector, no offset or `@`.
pub fn parse_selector(selector: &str) -> Result<Vec<crate::model::Matcher>, QueryError> {
    match parse(selector)? {
        Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => eval::matchers_of(&vs),
        _ => {
            Err(QueryError::Parse(format!("1:1: parse error: expected a series selector, got {selector:?}")))
        }
    }
}

/// The matchers of every vector and matrix selector in `expr`, in order of appearance: what
/// Prometheus's `parser.ExtractSelectors` gives `/api/v1/query_exemplars`.
pub fn extract_selectors(expr: &Expr) -> Result<Vec<Vec<crate::model::Matcher>>, QueryError> {
    struct Collect(Vec<Vec<crate::model::Matcher>>);
    impl promql_parser::util::ExprVisitor for Collect {
        type Error = QueryError;
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, QueryError> {
            match e {
                Expr::VectorSelector(vs) => self.0.push(eval::matchers_of(vs)?),
                Expr::MatrixSelector(ms) => self.0.push(eval::matchers_of(&ms.vs)?),
                _ => {}
            }
            Ok(true)
        }
        fn post_visit(&mut self, _: &Expr) -> Result<bool, QueryError> {
            Ok(true)
        }
    }
    let mut c = Collect(Vec::new());
    promql_parser::util::walk_expr(&mut c, expr)?;
    Ok(c.0)
}

fn parse_error_text(query: &str, message: &str) -> String {
    // The parser crate reports positions only for lexer errors; give Prometheus's
    // "line:col: parse error:" prefix either way, pointing at the end when unknown.
    if message.contains("parse error") {
        return message.to_string();
    }
    let lines: Vec<&str> = query.split('\n').collect();
    let line = lines.len();
    let col = lines.last().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}: parse error: {message}")
}

fn check_2_42(expr: &Expr) -> Result<(), QueryError> {
    let unsupported = |what: String| Err(QueryError::Parse(format!("1:1: parse error: {what}")));
    match expr {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if op == "limitk" || op == "limit_ratio" {
                return unsupported(format!("unexpected identifier \"{op}\""));
            }
            if let Some(p) = &a.param {
                check_2_42(p)?;
            }
            check_2_42(&a.expr)
        }
        Expr::Unary(u) => check_2_42(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return unsupported("unexpected identifier \"fill\"".into());
            }
            check_2_42(&b.lhs)?;
            check_2_42(&b.rhs)
        }
        Expr::Paren(p) => check_2_42(&p.expr),
        Expr::Subquery(s) => check_2_42(&s.expr),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Call(c) => {
            if !FUNCTIONS_2_42.contains(&c.func.name) {
                return unsupported(format!("unknown function with name \"{}\"", c.func.name));
            }
            c.args.args.iter().try_for_each(|a| check_2_42(a))
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Extension(_) => unsupported("unsupported expression".into()),
    }
}

fn check_selector(vs: &parser::VectorSelector) -> Result<(), QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::Parse(
            "1:1: parse error: unexpected identifier \"or\" in label matching".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Found by the promql fuzz target: the parser crate panics on a range it cannot turn
    /// into a Duration. It is a parse error here, as in Prometheus.
    #[test]
    fn a_range_too_large_for_a_duration_is_a_parse_error() {
        for q in ["up[1e100011]", "histogram_fractionthon_appbrequet[1e100011]", "rate(up[1e400])"] {
            let err = parse(q).expect_err(q);
            assert!(err.to_string().contains("parse error"), "{q}: {err}");
        }
        assert!(format_query("up[1e100011]").is_err());
    }

    /// The sample limit bounds what a query holds at once: a raw sample counts once however
    /// many overlapping windows of a range query see it (Prometheus's `currentSamples`).
    #[test]
    fn range_windows_count_each_sample_once() {
        let mut m = MemoryQueryable::new();
        for i in 0..=100 {
            m.add_sample(&[("__name__", "c")], i * 1000, i as f64);
        }
        // 101 selected + 101 entering windows + ~100 output points; counting every window
        // per step would be about 50 × 100.
        let engine = |max_samples| Engine::new(EngineOptions { max_samples, ..EngineOptions::default() });
        let ok = engine(1000).range_query(&m, "rate(c[50s])", 0, 100_000, 1000);
        assert!(ok.is_ok(), "{ok:?}");
        let too_many = engine(150).range_query(&m, "rate(c[50s])", 0, 100_000, 1000);
        assert!(matches!(too_many, Err(QueryError::TooManySamples(_))), "{too_many:?}");
    }

    #[test]
    fn queries_past_max_concurrency_wait_as_tasks_and_time_out_in_the_queue() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let engine = Engine::new(EngineOptions { max_concurrency: 1, ..EngineOptions::default() });
        rt.block_on(async {
            let first = engine.admit(None).await.unwrap();
            let second = engine.admit(Some(Duration::from_millis(50))).await;
            assert!(matches!(second, Err(QueryError::Timeout("queue"))), "{second:?}");
            drop(first);
            assert!(engine.admit(Some(Duration::from_millis(50))).await.is_ok());
        });
    }

    #[test]
    fn a_huge_subquery_is_refused_before_anything_is_allocated() {
        let m = MemoryQueryable::new();
        let engine = Engine::new(EngineOptions::default());
        // 3e12 inner steps: evaluated, `vector(1)` alone would ask for 25 TB.
        for q in
            ["count_over_time(vector(1)[100y:1ms])", "max_over_time(vector(time())[100y:1ms] offset 10000y)"]
        {
            let r = engine.instant_query(&m, q, 1_700_000_000_000);
            assert!(matches!(r, Err(QueryError::TooManySamples(_))), "{q}: {r:?}");
        }
        // A subquery within the limit still answers.
        let ok = engine.instant_query(&m, "count_over_time(vector(1)[1h:1m])", 1_700_000_000_000);
        assert!(ok.is_ok(), "{ok:?}");
    }
}

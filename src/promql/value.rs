//! Query results as the API serializes them, and the engine's internal step-wise values.

use crate::model::{Labels, METRIC_NAME};
use std::sync::Arc;

/// The result of one query, as Prometheus types it (`resultType`).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar {
        t_ms: i64,
        v: f64,
    },
    String {
        t_ms: i64,
        v: String,
    },
    /// Instant vector: one sample per series, all at the evaluation time.
    Vector(Vec<InstantSample>),
    /// Range vector (range queries, or a range selector / subquery at the top of an instant query).
    Matrix(Vec<RangeSeries>),
}

impl QueryValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: Arc<Labels>,
    pub t_ms: i64,
    pub v: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: Arc<Labels>,
    pub points: Vec<(i64, f64)>,
}

/// One element of an instant vector during evaluation of one step.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub labels: Arc<Labels>,
    pub v: f64,
}

/// A series over the evaluation steps (points only at step times) or, for range selectors,
/// raw samples.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub labels: Arc<Labels>,
    pub points: Vec<(i64, f64)>,
}

/// An evaluated node over all steps of its evaluation range.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Vector(Vec<Series>),
    /// Raw samples of a range selector or subquery (only at the top of an instant query).
    Matrix(Vec<Series>),
    Str(String),
}

pub(crate) fn drop_metric_name(labels: &Arc<Labels>) -> Arc<Labels> {
    if labels.name().is_some() { Arc::new(labels.without(&[METRIC_NAME])) } else { labels.clone() }
}

/// Go's `labels.Labels.String()`: `{a="1", b="2"}`, the form Prometheus puts in errors.
pub fn labels_to_string(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

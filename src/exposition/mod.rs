//! Metric families and the Prometheus text exposition format 0.0.4, as every role writes it.
//!
//! Floats are written the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes them, because
//! that is what Prometheus and node_exporter emit (`1e+06`, `2.5e-05`), and diff-based tests
//! and humans comparing outputs expect the same spelling.

mod federate;
mod float;
mod label_limits;
mod parse;
mod text;

pub use crate::model::labels::{escape_label_value, is_valid_label_name};
pub use federate::{FederatedSample, FederationWriter, write_federation};
pub use float::{format_go_float, format_go_float_e};
pub use label_limits::{
    LabelCheck, LabelLimits, label_limit_error, label_name_length_error, label_value_length_error,
};
pub use parse::{
    Exemplar, ExpositionReader, FamilyMeta, Format, LabelError, ParseError, ParsedFamily, ParsedSample,
    SampleLine, is_valid_metric_name, parse_exposition, parse_text, parse_value,
};
pub use text::{escape_help, write_families};

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Untyped,
    Histogram,
    Summary,
    /// OpenMetrics-only types; written out as untyped in text format 0.0.4.
    GaugeHistogram,
    Info,
    StateSet,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::GaugeHistogram | MetricType::Info | MetricType::StateSet => "untyped",
        }
    }

    /// The name Prometheus's metadata API reports.
    pub fn metadata_name(self) -> &'static str {
        match self {
            MetricType::Untyped => "unknown",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            other => other.as_str(),
        }
    }
}

/// One sample line. `suffix` is appended to the family name (`_bucket`, `_sum`, `_count`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

impl MetricFamily {
    pub fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricType) -> Self {
        MetricFamily { name: name.into(), help: help.into(), kind, samples: Vec::new() }
    }

    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::Gauge)
    }

    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::Counter)
    }

    pub fn untyped(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name, help, MetricType::Untyped)
    }

    /// Adds a sample; label pairs are given as `&[("name", value)]`.
    pub fn add<V: Into<String> + Clone>(&mut self, labels: &[(&str, V)], value: f64) -> &mut Self {
        self.samples.push(Sample {
            suffix: "",
            labels: labels.iter().map(|(k, v)| ((*k).to_string(), v.clone().into())).collect(),
            value,
            timestamp_ms: None,
        });
        self
    }

    /// Adds a sample without labels.
    pub fn set(&mut self, value: f64) -> &mut Self {
        self.samples.push(Sample { suffix: "", labels: Vec::new(), value, timestamp_ms: None });
        self
    }

    pub fn with_value(mut self, value: f64) -> Self {
        self.set(value);
        self
    }
}

/// Merges families that share a name (two collectors may both contribute) and sorts them by
/// name, the order Prometheus client libraries gather in.
pub fn merge_and_sort(families: Vec<MetricFamily>) -> Vec<MetricFamily> {
    let mut by_name: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for family in families {
        match by_name.get_mut(&family.name) {
            Some(existing) => existing.samples.extend(family.samples),
            None => {
                by_name.insert(family.name.clone(), family);
            }
        }
    }
    by_name
        .into_values()
        .map(|mut f| {
            f.samples.sort_by(|a, b| a.labels.cmp(&b.labels).then(a.suffix.cmp(b.suffix)));
            f
        })
        .collect()
}

//! The seam between the PromQL engine and whatever stores samples.
//!
//! The engine reads only through [`Queryable`]; the sled store and the in-memory test store
//! ([`super::MemoryQueryable`]) both implement it. The contract mirrors Prometheus's
//! `storage.Querier`: matchers select series, every returned series carries its full label set
//! (including `__name__`) sorted by label name, and its samples in increasing time order.

use crate::model::{Labels, Matcher};

/// Failures of a [`Queryable`]; the store's fault, never the user's.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {0}")]
    Internal(String),
}

/// One selected series: labels sorted by name, samples in increasing time, stale markers kept
/// bit-exactly (the engine needs them to end a series).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// One exemplar of a series: its own labels (usually `trace_id`), value and time in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarData {
    pub labels: Labels,
    pub value: f64,
    pub t_ms: i64,
}

/// What the engine needs from a store. All times are Unix milliseconds, bounds inclusive.
pub trait Queryable: Send + Sync {
    /// Series matching every matcher with their samples in `[mint_ms, maxt_ms]`. A series with
    /// no sample in the range may be omitted. Order of the returned series does not matter.
    fn select(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<SeriesData>, StorageError>;

    /// As [`select`](Self::select), handing the series to `f` one at a time so the caller
    /// need not hold them all; stops early when `f` returns false. The default collects
    /// through `select`; a store that decodes per series does better.
    fn for_each_series(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
        f: &mut dyn FnMut(SeriesData) -> bool,
    ) -> Result<(), StorageError> {
        for sd in self.select(matchers, mint_ms, maxt_ms)? {
            if !f(sd) {
                break;
            }
        }
        Ok(())
    }

    /// Label sets of the series matching `matchers` that have samples in the range; the
    /// default loads samples through `select`, a store may do better from its index.
    fn series(&self, matchers: &[Matcher], mint_ms: i64, maxt_ms: i64) -> Result<Vec<Labels>, StorageError> {
        Ok(self.select(matchers, mint_ms, maxt_ms)?.into_iter().map(|s| s.labels).collect())
    }

    /// Sorted, deduplicated label names of the matching series (all series when `matchers`
    /// is empty) with samples in the range.
    fn label_names(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Sorted, deduplicated values of label `name` among the matching series (all series when
    /// `matchers` is empty) with samples in the range.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Exemplars with times in `[mint_ms, maxt_ms]` of the series matching `matchers`, per
    /// series in time order. A store that keeps none answers empty, as Prometheus does
    /// without exemplar storage.
    fn exemplars(
        &self,
        _matchers: &[Matcher],
        _mint_ms: i64,
        _maxt_ms: i64,
    ) -> Result<Vec<(Labels, Vec<ExemplarData>)>, StorageError> {
        Ok(Vec::new())
    }
}

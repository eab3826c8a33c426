//! An in-memory [`Queryable`]: a plain list of series, scanned on every select. For tests,
//! benchmarks and small embedded data; the sled store is the real one.

use super::storage::{Queryable, SeriesData, StorageError};
use crate::model::{Labels, Matcher};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default, Clone)]
pub struct MemoryQueryable {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl MemoryQueryable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample; labels may come in any order (see [`Labels::from_pairs`]).
    /// Samples must come in increasing time per series (older ones are dropped, as a store
    /// without out-of-order support would).
    pub fn add_sample(&mut self, labels: &[(&str, &str)], t_ms: i64, v: f64) {
        self.add_sample_labels(Labels::from_pairs(labels.iter().copied()), t_ms, v);
    }

    /// As [`add_sample`](Self::add_sample) with the label set already built.
    pub fn add_sample_labels(&mut self, labels: Labels, t_ms: i64, v: f64) {
        let samples = self.series.entry(labels).or_default();
        if samples.last().is_some_and(|(t, _)| *t >= t_ms) {
            return;
        }
        samples.push((t_ms, v));
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    fn matching<'a>(
        &'a self,
        matchers: &'a [Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> impl Iterator<Item = (&'a Labels, &'a [(i64, f64)])> + 'a {
        self.series.iter().filter_map(move |(labels, samples)| {
            if !matchers.iter().all(|m| m.matches_labels(labels.as_slice())) {
                return None;
            }
            let lo = samples.partition_point(|(t, _)| *t < mint_ms);
            let hi = samples.partition_point(|(t, _)| *t <= maxt_ms);
            if lo >= hi {
                return None;
            }
            Some((labels, &samples[lo..hi]))
        })
    }
}

impl Queryable for MemoryQueryable {
    fn select(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<SeriesData>, StorageError> {
        Ok(self
            .matching(matchers, mint_ms, maxt_ms)
            .map(|(labels, samples)| SeriesData { labels: labels.clone(), samples: samples.to_vec() })
            .collect())
    }

    fn series(&self, matchers: &[Matcher], mint_ms: i64, maxt_ms: i64) -> Result<Vec<Labels>, StorageError> {
        Ok(self.matching(matchers, mint_ms, maxt_ms).map(|(l, _)| l.clone()).collect())
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for (labels, _) in self.matching(matchers, mint_ms, maxt_ms) {
            names.extend(labels.iter().map(|(n, _)| n.to_string()));
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for (labels, _) in self.matching(matchers, mint_ms, maxt_ms) {
            if let Some(v) = labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    #[test]
    fn select_filters_by_matchers_and_time() {
        let mut m = MemoryQueryable::new();
        m.add_sample(&[("__name__", "up"), ("job", "a")], 1000, 1.0);
        m.add_sample(&[("job", "b"), ("__name__", "up")], 2000, 0.0);
        m.add_sample(&[("__name__", "up"), ("job", "a")], 3000, 1.0);
        let re = Matcher::new(MatchOp::Regex, "job", "a|c").unwrap();
        let got = m.select(&[re], 0, 2500).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![(1000, 1.0)]);
        // The regex is anchored: "a" must not match "ab".
        let re = Matcher::new(MatchOp::Regex, "job", "").unwrap();
        assert!(m.select(&[re], 0, 5000).unwrap().is_empty());
        assert_eq!(m.label_values("job", &[], 0, 5000).unwrap(), vec!["a", "b"]);
        assert_eq!(m.label_names(&[], 2000, 2000).unwrap(), vec!["__name__", "job"]);
    }
}

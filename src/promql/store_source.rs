//! The sled store as the engine's `Queryable`: the engine's matchers go to the store's postings
//! as they are, samples are decoded from the chunks overlapping the query range.

use super::storage::{ExemplarData, Queryable, SeriesData, StorageError};
use crate::model::{Labels, Matcher};
use crate::store::Store;

pub struct StoreSource(pub Store);

impl Queryable for StoreSource {
    fn select(&self, ms: &[Matcher], mint_ms: i64, maxt_ms: i64) -> Result<Vec<SeriesData>, StorageError> {
        let mut out = Vec::new();
        self.for_each_series(ms, mint_ms, maxt_ms, &mut |sd| {
            out.push(sd);
            true
        })?;
        Ok(out)
    }

    fn for_each_series(
        &self,
        ms: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
        f: &mut dyn FnMut(SeriesData) -> bool,
    ) -> Result<(), StorageError> {
        for series in self.0.querier(mint_ms, maxt_ms).select(ms) {
            let (labels, samples) = series.map_err(|e| StorageError::Internal(e.to_string()))?.into_parts();
            if !samples.is_empty() && !f(SeriesData { labels, samples }) {
                break;
            }
        }
        Ok(())
    }

    fn label_names(&self, ms: &[Matcher], mint_ms: i64, maxt_ms: i64) -> Result<Vec<String>, StorageError> {
        Ok(self.0.querier(mint_ms, maxt_ms).label_names(ms))
    }

    fn label_values(
        &self,
        name: &str,
        ms: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self.0.querier(mint_ms, maxt_ms).label_values(name, ms))
    }

    fn exemplars(
        &self,
        ms: &[Matcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<(Labels, Vec<ExemplarData>)>, StorageError> {
        let found = self.0.querier(mint_ms, maxt_ms).select_exemplars(ms);
        Ok(found
            .into_iter()
            .map(|(labels, ex)| {
                let mut ex: Vec<ExemplarData> = ex
                    .into_iter()
                    .map(|e| ExemplarData { labels: e.labels, value: e.value, t_ms: e.t })
                    .collect();
                // The store keeps them in arrival order; Prometheus answers in time order.
                ex.sort_by_key(|e| e.t_ms);
                (labels, ex)
            })
            .collect())
    }
}

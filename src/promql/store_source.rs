//! The sled store as the engine's `Queryable`: matchers translated once, samples decoded from
//! the chunks overlapping the query range.

use super::storage::{ExemplarData, LabelMatcher, Labels, MatchOp, Queryable, SeriesData, StorageError};
use crate::store::{self, Matcher, Store};

pub struct StoreSource(pub Store);

fn matchers(ms: &[LabelMatcher]) -> Result<Vec<Matcher>, StorageError> {
    ms.iter()
        .map(|m| {
            let op = match m.op {
                MatchOp::Equal => store::MatchOp::Equal,
                MatchOp::NotEqual => store::MatchOp::NotEqual,
                MatchOp::RegexMatch => store::MatchOp::Regex,
                MatchOp::RegexNoMatch => store::MatchOp::NotRegex,
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| StorageError::Internal(e.to_string()))
        })
        .collect()
}

impl Queryable for StoreSource {
    fn select(
        &self,
        ms: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<SeriesData>, StorageError> {
        let mut out = Vec::new();
        self.for_each_series(ms, mint_ms, maxt_ms, &mut |sd| {
            out.push(sd);
            true
        })?;
        Ok(out)
    }

    fn for_each_series(
        &self,
        ms: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
        f: &mut dyn FnMut(SeriesData) -> bool,
    ) -> Result<(), StorageError> {
        let ms = matchers(ms)?;
        for series in self.0.querier(mint_ms, maxt_ms).select(&ms) {
            let (labels, samples) = series.map_err(|e| StorageError::Internal(e.to_string()))?.into_parts();
            if !samples.is_empty() && !f(SeriesData { labels: labels.into_vec(), samples }) {
                break;
            }
        }
        Ok(())
    }

    fn label_names(
        &self,
        ms: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self.0.querier(mint_ms, maxt_ms).label_names(&matchers(ms)?))
    }

    fn label_values(
        &self,
        name: &str,
        ms: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        Ok(self.0.querier(mint_ms, maxt_ms).label_values(name, &matchers(ms)?))
    }

    fn exemplars(
        &self,
        ms: &[LabelMatcher],
        mint_ms: i64,
        maxt_ms: i64,
    ) -> Result<Vec<(Labels, Vec<ExemplarData>)>, StorageError> {
        let found = self.0.querier(mint_ms, maxt_ms).select_exemplars(&matchers(ms)?);
        Ok(found
            .into_iter()
            .map(|(labels, ex)| {
                let mut ex: Vec<ExemplarData> = ex
                    .into_iter()
                    .map(|e| ExemplarData { labels: e.labels.into_vec(), value: e.value, t_ms: e.t })
                    .collect();
                // The store keeps them in arrival order; Prometheus answers in time order.
                ex.sort_by_key(|e| e.t_ms);
                (labels.into_vec(), ex)
            })
            .collect())
    }
}

//! Scraped samples into the store: one appender and one commit per scrape. Out-of-order and
//! duplicate samples are counted, as Prometheus's scrape loop counts them, and the rest goes on.

use super::scrape_loop::{AppendOutcome, SampleSink, ScrapedSample};
use crate::labels::Labels;
use crate::store::{Exemplar, Store, StoreError};

/// Appends one scrape's samples; `accepted` sees every sample the store took (the federation
/// forwards exactly those to remote write).
pub fn append_scrape(
    store: &Store,
    samples: Vec<ScrapedSample>,
    mut accepted: impl FnMut(&Labels, i64, f64),
) -> Result<AppendOutcome, String> {
    let mut app = store.appender();
    let mut outcome = AppendOutcome::default();
    for s in samples {
        let labels = Labels::from_sorted(s.labels);
        match app.append(&labels, s.t_ms, s.value) {
            Ok(series) => {
                if let Some(e) = s.exemplar {
                    let t = e.timestamp_ms.unwrap_or(s.t_ms);
                    app.append_exemplar(
                        &series,
                        Exemplar { labels: Labels::from_pairs(e.labels), value: e.value, t },
                    );
                }
                accepted(&labels, s.t_ms, s.value);
            }
            Err(StoreError::OutOfOrderSample { .. }) => outcome.out_of_order += 1,
            Err(StoreError::DuplicateSample { .. }) => outcome.duplicates += 1,
            Err(e) if e.is_user_error() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let summary = app.commit().map_err(|e| e.to_string())?;
    outcome.appended = summary.appended as u64;
    outcome.out_of_order += summary.out_of_order as u64;
    outcome.duplicates += summary.duplicate as u64;
    Ok(outcome)
}

/// The replica's sink: straight into its store.
pub struct StoreSink(pub Store);

impl SampleSink for StoreSink {
    fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, String> {
        append_scrape(&self.0, samples, |_, _, _| {})
    }
}

//! The scrape loop's `SampleSink` over the store: one appender and one commit per scrape.

use crate::labels::Labels;
use crate::scrape::scrape_loop::{AppendOutcome, SampleSink, ScrapedSample};
use crate::store::{Exemplar, Store, StoreError};

pub struct StoreSink(pub Store);

impl SampleSink for StoreSink {
    fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, String> {
        let mut app = self.0.appender();
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
                }
                // Counted by the store, as Prometheus's scrape loop counts them; the rest goes on.
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
}

//! Scraped samples into the store: one appender and one commit per scrape. Out-of-order and
//! duplicate samples are counted, as Prometheus's scrape loop counts them, and the rest goes on.

use super::sink::{AppendOutcome, SampleSink, ScrapedSample, ScrapedSeries};
use crate::model::labels::Labels;
use crate::store::{Appender, Exemplar, SeriesRef, Store, StoreError};

/// Called with each sample the store took.
pub type Accepted<'a> = dyn FnMut(&Labels, i64, f64) + 'a;

/// The store's handle for a scraped series: cached on the series after the first lookup, and
/// looked up again if retention removed the series meanwhile.
fn series_ref(app: &mut Appender, series: &ScrapedSeries) -> Result<SeriesRef, StoreError> {
    if let Some(r) = series.store_ref()
        && r.is_live()
    {
        return Ok(r);
    }
    let r = app.series_ref(&series.to_labels())?;
    series.set_store_ref(r.clone());
    Ok(r)
}

/// Appends one scrape's samples. With `accepted`, each sample is checked as it is queued and
/// the callback sees every sample the store took (the federation forwards exactly those to
/// remote write); without it the commit alone refuses and counts, which is cheaper.
pub fn append_scrape(
    store: &Store,
    samples: Vec<ScrapedSample>,
    mut accepted: Option<&mut Accepted>,
) -> Result<AppendOutcome, StoreError> {
    let mut app = store.appender();
    let mut outcome = AppendOutcome::default();
    for s in samples {
        let r = match series_ref(&mut app, &s.series) {
            Ok(r) => r,
            Err(e) if e.is_user_error() => continue,
            Err(e) => return Err(e),
        };
        if let Some(e) = s.exemplar {
            let t = e.timestamp_ms.unwrap_or(s.t_ms);
            app.append_exemplar(&r, Exemplar { labels: Labels::from_pairs(e.labels), value: e.value, t });
        }
        let Some(accepted) = accepted.as_mut() else {
            app.queue(r, s.t_ms, s.value);
            continue;
        };
        match app.append_ref(&r, s.t_ms, s.value) {
            Ok(()) => accepted(s.series.labels(), s.t_ms, s.value),
            Err(StoreError::OutOfOrderSample { .. }) => outcome.out_of_order += 1,
            Err(StoreError::DuplicateSample { .. }) => outcome.duplicates += 1,
            Err(e) if e.is_user_error() => {}
            Err(e) => return Err(e),
        }
    }
    let summary = app.commit()?;
    outcome.appended = summary.appended as u64;
    outcome.out_of_order += summary.out_of_order as u64;
    outcome.duplicates += summary.duplicate as u64;
    Ok(outcome)
}

/// The replica's sink: straight into its store.
pub struct StoreSink(pub Store);

impl SampleSink for StoreSink {
    fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, StoreError> {
        append_scrape(&self.0, samples, None)
    }
}

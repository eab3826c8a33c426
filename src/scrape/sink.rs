//! What crosses from a scrape to wherever its samples go: a scraped series with its cached store
//! handle, a sample, and the `SampleSink` seam the replica's store and the federation's dedup
//! stage implement.

use crate::exposition::Exemplar;
use crate::model::labels::Labels;
use crate::store::{SeriesRef, StoreError};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// A series as one scrape loop knows it: its final labels and the store's handle for it, so a
/// line seen in an earlier scrape costs one hash lookup instead of parsing, relabelling and an
/// index search (Prometheus's scrape cache).
///
/// The labels are kept packed in one allocation: a replica's cache holds one of these per
/// series for as long as the target exposes it, and as a `Labels` (two `String`s per label)
/// they were the largest thing in its heap (~700 of ~2,300 bytes per series, heaptrack on the
/// replica benchmark). A `Labels` is built once the first time a sink asks for [`Self::labels`].
#[derive(Debug)]
pub struct ScrapedSeries {
    /// Sorted, `__name__` included: (uvarint length, bytes) of each name and value in turn.
    packed: Box<[u8]>,
    labels: std::sync::OnceLock<Labels>,
    /// Staleness tracks series by this hash of the labels, as Prometheus does.
    pub(super) hash: u64,
    store_ref: Mutex<Option<SeriesRef>>,
}

impl ScrapedSeries {
    pub fn new(labels: Labels) -> Arc<ScrapedSeries> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        labels.hash(&mut h);
        let mut packed = Vec::with_capacity(labels.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (name, value) in labels.iter() {
            for text in [name, value] {
                crate::store::encoding::put_bytes(&mut packed, text.as_bytes());
            }
        }
        Arc::new(ScrapedSeries {
            packed: packed.into_boxed_slice(),
            labels: std::sync::OnceLock::new(),
            hash: h.finish(),
            store_ref: Mutex::new(None),
        })
    }

    /// The labels, built on first use and kept (for sinks that need them on every sample).
    pub fn labels(&self) -> &Labels {
        self.labels.get_or_init(|| self.to_labels())
    }

    /// The labels, built for this call only (a replica needs them once, to find the series).
    pub fn to_labels(&self) -> Labels {
        if let Some(labels) = self.labels.get() {
            return labels.clone();
        }
        let mut pairs = Vec::new();
        let mut rest = &self.packed[..];
        while let Some((name, after)) = unpack(rest)
            && let Some((value, after)) = unpack(after)
        {
            pairs.push((name.to_string(), value.to_string()));
            rest = after;
        }
        Labels::from_sorted(pairs)
    }

    /// The store's handle, once a sink has looked the series up.
    pub fn store_ref(&self) -> Option<SeriesRef> {
        self.store_ref.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_store_ref(&self, r: SeriesRef) {
        *self.store_ref.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }
}

/// One (uvarint length, UTF-8 text) field of a packed label set and what follows it.
fn unpack(buf: &[u8]) -> Option<(&str, &[u8])> {
    let mut r = crate::store::encoding::Reader::new(buf);
    let text = r.str()?;
    Some((text, r.rest()))
}

impl PartialEq for ScrapedSeries {
    fn eq(&self, other: &Self) -> bool {
        self.packed == other.packed
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedSample {
    pub series: Arc<ScrapedSeries>,
    pub t_ms: i64,
    pub value: f64,
    pub exemplar: Option<Exemplar>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendOutcome {
    pub appended: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
}

/// Where scraped samples go (the store, in a replica). One call per scrape.
pub trait SampleSink: Send + Sync {
    /// An error is the store refusing the whole batch (full disk, failed WAL); samples it
    /// merely skipped (out of order, duplicate) are counted in the outcome instead.
    fn append(&self, samples: Vec<ScrapedSample>) -> Result<AppendOutcome, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_labels_read_back_exactly() {
        let long = "v".repeat(300);
        let labels = Labels::from_pairs([
            ("__name__", "http_requests_total"),
            ("path", "/über/\"quoted\"\n"),
            ("long", long.as_str()),
            ("z", "x"),
        ]);
        let series = ScrapedSeries::new(labels.clone());
        assert_eq!(series.to_labels(), labels);
        assert_eq!(series.labels(), &labels);
        assert_eq!(series.to_labels(), labels, "after the cached copy exists");
        assert_eq!(*series, *ScrapedSeries::new(labels.clone()));
        assert_ne!(*series, *ScrapedSeries::new(Labels::metric("http_requests_total", &[("z", "x")])));
    }
}

//! Writes spans: per bucket one sled batch holding the write's trace chunks and posting lists
//! (layouts in `keys`), so a trace is never found through an index without its spans (sled
//! applies a batch atomically). Spans are encoded straight from the borrowed batch; the only
//! per-span work is the index terms, gathered in reused buffers.

use super::codec;
use super::keys;
use super::model::{Span, Value};
use super::{Inner, StoreError, now_us};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Clone)]
pub struct Writer {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct WriteOutcome {
    pub stored: usize,
    /// Spans that started before the retention window; they would be dropped at once.
    pub expired: usize,
    /// Spans that start more than [`FUTURE_ALLOWANCE_US`] from now. Buckets are by start
    /// time and expire by it, so such spans would outlive retention and, being newest, push
    /// real data out when the store is over its size.
    pub future: usize,
}

/// How far ahead of this host's clock a span may start: room for clock skew between hosts.
pub const FUTURE_ALLOWANCE_US: u64 = 3_600_000_000;

impl Writer {
    pub fn write(&self, spans: &[Span]) -> Result<WriteOutcome, StoreError> {
        let inner = &self.inner;
        let now = now_us();
        let cutoff = now.saturating_sub(inner.retention_us);
        let horizon = now.saturating_add(FUTURE_ALLOWANCE_US);
        let mut outcome = WriteOutcome::default();
        let mut meta = sled::Batch::default();
        let mut meta_dirty = false;
        let mut op_key = Vec::new();
        // Processes of one batch are usually one Arc; hash each distinct one once.
        let mut hashed: Vec<(*const super::Process, u64)> = Vec::new();
        // (bucket start, trace) → its spans with their process hash, in arrival order.
        type ChunkKey = (u64, [u8; 16]);
        let mut chunks: BTreeMap<ChunkKey, Vec<(&Span, u64)>> = BTreeMap::new();
        for span in spans {
            if span.start_time_us.saturating_add(span.duration_us) < cutoff {
                outcome.expired += 1;
                continue;
            }
            if span.start_time_us > horizon {
                outcome.future += 1;
                continue;
            }
            let ptr = Arc::as_ptr(&span.process);
            let hash = match hashed.iter().find(|(p, _)| *p == ptr) {
                Some((_, h)) => *h,
                None => {
                    let encoded = codec::encode_process(&span.process);
                    let h = codec::process_hash(&encoded);
                    let known = inner.processes.read().unwrap_or_else(|p| p.into_inner()).contains_key(&h);
                    if !known {
                        inner.meta.insert(keys::meta_process(h), encoded)?;
                        inner
                            .processes
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(h, span.process.clone());
                    }
                    hashed.push((ptr, h));
                    h
                }
            };
            let bucket_start = span.start_time_us - span.start_time_us % inner.bucket_width_us;
            chunks.entry((bucket_start, span.trace_id.0)).or_default().push((span, hash));
            meta_dirty |= self.note_names(&mut meta, span, bucket_start, &mut op_key);
            outcome.stored += 1;
        }
        // One sequence number per write: it makes this write's index keys unique.
        let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut current: Option<(u64, Arc<super::Bucket>, sled::Batch, Postings)> = None;
        let mut text = String::new();
        // Chunks are ordered by bucket, so each bucket's batch is built and applied in turn.
        for ((bucket_start, trace), chunk) in &chunks {
            if current.as_ref().is_none_or(|(start, ..)| start != bucket_start) {
                if let Some((_, bucket, batch, postings)) = current.take() {
                    apply(&bucket, batch, postings, seq)?;
                }
                current = Some((
                    *bucket_start,
                    inner.bucket_for(*bucket_start)?,
                    sled::Batch::default(),
                    Postings::default(),
                ));
            }
            if let Some((_, _, batch, postings)) = current.as_mut() {
                let chunk_seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
                let start = chunk.iter().map(|(s, _)| s.start_time_us).min().unwrap_or(0);
                batch.insert(keys::chunk_key(trace, start, chunk_seq), codec::encode_chunk(chunk));
                postings.add_chunk(trace, start, chunk, &mut text);
            }
        }
        if let Some((_, bucket, batch, postings)) = current.take() {
            apply(&bucket, batch, postings, seq)?;
        }
        if meta_dirty {
            inner.meta.apply_batch(meta)?;
        }
        Ok(outcome)
    }

    /// Records service and operation names in `meta` the first time each is seen in a bucket.
    fn note_names(
        &self,
        meta: &mut sled::Batch,
        span: &Span,
        bucket_start: u64,
        op_key: &mut Vec<u8>,
    ) -> bool {
        let service = &span.process.service_name;
        let kind = match span.tag("span.kind") {
            Some(Value::Str(k)) => k.as_str(),
            _ => "",
        };
        let mut dirty = false;
        let value = bucket_start.to_be_bytes();
        {
            let mut seen = self.inner.services_seen.lock().unwrap_or_else(|p| p.into_inner());
            // Keyed as `meta` is, by the indexed (truncated) name: one entry per name kept.
            let name = keys::truncate(service);
            if seen.get(name).is_none_or(|last| *last < bucket_start) {
                seen.insert(name.to_string(), bucket_start);
                meta.insert(keys::meta_service(service), &value);
                dirty = true;
            }
        }
        op_key.clear();
        keys::push_meta_operation(op_key, service, kind, &span.operation_name);
        let mut seen = self.inner.operations_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(op_key.as_slice()).is_none_or(|last| *last < bucket_start) {
            meta.insert(op_key.as_slice(), &value);
            seen.insert(op_key.clone(), bucket_start);
            dirty = true;
        }
        dirty
    }
}

/// The posting lists one write adds to one bucket: index term → traces with that term.
#[derive(Default)]
struct Postings {
    terms: HashMap<Vec<u8>, Vec<keys::Posting>>,
    term: Vec<u8>,
}

impl Postings {
    /// Adds (or widens) the posting of the term now in `self.term` for this chunk's trace.
    fn note(&mut self, trace: &[u8; 16], start: u64, duration: Option<u64>) {
        let d = duration.unwrap_or(0);
        let list = match self.terms.get_mut(self.term.as_slice()) {
            Some(list) => list,
            None => self.terms.entry(self.term.clone()).or_default(),
        };
        // A chunk's spans are noted one after another, so its posting is the last one.
        match list.last_mut() {
            Some(p) if p.trace_id == *trace && p.start_us == start => {
                p.min_duration_us = p.min_duration_us.min(d);
                p.max_duration_us = p.max_duration_us.max(d);
            }
            _ => list.push(keys::Posting {
                trace_id: *trace,
                start_us: start,
                min_duration_us: d,
                max_duration_us: d,
            }),
        }
    }

    /// Index terms of each span: its service, service+operation, and every span and process
    /// tag with a searchable value short enough to index.
    fn add_chunk(&mut self, trace: &[u8; 16], start: u64, chunk: &[(&Span, u64)], text: &mut String) {
        for (span, _) in chunk {
            let service = span.process.service_name.as_str();
            self.term.clear();
            self.term.push(keys::SERVICE);
            keys::push_str(&mut self.term, service);
            self.note(trace, start, Some(span.duration_us));
            self.term[0] = keys::OPERATION;
            keys::push_str(&mut self.term, &span.operation_name);
            self.note(trace, start, Some(span.duration_us));
            for kv in span.tags.iter().chain(span.process.tags.iter()) {
                text.clear();
                if !kv.value.write_search_text(text) || text.len() > keys::MAX_INDEXED_STRING {
                    continue;
                }
                self.term.clear();
                self.term.push(keys::TAG);
                keys::push_str(&mut self.term, service);
                keys::push_str(&mut self.term, &kv.key);
                keys::push_str(&mut self.term, text);
                self.note(trace, start, None);
            }
        }
    }
}

/// Writes the chunks and posting lists of one bucket in one sled batch, so a trace is never
/// found through an index without its spans being there (sled applies a batch atomically).
fn apply(
    bucket: &super::Bucket,
    mut batch: sled::Batch,
    postings: Postings,
    seq: u64,
) -> Result<(), StoreError> {
    let mut value = Vec::new();
    // Tag partition prefix → (newest posting start, its terms' postings).
    type TermPostings = (Vec<u8>, Vec<keys::Posting>);
    let mut partitions: HashMap<Vec<u8>, (u64, Vec<TermPostings>)> = HashMap::new();
    for (term, list) in postings.terms {
        let max_start = list.iter().map(|p| p.start_us).max().unwrap_or(0);
        if term.first() == Some(&keys::TAG) {
            // A tag term is `TAG | service | key | value`: partitioned by `key | value`.
            let Some((service, at)) = keys::read_str(&term, 1) else { continue };
            let partition = partitions.entry(keys::tag_partition_prefix(service, &term[at..])).or_default();
            partition.0 = partition.0.max(max_start);
            partition.1.push((term[at..].to_vec(), list));
            continue;
        }
        value.clear();
        keys::encode_postings(&list, max_start, keys::has_durations(&term), &mut value);
        batch.insert(keys::index_key(&term, max_start, seq), value.as_slice());
    }
    for (prefix, (max_start, terms)) in partitions {
        value.clear();
        for (term, list) in terms {
            keys::encode_tag_entry(&term, &list, max_start, &mut value);
        }
        batch.insert(keys::index_key(&prefix, max_start, seq), value.as_slice());
    }
    bucket.tree.apply_batch(batch)?;
    Ok(())
}

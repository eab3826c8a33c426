//! Writes spans: per bucket one sled batch holding each span's key and all its index keys, so a
//! span is never visible in an index without its body (sled applies a batch atomically).

use super::codec;
use super::keys;
use super::model::{Span, Value};
use super::{Inner, StoreError, now_us};
use std::collections::{BTreeMap, HashMap, HashSet};
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
}

impl Writer {
    pub fn write(&self, spans: &[Span]) -> Result<WriteOutcome, StoreError> {
        let inner = &self.inner;
        let cutoff = now_us().saturating_sub(inner.retention_us);
        let mut outcome = WriteOutcome::default();
        let mut meta = sled::Batch::default();
        let mut meta_dirty = false;
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
            meta_dirty |= self.note_names(&mut meta, span, bucket_start);
            outcome.stored += 1;
        }
        let mut batches: HashMap<u64, (Arc<super::Bucket>, sled::Batch)> = HashMap::new();
        for ((bucket_start, trace), chunk) in &chunks {
            let (_, batch) = match batches.entry(*bucket_start) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((inner.bucket_for(*bucket_start)?, sled::Batch::default()))
                }
            };
            let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
            index_chunk(batch, trace, chunk, seq);
        }
        for (_, (bucket, batch)) in batches {
            bucket.tree.apply_batch(batch)?;
        }
        if meta_dirty {
            inner.meta.apply_batch(meta)?;
        }
        Ok(outcome)
    }

    /// Records service and operation names in `meta` the first time each is seen in a bucket.
    fn note_names(&self, meta: &mut sled::Batch, span: &Span, bucket_start: u64) -> bool {
        let service = &span.process.service_name;
        let kind = match span.tag("span.kind") {
            Some(Value::Str(k)) => k.as_str(),
            _ => "",
        };
        let mut dirty = false;
        let value = bucket_start.to_be_bytes();
        {
            let mut seen = self.inner.services_seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.get(service.as_str()).is_none_or(|last| *last < bucket_start) {
                seen.insert(service.clone(), bucket_start);
                meta.insert(keys::meta_service(service), &value);
                dirty = true;
            }
        }
        let mut seen = self.inner.operations_seen.lock().unwrap_or_else(|p| p.into_inner());
        let op_key = (service.clone(), kind.to_string(), span.operation_name.clone());
        if seen.get(&op_key).is_none_or(|last| *last < bucket_start) {
            meta.insert(keys::meta_operation(service, kind, &span.operation_name), &value);
            seen.insert(op_key, bucket_start);
            dirty = true;
        }
        dirty
    }
}

/// One chunk key for the trace's spans, then each index entry once per chunk.
fn index_chunk(batch: &mut sled::Batch, trace: &[u8; 16], chunk: &[(&Span, u64)], seq: u64) {
    let start = chunk.iter().map(|(s, _)| s.start_time_us).min().unwrap_or(0);
    batch.insert(keys::chunk_key(trace, start, seq), codec::encode_chunk(chunk));
    let mut index: HashSet<Vec<u8>> = HashSet::new();
    // service → (shortest, longest) span duration in this chunk.
    let mut durations: HashMap<&str, (u64, u64)> = HashMap::new();
    for (span, _) in chunk {
        let service = &span.process.service_name;
        index.insert(keys::service_prefix(service));
        index.insert(keys::operation_prefix(service, &span.operation_name));
        for kv in span.tags.iter().chain(span.process.tags.iter()) {
            if let Some(text) = kv.value.as_search_text()
                && text.len() <= keys::MAX_INDEXED_STRING
            {
                index.insert(keys::tag_prefix(service, &kv.key, &text));
            }
        }
        let d = durations.entry(service.as_str()).or_insert((u64::MAX, 0));
        d.0 = d.0.min(span.duration_us);
        d.1 = d.1.max(span.duration_us);
    }
    for (service, (shortest, longest)) in durations {
        for d in [shortest, longest] {
            let mut prefix = keys::duration_prefix(service);
            prefix.extend_from_slice(&d.to_be_bytes());
            index.insert(prefix);
        }
    }
    for prefix in index {
        batch.insert(keys::with_time(&prefix, start, trace), &[]);
    }
}

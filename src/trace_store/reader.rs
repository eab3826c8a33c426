//! Reads traces by id, searches the indexes, lists services and operations, and derives the
//! service dependency graph from parent/child spans.

use super::codec;
use super::keys;
use super::model::{RefType, Span, SpanId, TraceId};
use super::{Inner, StoreError, now_us};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone)]
pub struct Reader {
    pub(crate) inner: Arc<Inner>,
}

/// A trace search, in Jaeger's terms. Conditions hold per trace (any span may satisfy each),
/// as Jaeger's badger backend evaluates them.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    pub service: String,
    pub operation: Option<String>,
    pub tags: Vec<(String, String)>,
    pub start_min_us: u64,
    pub start_max_us: u64,
    pub duration_min_us: Option<u64>,
    pub duration_max_us: Option<u64>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    /// `server`, `client`… or "" when the spans had no kind.
    pub span_kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

fn corrupt(key: &[u8], e: impl ToString) -> StoreError {
    StoreError::Corrupt { key: key.to_vec(), message: e.to_string() }
}

impl Reader {
    /// All stored spans of a trace, sorted by start time; `None` if none is stored.
    pub fn trace(&self, trace_id: TraceId) -> Result<Option<Vec<Span>>, StoreError> {
        let prefix = keys::span_prefix(&trace_id.0);
        let mut spans = Vec::new();
        for (_, bucket) in self.inner.buckets_overlapping(0, u64::MAX) {
            for item in bucket.tree.scan_prefix(&prefix) {
                let (k, v) = match item {
                    Ok(kv) => kv,
                    // A bucket dropped by retention mid-scan simply has nothing more to give.
                    Err(sled::Error::CollectionNotFound(_)) => break,
                    Err(e) => return Err(e.into()),
                };
                let chunk = codec::decode_chunk(trace_id, &v, |h| self.inner.process(h))
                    .map_err(|e| corrupt(&k, e))?;
                spans.extend(chunk);
            }
        }
        if spans.is_empty() {
            return Ok(None);
        }
        // A span sent twice (exporter retry) is kept once: the copy written last.
        let mut seen = HashSet::new();
        spans.reverse();
        spans.retain(|s| seen.insert(s.span_id));
        spans.sort_by(|a, b| a.start_time_us.cmp(&b.start_time_us).then(a.span_id.cmp(&b.span_id)));
        Ok(Some(spans))
    }

    /// Trace ids matching `query`, newest first, at most `query.limit`.
    pub fn find_trace_ids(&self, query: &TraceQuery) -> Result<Vec<TraceId>, StoreError> {
        let (lo, hi) = (query.start_min_us, query.start_max_us);
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        if query.limit == 0 {
            return Ok(found);
        }
        for (_, bucket) in self.inner.buckets_overlapping(lo, hi) {
            let tree = &bucket.tree;
            // Sets from the selective conditions first; each must contain the trace.
            let mut filters: Vec<HashSet<[u8; 16]>> = Vec::new();
            for (key, value) in &query.tags {
                let (a, b) = keys::time_range(&keys::tag_prefix(&query.service, key, value), lo, hi);
                let mut set = HashSet::new();
                for item in tree.range(a..=b) {
                    let (k, _) = item?;
                    if let Some(t) = keys::index_trace_id(&k) {
                        set.insert(t);
                    }
                }
                filters.push(set);
            }
            if query.duration_min_us.is_some() || query.duration_max_us.is_some() {
                let prefix = keys::duration_prefix(&query.service);
                let (a, b) = keys::time_range(
                    &prefix,
                    query.duration_min_us.unwrap_or(0),
                    query.duration_max_us.unwrap_or(u64::MAX),
                );
                let mut set = HashSet::new();
                for item in tree.range(a..=b) {
                    let (k, _) = item?;
                    if let (Some(t), Some(start)) = (keys::index_trace_id(&k), keys::index_start_us(&k))
                        && (lo..=hi).contains(&start)
                    {
                        set.insert(t);
                    }
                }
                filters.push(set);
            }
            if filters.iter().any(HashSet::is_empty) {
                continue;
            }
            let primary = match &query.operation {
                Some(op) => keys::operation_prefix(&query.service, op),
                None => keys::service_prefix(&query.service),
            };
            let (a, b) = keys::time_range(&primary, lo, hi);
            for item in tree.range(a..=b).rev() {
                let (k, _) = item?;
                let Some(t) = keys::index_trace_id(&k) else { continue };
                if filters.iter().all(|f| f.contains(&t)) && seen.insert(t) {
                    found.push(TraceId(t));
                    if found.len() >= query.limit {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(found)
    }

    pub fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Vec<Span>>, StoreError> {
        let mut traces = Vec::new();
        for id in self.find_trace_ids(query)? {
            if let Some(t) = self.trace(id)? {
                traces.push(t);
            }
        }
        Ok(traces)
    }

    fn live_cutoff(&self) -> u64 {
        now_us().saturating_sub(self.inner.retention_us + self.inner.bucket_width_us)
    }

    /// Services seen within retention, sorted.
    pub fn services(&self) -> Result<Vec<String>, StoreError> {
        let cutoff = self.live_cutoff();
        let mut out = Vec::new();
        for item in self.inner.meta.scan_prefix([keys::META_SERVICE]) {
            let (k, v) = item?;
            let last = v.as_ref().try_into().map(u64::from_be_bytes).map_err(|e| corrupt(&k, e))?;
            if last >= cutoff
                && let Some((name, _)) = keys::read_str(&k, 1)
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Operations of `service` seen within retention; `span_kind` filters when given.
    pub fn operations(&self, service: &str, span_kind: Option<&str>) -> Result<Vec<Operation>, StoreError> {
        let cutoff = self.live_cutoff();
        let mut prefix = vec![keys::META_OPERATION];
        keys::push_str(&mut prefix, service);
        let mut out = Vec::new();
        for item in self.inner.meta.scan_prefix(&prefix) {
            let (k, v) = item?;
            let last = v.as_ref().try_into().map(u64::from_be_bytes).map_err(|e| corrupt(&k, e))?;
            let Some((kind, pos)) = keys::read_str(&k, prefix.len()) else { continue };
            let Some((name, _)) = keys::read_str(&k, pos) else { continue };
            if last >= cutoff && span_kind.is_none_or(|want| want == kind) {
                out.push(Operation { name: name.to_string(), span_kind: kind.to_string() });
            }
        }
        out.sort();
        Ok(out)
    }

    /// Parent→child service calls of spans that started in `[end - lookback, end]`, counted
    /// per CHILD_OF reference whose parent span is from another service (Jaeger's in-memory
    /// store rule).
    pub fn dependencies(&self, end_us: u64, lookback_us: u64) -> Result<Vec<Dependency>, StoreError> {
        let lo = end_us.saturating_sub(lookback_us);
        // Per trace: each span's id, service and CHILD_OF parents.
        type Node = (SpanId, Arc<str>, Vec<SpanId>);
        let mut traces: HashMap<[u8; 16], Vec<Node>> = HashMap::new();
        let mut names: HashMap<String, Arc<str>> = HashMap::new();
        for (_, bucket) in self.inner.buckets_overlapping(lo, end_us) {
            for item in bucket.tree.scan_prefix([keys::SPAN]) {
                let (k, v) = item?;
                let Some(trace) = k.get(1..17).and_then(|t| <[u8; 16]>::try_from(t).ok()) else { continue };
                let chunk = codec::decode_chunk(TraceId(trace), &v, |h| self.inner.process(h))
                    .map_err(|e| corrupt(&k, e))?;
                for span in chunk {
                    if !(lo..=end_us).contains(&span.start_time_us) {
                        continue;
                    }
                    let service = names
                        .entry(span.process.service_name.clone())
                        .or_insert_with(|| Arc::from(span.process.service_name.as_str()))
                        .clone();
                    let parents = span
                        .references
                        .iter()
                        .filter(|r| r.ref_type == RefType::ChildOf && r.trace_id == span.trace_id)
                        .map(|r| r.span_id)
                        .collect();
                    traces.entry(trace).or_default().push((span.span_id, service, parents));
                }
            }
        }
        let mut edges: BTreeMap<(Arc<str>, Arc<str>), u64> = BTreeMap::new();
        for spans in traces.values() {
            let by_id: HashMap<SpanId, &Arc<str>> = spans.iter().map(|(id, s, _)| (*id, s)).collect();
            for (_, child, parents) in spans {
                for p in parents {
                    if let Some(parent) = by_id.get(p)
                        && **parent != *child
                    {
                        *edges.entry(((*parent).clone(), child.clone())).or_default() += 1;
                    }
                }
            }
        }
        Ok(edges
            .into_iter()
            .map(|((parent, child), call_count)| Dependency {
                parent: parent.to_string(),
                child: child.to_string(),
                call_count,
            })
            .collect())
    }
}

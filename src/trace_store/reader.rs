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
        let (dmin, dmax) = (query.duration_min_us.unwrap_or(0), query.duration_max_us.unwrap_or(u64::MAX));
        for (_, bucket) in self.inner.buckets_overlapping(lo, hi) {
            let tree = &bucket.tree;
            // Traces having each tag; a match must be in all of them.
            let mut filters: Vec<HashSet<[u8; 16]>> = Vec::new();
            for (key, value) in &query.tags {
                let term = keys::tag_term(key, value);
                let (a, b) = keys::index_range_from(&keys::tag_partition_prefix(&query.service, &term), lo);
                let mut set = HashSet::new();
                for item in tree.range(a..=b) {
                    let (k, v) = item?;
                    let postings =
                        keys::tag_postings(&k, &v, &term).ok_or_else(|| corrupt(&k, "bad tag postings"))?;
                    set.extend(
                        postings.iter().filter(|p| (lo..=hi).contains(&p.start_us)).map(|p| p.trace_id),
                    );
                }
                if set.is_empty() {
                    break;
                }
                filters.push(set);
            }
            if filters.len() < query.tags.len() {
                continue;
            }
            let primary = match &query.operation {
                Some(op) => keys::operation_prefix(&query.service, op),
                None => keys::service_prefix(&query.service),
            };
            let (a, b) = keys::index_range_from(&primary, lo);
            let wanted = query.limit - found.len();
            // (start, trace, whether its durations only may match): gathered newest batch first
            // until no later batch can hold a newer match than the `wanted` newest found.
            let mut candidates: Vec<(u64, [u8; 16], bool)> = Vec::new();
            for item in tree.range(a..=b).rev() {
                let (k, v) = item?;
                let key_max = keys::index_max_start_us(&k).unwrap_or(u64::MAX);
                if candidates.len() >= wanted {
                    let newer: HashSet<&[u8; 16]> =
                        candidates.iter().filter(|c| c.0 > key_max && !c.2).map(|c| &c.1).collect();
                    if newer.len() >= wanted {
                        break;
                    }
                }
                let postings = keys::decode_postings(&k, &v).ok_or_else(|| corrupt(&k, "bad postings"))?;
                for p in postings {
                    // Spans of the term in this chunk last from min to max: one of them is in
                    // [dmin, dmax] if an end is, maybe if the ranges only overlap.
                    let surely = (dmin..=dmax).contains(&p.min_duration_us)
                        || (dmin..=dmax).contains(&p.max_duration_us);
                    let maybe = p.min_duration_us <= dmax && p.max_duration_us >= dmin;
                    if (lo..=hi).contains(&p.start_us)
                        && maybe
                        && filters.iter().all(|f| f.contains(&p.trace_id))
                    {
                        candidates.push((p.start_us, p.trace_id, !surely));
                    }
                }
            }
            candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
            for (_, t, unsure) in candidates {
                if seen.contains(&t) || (unsure && !self.has_span_in(TraceId(t), query, dmin, dmax)?) {
                    continue;
                }
                seen.insert(t);
                found.push(TraceId(t));
                if found.len() >= query.limit {
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }

    /// Whether the trace has a span of the query's service (and operation) lasting within
    /// [dmin, dmax]: the exact check when a posting's duration range only overlaps the bounds.
    fn has_span_in(&self, id: TraceId, query: &TraceQuery, dmin: u64, dmax: u64) -> Result<bool, StoreError> {
        Ok(self.trace(id)?.is_some_and(|spans| {
            spans.iter().any(|s| {
                keys::truncate(&s.process.service_name) == keys::truncate(&query.service)
                    && query
                        .operation
                        .as_ref()
                        .is_none_or(|op| keys::truncate(&s.operation_name) == keys::truncate(op))
                    && (dmin..=dmax).contains(&s.duration_us)
            })
        }))
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
        self.inner.live_cutoff(now_us())
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

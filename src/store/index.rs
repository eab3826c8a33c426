//! The series index: series id ↔ label set, interned label strings, and inverted postings
//! (label name=value → sorted series ids) that answer matchers.
//!
//! The whole index lives in memory (rebuilt from sled's `y` and `s` keys at open, like the
//! Prometheus head index), one `u32` symbol per distinct string, so a series costs a few words
//! per label plus its head. Callers hold the index lock only for in-memory work; sled writes for
//! a new series happen after it is released.

use super::encoding::{Reader, put_uvarint};
use super::head::SeriesHead;
use crate::model::Matcher;
use crate::model::labels::Labels;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Symbols {
    by_id: Vec<Arc<str>>,
    by_str: HashMap<Arc<str>, u32>,
}

impl Symbols {
    pub fn get(&self, id: u32) -> &str {
        self.by_id.get(id as usize).map_or("", |s| s)
    }

    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.by_str.get(s).copied()
    }

    /// Interns `s`; the bool says whether it is new (and must be persisted).
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        if let Some(&id) = self.by_str.get(s) {
            return (id, false);
        }
        let id = self.by_id.len() as u32;
        let a: Arc<str> = s.into();
        self.by_id.push(a.clone());
        self.by_str.insert(a, id);
        (id, true)
    }

    /// Loads a persisted symbol at its id (ids from disk may have gaps after damage).
    pub fn load(&mut self, id: u32, s: &str) {
        let idx = id as usize;
        if idx >= self.by_id.len() {
            self.by_id.resize(idx + 1, Arc::from(""));
        }
        let a: Arc<str> = s.into();
        self.by_id[idx] = a.clone();
        self.by_str.entry(a).or_insert(id);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// One series in memory.
pub struct MemSeries {
    pub sid: u64,
    /// (name symbol, value symbol), sorted by name string.
    pub labels: Box<[(u32, u32)]>,
    pub head: Mutex<SeriesHead>,
    /// Earliest and latest sample time anywhere (disk or head); `i64::MAX`/`MIN` when none.
    /// Used to skip series outside a query's range without touching sled.
    pub first_t: AtomicI64,
    pub last_t: AtomicI64,
    /// Set (under the head lock) when retention removes the series; cached refs then fail.
    pub removed: AtomicBool,
    /// The WAL segment that last got this series' record: each segment names every series its
    /// samples use, so it replays on its own (see `Appender::commit`).
    pub wal_segment: AtomicU64,
}

impl MemSeries {
    pub fn note_time(&self, t: i64) {
        self.first_t.fetch_min(t, Ordering::Relaxed);
        self.last_t.fetch_max(t, Ordering::Relaxed);
    }

    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        let f = self.first_t.load(Ordering::Relaxed);
        let l = self.last_t.load(Ordering::Relaxed);
        f <= maxt && l >= mint
    }

    pub fn lock_head(&self) -> std::sync::MutexGuard<'_, SeriesHead> {
        self.head.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Index {
    pub symbols: Symbols,
    pub series: HashMap<u64, Arc<MemSeries>>,
    by_hash: HashMap<u64, Vec<u64>>,
    postings: HashMap<(u32, u32), Vec<u64>>,
    values: HashMap<u32, BTreeSet<u32>>,
    hasher: RandomState,
    pub next_sid: u64,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            symbols: Symbols::default(),
            series: HashMap::new(),
            by_hash: HashMap::new(),
            postings: HashMap::new(),
            values: HashMap::new(),
            hasher: RandomState::new(),
            next_sid: 1,
        }
    }
}

impl Index {
    pub fn hash(&self, labels: &Labels) -> u64 {
        self.hasher.hash_one(labels)
    }

    fn same(&self, s: &MemSeries, labels: &Labels) -> bool {
        s.labels.len() == labels.len()
            && s.labels
                .iter()
                .zip(labels.iter())
                .all(|(&(n, v), (ln, lv))| self.symbols.get(n) == ln && self.symbols.get(v) == lv)
    }

    pub fn lookup(&self, labels: &Labels, hash: u64) -> Option<&Arc<MemSeries>> {
        self.by_hash.get(&hash)?.iter().filter_map(|sid| self.series.get(sid)).find(|s| self.same(s, labels))
    }

    /// Adds a series with a given id; returns it and the symbols it created.
    pub fn insert(&mut self, sid: u64, labels: &Labels) -> (Arc<MemSeries>, Vec<u32>) {
        let mut new_syms = Vec::new();
        let mut pairs = Vec::with_capacity(labels.len());
        for (n, v) in labels.iter() {
            let (ns, nnew) = self.symbols.intern(n);
            let (vs, vnew) = self.symbols.intern(v);
            if nnew {
                new_syms.push(ns);
            }
            if vnew {
                new_syms.push(vs);
            }
            pairs.push((ns, vs));
        }
        let series = Arc::new(MemSeries {
            sid,
            labels: pairs.into_boxed_slice(),
            head: Mutex::new(SeriesHead::default()),
            first_t: AtomicI64::new(i64::MAX),
            last_t: AtomicI64::new(i64::MIN),
            removed: AtomicBool::new(false),
            wal_segment: AtomicU64::new(0),
        });
        for &(n, v) in series.labels.iter() {
            let list = self.postings.entry((n, v)).or_default();
            // Ids are mostly increasing; keep the list sorted either way.
            match list.last() {
                Some(&last) if last > sid => {
                    if let Err(i) = list.binary_search(&sid) {
                        list.insert(i, sid);
                    }
                }
                _ => list.push(sid),
            }
            self.values.entry(n).or_default().insert(v);
        }
        let hash = self.hash(labels);
        self.by_hash.entry(hash).or_default().push(sid);
        self.series.insert(sid, series.clone());
        self.next_sid = self.next_sid.max(sid + 1);
        (series, new_syms)
    }

    pub fn remove(&mut self, sid: u64) {
        let Some(series) = self.series.remove(&sid) else { return };
        for &(n, v) in series.labels.iter() {
            if let Some(list) = self.postings.get_mut(&(n, v)) {
                if let Ok(i) = list.binary_search(&sid) {
                    list.remove(i);
                }
                if list.is_empty() {
                    self.postings.remove(&(n, v));
                    if let Some(vals) = self.values.get_mut(&n) {
                        vals.remove(&v);
                        if vals.is_empty() {
                            self.values.remove(&n);
                        }
                    }
                }
            }
        }
        let labels = self.labels_of(&series);
        let hash = self.hash(&labels);
        if let Some(list) = self.by_hash.get_mut(&hash) {
            list.retain(|&s| s != sid);
            if list.is_empty() {
                self.by_hash.remove(&hash);
            }
        }
    }

    pub fn labels_of(&self, s: &MemSeries) -> Labels {
        Labels::from_sorted(
            s.labels
                .iter()
                .map(|&(n, v)| (self.symbols.get(n).to_string(), self.symbols.get(v).to_string()))
                .collect(),
        )
    }

    fn label_value<'a>(&'a self, s: &MemSeries, name: &str) -> &'a str {
        s.labels.iter().find(|&&(n, _)| self.symbols.get(n) == name).map_or("", |&(_, v)| self.symbols.get(v))
    }

    /// Series ids for one matcher that cannot match the empty string: the union of the postings
    /// of every value it matches.
    fn postings_for(&self, m: &Matcher) -> Vec<u64> {
        let Some(name) = self.symbols.lookup(&m.name) else { return Vec::new() };
        if let Some(v) = m.exact_value() {
            return self
                .symbols
                .lookup(v)
                .and_then(|vs| self.postings.get(&(name, vs)))
                .cloned()
                .unwrap_or_default();
        }
        let Some(values) = self.values.get(&name) else { return Vec::new() };
        let mut lists: Vec<&Vec<u64>> = Vec::new();
        for &v in values {
            if m.matches(self.symbols.get(v))
                && let Some(l) = self.postings.get(&(name, v))
            {
                lists.push(l);
            }
        }
        let mut out: Vec<u64> = lists.into_iter().flatten().copied().collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Series matching every matcher. Matchers that cannot match "" narrow through the
    /// postings (intersection); the rest, and a label a series lacks, are checked per series.
    /// No positive matcher means every series is a candidate.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let mut positive: Vec<&Matcher> = matchers.iter().filter(|m| !m.matches_empty()).collect();
        // Exact matches first: usually the smallest lists.
        positive.sort_by_key(|m| m.exact_value().is_none());
        let candidates: Vec<u64> = match positive.split_first() {
            None => {
                let mut all: Vec<u64> = self.series.keys().copied().collect();
                all.sort_unstable();
                all
            }
            Some((first, rest)) => {
                let mut set = self.postings_for(first);
                for m in rest {
                    if set.is_empty() {
                        break;
                    }
                    let other = self.postings_for(m);
                    set = intersect(&set, &other);
                }
                set
            }
        };
        let others: Vec<&Matcher> = matchers.iter().filter(|m| m.matches_empty()).collect();
        candidates
            .into_iter()
            .filter_map(|sid| self.series.get(&sid))
            .filter(|s| others.iter().all(|m| m.matches(self.label_value(s, &m.name))))
            .cloned()
            .collect()
    }

    /// Serialized label set of a series for its `s` key.
    pub fn encode_series(s: &MemSeries) -> Vec<u8> {
        let mut b = Vec::with_capacity(1 + s.labels.len() * 4);
        put_uvarint(&mut b, s.labels.len() as u64);
        for &(n, v) in s.labels.iter() {
            put_uvarint(&mut b, u64::from(n));
            put_uvarint(&mut b, u64::from(v));
        }
        b
    }

    /// Label set from an `s` value, or `None` if damaged or naming unknown symbols.
    pub fn decode_series(&self, buf: &[u8]) -> Option<Labels> {
        let mut r = Reader::new(buf);
        let n = r.uvarint()?;
        let mut pairs = Vec::with_capacity(n.min(256) as usize);
        for _ in 0..n {
            let ns = u32::try_from(r.uvarint()?).ok()?;
            let vs = u32::try_from(r.uvarint()?).ok()?;
            if ns as usize >= self.symbols.len() || vs as usize >= self.symbols.len() {
                return None;
            }
            pairs.push((self.symbols.get(ns).to_string(), self.symbols.get(vs).to_string()));
        }
        let sorted = pairs.windows(2).all(|w| w[0].0 < w[1].0)
            && pairs.iter().all(|(n, v)| !n.is_empty() && !v.is_empty());
        sorted.then(|| Labels::from_sorted(pairs))
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix() -> Index {
        let mut ix = Index::default();
        ix.insert(1, &Labels::metric("up", &[("job", "node"), ("instance", "a")]));
        ix.insert(2, &Labels::metric("up", &[("job", "prom"), ("instance", "b")]));
        ix.insert(3, &Labels::metric("http_requests_total", &[("job", "node"), ("code", "200")]));
        ix.insert(4, &Labels::metric("up", &[("job", "node")]));
        ix
    }

    fn sids(ix: &Index, ms: &[Matcher]) -> Vec<u64> {
        ix.select(ms).iter().map(|s| s.sid).collect()
    }

    #[test]
    fn matchers_select_like_prometheus() {
        let ix = ix();
        assert_eq!(sids(&ix, &[Matcher::equal("__name__", "up")]), [1, 2, 4]);
        assert_eq!(sids(&ix, &[Matcher::equal("__name__", "up"), Matcher::equal("job", "node")]), [1, 4]);
        assert_eq!(
            sids(&ix, &[Matcher::equal("__name__", "up"), Matcher::not_equal("instance", "a")]),
            [2, 4]
        );
        assert_eq!(sids(&ix, &[Matcher::equal("__name__", "up"), Matcher::equal("instance", "")]), [4]);
        assert_eq!(sids(&ix, &[Matcher::regex("job", "no.*").unwrap()]), [1, 3, 4]);
        assert_eq!(sids(&ix, &[Matcher::regex("job", "no").unwrap()]), Vec::<u64>::new());
        assert_eq!(sids(&ix, &[Matcher::not_regex("job", "node").unwrap()]), [2]);
        assert_eq!(
            sids(&ix, &[Matcher::regex("__name__", ".+").unwrap(), Matcher::regex("code", "2..|").unwrap()]),
            [1, 2, 3, 4]
        );
        assert_eq!(sids(&ix, &[Matcher::equal("nope", "x")]), Vec::<u64>::new());
    }

    #[test]
    fn lookup_remove_and_encoding() {
        let mut ix = ix();
        let l = Labels::metric("up", &[("job", "prom"), ("instance", "b")]);
        let h = ix.hash(&l);
        let s = ix.lookup(&l, h).unwrap().clone();
        assert_eq!(s.sid, 2);
        assert_eq!(ix.labels_of(&s), l);
        assert_eq!(ix.decode_series(&Index::encode_series(&s)), Some(l.clone()));
        ix.remove(2);
        assert!(ix.lookup(&l, h).is_none());
        assert_eq!(sids(&ix, &[Matcher::equal("job", "prom")]), Vec::<u64>::new());
        assert_eq!(ix.decode_series(&[5, 1]), None);
    }
}

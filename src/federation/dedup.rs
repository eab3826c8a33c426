//! HA deduplication of federated replicas: a pure piece, scrapes in, accepted samples out.
//!
//! Why a per-series leader (Mimir's HA tracker, Thanos's penalty) rather than VictoriaMetrics's
//! "one sample per interval": two replicas scrape the same target at different instants, and a
//! replica stamps a sample with the time its scrape *started*, not when the target read its
//! counter. Interleaving the replicas by timestamp alone can therefore put replica B's
//! (t=1001 ms, 99) after replica A's (t=1000 ms, 100) — a false counter reset that `rate()`
//! turns into a spike. Keeping every series on one replica (the leader) makes the stored
//! series exactly that replica's series; another replica takes over only once it is ahead of
//! the leader by `failover_timeout` of sample time, which is far more than any difference
//! in scrape latency, so the hand-over cannot step a counter backwards either.
//!
//! The trade-off: after the leader dies, the series waits up to `failover_timeout` (plus one
//! replica scrape interval) before the other replica's samples are accepted — a short hole at
//! a failover, where VictoriaMetrics's dedup would have none. Samples the other replica
//! offered during that window are dropped, not back-filled. We take the short hole over wrong
//! rates. Timestamps, not arrival times, decide, so the result does not depend on which
//! replica the balancer happened to pick or on network jitter, and it is deterministic.
//!
//! Rules for one series (labels without the replica label), sample from replica `r` at `t`:
//! - first sight: `r` leads, accept;
//! - `r` leads: accept if `t` is newer than the last accepted sample (so a replica's repeated
//!   `/federate` answer with the same latest sample is not stored twice);
//! - `r` does not lead: accept and make `r` the leader if `t` is newer than the last accepted
//!   sample by more than `failover_timeout`, or if the leader ended the series with a
//!   staleness marker; otherwise drop. A replica's staleness marker is never accepted unless
//!   it leads, so one replica losing a target does not end a series the other still has.
//!
//! Samples without the replica label (the federation's own `up`, a non-HA source) pass
//! through untouched; the store orders them itself.

use crate::model::is_stale_nan;
use crate::model::labels::Labels;
use crate::scrape::sink::{ScrapedSample, ScrapedSeries};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
struct SeriesState {
    /// The replica whose samples the series follows; None after it sent a staleness marker.
    leader: Option<Arc<str>>,
    last_t: i64,
    /// The series without the replica label, as stored (its store handle is cached on it).
    identity: Arc<ScrapedSeries>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DedupStats {
    pub accepted: u64,
    /// The leader's repeated or older sample (the same `/federate` answer seen twice).
    pub dropped_duplicate: u64,
    /// A non-leader replica's sample.
    pub dropped_other_replica: u64,
    pub failovers: u64,
    pub passed_through: u64,
}

/// A scraped series, the series it is stored as (no replica label), and the replica.
type SplitSeries = (Arc<ScrapedSeries>, Arc<ScrapedSeries>, Arc<str>);

pub struct Dedup {
    replica_label: String,
    failover_ms: i64,
    forget_after_ms: i64,
    series: HashMap<Labels, SeriesState>,
    /// A scraped series (by address; the Arc is held so the address stays its own) and what
    /// it splits into, so a repeated series is not split again each scrape.
    sources: HashMap<usize, SplitSeries>,
    newest_t: i64,
    last_sweep_t: i64,
    pub stats: DedupStats,
}

impl Dedup {
    pub fn new(
        replica_label: &str,
        failover: std::time::Duration,
        forget_after: std::time::Duration,
    ) -> Dedup {
        Dedup {
            replica_label: replica_label.to_string(),
            failover_ms: failover.as_millis() as i64,
            forget_after_ms: forget_after.as_millis().max(1) as i64,
            series: HashMap::new(),
            sources: HashMap::new(),
            newest_t: i64::MIN,
            last_sweep_t: i64::MIN,
            stats: DedupStats::default(),
        }
    }

    pub fn tracked_series(&self) -> usize {
        self.series.len()
    }

    /// Up to `limit` tracked series whose labels contain `filter` (as `name="value"` text), each
    /// with the replica it follows ("" once that replica ended it) and its last stored sample
    /// time, sorted by labels; and how many series matched in all.
    pub fn leaders(&self, filter: &str, limit: usize) -> (usize, Vec<(String, String, i64)>) {
        let mut hits: Vec<(String, String, i64)> = self
            .series
            .iter()
            .map(|(labels, state)| {
                let text = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect::<Vec<_>>().join(", ");
                (text, state.leader.as_deref().unwrap_or_default().to_string(), state.last_t)
            })
            .filter(|(text, _, _)| text.contains(filter))
            .collect();
        let total = hits.len();
        hits.sort();
        hits.truncate(limit);
        (total, hits)
    }

    /// How many series each replica leads; series whose leader ended them are not counted.
    pub fn series_by_leader(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for state in self.series.values() {
            if let Some(leader) = &state.leader {
                *out.entry(leader.to_string()).or_insert(0) += 1;
            }
        }
        out
    }

    /// One scrape's samples in; the ones to store out, replica label removed.
    pub fn offer_batch(&mut self, samples: Vec<ScrapedSample>) -> Vec<ScrapedSample> {
        let mut out = Vec::with_capacity(samples.len());
        for s in samples {
            if let Some(s) = self.offer(s) {
                out.push(s);
            }
        }
        self.maybe_forget();
        out
    }

    /// The series without the replica label and the replica's name; `None` without the label.
    fn split(&mut self, source: &Arc<ScrapedSeries>) -> Option<(Arc<ScrapedSeries>, Arc<str>)> {
        let key = Arc::as_ptr(source) as usize;
        if let Some((_, identity, replica)) = self.sources.get(&key) {
            return Some((identity.clone(), replica.clone()));
        }
        let mut labels = source.to_labels();
        let replica: Arc<str> = labels.get(&self.replica_label)?.into();
        labels.remove(&self.replica_label);
        let identity = match self.series.get(&labels) {
            Some(state) => state.identity.clone(),
            None => ScrapedSeries::new(labels),
        };
        self.sources.insert(key, (source.clone(), identity.clone(), replica.clone()));
        Some((identity, replica))
    }

    pub fn offer(&mut self, sample: ScrapedSample) -> Option<ScrapedSample> {
        let Some((identity, replica)) = self.split(&sample.series) else {
            self.stats.passed_through += 1;
            return Some(sample);
        };
        let sample = ScrapedSample { series: identity, ..sample };
        let t = sample.t_ms;
        let stale = is_stale_nan(sample.value);
        if t > self.newest_t {
            self.newest_t = t;
        }
        let Some(state) = self.series.get_mut(sample.series.labels()) else {
            if stale {
                // Nothing to end; a marker must not start a series either.
                self.stats.dropped_duplicate += 1;
                return None;
            }
            self.series.insert(
                sample.series.labels().clone(),
                SeriesState { leader: Some(replica), last_t: t, identity: sample.series.clone() },
            );
            self.stats.accepted += 1;
            return Some(sample);
        };
        let leads = state.leader.as_deref() == Some(&*replica);
        if leads {
            if t <= state.last_t {
                self.stats.dropped_duplicate += 1;
                return None;
            }
            state.last_t = t;
            if stale {
                state.leader = None;
            }
            self.stats.accepted += 1;
            return Some(sample);
        }
        if stale || t <= state.last_t {
            self.stats.dropped_other_replica += 1;
            return None;
        }
        let leader_gone = state.leader.is_none();
        if leader_gone || t - state.last_t > self.failover_ms {
            if !leader_gone {
                self.stats.failovers += 1;
                tracing::debug!(
                    series = %sample.series.labels(),
                    from = ?state.leader,
                    to = %replica,
                    "dedup failover"
                );
            }
            state.leader = Some(replica);
            state.last_t = t;
            self.stats.accepted += 1;
            return Some(sample);
        }
        self.stats.dropped_other_replica += 1;
        None
    }

    /// Forgets series no replica sent for `forget_after` (of sample time), so churn does not
    /// grow the map without bound. Runs at most once per tenth of that period.
    fn maybe_forget(&mut self) {
        if self.newest_t == i64::MIN {
            return;
        }
        if self.last_sweep_t != i64::MIN && self.newest_t - self.last_sweep_t < self.forget_after_ms / 10 {
            return;
        }
        self.last_sweep_t = self.newest_t;
        let horizon = self.newest_t - self.forget_after_ms;
        self.series.retain(|_, s| s.last_t >= horizon);
        let series = &self.series;
        self.sources.retain(|_, (_, identity, _)| series.contains_key(identity.labels()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;
    use std::time::Duration;

    fn s(replica: &str, t: i64, v: f64) -> ScrapedSample {
        let mut labels = vec![
            ("__name__".to_string(), "requests_total".to_string()),
            ("job".to_string(), "app".to_string()),
        ];
        if !replica.is_empty() {
            labels.push(("prometheus_instance".to_string(), replica.to_string()));
        }
        ScrapedSample {
            series: ScrapedSeries::new(Labels::from_pairs(labels)),
            t_ms: t,
            value: v,
            exemplar: None,
        }
    }

    fn dedup() -> Dedup {
        Dedup::new("prometheus_instance", Duration::from_millis(7500), Duration::from_secs(600))
    }

    /// Runs scrapes (each a list of samples) and returns the accepted (t, v).
    fn run(d: &mut Dedup, scrapes: Vec<Vec<ScrapedSample>>) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        for scrape in scrapes {
            for a in d.offer_batch(scrape) {
                assert!(a.series.labels().get("prometheus_instance").is_none(), "replica label dropped");
                out.push((a.t_ms, a.value));
            }
        }
        out
    }

    #[test]
    fn leaders_follow_failover() {
        let mut d = dedup();
        run(&mut d, vec![vec![s("a", 1000, 1.0)], vec![s("b", 1100, 1.0)]]);
        let (total, rows) = d.leaders("job=\"app\"", 10);
        assert_eq!(total, 1);
        assert_eq!(rows[0].1, "a");
        assert_eq!(d.series_by_leader().get("a"), Some(&1));
        // b is ahead by more than the failover timeout: it takes the series over.
        run(&mut d, vec![vec![s("b", 20_000, 2.0)]]);
        assert_eq!(d.leaders("", 10).1[0].1, "b");
        assert_eq!(d.leaders("job=\"other\"", 10).0, 0);
        assert_eq!(d.series_by_leader().get("a"), None);
    }

    fn assert_monotonic(out: &[(i64, f64)]) {
        for w in out.windows(2) {
            assert!(w[1].0 > w[0].0, "timestamps strictly increase: {out:?}");
            assert!(w[1].1 >= w[0].1 || w[1].1.is_nan(), "no false counter reset: {out:?}");
        }
    }

    #[test]
    fn balancer_alternating_replicas_step_back_in_time() {
        // Each /federate answer carries the replica's own latest sample: A is 5 s behind B's
        // phase, so alternating answers go back and forth in time.
        let mut d = dedup();
        let mut scrapes = Vec::new();
        for i in 0..20 {
            let base = i * 15_000;
            if i % 2 == 0 {
                scrapes.push(vec![s("a", base, base as f64)]);
            } else {
                scrapes.push(vec![s("b", base - 5_000, (base - 5_000) as f64)]);
            }
        }
        let out = run(&mut d, scrapes);
        assert_monotonic(&out);
        // A leads; B is 10 s ahead of A's last accepted sample (> 7.5 s) and takes over, then A
        // takes over again: one sample every 15 s, with no hole longer than two intervals.
        for w in out.windows(2) {
            assert!(w[1].0 - w[0].0 <= 30_000, "{out:?}");
        }
        assert!(out.len() >= 15, "{out:?}");
    }

    #[test]
    fn fan_out_keeps_one_replica_and_no_doubles() {
        let mut d = dedup();
        let mut scrapes = Vec::new();
        for i in 0..10 {
            let t = i * 15_000;
            // The same answer seen twice (a federation scrape faster than the replica's).
            scrapes.push(vec![s("a", t, t as f64), s("b", t + 3_000, (t + 3_000) as f64)]);
            scrapes.push(vec![s("a", t, t as f64), s("b", t + 3_000, (t + 3_000) as f64)]);
        }
        let out = run(&mut d, scrapes);
        assert_eq!(out.len(), 10, "one sample per replica interval, from the leader: {out:?}");
        assert!(out.iter().all(|(t, _)| t % 15_000 == 0), "all from replica a: {out:?}");
        assert_eq!(d.stats.failovers, 0);
        assert_eq!(d.tracked_series(), 1);
    }

    #[test]
    fn scrape_latency_cannot_fake_a_counter_reset() {
        // B's scrape started 1 ms after A's but its target answered first, with a lower value.
        let mut d = dedup();
        let out = run(
            &mut d,
            vec![
                vec![s("a", 1000, 100.0)],
                vec![s("b", 1001, 99.0)],
                vec![s("a", 16_000, 130.0)],
                vec![s("b", 16_001, 129.0)],
            ],
        );
        assert_eq!(out, vec![(1000, 100.0), (16_000, 130.0)]);
    }

    #[test]
    fn leader_dies_other_takes_over_then_restarted_replica_stays_follower() {
        let mut d = dedup();
        let mut scrapes = Vec::new();
        for i in 0..5 {
            let t = i * 15_000;
            scrapes.push(vec![s("a", t, t as f64 / 10.0), s("b", t + 2_000, (t + 2_000) as f64 / 10.0)]);
        }
        // A is killed after t=60 s: only B answers.
        for i in 5..10 {
            let t = i * 15_000 + 2_000;
            scrapes.push(vec![s("b", t, t as f64 / 10.0)]);
        }
        // A restarts: it first serves its last sample from before the crash (old timestamp),
        // then fresh ones again, while B keeps leading.
        scrapes.push(vec![s("a", 60_000, 6_000.0), s("b", 152_000, 15_200.0)]);
        for i in 11..14 {
            let t = i * 15_000;
            // The leader's fresh sample arrives first; the follower's, 2 s older, is dropped.
            scrapes.push(vec![s("b", t + 2_000, (t + 2_000) as f64 / 10.0), s("a", t, t as f64 / 10.0)]);
        }
        let out = run(&mut d, scrapes);
        assert_monotonic(&out);
        assert_eq!(d.stats.failovers, 1);
        for w in out.windows(2) {
            assert!(w[1].0 - w[0].0 <= 30_000, "no hole longer than two intervals: {out:?}");
        }
        // After the failover every sample comes from B (t ≡ 2 s mod 15 s).
        assert!(out.iter().filter(|(t, _)| *t > 60_000).all(|(t, _)| t % 15_000 == 2_000), "{out:?}");
    }

    #[test]
    fn replica_that_missed_scrapes_is_left_behind() {
        let mut d = dedup();
        let out = run(
            &mut d,
            vec![
                vec![s("a", 0, 0.0), s("b", 1_000, 1.0)],
                // A cannot reach the target: its /federate keeps serving its last sample.
                vec![s("a", 0, 0.0), s("b", 16_000, 16.0)],
                vec![s("a", 0, 0.0), s("b", 31_000, 31.0)],
                // A recovers; B, which is not behind, stays the leader.
                vec![s("b", 46_000, 46.0), s("a", 45_000, 45.0)],
            ],
        );
        assert_eq!(out, vec![(0, 0.0), (16_000, 16.0), (31_000, 31.0), (46_000, 46.0)]);
    }

    #[test]
    fn real_counter_reset_passes_through() {
        // The target restarted: both replicas see the counter start again.
        let mut d = dedup();
        let out = run(
            &mut d,
            vec![
                vec![s("a", 0, 500.0), s("b", 1_000, 501.0)],
                vec![s("a", 15_000, 3.0), s("b", 16_000, 4.0)],
                vec![s("a", 30_000, 20.0), s("b", 31_000, 21.0)],
            ],
        );
        assert_eq!(out, vec![(0, 500.0), (15_000, 3.0), (30_000, 20.0)]);
    }

    #[test]
    fn staleness_markers_only_from_the_leader() {
        let mut d = dedup();
        let out = run(
            &mut d,
            vec![
                vec![s("a", 0, 1.0)],
                // B lost the target: its marker must not end A's series.
                vec![s("b", 1_000, stale_nan())],
                vec![s("a", 15_000, 2.0)],
                // A ends the series; B, which still has it, takes over at once.
                vec![s("a", 30_000, stale_nan())],
                vec![s("b", 31_000, 3.0)],
            ],
        );
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!((out[0], out[1]), ((0, 1.0), (15_000, 2.0)));
        assert!(is_stale_nan(out[2].1));
        assert_eq!(out[3], (31_000, 3.0));
    }

    #[test]
    fn unlabelled_samples_pass_and_old_series_are_forgotten() {
        let mut d = Dedup::new("prometheus_instance", Duration::from_secs(1), Duration::from_secs(60));
        let out = run(&mut d, vec![vec![s("", 5, 1.0), s("", 5, 1.0)]]);
        assert_eq!(out.len(), 2, "no replica label: the store decides");
        run(&mut d, vec![vec![s("a", 0, 1.0)]]);
        assert_eq!(d.tracked_series(), 1);
        let mut other = s("a", 120_000, 1.0);
        let mut labels = other.series.to_labels();
        labels.set("x", "y");
        other.series = ScrapedSeries::new(labels);
        run(&mut d, vec![vec![other]]);
        assert_eq!(d.tracked_series(), 1, "the series last seen 120 s ago is forgotten");
    }
}

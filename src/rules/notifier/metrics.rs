//! The notifier's metrics with Prometheus 2.42's names, types and help texts
//! (notifier/notifier.go `newAlertMetrics`).

use crate::exposition::{MetricFamily, MetricType, Sample, write_families};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// client_golang's default summary window (`DefMaxAge`): quantiles cover the last 10 minutes.
const SUMMARY_MAX_AGE: Duration = Duration::from_secs(600);
/// Observations kept per Alertmanager for the quantiles; older ones beyond this are forgotten.
const SUMMARY_MAX_SAMPLES: usize = 4096;
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

#[derive(Default)]
struct Latency {
    window: VecDeque<(Instant, f64)>,
    sum: f64,
    count: u64,
}

impl Latency {
    fn observe(&mut self, seconds: f64, now: Instant) {
        self.sum += seconds;
        self.count += 1;
        if self.window.len() == SUMMARY_MAX_SAMPLES {
            self.window.pop_front();
        }
        self.window.push_back((now, seconds));
    }

    /// The quantile over the window by nearest rank; NaN without observations, as
    /// client_golang reports an empty summary.
    fn quantiles(&mut self, now: Instant) -> [f64; 3] {
        while self.window.front().is_some_and(|(t, _)| now.duration_since(*t) > SUMMARY_MAX_AGE) {
            self.window.pop_front();
        }
        let mut values: Vec<f64> = self.window.iter().map(|(_, v)| *v).collect();
        values.sort_by(f64::total_cmp);
        QUANTILES.map(|q| {
            if values.is_empty() {
                return f64::NAN;
            }
            let rank = (q * values.len() as f64).ceil() as usize;
            values[rank.clamp(1, values.len()) - 1]
        })
    }
}

#[derive(Default)]
struct PerAlertmanager {
    sent: u64,
    errors: u64,
    /// None until the first send to this Alertmanager (the family has no series before).
    latency: Option<Latency>,
}

#[derive(Default)]
struct Inner {
    per_am: BTreeMap<String, PerAlertmanager>,
    dropped: u64,
}

#[derive(Default)]
pub(super) struct Metrics {
    inner: Mutex<Inner>,
}

/// The gauges the notifier knows at render time.
pub(super) struct Gauges {
    pub queue_length: usize,
    pub queue_capacity: usize,
    pub alertmanagers_discovered: usize,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A discovered Alertmanager's counters start at 0, as Prometheus initializes them.
    pub fn discovered(&self, url: &str) {
        self.lock().per_am.entry(url.to_string()).or_default();
    }

    pub fn dropped(&self, n: usize) {
        if n > 0 {
            self.lock().dropped += n as u64;
        }
    }

    /// One POST to `url` of `alerts` alerts, ended `latency` after the batch's send began.
    /// Prometheus counts the alerts as sent whether or not the POST succeeded.
    pub fn sent(&self, url: &str, alerts: usize, latency: Duration, failed: bool) {
        let mut inner = self.lock();
        let am = inner.per_am.entry(url.to_string()).or_default();
        am.sent += alerts as u64;
        am.errors += u64::from(failed);
        am.latency.get_or_insert_with(Latency::default).observe(latency.as_secs_f64(), Instant::now());
    }

    #[cfg(test)]
    pub fn counts(&self, url: &str) -> (u64, u64) {
        self.lock().per_am.get(url).map(|a| (a.sent, a.errors)).unwrap_or_default()
    }

    #[cfg(test)]
    pub fn dropped_total(&self) -> u64 {
        self.lock().dropped
    }

    pub fn render(&self, out: &mut String, gauges: Gauges) {
        write_families(out, &self.families(gauges));
    }

    /// The `prometheus_notifications_*` families, in Prometheus's order.
    pub fn families(&self, gauges: Gauges) -> Vec<MetricFamily> {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut discovered = MetricFamily::gauge(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
        );
        discovered.set(gauges.alertmanagers_discovered as f64);
        let mut dropped = MetricFamily::counter(
            "prometheus_notifications_dropped_total",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
        );
        dropped.set(inner.dropped as f64);
        let mut errors = MetricFamily::counter(
            "prometheus_notifications_errors_total",
            "Total number of errors sending alert notifications.",
        );
        let mut latency = MetricFamily::new(
            "prometheus_notifications_latency_seconds",
            "Latency quantiles for sending alert notifications.",
            MetricType::Summary,
        );
        let mut sent =
            MetricFamily::counter("prometheus_notifications_sent_total", "Total number of alerts sent.");
        for (url, am) in inner.per_am.iter_mut() {
            errors.add(&[("alertmanager", url.as_str())], am.errors as f64);
            sent.add(&[("alertmanager", url.as_str())], am.sent as f64);
            let Some(l) = am.latency.as_mut() else { continue };
            for (q, v) in QUANTILES.iter().zip(l.quantiles(now)) {
                latency.add(&[("alertmanager", url.clone()), ("quantile", q.to_string())], v);
            }
            for (suffix, value) in [("_sum", l.sum), ("_count", l.count as f64)] {
                latency.samples.push(Sample {
                    suffix,
                    labels: vec![("alertmanager".into(), url.clone())],
                    value,
                    timestamp_ms: None,
                });
            }
        }
        let mut capacity = MetricFamily::gauge(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
        );
        capacity.set(gauges.queue_capacity as f64);
        let mut length = MetricFamily::gauge(
            "prometheus_notifications_queue_length",
            "The number of alert notifications in the queue.",
        );
        length.set(gauges.queue_length as f64);
        drop(inner);
        vec![discovered, dropped, errors, latency, capacity, length, sent]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank_and_nan_when_empty() {
        let now = Instant::now();
        let mut l = Latency::default();
        assert!(l.quantiles(now).iter().all(|v| v.is_nan()));
        // Two observations as Prometheus reported them: 0.5 → the lower, 0.9 and 0.99 → the higher.
        l.observe(0.0418, now);
        l.observe(0.0018, now);
        assert_eq!(l.quantiles(now), [0.0018, 0.0418, 0.0418]);
        let mut l = Latency::default();
        for i in (1..=100).rev() {
            l.observe(f64::from(i), now);
        }
        assert_eq!(l.quantiles(now), [50.0, 90.0, 99.0]);
        assert_eq!((l.count, l.sum), (100, 5050.0));
    }

    #[test]
    fn renders_like_prometheus() {
        let m = Metrics::default();
        let mut out = String::new();
        m.render(&mut out, Gauges { queue_length: 0, queue_capacity: 10000, alertmanagers_discovered: 0 });
        assert!(!out.contains("errors_total{") && !out.contains("latency_seconds"), "{out}");
        m.discovered("http://a:9093/api/v2/alerts");
        m.sent("http://a:9093/api/v2/alerts", 3, Duration::from_millis(5), true);
        m.dropped(3);
        let mut out = String::new();
        m.render(&mut out, Gauges { queue_length: 2, queue_capacity: 10000, alertmanagers_discovered: 1 });
        let want = "\
# HELP prometheus_notifications_alertmanagers_discovered The number of alertmanagers discovered and active.
# TYPE prometheus_notifications_alertmanagers_discovered gauge
prometheus_notifications_alertmanagers_discovered 1
# HELP prometheus_notifications_dropped_total Total number of alerts dropped due to errors when sending to Alertmanager.
# TYPE prometheus_notifications_dropped_total counter
prometheus_notifications_dropped_total 3
# HELP prometheus_notifications_errors_total Total number of errors sending alert notifications.
# TYPE prometheus_notifications_errors_total counter
prometheus_notifications_errors_total{alertmanager=\"http://a:9093/api/v2/alerts\"} 1
# HELP prometheus_notifications_latency_seconds Latency quantiles for sending alert notifications.
# TYPE prometheus_notifications_latency_seconds summary
prometheus_notifications_latency_seconds{alertmanager=\"http://a:9093/api/v2/alerts\",quantile=\"0.5\"} 0.005
prometheus_notifications_latency_seconds{alertmanager=\"http://a:9093/api/v2/alerts\",quantile=\"0.9\"} 0.005
prometheus_notifications_latency_seconds{alertmanager=\"http://a:9093/api/v2/alerts\",quantile=\"0.99\"} 0.005
prometheus_notifications_latency_seconds_sum{alertmanager=\"http://a:9093/api/v2/alerts\"} 0.005
prometheus_notifications_latency_seconds_count{alertmanager=\"http://a:9093/api/v2/alerts\"} 1
# HELP prometheus_notifications_queue_capacity The capacity of the alert notifications queue.
# TYPE prometheus_notifications_queue_capacity gauge
prometheus_notifications_queue_capacity 10000
# HELP prometheus_notifications_queue_length The number of alert notifications in the queue.
# TYPE prometheus_notifications_queue_length gauge
prometheus_notifications_queue_length 2
# HELP prometheus_notifications_sent_total Total number of alerts sent.
# TYPE prometheus_notifications_sent_total counter
prometheus_notifications_sent_total{alertmanager=\"http://a:9093/api/v2/alerts\"} 3
";
        assert_eq!(out, want);
    }
}

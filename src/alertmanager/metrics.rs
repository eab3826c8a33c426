//! The alertmanager role's metrics with Alertmanager 0.25's names (notify/notify.go,
//! api/metrics, dispatch, silence, nflog), so its dashboards and the alertmanager-mixin alerts
//! work unchanged.

use crate::exposition::{MetricFamily, MetricType, Sample};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `alertmanager_notification_latency_seconds`'s buckets.
const LATENCY_BUCKETS: [f64; 5] = [1.0, 5.0, 10.0, 15.0, 20.0];
/// Every integration Alertmanager registers a series for, so a dashboard sees zeros, not gaps.
const INTEGRATIONS: [&str; 11] = [
    "discord",
    "email",
    "msteams",
    "opsgenie",
    "pagerduty",
    "pushover",
    "slack",
    "sns",
    "telegram",
    "victorops",
    "webhook",
];

#[derive(Default, Clone)]
struct Integration {
    notifications: u64,
    failed: u64,
    requests: u64,
    requests_failed: u64,
    latency_buckets: [u64; 5],
    latency_count: u64,
    latency_sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    integrations: Mutex<BTreeMap<&'static str, Integration>>,
    pub received_firing: AtomicU64,
    pub received_resolved: AtomicU64,
    pub invalid: AtomicU64,
}

impl Metrics {
    fn with(&self, integration: &'static str, f: impl FnOnce(&mut Integration)) {
        let mut map = self.integrations.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(integration).or_default());
    }

    pub fn notification_started(&self, integration: &'static str) {
        self.with(integration, |i| i.notifications += 1);
    }

    pub fn notification_failed(&self, integration: &'static str) {
        self.with(integration, |i| i.failed += 1);
    }

    pub fn request(&self, integration: &'static str, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        self.with(integration, |i| {
            i.requests += 1;
            if !ok {
                i.requests_failed += 1;
            }
            for (b, le) in i.latency_buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if secs <= le {
                    *b += 1;
                }
            }
            i.latency_count += 1;
            i.latency_sum += secs;
        });
    }

    pub fn received(&self, firing: bool) {
        let c = if firing { &self.received_firing } else { &self.received_resolved };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn families(&self) -> Vec<MetricFamily> {
        let map = self.integrations.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let get = |name: &str| map.get(name).cloned().unwrap_or_default();
        let mut notifications = MetricFamily::counter(
            "alertmanager_notifications_total",
            "The total number of attempted notifications.",
        );
        let mut failed = MetricFamily::counter(
            "alertmanager_notifications_failed_total",
            "The total number of failed notifications.",
        );
        let mut requests = MetricFamily::counter(
            "alertmanager_notification_requests_total",
            "The total number of attempted notification requests.",
        );
        let mut requests_failed = MetricFamily::counter(
            "alertmanager_notification_requests_failed_total",
            "The total number of failed notification requests.",
        );
        let mut latency = MetricFamily::new(
            "alertmanager_notification_latency_seconds",
            "The latency of notifications in seconds.",
            MetricType::Histogram,
        );
        for name in INTEGRATIONS {
            let i = get(name);
            notifications.add(&[("integration", name)], i.notifications as f64);
            failed.add(&[("integration", name)], i.failed as f64);
            requests.add(&[("integration", name)], i.requests as f64);
            requests_failed.add(&[("integration", name)], i.requests_failed as f64);
            for (le, count) in LATENCY_BUCKETS.iter().zip(i.latency_buckets) {
                latency.samples.push(Sample {
                    suffix: "_bucket",
                    labels: vec![
                        ("integration".into(), name.into()),
                        ("le".into(), crate::exposition::format_go_float(*le)),
                    ],
                    value: count as f64,
                    timestamp_ms: None,
                });
            }
            let base = vec![("integration".to_string(), name.to_string())];
            let mut inf = base.clone();
            inf.push(("le".into(), "+Inf".into()));
            latency.samples.push(Sample {
                suffix: "_bucket",
                labels: inf,
                value: i.latency_count as f64,
                timestamp_ms: None,
            });
            latency.samples.push(Sample {
                suffix: "_sum",
                labels: base.clone(),
                value: i.latency_sum,
                timestamp_ms: None,
            });
            latency.samples.push(Sample {
                suffix: "_count",
                labels: base,
                value: i.latency_count as f64,
                timestamp_ms: None,
            });
        }
        let mut received = MetricFamily::counter(
            "alertmanager_alerts_received_total",
            "The total number of received alerts.",
        );
        received.add(
            &[("status", "firing"), ("version", "v2")],
            self.received_firing.load(Ordering::Relaxed) as f64,
        );
        received.add(
            &[("status", "resolved"), ("version", "v2")],
            self.received_resolved.load(Ordering::Relaxed) as f64,
        );
        let mut invalid = MetricFamily::counter(
            "alertmanager_alerts_invalid_total",
            "The total number of received alerts that were invalid.",
        );
        invalid.add(&[("version", "v2")], self.invalid.load(Ordering::Relaxed) as f64);
        vec![notifications, failed, requests, requests_failed, latency, received, invalid]
    }
}

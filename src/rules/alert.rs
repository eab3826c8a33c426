//! One alerting rule's alerts from evaluation to evaluation, as Prometheus 2.42's
//! `rules/alerting.go` keeps them: inactive → pending → firing with `for`, `keep_firing_for`,
//! resolved alerts kept 15 minutes so Alertmanager hears they ended, the `ALERTS` and
//! `ALERTS_FOR_STATE` series, and what is due to be sent.

use crate::model::labels::{Labels, METRIC_NAME};
use std::collections::HashMap;
use std::time::Duration;

/// How long a resolved alert is kept (and re-sent as resolved) before it is forgotten.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

pub const ALERTS_METRIC: &str = "ALERTS";
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";
pub const ALERT_NAME_LABEL: &str = "alertname";
pub const ALERT_STATE_LABEL: &str = "alertstate";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule: one label set of the rule's result. Times are Unix ms; 0 is "never".
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: i64,
    pub resolved_at: i64,
    pub last_sent_at: i64,
    pub valid_until: i64,
    pub keep_firing_since: i64,
}

impl Alert {
    /// Prometheus's `needsSending`: never while pending; at once after resolving; otherwise
    /// once per resend delay.
    fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at > self.last_sent_at {
            return true;
        }
        // Never sent (Go's zero time is long before any resend delay).
        self.last_sent_at == 0 || self.last_sent_at + resend_delay_ms < ts
    }
}

/// A labelled result sample of the rule's query, after templating: what one evaluation says.
#[derive(Debug, Clone)]
pub struct Firing {
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
}

/// The alerts one alerting rule holds between evaluations.
#[derive(Debug, Clone, Default)]
pub struct AlertSet {
    pub active: HashMap<Labels, Alert>,
    /// False until the group restored `for` state after a start: until then the rule writes no
    /// `ALERTS`/`ALERTS_FOR_STATE` series, as Prometheus.
    pub restored: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlertError {
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabels,
    #[error("exceeded limit of {limit} with {count} alerts")]
    Limit { limit: usize, count: usize },
}

impl AlertSet {
    /// Applies one evaluation's result at `ts` and returns the `ALERTS` and `ALERTS_FOR_STATE`
    /// samples to write (none before the rule is restored). `limit` 0 is no limit; over it,
    /// every alert of the rule is dropped, as Prometheus does.
    pub fn update(
        &mut self,
        results: Vec<Firing>,
        ts: i64,
        hold: Duration,
        keep_firing_for: Duration,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, AlertError> {
        let mut fresh: HashMap<Labels, Firing> = HashMap::with_capacity(results.len());
        for r in results {
            if fresh.contains_key(&r.labels) {
                return Err(AlertError::DuplicateLabels);
            }
            fresh.insert(r.labels.clone(), r);
        }
        for (labels, r) in &fresh {
            match self.active.get_mut(labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = r.value;
                    a.annotations = r.annotations.clone();
                }
                _ => {
                    self.active.insert(
                        labels.clone(),
                        Alert {
                            labels: labels.clone(),
                            annotations: r.annotations.clone(),
                            state: AlertState::Pending,
                            value: r.value,
                            active_at: ts,
                            fired_at: 0,
                            resolved_at: 0,
                            last_sent_at: 0,
                            valid_until: 0,
                            keep_firing_since: 0,
                        },
                    );
                }
            }
        }
        let hold_ms = hold.as_millis() as i64;
        let keep_ms = keep_firing_for.as_millis() as i64;
        let mut out = Vec::new();
        let mut active_or_pending = 0;
        let mut forget = Vec::new();
        for (labels, a) in self.active.iter_mut() {
            if fresh.contains_key(labels) {
                a.keep_firing_since = 0;
            } else {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_ms > 0 {
                    if a.keep_firing_since == 0 {
                        a.keep_firing_since = ts;
                    }
                    keep_firing = ts - a.keep_firing_since < keep_ms;
                }
                if a.state == AlertState::Pending
                    || (a.resolved_at != 0 && ts - a.resolved_at > RESOLVED_RETENTION_MS)
                {
                    forget.push(labels.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = ts;
                }
                if !keep_firing {
                    continue;
                }
            }
            active_or_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = ts;
            }
            if self.restored {
                out.push((alerts_series(a), 1.0));
                out.push((alerts_for_state_series(a), (a.active_at.div_euclid(1000)) as f64));
            }
        }
        for labels in forget {
            self.active.remove(&labels);
        }
        if limit > 0 && active_or_pending > limit {
            self.active.clear();
            return Err(AlertError::Limit { limit, count: active_or_pending });
        }
        Ok(out)
    }

    /// The alerts due to go to Alertmanager at `ts`, marked as sent: Prometheus's
    /// `sendAlerts`, with `ValidUntil` four resend periods ahead so two missed evaluations or
    /// sends do not end an alert.
    pub fn due(&mut self, ts: i64, resend_delay: Duration, interval: Duration) -> Vec<Alert> {
        let resend_ms = resend_delay.as_millis() as i64;
        let delta = resend_delay.max(interval).as_millis() as i64;
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_ms) {
                a.last_sent_at = ts;
                a.valid_until = ts + 4 * delta;
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// The rule's state for the API: the highest of its alerts'.
    pub fn state(&self) -> AlertState {
        self.active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }

    /// Alerts not resolved (pending or firing), sorted by labels.
    pub fn unresolved(&self) -> Vec<&Alert> {
        let mut out: Vec<&Alert> = self.active.values().filter(|a| a.resolved_at == 0).collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

fn alerts_series(a: &Alert) -> Labels {
    a.labels.with_label(METRIC_NAME, ALERTS_METRIC).with_label(ALERT_STATE_LABEL, a.state.as_str())
}

fn alerts_for_state_series(a: &Alert) -> Labels {
    a.labels.with_label(METRIC_NAME, ALERTS_FOR_STATE_METRIC)
}

/// Prometheus's `RestoreForState` for one alert: given the last `ALERTS_FOR_STATE` sample
/// before the restart (at `down_at_ms`, holding the old `active_at` in seconds), the
/// `active_at` that keeps the time already spent pending. Both times count in whole seconds,
/// as Prometheus reads them.
pub fn restored_active_at(
    now_ms: i64,
    down_at_ms: i64,
    old_active_at_s: f64,
    hold: Duration,
    grace: Duration,
) -> i64 {
    let hold_ms = hold.as_millis() as i64;
    let grace_ms = grace.as_millis() as i64;
    let down_at = down_at_ms.div_euclid(1000) * 1000;
    let old_active = (old_active_at_s as i64) * 1000;
    let remaining = hold_ms - (down_at - old_active);
    if remaining <= 0 {
        // It was firing when the process went down: it fires again at its next evaluation.
        old_active
    } else if remaining < grace_ms {
        now_ms + grace_ms - hold_ms
    } else {
        old_active + (now_ms - down_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(instance: &str, v: f64) -> Firing {
        Firing {
            labels: Labels::metric("", &[("alertname", "Down"), ("instance", instance)]),
            annotations: Labels::new(),
            value: v,
        }
    }

    fn restored() -> AlertSet {
        AlertSet { restored: true, ..Default::default() }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn pending_then_firing_after_for_then_resolved_and_forgotten() {
        let mut set = restored();
        let hold = Duration::from_secs(120);
        let out = set.update(vec![firing("a", 1.0)], 0, hold, Duration::ZERO, 0).unwrap();
        assert_eq!(set.state(), AlertState::Pending);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.get(ALERT_STATE_LABEL), Some("pending"));
        assert_eq!(
            out[1],
            (Labels::metric("ALERTS_FOR_STATE", &[("alertname", "Down"), ("instance", "a")]), 0.0)
        );
        set.update(vec![firing("a", 1.0)], MIN, hold, Duration::ZERO, 0).unwrap();
        assert_eq!(set.state(), AlertState::Pending);
        let out = set.update(vec![firing("a", 2.0)], 2 * MIN, hold, Duration::ZERO, 0).unwrap();
        assert_eq!(set.state(), AlertState::Firing);
        assert_eq!(out[0].0.get(ALERT_STATE_LABEL), Some("firing"));
        let out = set.update(vec![], 3 * MIN, hold, Duration::ZERO, 0).unwrap();
        assert!(out.is_empty());
        let a = &set.active[&firing("a", 0.0).labels];
        assert_eq!((a.state, a.resolved_at), (AlertState::Inactive, 3 * MIN));
        set.update(vec![], 18 * MIN, hold, Duration::ZERO, 0).unwrap();
        assert_eq!(set.active.len(), 1, "kept for 15 minutes");
        set.update(vec![], 18 * MIN + 1, hold, Duration::ZERO, 0).unwrap();
        assert!(set.active.is_empty());
    }

    #[test]
    fn a_pending_alert_that_goes_away_is_dropped_at_once() {
        let mut set = restored();
        set.update(vec![firing("a", 1.0)], 0, Duration::from_secs(300), Duration::ZERO, 0).unwrap();
        set.update(vec![], MIN, Duration::from_secs(300), Duration::ZERO, 0).unwrap();
        assert!(set.active.is_empty());
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let mut set = restored();
        let keep = Duration::from_secs(120);
        set.update(vec![firing("a", 1.0)], 0, Duration::ZERO, keep, 0).unwrap();
        assert_eq!(set.state(), AlertState::Firing);
        let out = set.update(vec![], MIN, Duration::ZERO, keep, 0).unwrap();
        assert_eq!(set.state(), AlertState::Firing);
        assert_eq!(out.len(), 2);
        set.update(vec![], 2 * MIN, Duration::ZERO, keep, 0).unwrap();
        assert_eq!(set.state(), AlertState::Firing, "1m since keep_firing_since < 2m");
        set.update(vec![], 3 * MIN, Duration::ZERO, keep, 0).unwrap();
        assert_eq!(set.state(), AlertState::Inactive);
    }

    #[test]
    fn duplicates_and_limits_are_errors() {
        let mut set = restored();
        let err = set.update(vec![firing("a", 1.0), firing("a", 2.0)], 0, Duration::ZERO, Duration::ZERO, 0);
        assert_eq!(err, Err(AlertError::DuplicateLabels));
        let err = set.update(vec![firing("a", 1.0), firing("b", 2.0)], 0, Duration::ZERO, Duration::ZERO, 1);
        assert_eq!(err, Err(AlertError::Limit { limit: 1, count: 2 }));
        assert!(set.active.is_empty());
    }

    #[test]
    fn no_series_before_restore() {
        let mut set = AlertSet::default();
        let out = set.update(vec![firing("a", 1.0)], 0, Duration::ZERO, Duration::ZERO, 0).unwrap();
        assert!(out.is_empty());
        assert_eq!(set.state(), AlertState::Firing);
    }

    #[test]
    fn sending_follows_resend_delay_and_resolution() {
        let mut set = restored();
        let resend = Duration::from_secs(60);
        let iv = Duration::from_secs(15);
        set.update(vec![firing("a", 1.0)], 0, Duration::from_secs(30), Duration::ZERO, 0).unwrap();
        assert!(set.due(0, resend, iv).is_empty(), "pending is never sent");
        set.update(vec![firing("a", 1.0)], 30_000, Duration::from_secs(30), Duration::ZERO, 0).unwrap();
        let sent = set.due(30_000, resend, iv);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].valid_until, 30_000 + 4 * 60_000);
        assert!(set.due(45_000, resend, iv).is_empty());
        assert!(set.due(90_000, resend, iv).is_empty(), "resend only after more than the delay");
        assert_eq!(set.due(90_001, resend, iv).len(), 1);
        set.update(vec![], 100_000, Duration::from_secs(30), Duration::ZERO, 0).unwrap();
        let sent = set.due(100_000, resend, iv);
        assert_eq!(sent[0].resolved_at, 100_000, "a resolution is sent at once");
    }

    #[test]
    fn restore_keeps_time_already_spent_pending() {
        let hold = Duration::from_secs(3600);
        let grace = Duration::from_secs(600);
        // Pending 10 minutes before going down 5 minutes ago: 50 minutes left.
        let now = 10_000_000;
        let down = now - 5 * MIN;
        let active = (down - 10 * MIN) as f64 / 1000.0;
        assert_eq!(restored_active_at(now, down, active, hold, grace), now - 10 * MIN);
        // 55 minutes spent: 5 left, under the grace period: fires 10 minutes from now.
        let active = (down - 55 * MIN) as f64 / 1000.0;
        assert_eq!(restored_active_at(now, down, active, hold, grace), now + 10 * MIN - 60 * MIN);
        // Firing when it went down: its old active_at stands.
        let active = (down - 70 * MIN) as f64 / 1000.0;
        assert_eq!(restored_active_at(now, down, active, hold, grace), down - 70 * MIN);
    }
}

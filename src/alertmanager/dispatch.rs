//! The dispatcher (dispatch/dispatch.go): every alert goes to an aggregation group per matching
//! route and group labels; a group first flushes after `group_wait` (at once when its alert
//! started longer ago than that and the group never flushed), then every `group_interval`.
//! A flush runs the notification pipeline: inhibition, time intervals, silences, then per
//! receiver integration the HA wait, dedup against the notification log, delivery with
//! retries, and the log entry. Resolved alerts leave the group after a successful flush.

use super::Shared;
use super::alert::{Alert, Nanos, alert_order, fingerprint, now_nanos};
use super::inhibit::Inhibitor;
use super::nflog::{needs_update, state_key};
use super::notify::{self, Notification, backoff};
use crate::config::alertmanager::Route;
use crate::model::Labels;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Alertmanager's `notify.MinTimeout`: a flush gets at least this long to deliver.
const MIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The route options a group runs with.
#[derive(Debug, Clone)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

impl RouteOpts {
    fn of(r: &Route) -> RouteOpts {
        RouteOpts {
            receiver: r.receiver.clone(),
            group_wait: r.group_wait,
            group_interval: r.group_interval,
            repeat_interval: r.repeat_interval,
            mute_time_intervals: r.mute_time_intervals.clone(),
            active_time_intervals: r.active_time_intervals.clone(),
        }
    }
}

pub struct Group {
    /// `routeKey:groupLabels`, as receivers and the notification log see it.
    pub key: String,
    pub labels: Labels,
    pub opts: RouteOpts,
    /// Shared with the role's alert store: an alert in several groups is held once.
    pub alerts: Mutex<HashMap<u64, Arc<Alert>>>,
    has_flushed: AtomicBool,
    flush_now: Notify,
    stop: watch::Sender<bool>,
}

impl Group {
    pub fn alerts(&self) -> Vec<Arc<Alert>> {
        lock(&self.alerts).values().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The aggregation groups, by route id and group labels.
#[derive(Default)]
pub struct Groups {
    by_id: HashMap<(String, u64), Arc<Group>>,
}

impl Groups {
    pub fn list(&self) -> Vec<Arc<Group>> {
        self.by_id.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Stops every group (a new configuration rebuilds them from the stored alerts).
    pub fn stop_all(&mut self) {
        for g in self.by_id.values() {
            let _ = g.stop.send(true);
        }
        self.by_id.clear();
    }

    /// Drops groups left without alerts (the dispatcher's maintenance).
    pub fn drop_empty(&mut self) -> usize {
        let before = self.by_id.len();
        self.by_id.retain(|_, g| {
            let keep = !lock(&g.alerts).is_empty();
            if !keep {
                let _ = g.stop.send(true);
            }
            keep
        });
        before - self.by_id.len()
    }
}

/// Routes one alert (new or updated) into its groups.
pub fn insert(shared: &Arc<Shared>, alert: &Arc<Alert>) {
    let config = shared.config();
    let now = now_nanos();
    let mut groups = lock(&shared.groups);
    for route in config.route.matching(&alert.labels) {
        let labels = route.group_labels(&alert.labels);
        let id = (route.id.clone(), fingerprint(&labels));
        let group = groups.by_id.entry(id).or_insert_with(|| start_group(shared, route, labels)).clone();
        let group_wait = nanos(group.opts.group_wait);
        lock(&group.alerts).insert(alert.fingerprint(), alert.clone());
        if !group.has_flushed.load(Ordering::Relaxed) && alert.starts_at.saturating_add(group_wait) < now {
            group.flush_now.notify_one();
        }
    }
}

fn nanos(d: Duration) -> Nanos {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn start_group(shared: &Arc<Shared>, route: &Route, labels: Labels) -> Arc<Group> {
    let (stop, stopped) = watch::channel(false);
    let group = Arc::new(Group {
        key: format!("{}:{}", route.key, super::alert::labels_string(&labels)),
        labels,
        opts: RouteOpts::of(route),
        alerts: Mutex::new(HashMap::new()),
        has_flushed: AtomicBool::new(false),
        flush_now: Notify::new(),
        stop,
    });
    tokio::spawn(run_group(Arc::downgrade(shared), group.clone(), stopped));
    group
}

async fn run_group(shared: std::sync::Weak<Shared>, group: Arc<Group>, mut stopped: watch::Receiver<bool>) {
    let mut wait = group.opts.group_wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = group.flush_now.notified() => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        wait = group.opts.group_interval;
        group.has_flushed.store(true, Ordering::Relaxed);
        let Some(shared) = shared.upgrade() else { return };
        let position_wait = shared.peer_wait();
        let deadline = group.opts.group_interval.max(MIN_TIMEOUT) + position_wait;
        let started = tokio::time::Instant::now();
        // A safety net only: deliveries stop retrying before the deadline on their own.
        match tokio::time::timeout(
            deadline + Duration::from_secs(1),
            flush(&shared, &group, position_wait, started + deadline),
        )
        .await
        {
            Ok(()) => {}
            Err(_) => {
                tracing::warn!(group = %group.key, "notification attempt ran out of time; retrying at the next flush")
            }
        }
        // A flush that overran the interval is followed by the next one at once, as a Go
        // timer that fired during the flush would.
        wait = wait.saturating_sub(started.elapsed());
    }
}

/// `aggrGroup.flush`.
async fn flush(
    shared: &Arc<Shared>,
    group: &Arc<Group>,
    position_wait: Duration,
    deadline: tokio::time::Instant,
) {
    let now = now_nanos();
    // Copies: a flush zeroes the firing alerts' end times in what it sends.
    let mut alerts: Vec<Alert> = group.alerts().iter().map(|a| Alert::clone(a)).collect();
    if alerts.is_empty() {
        return;
    }
    let mut resolved: Vec<(u64, Nanos)> = Vec::new();
    for a in &mut alerts {
        if a.resolved_at(now) {
            resolved.push((a.fingerprint(), a.updated_at));
        } else {
            a.ends_at = 0;
        }
    }
    alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
    if pipeline(shared, group, alerts, now, position_wait, deadline).await {
        let mut held = lock(&group.alerts);
        for (fp, updated_at) in resolved {
            if held.get(&fp).is_some_and(|a| a.updated_at == updated_at) {
                held.remove(&fp);
            }
        }
    }
}

/// Inhibit, time intervals and silences mute; then every integration of the receiver. True
/// when nothing failed.
async fn pipeline(
    shared: &Arc<Shared>,
    group: &Arc<Group>,
    mut alerts: Vec<Alert>,
    now: Nanos,
    position_wait: Duration,
    deadline: tokio::time::Instant,
) -> bool {
    let config = shared.config();
    if !config.inhibit_rules.is_empty() {
        let held = lock(&shared.alerts);
        let inhibitor = Inhibitor::new(&config.inhibit_rules, held.values().map(|a| &**a), now);
        alerts.retain(|a| inhibitor.inhibited_by(&a.labels).is_none());
    }
    if alerts.is_empty() {
        return true;
    }
    let at = std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(now).unwrap_or(0));
    let within = |names: &[String]| {
        names.iter().any(|n| config.time_intervals.get(n).is_some_and(|ti| ti.contains(at)))
    };
    if !group.opts.active_time_intervals.is_empty() && !within(&group.opts.active_time_intervals) {
        return true;
    }
    if within(&group.opts.mute_time_intervals) {
        return true;
    }
    {
        let silences = lock(&shared.silences);
        alerts.retain(|a| silences.muting(&a.labels, now).is_empty());
    }
    if alerts.is_empty() {
        return true;
    }
    let Some(receiver) = config.receivers.get(&group.opts.receiver) else { return true };
    if let Some(cluster) = &shared.cluster {
        cluster.settle().await;
    }
    if !position_wait.is_zero() {
        tokio::time::sleep(position_wait).await;
    }
    let firing: BTreeSet<u64> =
        alerts.iter().filter(|a| !a.resolved_at(now)).map(Alert::fingerprint).collect();
    let resolved: BTreeSet<u64> =
        alerts.iter().filter(|a| a.resolved_at(now)).map(Alert::fingerprint).collect();
    let mut ok = true;
    let templates = &config.templates;
    let sends = receiver.indexed().into_iter().enumerate().map(|(position, (i, integration))| {
        let key = state_key(&group.key, &receiver.name, integration.name(), i);
        let (alerts, firing, resolved) = (&alerts, &firing, &resolved);
        async move {
            let entry = lock(&shared.nflog).get(&key).cloned();
            if !needs_update(
                entry.as_ref(),
                firing,
                resolved,
                integration.send_resolved(),
                nanos(group.opts.repeat_interval),
                now,
            ) {
                return true;
            }
            let sent: Vec<Alert> = if integration.send_resolved() {
                alerts.clone()
            } else {
                alerts.iter().filter(|a| !a.resolved_at(now)).cloned().collect()
            };
            let delivered = sent.is_empty()
                || deliver(
                    shared,
                    group,
                    &receiver.name,
                    position,
                    integration,
                    templates,
                    &sent,
                    now,
                    deadline,
                )
                .await;
            if delivered {
                shared.log_notification(
                    key,
                    firing.clone(),
                    resolved.clone(),
                    now,
                    2 * nanos(group.opts.repeat_interval),
                );
            }
            delivered
        }
    });
    for result in futures_util::future::join_all(sends).await {
        ok &= result;
    }
    ok
}

#[allow(clippy::too_many_arguments)] // the pipeline's context, as Alertmanager's ctx carries it
/// `RetryStage`: sends until it works, a non-retryable error, or the flush's deadline.
async fn deliver(
    shared: &Arc<Shared>,
    group: &Arc<Group>,
    receiver: &str,
    position: usize,
    integration: &crate::config::alertmanager::Integration,
    templates: &crate::gotemplate::notification::NotificationTemplates,
    alerts: &[Alert],
    now: Nanos,
    deadline: tokio::time::Instant,
) -> bool {
    let name = integration.name();
    shared.metrics.notification_started(name);
    let client = shared.client(receiver, position);
    if integration.http().is_some() && client.is_none() {
        tracing::error!(receiver, integration = name, group = %group.key, "no HTTP client for this integration (see the error at load); notification failed");
        shared.metrics.notification_failed(name);
        return false;
    }
    let notification = Notification {
        receiver,
        group_key: &group.key,
        group_labels: &group.labels,
        alerts,
        external_url: &shared.external_url,
        now,
    };
    // Rendered once: template data is not shared across threads, and a retry sends the same.
    let rendered = match notify::render(integration, &notification, templates) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(receiver, integration = name, group = %group.key, error = %e, "notify retry canceled due to unrecoverable error after 1 attempts");
            shared.metrics.notification_failed(name);
            return false;
        }
    };
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (result, took) = notify::send(&rendered, integration, client.as_ref(), left).await;
        shared.metrics.request(name, took, result.is_ok());
        match result {
            Ok(()) => return true,
            Err(e) if !e.retryable() => {
                tracing::error!(receiver, integration = name, group = %group.key, error = %e, attempts = attempt + 1, "notify retry canceled due to unrecoverable error");
                shared.metrics.notification_failed(name);
                return false;
            }
            Err(e) => {
                tracing::warn!(receiver, integration = name, group = %group.key, error = %e, attempt = attempt + 1, "notify attempt failed, will retry later");
            }
        }
        let pause = backoff(attempt);
        if tokio::time::Instant::now() + pause >= deadline {
            tracing::error!(receiver, integration = name, group = %group.key, attempts = attempt + 1, "notify retry canceled: the flush ran out of time; the next flush tries again");
            shared.metrics.notification_failed(name);
            return false;
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

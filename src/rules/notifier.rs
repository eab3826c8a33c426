//! Delivering alerts to Alertmanagers, as Prometheus 2.42's notifier/notifier.go does.
//!
//! - [`Notifier::send`] prepares each alert and queues it: the external labels are added
//!   where the alert lacks them, then the labels named in `drop_labels` are removed, then
//!   `alert_relabel_configs` run (an alert they drop, or leave without labels, is not sent).
//!   The queue holds [`QUEUE_CAPACITY`] alerts; when full, the oldest are dropped and counted
//!   in `prometheus_notifications_dropped_total`. `send` never waits on the network.
//! - [`Notifier::run`] takes batches of up to [`MAX_BATCH_SIZE`] alerts off the queue and POSTs
//!   each batch to every discovered Alertmanager at once, at
//!   `<scheme>://<address><path_prefix>/api/v2/alerts`, each with its set's timeout (10s by
//!   default), auth and TLS. Any 2xx is success; there is no retry. A batch counts as dropped
//!   only when no Alertmanager took it (also when there is none). The next batch waits for
//!   the slowest Alertmanager, which is never longer than its timeout.
//! - Alertmanagers are discovered from each set's static_configs and file_sd_configs (the
//!   files re-read every 5 seconds, as scrape re-reads its own), through the set's
//!   `relabel_configs` (notifier/discovery.rs). Alerts still queued when `run` is told to
//!   stop are not sent, as in 2.42.
//!
//! `drop_labels` is obsd's addition for HA pairs: two replicas evaluating the same rules
//! carry different replica external labels (`prometheus_instance="replica-1"` and
//! `"replica-2"`), which would reach Alertmanager as two different alerts. Dropping the
//! replica label makes both replicas send the same label set, and Alertmanager merges them
//! into one alert (alerts with the same labels and overlapping times are one alert).
//!
//! Differences from Prometheus 2.42, on purpose: the `User-Agent` is `obsd/<version>`
//! (Alertmanager does not look at it); Alertmanagers are discovered before the first send,
//! so alerts sent at startup are not dropped for want of a discovered Alertmanager; failures
//! are logged at WARN (Prometheus: ERROR), at most once a minute per Alertmanager with the
//! number left out, and a recovery at INFO; `api_version: v1` is refused (config/alerting.rs).

mod client;
mod discovery;
mod metrics;
mod payload;

pub use client::ClientError;

use crate::config::Secret;
use crate::config::alerting::{AlertingSettings, AlertmanagerSet};
use crate::config::relabel::RelabelConfig;
use crate::model::Labels;
use metrics::{Gauges, Metrics};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// `--alertmanager.notification-queue-capacity`'s default.
pub const QUEUE_CAPACITY: usize = 10_000;
/// The most alerts one POST carries (Prometheus 2.42's `maxBatchSize`).
pub const MAX_BATCH_SIZE: usize = 64;
/// What obsd sends as `User-Agent` (Prometheus sends `Prometheus/<version>`).
pub const USER_AGENT: &str = concat!("obsd/", env!("CARGO_PKG_VERSION"));
/// How often file_sd files are re-read for Alertmanagers.
const FILE_SD_POLL: Duration = Duration::from_secs(5);
/// A repeated failure (or a full queue) is logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(60);
/// How much of an error response's body the warning quotes.
const ERROR_BODY_LIMIT: usize = 512;

/// One alert as the rule engine hands it over (Prometheus's `notifier.Alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    /// Unix milliseconds.
    pub starts_at_ms: i64,
    /// Unix milliseconds; `None` leaves `endsAt` out (Alertmanager then sets
    /// now + `resolve_timeout`). The rule engine always sets it.
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
}

/// How `send` turns an alert into what is queued.
#[derive(Default)]
struct Prepare {
    external_labels: Vec<(String, String)>,
    drop_labels: Vec<String>,
    relabel: Vec<RelabelConfig>,
}

impl Prepare {
    /// The alert as it is queued, or `None` when relabelling drops it.
    fn apply(&self, mut alert: Alert) -> Option<Alert> {
        let mut labels = alert.labels;
        for (name, value) in &self.external_labels {
            if labels.get(name).is_none() {
                labels.set(name, value);
            }
        }
        for name in &self.drop_labels {
            labels.remove(name);
        }
        let labels = crate::scrape::relabel::process(labels.into_vec(), &self.relabel)?;
        if labels.is_empty() {
            return None;
        }
        alert.labels = Labels::from_pairs(labels);
        Some(alert)
    }
}

/// What a POST to one of a set's Alertmanagers needs.
struct SetSender {
    client: Result<reqwest::Client, ClientError>,
    basic_auth: Option<(String, Secret)>,
    authorization: Option<(String, Secret)>,
    timeout: Duration,
}

struct SetState {
    settings: AlertmanagerSet,
    sender: Arc<SetSender>,
    /// The groups and file errors `found` was built from, to notice a file_sd change.
    groups_key: String,
    found: discovery::Found,
}

impl SetState {
    fn new(settings: &AlertmanagerSet, index: usize, metrics: &Metrics) -> SetState {
        let client = client::build(settings);
        if let Err(e) = &client {
            tracing::error!(set = index, error = %e, "alertmanager set: cannot build the HTTP client; sends to it fail");
        }
        let sender = SetSender {
            client,
            basic_auth: settings.basic_auth.clone(),
            authorization: settings.authorization.clone(),
            timeout: settings.timeout,
        };
        let mut set = SetState {
            settings: settings.clone(),
            sender: Arc::new(sender),
            groups_key: String::new(),
            found: discovery::Found::default(),
        };
        let (groups, errors) = discovery::groups(settings);
        set.update(index, &groups, &errors, metrics);
        set
    }

    /// Rebuilds the Alertmanager list from `groups` when they differ from the last ones.
    fn update(
        &mut self,
        index: usize,
        groups: &[crate::scrape::target::TargetGroup],
        errors: &[String],
        metrics: &Metrics,
    ) {
        let key = format!("{groups:?}{errors:?}");
        if key == self.groups_key {
            return;
        }
        for e in errors {
            tracing::warn!(set = index, error = %e, "alertmanager discovery");
        }
        let found = discovery::alertmanagers(&self.settings, groups);
        for e in &found.errors {
            tracing::error!(set = index, error = %e, "creating discovered Alertmanagers failed");
        }
        for url in &found.active {
            metrics.discovered(&shown(url));
        }
        if !self.groups_key.is_empty() && found.active != self.found.active {
            let active: Vec<String> = found.active.iter().map(|u| shown(u)).collect();
            tracing::info!(set = index, alertmanagers = ?active, "alertmanagers changed");
        }
        self.found = found;
        self.groups_key = key;
    }
}

struct State {
    prepare: Prepare,
    sets: Vec<SetState>,
    /// Bumped by `apply`, so a discovery pass started before it does not overwrite it.
    generation: u64,
}

#[derive(Default)]
struct Warned {
    last: Option<Instant>,
    suppressed: u64,
    failing: bool,
}

/// Why one POST failed.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Http(String),
    #[error("bad response status {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status { status: String, body: String },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The alert queue and its sender. Share it as `Arc<Notifier>`.
pub struct Notifier {
    state: RwLock<State>,
    queue: Mutex<VecDeque<Alert>>,
    more: Notify,
    metrics: Metrics,
    warned: Mutex<HashMap<String, Warned>>,
}

/// A URL as metrics, logs and the API show it: a password in it is replaced.
fn shown(url: &str) -> String {
    crate::config::redacted_url(url)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Notifier {
    pub fn new(
        settings: &AlertingSettings,
        external_labels: &[(String, String)],
        drop_labels: &[String],
    ) -> Arc<Self> {
        let metrics = Metrics::default();
        let state = Self::build(settings, external_labels, drop_labels, &metrics, 0);
        Arc::new(Notifier {
            state: RwLock::new(state),
            queue: Mutex::new(VecDeque::new()),
            more: Notify::new(),
            metrics,
            warned: Mutex::new(HashMap::new()),
        })
    }

    fn build(
        settings: &AlertingSettings,
        external_labels: &[(String, String)],
        drop_labels: &[String],
        metrics: &Metrics,
        generation: u64,
    ) -> State {
        State {
            prepare: Prepare {
                external_labels: external_labels.to_vec(),
                drop_labels: drop_labels.to_vec(),
                relabel: settings.alert_relabel_configs.clone(),
            },
            sets: settings
                .alertmanagers
                .iter()
                .enumerate()
                .map(|(i, s)| SetState::new(s, i, metrics))
                .collect(),
            generation,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes new settings (a reload): Alertmanagers are discovered again at once; the queue
    /// and the metrics are kept.
    pub fn apply(
        &self,
        settings: &AlertingSettings,
        external_labels: &[(String, String)],
        drop_labels: &[String],
    ) {
        let generation = self.read().generation + 1;
        let state = Self::build(settings, external_labels, drop_labels, &self.metrics, generation);
        *self.write() = state;
    }

    /// Queues alerts for the sender; never blocks on the network and never fails.
    pub fn send(&self, alerts: Vec<Alert>) {
        let mut alerts: Vec<Alert> = {
            let state = self.read();
            alerts.into_iter().filter_map(|a| state.prepare.apply(a)).collect()
        };
        if alerts.is_empty() {
            return;
        }
        let mut dropped = 0;
        {
            let mut queue = lock(&self.queue);
            if alerts.len() > QUEUE_CAPACITY {
                let d = alerts.len() - QUEUE_CAPACITY;
                alerts.drain(..d);
                dropped += d;
            }
            let over = (queue.len() + alerts.len()).saturating_sub(QUEUE_CAPACITY);
            queue.drain(..over);
            dropped += over;
            queue.extend(alerts);
        }
        if dropped > 0 {
            self.metrics.dropped(dropped);
            self.warn_limited("queue", |suppressed| {
                tracing::warn!(
                    num_dropped = dropped,
                    suppressed,
                    "alert notification queue full, dropping the oldest alerts"
                );
            });
        }
        self.more.notify_one();
    }

    fn next_batch(&self) -> Vec<Alert> {
        let mut queue = lock(&self.queue);
        let n = queue.len().min(MAX_BATCH_SIZE);
        queue.drain(..n).collect()
    }

    /// Sends queued alerts and re-reads file_sd files until `stop` turns true (or its sender
    /// is dropped). Alerts still queued then are not sent.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        tokio::join!(self.send_loop(stop.clone()), self.discovery_loop(stop));
    }

    async fn send_loop(&self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = self.more.notified() => {}
            }
            loop {
                let batch = self.next_batch();
                if batch.is_empty() {
                    break;
                }
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return,
                    delivered = self.send_all(&batch) => {
                        if !delivered {
                            self.metrics.dropped(batch.len());
                        }
                    }
                }
            }
        }
    }

    async fn discovery_loop(&self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(FILE_SD_POLL) => {}
            }
            self.rediscover();
        }
    }

    /// Re-reads the file_sd files of every set and updates the sets whose groups changed.
    fn rediscover(&self) {
        let (generation, sets): (u64, Vec<(usize, AlertmanagerSet)>) = {
            let state = self.read();
            let sets = state
                .sets
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.settings.file_sd_configs.is_empty())
                .map(|(i, s)| (i, s.settings.clone()))
                .collect();
            (state.generation, sets)
        };
        if sets.is_empty() {
            return;
        }
        // The files are read without the lock held; a reload meanwhile wins.
        let read: Vec<_> = sets.into_iter().map(|(i, s)| (i, discovery::groups(&s))).collect();
        let mut state = self.write();
        if state.generation != generation {
            return;
        }
        for (i, (groups, errors)) in read {
            if let Some(set) = state.sets.get_mut(i) {
                set.update(i, &groups, &errors, &self.metrics);
            }
        }
    }

    /// POSTs one batch to every Alertmanager at once; true when at least one took it.
    async fn send_all(&self, batch: &[Alert]) -> bool {
        let begin = Instant::now();
        let (targets, sets): (Vec<(String, Arc<SetSender>)>, usize) = {
            let state = self.read();
            let sets = state.sets.iter();
            let targets = sets
                .flat_map(|set| set.found.active.iter().map(|url| (url.clone(), set.sender.clone())))
                .collect();
            (targets, state.sets.len())
        };
        if targets.is_empty() {
            // Without an `alerting` section this is the normal state (Prometheus counts the
            // alerts as dropped and says nothing); with one, discovery found nothing.
            if sets > 0 {
                self.warn_limited("no alertmanagers", |suppressed| {
                    tracing::warn!(
                        count = batch.len(),
                        suppressed,
                        "no Alertmanager discovered to send alerts to; alerts dropped"
                    );
                });
            }
            return false;
        }
        let body = bytes::Bytes::from(payload::encode(batch));
        let sends = targets.into_iter().map(|(url, sender)| {
            let body = body.clone();
            async move {
                let result = match &sender.client {
                    Ok(client) => tokio::time::timeout(sender.timeout, post(client, &url, body, &sender))
                        .await
                        .unwrap_or(Err(SendError::Timeout(sender.timeout))),
                    Err(e) => Err(SendError::Client(e.clone())),
                };
                let url = shown(&url);
                self.metrics.sent(&url, batch.len(), begin.elapsed(), result.is_err());
                self.report(&url, batch.len(), &result);
                result.is_ok()
            }
        });
        futures_util::future::join_all(sends).await.into_iter().any(|ok| ok)
    }

    /// Logs a failed send (rate-limited per Alertmanager) and a recovery after failures.
    fn report(&self, url: &str, count: usize, result: &Result<(), SendError>) {
        match result {
            Err(e) => {
                lock(&self.warned).entry(url.to_string()).or_default().failing = true;
                self.warn_limited(url, |suppressed| {
                    tracing::warn!(alertmanager = %url, count, error = %e, suppressed, "error sending alerts");
                });
            }
            Ok(()) => {
                let mut warned = lock(&self.warned);
                if let Some(w) = warned.get_mut(url)
                    && std::mem::take(&mut w.failing)
                {
                    w.last = None;
                    w.suppressed = 0;
                    drop(warned);
                    tracing::info!(alertmanager = %url, "alertmanager accepts alerts again");
                }
            }
        }
    }

    /// Runs `log` with the number of warnings left out since the last one, at most once per
    /// `WARN_INTERVAL` per `key`.
    fn warn_limited(&self, key: &str, log: impl FnOnce(u64)) {
        let suppressed = {
            let mut warned = lock(&self.warned);
            let w = warned.entry(key.to_string()).or_default();
            if w.last.is_some_and(|t| t.elapsed() < WARN_INTERVAL) {
                w.suppressed += 1;
                return;
            }
            w.last = Some(Instant::now());
            std::mem::take(&mut w.suppressed)
        };
        log(suppressed);
    }

    /// The active and the dropped Alertmanagers' URLs, for `/api/v1/alertmanagers`.
    pub fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        let state = self.read();
        let active = state.sets.iter().flat_map(|s| s.found.active.iter().map(|u| shown(u))).collect();
        let dropped = state.sets.iter().flat_map(|s| s.found.dropped.iter().map(|u| shown(u))).collect();
        (active, dropped)
    }

    /// The `prometheus_notifications_*` families in the text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.metrics.render(out, self.gauges());
    }

    /// The `prometheus_notifications_*` families, for a role's `/metrics`.
    pub fn metric_families(&self) -> Vec<crate::exposition::MetricFamily> {
        self.metrics.families(self.gauges())
    }

    fn gauges(&self) -> Gauges {
        let discovered = self.read().sets.iter().map(|s| s.found.active.len()).sum();
        let queue_length = lock(&self.queue).len();
        Gauges { queue_length, queue_capacity: QUEUE_CAPACITY, alertmanagers_discovered: discovered }
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: bytes::Bytes,
    set: &SetSender,
) -> Result<(), SendError> {
    let mut request = client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    if let Some((user, password)) = &set.basic_auth {
        request = request.basic_auth(user, Some(password.expose()));
    }
    if let Some((kind, credentials)) = &set.authorization {
        request = request.header(reqwest::header::AUTHORIZATION, format!("{kind} {}", credentials.expose()));
    }
    let mut response = request.send().await.map_err(|e| SendError::Http(crate::http::error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    Err(SendError::Status {
        status: status.to_string(),
        body: String::from_utf8_lossy(&body).trim().to_string(),
    })
}

#[cfg(test)]
mod tests;

//! The alertmanager role: Prometheus Alertmanager 0.25's job. Alerts arrive on its API v2
//! (`api`), are kept (`alert`) and routed into aggregation groups (`dispatch`) by the routing
//! tree of an unchanged alertmanager.yml (read by `config::alertmanager`); a flush
//! mutes by inhibition (`inhibit`) and silences (`silence`), dedups against the notification
//! log (`nflog`) and delivers (`notify`). Silences and the log are on disk (`state`) and shared
//! with HA peers (`cluster`).

pub mod alert;
mod api;
pub mod cli;
pub mod cluster;
pub mod dispatch;
pub mod inhibit;
mod metrics;
pub mod nflog;
pub mod notify;
pub mod silence;
mod state;

use crate::config::AlertmanagerRoleConfig;
use crate::http;
use crate::lifecycle::{Ctx, Started};
use alert::{Alert, Nanos, now_nanos};
use nflog::NotificationLog;
use silence::{Silence, Silences};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    #[error(transparent)]
    Listener(#[from] http::HttpError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// How often resolved alerts, expired silences and log entries and empty groups are dropped.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// Alertmanager's `--alerts.gc-interval`.
const ALERT_GC_INTERVAL: Duration = Duration::from_secs(30 * 60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything the API, the dispatcher and the cluster share.
pub struct Shared {
    config: RwLock<Arc<crate::config::alertmanager::AlertmanagerConfig>>,
    clients: RwLock<HashMap<(String, usize), reqwest::Client>>,
    pub alerts: Mutex<HashMap<u64, Arc<Alert>>>,
    pub silences: Mutex<Silences>,
    pub nflog: Mutex<NotificationLog>,
    pub groups: Mutex<dispatch::Groups>,
    metrics: metrics::Metrics,
    state_counters: state::StateCounters,
    state_dir: PathBuf,
    /// Wakes the writer of the state files.
    dirty: Notify,
    pub cluster: Option<cluster::Cluster>,
    deltas: tokio::sync::mpsc::Sender<cluster::Message>,
    pub external_url: String,
    started_at: Nanos,
    retention: Duration,
}

impl Shared {
    pub fn config(&self) -> Arc<crate::config::alertmanager::AlertmanagerConfig> {
        self.config.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn client(&self, receiver: &str, index: usize) -> Option<reqwest::Client> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        clients.get(&(receiver.to_string(), index)).cloned()
    }

    /// How long this instance waits before consulting the log: position × peer timeout.
    fn peer_wait(&self) -> Duration {
        match &self.cluster {
            Some(c) => c.peer_timeout * u32::try_from(c.position()).unwrap_or(u32::MAX),
            None => Duration::ZERO,
        }
    }

    fn log_notification(
        &self,
        key: String,
        firing: BTreeSet<u64>,
        resolved: BTreeSet<u64>,
        now: Nanos,
        retention: Nanos,
    ) {
        let entry = lock(&self.nflog).log(key, firing, resolved, now, retention);
        self.changed(Vec::new(), vec![entry]);
    }

    /// Persists and tells the peers about changed silences and log entries.
    fn changed(&self, silences: Vec<Silence>, nflog: Vec<nflog::Entry>) {
        self.dirty.notify_one();
        if let Some(cluster) = &self.cluster {
            let message = cluster::Message { from: cluster.name.clone(), silences, nflog };
            // Best effort: the periodic full push repairs a delta that did not make it.
            let _ = self.deltas.try_send(message);
        }
    }

    /// A configuration takes over: clients are rebuilt and the groups with them, from the
    /// alerts held (the notification log keeps what was sent from being sent again).
    fn apply(self: &Arc<Self>, new: crate::config::alertmanager::AlertmanagerConfig) {
        let mut clients = HashMap::new();
        for (name, receiver) in &new.receivers {
            for (i, integration) in receiver.integrations.iter().enumerate() {
                let Some(http) = integration.http() else { continue };
                match notify::client(http, Duration::from_secs(30)) {
                    Ok(c) => {
                        clients.insert((name.clone(), i), c);
                    }
                    Err(e) => {
                        tracing::error!(receiver = %name, index = i, error = %e, "HTTP client cannot be built; this integration's notifications fail")
                    }
                }
            }
        }
        *self.clients.write().unwrap_or_else(|p| p.into_inner()) = clients;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        let mut groups = lock(&self.groups);
        groups.stop_all();
        drop(groups);
        let now = now_nanos();
        let alerts: Vec<Arc<Alert>> =
            lock(&self.alerts).values().filter(|a| !a.resolved_at(now)).cloned().collect();
        for a in &alerts {
            dispatch::insert(self, a);
        }
    }

    /// `POST /api/v2/alerts` after validation: merge with what is held, then route.
    pub fn put_alerts(self: &Arc<Self>, incoming: Vec<Alert>) {
        let mut stored = Vec::with_capacity(incoming.len());
        {
            let mut held = lock(&self.alerts);
            let now = now_nanos();
            for mut alert in incoming {
                let fp = alert.fingerprint();
                if let Some(old) = held.get(&fp)
                    && ((alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                        || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at))
                {
                    alert = old.merge(&alert, now);
                }
                let alert = Arc::new(alert);
                held.insert(fp, alert.clone());
                stored.push(alert);
            }
        }
        for a in &stored {
            dispatch::insert(self, a);
        }
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.state_dir.join(name)
    }

    fn write_state(&self) {
        let silences: Vec<Silence> = lock(&self.silences).list().cloned().collect();
        let nflog: Vec<nflog::Entry> = lock(&self.nflog).list().cloned().collect();
        for result in [
            state::save(&self.state_file("silences.json"), &silences),
            state::save(&self.state_file("nflog.json"), &nflog),
        ] {
            if let Err(e) = result {
                self.state_counters.write_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %e, "writing alertmanager state failed; it is kept in memory and written again at the next change");
            }
        }
    }

    fn maintenance(self: &Arc<Self>, now: Nanos, gc_alerts: bool) {
        let dropped_silences = lock(&self.silences).gc(now, self.retention);
        let dropped_entries = lock(&self.nflog).gc(now);
        if dropped_silences + dropped_entries > 0 {
            self.dirty.notify_one();
        }
        if gc_alerts {
            lock(&self.alerts).retain(|_, a| !a.resolved_at(now));
        }
        lock(&self.groups).drop_empty();
    }

    /// A peer's state: merge, persist what changed.
    pub fn merge_from_peer(&self, message: cluster::Message) {
        if let Some(c) = &self.cluster {
            c.heard_from(&message.from);
        }
        let mut changed = false;
        {
            let mut silences = lock(&self.silences);
            for s in message.silences {
                changed |= silences.merge(s);
            }
        }
        {
            let mut log = lock(&self.nflog);
            for e in message.nflog {
                changed |= log.merge(e);
            }
        }
        if changed {
            self.dirty.notify_one();
        }
    }

    fn full_state(&self, from: &str) -> cluster::Message {
        cluster::Message {
            from: from.to_string(),
            silences: lock(&self.silences).list().cloned().collect(),
            nflog: lock(&self.nflog).list().cloned().collect(),
        }
    }
}

pub struct AlertmanagerRole {
    shared: Arc<Shared>,
}

impl AlertmanagerRole {
    pub async fn start(
        config: &AlertmanagerRoleConfig,
        ctx: &Ctx,
    ) -> Result<Started<AlertmanagerRole>, AlertmanagerError> {
        let state_dir = ctx.global.data_dir.join("alertmanager");
        std::fs::create_dir_all(&state_dir).map_err(|e| AlertmanagerError::Dir(state_dir.clone(), e))?;
        let counters = state::StateCounters::default();
        let silences = Silences::from_list(state::load(&state_dir.join("silences.json"), &counters)?);
        let nflog = NotificationLog::from_list(state::load(&state_dir.join("nflog.json"), &counters)?);
        let bound = http::bind("alertmanager", &config.listen).await?;
        let external_url = config
            .external_url
            .clone()
            .unwrap_or_else(|| crate::rules::default_external_url(bound.local_addr));
        let cluster = match &config.cluster {
            Some(c) => Some(
                cluster::Cluster::new(c.advertise.clone(), c.peers.clone(), c.token.clone(), c.peer_timeout)
                    .map_err(AlertmanagerError::Cluster)?,
            ),
            None => None,
        };
        let (deltas, delta_rx) = tokio::sync::mpsc::channel(1024);
        let shared = Arc::new(Shared {
            config: RwLock::new(Arc::new(config.alertmanager.clone())),
            clients: RwLock::new(HashMap::new()),
            alerts: Mutex::new(HashMap::new()),
            silences: Mutex::new(silences),
            nflog: Mutex::new(nflog),
            groups: Mutex::new(dispatch::Groups::default()),
            metrics: metrics::Metrics::default(),
            state_counters: counters,
            state_dir,
            dirty: Notify::new(),
            cluster,
            deltas,
            external_url,
            started_at: now_nanos(),
            retention: config.data_retention,
        });
        shared.apply(config.alertmanager.clone());
        tokio::spawn(state_writer(shared.clone(), ctx.shutdown.clone()));
        tokio::spawn(maintenance(Arc::downgrade(&shared), ctx.shutdown.clone()));
        if shared.cluster.is_some() {
            tokio::spawn(cluster_sync(Arc::downgrade(&shared), delta_rx, ctx.shutdown.clone()));
        }
        tracing::info!(
            receivers = config.alertmanager.receivers.len(),
            peers = config.cluster.as_ref().map_or(0, |c| c.peers.len()),
            external_url = %shared.external_url,
            "alertmanager started"
        );
        let router = api::router(shared.clone());
        Ok(Started { role: AlertmanagerRole { shared }, listeners: vec![(bound, router)] })
    }

    pub fn reload(&self, config: &AlertmanagerRoleConfig) {
        if config.alertmanager.original == self.shared.config().original {
            return;
        }
        self.shared.apply(config.alertmanager.clone());
        tracing::info!("alertmanager configuration reloaded; aggregation groups rebuilt");
    }

    /// Stops the groups and writes the state a last time.
    pub async fn stop(self, _ctx: &Ctx) {
        lock(&self.shared.groups).stop_all();
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.write_state()).await;
    }
}

async fn state_writer(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shared.dirty.notified() => {}
            _ = shutdown.changed() => return,
        }
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.write_state()).await;
    }
}

async fn maintenance(shared: std::sync::Weak<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut since_gc = Duration::ZERO;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        since_gc += MAINTENANCE_INTERVAL;
        let gc_alerts = since_gc >= ALERT_GC_INTERVAL;
        if gc_alerts {
            since_gc = Duration::ZERO;
        }
        let Some(shared) = shared.upgrade() else { return };
        shared.maintenance(now_nanos(), gc_alerts);
    }
}

async fn cluster_sync(
    shared: std::sync::Weak<Shared>,
    mut deltas: tokio::sync::mpsc::Receiver<cluster::Message>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cluster::SYNC_INTERVAL);
    let mut last_errors = 0usize;
    loop {
        let message = tokio::select! {
            _ = tick.tick() => None,
            Some(m) = deltas.recv() => Some(m),
            _ = shutdown.changed() => return,
        };
        let Some(shared) = shared.upgrade() else { return };
        let Some(cluster) = &shared.cluster else { return };
        let message = message.unwrap_or_else(|| shared.full_state(&cluster.name));
        let errors = cluster.push(&message).await;
        // One line when peers become unreachable, not one every two seconds.
        if errors.len() != last_errors {
            for e in &errors {
                tracing::warn!(error = %e, "alertmanager peer did not take our state");
            }
            if errors.is_empty() && last_errors > 0 {
                tracing::info!("alertmanager peers reachable again");
            }
            last_errors = errors.len();
        }
    }
}

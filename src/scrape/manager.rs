//! Runs one scrape loop per target, keeps loops whose target and job settings did not change
//! across a reload or a file_sd change (so reloads leave no gaps), and answers what
//! `/api/v1/targets` reports.

use super::fetch::client_for;
use super::relabel::LabelSet;
use super::scrape_loop::{self, TargetState};
use super::sink::SampleSink;
use super::target::{self, DroppedTarget, Target};
use crate::config::prometheus::{Job, ScrapeSettings};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often file_sd files are re-read; a change shows up within this time.
const FILE_SD_POLL: Duration = Duration::from_secs(5);
/// How long stopping waits for the loops: a cancelled scrape ends at once, so this only bounds
/// a store append that hangs.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Running {
    job_fingerprint: String,
    target: Target,
    state: Arc<Mutex<TargetState>>,
    stop: watch::Sender<bool>,
    job: Arc<Job>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    settings: Option<ScrapeSettings>,
    running: HashMap<String, Running>,
    dropped: BTreeMap<String, Vec<DroppedTarget>>,
    discovery_errors: Vec<String>,
    /// The discovered groups the running targets were built from, to notice file_sd changes.
    groups_snapshot: String,
}

/// A snapshot of one active target for the API.
#[derive(Debug, Clone)]
pub struct ActiveTarget {
    pub target: Target,
    pub state: TargetState,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct ScrapeManager {
    inner: Arc<Mutex<Inner>>,
    sink: Arc<dyn SampleSink>,
}

fn key(t: &Target) -> String {
    format!("{}|{:?}|{}", t.job, t.labels, t.url)
}

impl ScrapeManager {
    pub fn new(sink: Arc<dyn SampleSink>) -> Self {
        ScrapeManager { inner: Arc::new(Mutex::new(Inner::default())), sink }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies new settings (start, on reload): starts new targets, stops vanished ones,
    /// restarts targets whose job settings changed, leaves the rest running.
    pub fn apply(&self, settings: ScrapeSettings) {
        let mut wanted: HashMap<String, (Target, Arc<Job>, String)> = HashMap::new();
        let mut dropped = BTreeMap::new();
        let mut errors = Vec::new();
        let mut snapshot = String::new();
        for job in &settings.jobs {
            let (groups, mut e) = target::job_groups(job);
            snapshot.push_str(&format!("{groups:?}\n"));
            let (active, d, e2) = target::build(job, &groups);
            e.extend(e2);
            errors.extend(e);
            dropped.insert(job.name.clone(), d);
            let job = Arc::new(job.clone());
            let fingerprint = format!("{job:?}");
            for t in active {
                wanted.insert(key(&t), (t, job.clone(), fingerprint.clone()));
            }
        }
        for e in &errors {
            tracing::warn!(error = %e, "target discovery");
        }
        let mut inner = self.lock();
        let stale: Vec<String> = inner
            .running
            .iter()
            .filter(|(k, r)| wanted.get(*k).is_none_or(|(_, _, fp)| *fp != r.job_fingerprint))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(r) = inner.running.remove(&k) {
                let _ = r.stop.send(true);
            }
        }
        let mut clients: HashMap<String, reqwest::Client> = HashMap::new();
        for (k, (t, job, fingerprint)) in wanted {
            if inner.running.contains_key(&k) {
                continue;
            }
            let client = match clients.get(&job.name) {
                Some(c) => c.clone(),
                None => match client_for(&job) {
                    Ok(c) => {
                        clients.insert(job.name.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        tracing::error!(job = %job.name, error = %e, "cannot build HTTP client; job not scraped");
                        continue;
                    }
                },
            };
            let (stop, stop_rx) = watch::channel(false);
            let state = Arc::new(Mutex::new(TargetState::default()));
            let task = tokio::spawn(scrape_loop::run(
                job.clone(),
                t.clone(),
                client,
                self.sink.clone(),
                state.clone(),
                stop_rx,
            ));
            inner
                .running
                .insert(k, Running { job_fingerprint: fingerprint, target: t, state, stop, job, task });
        }
        inner.dropped = dropped;
        inner.discovery_errors = errors;
        inner.groups_snapshot = snapshot;
        inner.settings = Some(settings);
    }

    /// Re-reads file_sd files until `shutdown`, applying changes as they appear.
    pub async fn watch_files(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(FILE_SD_POLL) => {}
                _ = shutdown.changed() => return,
            }
            let (settings, applied) = {
                let inner = self.lock();
                (inner.settings.clone(), inner.groups_snapshot.clone())
            };
            let Some(settings) = settings else { continue };
            if settings.jobs.iter().all(|j| j.file_sd_configs.is_empty()) {
                continue;
            }
            let current: String =
                settings.jobs.iter().map(|j| format!("{:?}\n", target::job_groups(j).0)).collect();
            if current != applied {
                tracing::info!("file_sd targets changed; updating scrape targets");
                self.apply(settings);
            }
        }
    }

    /// Stops every loop and returns once each has written its end-of-run staleness markers,
    /// so the store can be closed after it. A loop that does not finish within
    /// `STOP_GRACE` (its sink stuck on a failing store) is aborted and said so.
    pub async fn stop_all(&self) {
        let stopping: Vec<Running> = self.lock().running.drain().map(|(_, r)| r).collect();
        for r in &stopping {
            let _ = r.stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for r in stopping {
            let mut task = r.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(
                    job = %r.job.name, target = %r.target.url,
                    "scrape loop did not stop in time; aborted without its staleness markers"
                );
                task.abort();
                let _ = task.await;
            }
        }
    }

    pub fn active_targets(&self) -> Vec<ActiveTarget> {
        let inner = self.lock();
        let mut out: Vec<ActiveTarget> = inner
            .running
            .values()
            .map(|r| ActiveTarget {
                target: r.target.clone(),
                state: r.state.lock().map(|s| s.clone()).unwrap_or_default(),
                interval: r.job.interval,
                timeout: r.job.timeout,
            })
            .collect();
        out.sort_by(|a, b| (&a.target.job, &a.target.labels).cmp(&(&b.target.job, &b.target.labels)));
        out
    }

    pub fn dropped_targets(&self) -> Vec<(String, LabelSet)> {
        let inner = self.lock();
        inner
            .dropped
            .iter()
            .flat_map(|(job, d)| d.iter().map(move |t| (job.clone(), t.discovered_labels.clone())))
            .collect()
    }

    pub fn settings(&self) -> Option<ScrapeSettings> {
        self.lock().settings.clone()
    }
}

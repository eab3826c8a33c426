//! Runs a role's rule groups, as Prometheus 2.42's `rules.Manager`: one task per group at its
//! interval and per-group offset, `for` state restored after a start, reloads that keep
//! unchanged groups running and carry alert state into changed ones, stale markers for groups
//! that are gone, and the `prometheus_rule_*` metrics.

use super::file::GroupSpec;
use super::group::{EvalContext, GroupState};
use crate::exposition::MetricFamily;
use crate::model::now_ms;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where a group's evaluations fall inside its interval: Prometheus's `Group.hash()` (xxhash64
/// of the labels `file` and `name`) modulo the interval, so every Prometheus (and obsd)
/// evaluating the same file evaluates at the same instants.
pub fn group_offset_ns(file: &str, name: &str, interval: Duration) -> u64 {
    let mut bytes = Vec::with_capacity(file.len() + name.len() + 12);
    for (n, v) in [("file", file), ("name", name)] {
        bytes.extend_from_slice(n.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0xff);
    }
    let iv = interval.as_nanos().max(1) as u64;
    xxhash_rust::xxh64::xxh64(&bytes, 0) % iv
}

/// Prometheus's `EvalTimestamp`: the last slot at or before `now_ns`.
pub fn eval_timestamp_ns(now_ns: i64, offset_ns: u64, interval: Duration) -> i64 {
    let iv = interval.as_nanos().max(1) as i64;
    let adj = now_ns - offset_ns as i64;
    adj - adj.rem_euclid(iv) + offset_ns as i64
}

fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

struct RunningGroup {
    state: Arc<Mutex<GroupState>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The rule groups of one role.
pub struct RuleManager {
    /// Groups read it at every evaluation, so a reload's new external labels apply at once.
    ctx: Arc<RwLock<Arc<EvalContext>>>,
    groups: Mutex<BTreeMap<String, RunningGroup>>,
    /// False until the first load: groups of the first load restore `for` state, later ones
    /// start restored (Prometheus's `Manager.restored`).
    loaded_once: Mutex<bool>,
}

impl RuleManager {
    pub fn new(ctx: EvalContext) -> Arc<Self> {
        Arc::new(RuleManager {
            ctx: Arc::new(RwLock::new(Arc::new(ctx))),
            groups: Mutex::new(BTreeMap::new()),
            loaded_once: Mutex::new(false),
        })
    }

    pub fn context(&self) -> Arc<EvalContext> {
        current(&self.ctx)
    }

    /// New external labels or URL after a reload; groups read the context at each evaluation.
    pub fn set_context(&self, ctx: EvalContext) {
        let mut guard = self.ctx.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(ctx);
    }

    /// Runs `specs` from now on. An unchanged group keeps running untouched; a changed one is
    /// stopped and restarted with its rules' alert state; a group that is gone is stopped and
    /// its series marked stale.
    pub async fn apply(&self, specs: Vec<GroupSpec>, default_interval: Duration) {
        let restore = {
            let mut once = lock(&self.loaded_once);
            let first = !*once;
            *once = true;
            first
        };
        let mut old: BTreeMap<String, RunningGroup> = std::mem::take(&mut *lock(&self.groups));
        let mut next = BTreeMap::new();
        for spec in specs {
            let key = spec.key();
            let interval = spec.interval.unwrap_or(default_interval);
            if let Some(mut running) = old.remove(&key) {
                let same = {
                    let s = lock(&running.state);
                    s.spec == spec && s.interval == interval
                };
                if same {
                    next.insert(key, running);
                    continue;
                }
                stop_group(&mut running).await;
                let mut fresh = GroupState::new(spec, default_interval, true);
                fresh.copy_state(&mut lock(&running.state));
                next.insert(key, self.start(fresh, false));
                continue;
            }
            let fresh = GroupState::new(spec, default_interval, !restore);
            next.insert(key, self.start(fresh, restore));
        }
        for (key, mut gone) in old {
            stop_group(&mut gone).await;
            let state = gone.state.clone();
            let ctx = self.context();
            let _ = tokio::task::spawn_blocking(move || lock(&state).mark_all_stale(now_ms(), &ctx)).await;
            tracing::info!(group = %key, "rule group removed; its series are marked stale");
        }
        *lock(&self.groups) = next;
    }

    fn start(&self, state: GroupState, restore: bool) -> RunningGroup {
        let state = Arc::new(Mutex::new(state));
        let (stop, stop_rx) = watch::channel(false);
        let ctx = self.ctx.clone();
        let task = tokio::spawn(run_group(state.clone(), ctx, restore, stop_rx));
        RunningGroup { state, stop, task }
    }

    /// Stops every group and waits for evaluations in flight.
    pub async fn stop_all(&self) {
        let groups: Vec<RunningGroup> = std::mem::take(&mut *lock(&self.groups)).into_values().collect();
        for mut g in groups {
            stop_group(&mut g).await;
        }
    }

    /// Active and dropped Alertmanager URLs (`/api/v1/alertmanagers`).
    pub fn alertmanagers(&self) -> (Vec<String>, Vec<String>) {
        self.context().notifier.as_ref().map(|n| n.alertmanagers()).unwrap_or_default()
    }

    /// Every group's state, in the order of the rule files and groups as loaded.
    pub fn with_groups<T>(&self, mut f: impl FnMut(&GroupState) -> T) -> Vec<T> {
        let states: Vec<Arc<Mutex<GroupState>>> =
            lock(&self.groups).values().map(|g| g.state.clone()).collect();
        states.iter().map(|s| f(&lock(s))).collect()
    }

    /// `prometheus_rule_*` and `prometheus_template_text_expansion_failures_total`.
    pub fn metric_families(&self) -> Vec<MetricFamily> {
        let mut evals = MetricFamily::counter(
            "prometheus_rule_evaluations_total",
            "The total number of rule evaluations.",
        );
        let mut failures = MetricFamily::counter(
            "prometheus_rule_evaluation_failures_total",
            "The total number of rule evaluation failures.",
        );
        let mut iterations = MetricFamily::counter(
            "prometheus_rule_group_iterations_total",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
        );
        let mut missed = MetricFamily::counter(
            "prometheus_rule_group_iterations_missed_total",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
        );
        let mut interval =
            MetricFamily::gauge("prometheus_rule_group_interval_seconds", "The interval of a rule group.");
        let mut last_ts = MetricFamily::gauge(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
        );
        let mut last_duration = MetricFamily::gauge(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
        );
        let mut rules = MetricFamily::gauge("prometheus_rule_group_rules", "The number of rules.");
        let mut samples = MetricFamily::gauge(
            "prometheus_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation.",
        );
        let (mut sum, mut count) = (0.0, 0u64);
        self.with_groups(|g| {
            let key = g.spec.key();
            let l = [("rule_group", key.as_str())];
            let c = &g.counters;
            evals.add(&l, c.evaluations as f64);
            failures.add(&l, c.failures as f64);
            iterations.add(&l, (c.iterations + c.missed) as f64);
            missed.add(&l, c.missed as f64);
            interval.add(&l, g.interval.as_secs_f64());
            let last = g
                .last_evaluation
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            last_ts.add(&l, last);
            last_duration.add(&l, g.evaluation_time.as_secs_f64());
            rules.add(&l, g.rules.len() as f64);
            samples.add(&l, c.last_samples as f64);
            sum += c.duration_sum;
            count += c.iterations;
        });
        let mut duration = MetricFamily::new(
            "prometheus_rule_group_duration_seconds",
            "The duration of rule group evaluations.",
            crate::exposition::MetricType::Summary,
        );
        duration.samples.push(crate::exposition::Sample {
            suffix: "_sum",
            labels: Vec::new(),
            value: sum,
            timestamp_ms: None,
        });
        duration.samples.push(crate::exposition::Sample {
            suffix: "_count",
            labels: Vec::new(),
            value: count as f64,
            timestamp_ms: None,
        });
        let mut template = MetricFamily::counter(
            "prometheus_template_text_expansion_failures_total",
            "The total number of template text expansion failures.",
        );
        let ctx = self.context();
        template.set(ctx.template_failures.load(std::sync::atomic::Ordering::Relaxed) as f64);
        let mut out = vec![
            evals,
            failures,
            iterations,
            missed,
            interval,
            last_ts,
            last_duration,
            rules,
            samples,
            duration,
            template,
        ];
        if let Some(n) = &ctx.notifier {
            out.extend(n.metric_families());
        }
        out
    }
}

fn current(ctx: &RwLock<Arc<EvalContext>>) -> Arc<EvalContext> {
    ctx.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
}

async fn stop_group(g: &mut RunningGroup) {
    let _ = g.stop.send(true);
    // The task ends at its next await point; an evaluation in flight finishes first.
    if let Err(e) = (&mut g.task).await {
        tracing::warn!(error = %e, "a rule group's task ended abnormally");
    }
}

/// Evaluates the group at `ts_ms` on a blocking thread (PromQL is CPU work).
async fn iterate(state: &Arc<Mutex<GroupState>>, ctx: &RwLock<Arc<EvalContext>>, ts_ms: i64) {
    let (state, ctx) = (state.clone(), current(ctx));
    let _ = tokio::task::spawn_blocking(move || lock(&state).eval(ts_ms, &ctx)).await;
}

async fn run_group(
    state: Arc<Mutex<GroupState>>,
    ctx: Arc<RwLock<Arc<EvalContext>>>,
    restore: bool,
    mut stop: watch::Receiver<bool>,
) {
    let (interval, offset) = {
        let s = lock(&state);
        (s.interval, group_offset_ns(&s.spec.file, &s.spec.name, s.interval))
    };
    let iv_ns = interval.as_nanos().max(1) as i64;
    // The first evaluation waits for the group's next slot, as Prometheus's does.
    let mut eval_ns = eval_timestamp_ns(wall_ns(), offset, interval) + iv_ns;
    let mut evaluations = 0u32;
    loop {
        let wait = Duration::from_nanos((eval_ns - wall_ns()).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        iterate(&state, &ctx, eval_ns / 1_000_000).await;
        evaluations += 1;
        if restore && evaluations == 2 {
            // After two evaluations recording rules have caught up, as Prometheus waits.
            let (state, ctx) = (state.clone(), current(&ctx));
            let _ = tokio::task::spawn_blocking(move || lock(&state).restore_for_state(now_ms(), &ctx)).await;
        }
        let next = eval_ns + iv_ns;
        let missed = (wall_ns() - next) / iv_ns;
        if missed > 0 {
            lock(&state).counters.missed += missed as u64;
            tracing::warn!(group = %lock(&state).spec.name, missed, "rule group evaluation took longer than its interval; iterations missed");
        }
        eval_ns = next + missed.max(0) * iv_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_to_the_offset() {
        let iv = Duration::from_secs(60);
        let off = group_offset_ns("rules.yml", "g", iv);
        assert!(off < 60_000_000_000);
        let now = 1_700_000_000_123_456_789i64;
        let slot = eval_timestamp_ns(now, off, iv);
        assert!(slot <= now && now - slot < 60_000_000_000);
        assert_eq!((slot - off as i64).rem_euclid(60_000_000_000), 0);
    }
}

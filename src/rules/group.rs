//! One rule group's evaluation at one timestamp, as Prometheus 2.42's `Group.Eval`: rules in
//! file order, each result committed before the next rule runs (so later rules see earlier
//! results), stale markers for series a rule stopped producing, alerts handed to the notifier.

use super::alert::{Alert, AlertError, AlertSet, Firing, restored_active_at};
use super::file::{GroupSpec, RuleKind, RuleSpec};
use super::notifier::{self, Notifier};
use crate::config::prometheus::AlertTiming;
use crate::gotemplate::{self as template, QuerySample, TemplateData};
use crate::model::labels::{Labels, METRIC_NAME};
use crate::model::{Matcher, is_stale_nan, stale_nan};
use crate::promql::{Engine, QueryError, QueryValue, Queryable};
use crate::store::{Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// What every group of one role evaluates against.
pub struct EvalContext {
    pub engine: Arc<Engine>,
    pub queryable: Arc<dyn Queryable>,
    pub store: Store,
    pub external_labels: Labels,
    pub external_url: String,
    pub notifier: Option<Arc<Notifier>>,
    /// Template expansions that failed (`prometheus_template_text_expansion_failures_total`).
    pub template_failures: Arc<AtomicU64>,
    pub timing: AlertTiming,
    /// Where rule output goes besides the store, once the store has taken it: the
    /// federation's remote-write queues, as Prometheus remote-writes rule results.
    pub forward: Option<RuleForward>,
}

/// Receives every sample (stale markers included) a group committed to the store.
pub type RuleForward = Arc<dyn Fn(&[(Labels, i64, f64)]) + Send + Sync>;

impl EvalContext {
    fn forward(&self, samples: &[(Labels, i64, f64)]) {
        if let Some(forward) = &self.forward
            && !samples.is_empty()
        {
            forward(samples);
        }
    }

    /// Stale markers for `series` at `ts_ms`, committed to the store and forwarded.
    fn write_stale(&self, series: impl Iterator<Item = Labels>, ts_ms: i64) -> Result<(), StoreError> {
        let mut app = self.store.appender();
        let mut written = Vec::new();
        for labels in series {
            if app.append(&labels, ts_ms, stale_nan()).is_ok() {
                written.push((labels, ts_ms, stale_nan()));
            }
        }
        app.commit()?;
        self.forward(&written);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Good,
    Bad,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Good => "ok",
            Health::Bad => "err",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("rule result is not a vector or scalar")]
    NotVector,
    #[error("vector contains metrics with the same labelset after applying rule labels")]
    DuplicateSeries,
    #[error("exceeded limit of {limit} with {count} series")]
    Limit { limit: usize, count: usize },
    #[error(transparent)]
    Alert(#[from] AlertError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One rule and what it remembers between evaluations.
pub struct RuleState {
    pub spec: RuleSpec,
    pub health: Health,
    pub last_error: String,
    pub last_evaluation: Option<SystemTime>,
    pub evaluation_time: Duration,
    pub alerts: AlertSet,
    /// Series the last successful evaluation wrote: those missing next time get a stale marker.
    previous: HashSet<Labels>,
}

impl RuleState {
    pub fn new(spec: RuleSpec, restored: bool) -> Self {
        RuleState {
            spec,
            health: Health::Unknown,
            last_error: String::new(),
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            alerts: AlertSet { restored, ..Default::default() },
            previous: HashSet::new(),
        }
    }
}

/// Counters a group keeps for `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct GroupCounters {
    pub evaluations: u64,
    pub failures: u64,
    pub iterations: u64,
    pub missed: u64,
    pub last_samples: u64,
    pub duration_sum: f64,
}

pub struct GroupState {
    pub spec: GroupSpec,
    pub interval: Duration,
    pub rules: Vec<RuleState>,
    pub last_evaluation: Option<SystemTime>,
    pub evaluation_time: Duration,
    pub counters: GroupCounters,
    /// Series of rules a reload removed: marked stale at the next evaluation.
    stale_series: Vec<Labels>,
}

impl GroupState {
    pub fn new(spec: GroupSpec, default_interval: Duration, restored: bool) -> Self {
        let interval = spec.interval.unwrap_or(default_interval);
        let rules = spec.rules.iter().cloned().map(|r| RuleState::new(r, restored)).collect();
        GroupState {
            spec,
            interval,
            rules,
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            counters: GroupCounters::default(),
            stale_series: Vec::new(),
        }
    }

    /// Prometheus's `CopyState` on reload: a rule keeps its alerts, stale-marker memory and
    /// health when a rule of the same name and labels was there before (matched in order among
    /// rules of one name).
    pub fn copy_state(&mut self, old: &mut GroupState) {
        let mut taken = vec![false; old.rules.len()];
        for rule in &mut self.rules {
            let found = old.rules.iter().enumerate().position(|(i, o)| {
                !taken[i] && o.spec.name == rule.spec.name && o.spec.labels == rule.spec.labels
            });
            let Some(i) = found else { continue };
            taken[i] = true;
            let o = &mut old.rules[i];
            rule.previous = std::mem::take(&mut o.previous);
            rule.health = o.health;
            rule.last_error = o.last_error.clone();
            rule.last_evaluation = o.last_evaluation;
            rule.evaluation_time = o.evaluation_time;
            if rule.spec.is_alert() {
                rule.alerts.active = std::mem::take(&mut o.alerts.active);
                rule.alerts.restored = o.alerts.restored;
            }
        }
        for (i, o) in old.rules.iter_mut().enumerate() {
            if !taken[i] {
                self.stale_series.extend(o.previous.drain());
            }
        }
        self.stale_series.append(&mut old.stale_series);
        self.counters = old.counters.clone();
        self.last_evaluation = old.last_evaluation;
        self.evaluation_time = old.evaluation_time;
    }

    /// Evaluates every rule at `ts_ms` (the group's slot time, not the clock).
    pub fn eval(&mut self, ts_ms: i64, ctx: &EvalContext) {
        let started = Instant::now();
        let mut samples_total = 0u64;
        if !self.stale_series.is_empty()
            && let Err(e) = ctx.write_stale(self.stale_series.drain(..), ts_ms)
        {
            tracing::warn!(group = %self.spec.name, error = %e, "writing stale markers for removed rules failed");
        }
        for i in 0..self.rules.len() {
            self.counters.evaluations += 1;
            let rule_started = Instant::now();
            let rule = &mut self.rules[i];
            match eval_rule(rule, ts_ms, self.interval, self.spec.limit, ctx) {
                Ok(written) => {
                    rule.health = Health::Good;
                    rule.last_error.clear();
                    samples_total += written;
                }
                Err(e) => {
                    rule.health = Health::Bad;
                    rule.last_error = e.to_string();
                    self.counters.failures += 1;
                    tracing::warn!(group = %self.spec.name, file = %self.spec.file, rule = %rule.spec.name, error = %e, "evaluating rule failed");
                }
            }
            rule.last_evaluation = Some(SystemTime::now());
            rule.evaluation_time = rule_started.elapsed();
        }
        self.counters.iterations += 1;
        self.counters.last_samples = samples_total;
        self.evaluation_time = started.elapsed();
        self.counters.duration_sum += self.evaluation_time.as_secs_f64();
        self.last_evaluation = Some(SystemTime::now());
    }

    /// Prometheus's `RestoreForState`: alerts pending when the process stopped keep the time
    /// they had spent pending, read back from `ALERTS_FOR_STATE` of the last hour.
    pub fn restore_for_state(&mut self, now_ms: i64, ctx: &EvalContext) {
        let grace = ctx.timing.for_grace_period;
        let mint = now_ms - ctx.timing.for_outage_tolerance.as_millis() as i64;
        for rule in &mut self.rules {
            let RuleKind::Alerting { hold, .. } = rule.spec.kind else { continue };
            if hold < grace {
                rule.alerts.restored = true;
                continue;
            }
            for alert in rule.alerts.active.values_mut() {
                let series = alert.labels.with_label(METRIC_NAME, super::alert::ALERTS_FOR_STATE_METRIC);
                let matchers: Vec<Matcher> = series.iter().map(|(n, v)| Matcher::equal(n, v)).collect();
                let found = match ctx.queryable.select(&matchers, mint, now_ms) {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(rule = %rule.spec.name, error = %e, "restoring alert state failed");
                        continue;
                    }
                };
                let Some(data) = found.into_iter().find(|s| s.labels.len() == series.len()) else { continue };
                let Some(&(t, v)) = data.samples.last() else { continue };
                if is_stale_nan(v) {
                    continue;
                }
                alert.active_at = restored_active_at(now_ms, t, v, hold, grace);
            }
            rule.alerts.restored = true;
        }
    }

    /// Stale markers for every series the group's rules last wrote: the group is gone.
    pub fn mark_all_stale(&mut self, ts_ms: i64, ctx: &EvalContext) {
        let series: Vec<Labels> = self.rules.iter_mut().flat_map(|r| r.previous.drain()).collect();
        if let Err(e) = ctx.write_stale(series.into_iter(), ts_ms) {
            tracing::warn!(group = %self.spec.name, error = %e, "writing stale markers for a removed rule group failed");
        }
    }
}

fn run_query(ctx: &EvalContext, expr: &str, ts_ms: i64) -> Result<Vec<(Labels, f64)>, RuleError> {
    match ctx.engine.instant_query(ctx.queryable.as_ref(), expr, ts_ms)? {
        QueryValue::Vector(v) => Ok(v.into_iter().map(|s| (Arc::unwrap_or_clone(s.labels), s.v)).collect()),
        QueryValue::Scalar { v, .. } => Ok(vec![(Labels::new(), v)]),
        _ => Err(RuleError::NotVector),
    }
}

/// Evaluates one rule, appends what it produced and returns how many samples that was.
fn eval_rule(
    rule: &mut RuleState,
    ts_ms: i64,
    interval: Duration,
    limit: usize,
    ctx: &EvalContext,
) -> Result<u64, RuleError> {
    let result = run_query(ctx, &rule.spec.expr, ts_ms)?;
    let output: Vec<(Labels, f64)> = match &rule.spec.kind {
        RuleKind::Recording => {
            let mut seen = HashSet::with_capacity(result.len());
            let mut out = Vec::with_capacity(result.len());
            for (labels, v) in result {
                let mut labels = labels.with_label(METRIC_NAME, &rule.spec.name);
                for (n, value) in &rule.spec.labels {
                    labels.set(n, value);
                }
                if !seen.insert(labels.clone()) {
                    return Err(RuleError::DuplicateSeries);
                }
                out.push((labels, v));
            }
            if limit > 0 && out.len() > limit {
                return Err(RuleError::Limit { limit, count: out.len() });
            }
            out
        }
        RuleKind::Alerting { hold, keep_firing_for, annotations } => {
            let template_name = format!("__alert_{}", rule.spec.name);
            let query = |q: &str| -> Result<Vec<QuerySample>, String> {
                run_query(ctx, q, ts_ms)
                    .map(|v| v.into_iter().map(|(labels, value)| QuerySample { labels, value }).collect())
                    .map_err(|e| e.to_string())
            };
            let mut firing = Vec::with_capacity(result.len());
            for (labels, v) in result {
                let data = TemplateData {
                    labels: &labels,
                    external_labels: &ctx.external_labels,
                    external_url: &ctx.external_url,
                    value: v,
                };
                let expand = |text: &str| match template::expand(&template_name, text, &data, &query, ts_ms) {
                    Ok(s) => s,
                    Err(shown) => {
                        ctx.template_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(rule = %rule.spec.name, error = %shown, "expanding alert template failed");
                        shown
                    }
                };
                let mut alert_labels = labels.without(&[METRIC_NAME]);
                for (n, value) in &rule.spec.labels {
                    alert_labels.set(n, &expand(value));
                }
                alert_labels.set(super::alert::ALERT_NAME_LABEL, &rule.spec.name);
                let shown: Vec<(String, String)> =
                    annotations.iter().map(|(n, t)| (n.clone(), expand(t))).collect();
                firing.push(Firing {
                    labels: alert_labels,
                    annotations: Labels::from_pairs(shown),
                    value: v,
                });
            }
            let out = rule.alerts.update(firing, ts_ms, *hold, *keep_firing_for, limit)?;
            if let Some(notifier) = &ctx.notifier {
                let due = rule.alerts.due(ts_ms, ctx.timing.resend_delay, interval);
                if !due.is_empty() {
                    notifier
                        .send(due.iter().map(|a| outgoing(a, &rule.spec.expr, &ctx.external_url)).collect());
                }
            }
            out
        }
    };
    let written = output.len() as u64;
    let mut app = ctx.store.appender();
    let mut now = HashSet::with_capacity(output.len());
    let forwarding = ctx.forward.is_some();
    let mut forward = Vec::new();
    for (labels, v) in output {
        match app.append(&labels, ts_ms, v) {
            Ok(_) => {
                if forwarding {
                    forward.push((labels.clone(), ts_ms, v));
                }
                now.insert(labels);
            }
            Err(e) if e.is_user_error() => {
                tracing::warn!(rule = %rule.spec.name, series = %labels, error = %e, "rule evaluation result discarded");
            }
            Err(e) => return Err(e.into()),
        }
    }
    for gone in rule.previous.difference(&now) {
        if app.append(gone, ts_ms, stale_nan()).is_ok() && forwarding {
            forward.push((gone.clone(), ts_ms, stale_nan()));
        }
    }
    app.commit()?;
    ctx.forward(&forward);
    rule.previous = now;
    Ok(written)
}

/// What Alertmanager gets for an alert (Prometheus's `SendAlerts`): it started when it fired,
/// and ends when it resolved or, while firing, when it stops being refreshed.
fn outgoing(a: &Alert, expr: &str, external_url: &str) -> notifier::Alert {
    notifier::Alert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at_ms: a.fired_at,
        ends_at_ms: Some(if a.resolved_at != 0 { a.resolved_at } else { a.valid_until }),
        generator_url: format!("{}{}", external_url.trim_end_matches('/'), graph_link(expr)),
    }
}

/// Prometheus's `TableLinkForExpression`.
pub fn graph_link(expr: &str) -> String {
    let escaped: String = crate::gotemplate::query_escape(expr);
    format!("/graph?g0.expr={escaped}&g0.tab=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_links_escape_as_go_does() {
        assert_eq!(graph_link("up == 0"), "/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
        assert_eq!(
            graph_link("rate(x{a=\"b\"}[5m])"),
            "/graph?g0.expr=rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29&g0.tab=1"
        );
    }
}

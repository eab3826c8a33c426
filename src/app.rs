//! Starts the chosen roles, serves their listeners, reloads on SIGHUP and stops in order on
//! SIGTERM/SIGINT: listeners stop accepting first, then in-flight requests drain for at most
//! `global.shutdown_timeout`.

use crate::alertmanager::AlertmanagerRole;
use crate::balancer::{self, Balancer};
use crate::collector::Collector;
use crate::config::{self, Config, ListenerConfig, Role};
use crate::exporter::{self, Exporter};
use crate::federation::Federation;
use crate::http;
use crate::lifecycle::{Ctx, Started};
use crate::replica::Replica;
use anyhow::{Context, bail};
use axum::Router;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A started role, to reload and stop. Every role has the same lifecycle
/// (`crate::lifecycle`); this only names which one it is.
enum Running {
    Exporter(Exporter),
    Replica(Replica),
    Federation(Federation),
    Collector(Collector),
    Balancer(Balancer),
    Alertmanager(AlertmanagerRole),
}

impl Running {
    fn role(&self) -> Role {
        match self {
            Running::Exporter(_) => Role::Exporter,
            Running::Replica(_) => Role::Replica,
            Running::Federation(_) => Role::Federation,
            Running::Collector(_) => Role::Collector,
            Running::Balancer(_) => Role::Balancer,
            Running::Alertmanager(_) => Role::Alertmanager,
        }
    }

    fn listener<'c>(&self, config: &'c Config) -> &'c ListenerConfig {
        match self {
            Running::Exporter(_) => &config.exporter.listen,
            Running::Replica(_) => &config.replica.listen,
            Running::Federation(_) => &config.federation.listen,
            Running::Collector(_) => &config.collector.listen,
            Running::Balancer(_) => &config.balancer.listen,
            Running::Alertmanager(_) => &config.alertmanager.listen,
        }
    }

    fn reload(&self, current: &Config, new: &Config) {
        if self.listener(current) != self.listener(new) {
            tracing::warn!(
                role = self.role().name(),
                "listener settings changed; they take effect only after a restart"
            );
        }
        match self {
            Running::Exporter(r) => r.reload(&new.exporter),
            Running::Replica(r) => r.reload(&new.replica),
            Running::Federation(r) => r.reload(&new.federation),
            Running::Collector(_) => {
                tracing::warn!(role = "collector", "collector settings take effect only after a restart")
            }
            Running::Balancer(r) => r.reload(&new.balancer),
            Running::Alertmanager(r) => r.reload(&new.alertmanager),
        }
    }

    /// Called once the listeners have drained. Each role stops what produces data (scrape
    /// loops, span intake) before it flushes its store.
    async fn stop(self, ctx: &Ctx) {
        match self {
            Running::Exporter(r) => r.stop(ctx).await,
            Running::Replica(r) => r.stop(ctx).await,
            Running::Federation(r) => r.stop(ctx).await,
            Running::Collector(r) => r.stop(ctx).await,
            Running::Balancer(r) => r.stop(ctx).await,
            Running::Alertmanager(r) => r.stop(ctx).await,
        }
    }
}

async fn start(
    role: Role,
    config: &Config,
    ctx: &Ctx,
) -> anyhow::Result<(Running, Vec<(http::BoundListener, Router)>)> {
    fn wrap<R>(
        started: Started<R>,
        as_running: fn(R) -> Running,
    ) -> (Running, Vec<(http::BoundListener, Router)>) {
        (as_running(started.role), started.listeners)
    }
    Ok(match role {
        Role::Exporter => wrap(exporter::start(&config.exporter, ctx).await?, Running::Exporter),
        Role::Replica => wrap(Replica::start(&config.replica, ctx).await?, Running::Replica),
        Role::Federation => wrap(Federation::start(&config.federation, ctx).await?, Running::Federation),
        Role::Collector => wrap(Collector::start(&config.collector, ctx).await?, Running::Collector),
        Role::Balancer => wrap(balancer::start(&config.balancer, ctx).await?, Running::Balancer),
        Role::Alertmanager => {
            wrap(AlertmanagerRole::start(&config.alertmanager, ctx).await?, Running::Alertmanager)
        }
    })
}

pub async fn run(config: Config, config_path: Option<PathBuf>, roles: Vec<Role>) -> anyhow::Result<()> {
    let clashes = config.clashes_among(&roles);
    if !clashes.is_empty() {
        bail!("roles started together need listeners of their own:\n{}", clashes.join("\n"));
    }
    crate::self_metrics::config_loaded(log_warnings(&config, &roles));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let drain = config.global.shutdown_timeout;
    let ctx = Ctx { global: config.global.clone(), shutdown: shutdown_rx.clone(), drain };
    // Started in the order given, stopped in reverse: a role started later may lean on one
    // started before it, never the other way round.
    let mut running: Vec<Running> = Vec::new();
    let mut listeners: Vec<(http::BoundListener, Router)> = Vec::new();
    for role in &roles {
        match start(*role, &config, &ctx).await {
            Ok((started, bound)) => {
                running.push(started);
                listeners.extend(bound);
            }
            Err(err) => {
                // The roles already up may have opened stores and begun scraping: they flush
                // what they took before the process exits with the error.
                let _ = shutdown_tx.send(true);
                while let Some(role) = running.pop() {
                    role.stop(&ctx).await;
                }
                return Err(err);
            }
        }
    }
    if listeners.is_empty() {
        bail!("no role to run");
    }
    let mut servers = tokio::task::JoinSet::new();
    for (bound, router) in listeners {
        servers.spawn(http::serve(bound, router, shutdown_rx.clone(), drain));
    }
    // Handlers first: "obsd started" and READY=1 invite signals (systemctl reload, a test's
    // SIGHUP), and SIGHUP's default action would kill the process.
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    tracing::info!(
        roles = %roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(","),
        config = %config.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<embedded defaults>".into()),
        "obsd started"
    );
    crate::systemd::notify("READY=1");

    let mut current = config;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM received; draining"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT received; draining"); break; }
            _ = sighup.recv() => {
                crate::systemd::notify(&crate::systemd::reloading_message());
                reload(&mut current, config_path.as_deref(), &running, &roles);
                crate::systemd::notify("READY=1");
            }
            Some(done) = servers.join_next() => {
                if let Err(err) = done {
                    tracing::error!(error = %err, "a listener task failed");
                }
                if servers.is_empty() {
                    bail!("every listener stopped");
                }
            }
        }
    }
    crate::systemd::notify("STOPPING=1");
    let _ = shutdown_tx.send(true);
    let deadline = drain + std::time::Duration::from_secs(1);
    if tokio::time::timeout(deadline, async { while servers.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!("listeners did not stop within the drain time");
    }
    // Listeners are down, so nothing new arrives: each role drains what it holds and flushes.
    while let Some(role) = running.pop() {
        role.stop(&ctx).await;
    }
    tracing::info!("obsd stopped");
    Ok(())
}

/// Logs the config's warnings at WARN, with the clashes between the roles run here and those
/// the file configures for other units or hosts; returns how many there were.
fn log_warnings(config: &Config, roles: &[Role]) -> usize {
    let mut warnings = config.warning_lines();
    for clash in config.clashes_with_others(roles) {
        warnings.push(format!(
            "{clash} (that role does not run in this process; on a host that runs both, one fails to start)"
        ));
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    warnings.len()
}

/// Every problem in the rule files of the given roles that evaluate rules, as
/// `promtool check rules` words them.
pub fn rule_file_problems(config: &Config, roles: &[Role]) -> Vec<String> {
    let mut out = Vec::new();
    for (role, patterns) in [
        (Role::Replica, &config.replica.scrape.rule_files),
        (Role::Federation, &config.federation.scrape.rule_files),
    ] {
        if roles.contains(&role)
            && let Err(errors) = crate::rules::load(patterns)
        {
            out.extend(errors);
        }
    }
    out
}

fn reload(current: &mut Config, path: Option<&std::path::Path>, running: &[Running], roles: &[Role]) {
    tracing::info!("SIGHUP received; reloading configuration");
    let embedded = current.source.as_deref() == Some(std::path::Path::new(config::ALL_IN_ONE_SOURCE));
    let loaded = match path {
        None if embedded => config::all_in_one(),
        _ => config::load(path),
    };
    let new = match loaded {
        Ok(c) => c,
        Err(err) => {
            tracing::error!(error = %err, "reload failed; keeping the running configuration");
            crate::self_metrics::config_reload_failed();
            return;
        }
    };
    let broken = rule_file_problems(&new, roles);
    if !broken.is_empty() {
        for problem in &broken {
            tracing::error!(error = %problem, "rule file refused");
        }
        tracing::error!("reload failed; keeping the running configuration and rules");
        crate::self_metrics::config_reload_failed();
        return;
    }
    let mut warnings = log_warnings(&new, roles);
    for clash in new.clashes_among(roles) {
        tracing::warn!("{clash} (listeners change only on restart, which will fail)");
        warnings += 1;
    }
    for role in running {
        role.reload(current, &new);
    }
    crate::self_metrics::config_loaded(warnings);
    *current = new;
    tracing::info!("configuration reloaded");
}

//! Starts the chosen roles, serves their listeners, reloads on SIGHUP and stops in order on
//! SIGTERM/SIGINT: listeners stop accepting first, then in-flight requests drain for at most
//! `global.shutdown_timeout`.

use crate::balancer::{self, Balancer};
use crate::collector::Collector;
use crate::config::{self, Config, ListenerConfig, Role};
use crate::exporter::{self, Exporter};
use crate::federation::Federation;
use crate::http;
use crate::replica::Replica;
use crate::store::Store;
use anyhow::{Context, bail};
use axum::Router;
use axum::routing::get;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

fn common_routes() -> Router {
    Router::new()
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
}

/// The health routes of a role with a store: not ready (503, the reason in the body) while
/// the store refuses writes, so a balancer or an orchestrator sees a full disk.
fn store_routes(store: Store) -> Router {
    Router::new().route("/-/healthy", get(|| async { "Healthy.\n" })).route(
        "/-/ready",
        get(move || {
            let store = store.clone();
            async move {
                match store.write_health() {
                    Ok(()) => (axum::http::StatusCode::OK, "Ready.\n".to_string()),
                    Err(why) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("Not ready: {why}\n")),
                }
            }
        }),
    )
}

struct Running {
    exporter: Option<Exporter>,
    collector: Option<Collector>,
    replica: Option<Replica>,
    federation: Option<Federation>,
    balancer: Option<Balancer>,
}

pub async fn run(config: Config, config_path: Option<PathBuf>, roles: Vec<Role>) -> anyhow::Result<()> {
    let clashes = config.clashes_among(&roles);
    if !clashes.is_empty() {
        bail!("roles started together need listeners of their own:\n{}", clashes.join("\n"));
    }
    crate::self_metrics::config_loaded(log_warnings(&config, &roles));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut running =
        Running { exporter: None, collector: None, replica: None, federation: None, balancer: None };
    let mut listeners: Vec<(http::BoundListener, Router)> = Vec::new();
    for role in &roles {
        match role {
            Role::Exporter => {
                let exp = Exporter::new(config.exporter.clone());
                let router = exporter::router(exp.clone()).merge(common_routes());
                let bound = http::bind("exporter", &config.exporter.listen).await?;
                running.exporter = Some(exp);
                listeners.push((bound, router));
            }
            Role::Replica => {
                let (replica, bound, router) = Replica::start(&config.replica, &config.global).await?;
                replica.spawn_background(shutdown_rx.clone());
                listeners.push((bound, router.merge(store_routes(replica.state.store.clone()))));
                running.replica = Some(replica);
            }
            Role::Federation => {
                let (federation, bound, router) =
                    Federation::start(&config.federation, &config.global, shutdown_rx.clone()).await?;
                federation.spawn_background(shutdown_rx.clone());
                listeners.push((bound, router.merge(store_routes(federation.store().clone()))));
                running.federation = Some(federation);
            }
            Role::Collector => {
                let (collector, bound) =
                    Collector::start(&config.collector, &config.global, shutdown_rx.clone()).await?;
                for (listener, router) in bound {
                    // Health answers on every collector listener, as on every role's.
                    listeners.push((listener, router.merge(common_routes())));
                }
                running.collector = Some(collector);
            }
            Role::Balancer => {
                // The stats listener binds first, then every frontend: any taken port fails
                // the start before traffic flows.
                let bound = http::bind("balancer", &config.balancer.listen).await?;
                let b = Balancer::start(config.balancer.clone(), shutdown_rx.clone())?;
                listeners.push((bound, balancer::router(b.clone())));
                running.balancer = Some(b);
            }
        }
    }
    if listeners.is_empty() {
        bail!("no role to run");
    }
    let drain = config.global.shutdown_timeout;
    let mut servers = tokio::task::JoinSet::new();
    for (bound, router) in listeners {
        servers.spawn(http::serve(bound, router, shutdown_rx.clone(), drain));
    }
    if let Some(b) = &running.balancer {
        servers.spawn(b.clone().run_until_shutdown(drain));
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
    // Listeners are down, so no new spans arrive: drain the span queue and flush the store.
    if let Some(replica) = running.replica.take() {
        replica.stop().await;
    }
    if let Some(federation) = running.federation.take() {
        federation.stop().await;
    }
    if let Some(collector) = running.collector.take() {
        collector.stop(drain).await;
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

fn reload(current: &mut Config, path: Option<&std::path::Path>, running: &Running, roles: &[Role]) {
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
    let mut warnings = log_warnings(&new, roles);
    for clash in new.clashes_among(roles) {
        tracing::warn!("{clash} (listeners change only on restart, which will fail)");
        warnings += 1;
    }
    if let Some(exp) = &running.exporter {
        warn_listener_change("exporter", &current.exporter.listen, &new.exporter.listen);
        exp.reload(new.exporter.clone());
    }
    if let Some(replica) = &running.replica {
        warn_listener_change("replica", &current.replica.listen, &new.replica.listen);
        replica.reload(&new.replica);
    }
    if let Some(federation) = &running.federation {
        warn_listener_change("federation", &current.federation.listen, &new.federation.listen);
        federation.reload(&new.federation);
    }
    if running.collector.is_some() {
        warn_listener_change("collector", &current.collector.listen, &new.collector.listen);
        tracing::warn!(role = "collector", "collector settings take effect only after a restart");
    }
    if let Some(b) = &running.balancer {
        warn_listener_change("balancer", &current.balancer.listen, &new.balancer.listen);
        b.reload(new.balancer.clone());
    }
    crate::self_metrics::config_loaded(warnings);
    *current = new;
    tracing::info!("configuration reloaded");
}

fn warn_listener_change(role: &str, old: &ListenerConfig, new: &ListenerConfig) {
    if old != new {
        tracing::warn!(role, "listener settings changed; they take effect only after a restart");
    }
}

//! The one shape every role's lifecycle takes, so `app` starts, reloads and stops them alike:
//! `start(&RoleConfig, &Ctx) -> Started`, then `reload(&RoleConfig)` on SIGHUP and `stop()`
//! once the listeners have drained. A role opens its store, binds every socket (so a taken
//! port fails the start before anything serves) and spawns its background work in `start`.

use crate::config::GlobalConfig;
use crate::http::BoundListener;
use crate::store::Store;
use axum::Router;
use axum::routing::get;
use std::time::Duration;
use tokio::sync::watch;

/// What every role's start gets besides its own section.
#[derive(Clone)]
pub struct Ctx {
    pub global: GlobalConfig,
    /// Turns true when the process starts to stop; background tasks end on it.
    pub shutdown: watch::Receiver<bool>,
    /// How long listeners drain and stopping roles wait for their tasks.
    pub drain: Duration,
}

/// A started role: the role to reload and stop, and the HTTP listeners `app` serves for it.
pub struct Started<R> {
    pub role: R,
    pub listeners: Vec<(BoundListener, Router)>,
}

/// `/-/healthy` and `/-/ready`, as every role answers them.
pub fn health_routes() -> Router {
    Router::new()
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(|| async { "Ready.\n" }))
}

/// The health routes of a role with a store: not ready (503, the reason in the body) while
/// the store refuses writes, so a balancer or an orchestrator sees a full disk.
pub fn store_health_routes(store: Store) -> Router {
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

//! What both HTTP paths share on a request's way to a server: backend choice, retry
//! targets (`redispatch`), and the accounting of requests that reached a server or failed
//! first.

use super::acl::{MatchRequest, RequestView};
use super::counters::{self, Counters};
use super::error::{BalancerError, Fault};
use super::{Backend, FrontendRuntime, Generation, ServerState};
use hyper::StatusCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// Idempotent methods (RFC 9110 9.2.2): a server that failed before answering one may get
/// it again, or another server may.
pub(super) fn idempotent(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
}

/// Logs a request that failed before any server answered, counts it as HAProxy does, and
/// says which status to answer with.
pub(super) fn count_failure(
    fe: &FrontendRuntime,
    backend: Option<&Backend>,
    peer: SocketAddr,
    e: &BalancerError,
) -> StatusCode {
    match e.fault() {
        Fault::Client => {
            counters::inc(&fe.counters.ereq);
            tracing::debug!(frontend = %fe.config.name, %peer, error = %e, "client error");
        }
        Fault::Upstream => tracing::debug!(frontend = %fe.config.name, error = %e, "request failed upstream"),
        Fault::Internal => tracing::error!(frontend = %fe.config.name, error = %e, "request failed"),
    }
    let status = e.status();
    if let Some(b) = backend {
        b.shared.counters.response(status.as_u16());
        counters::add(&fe.counters.bout, 160);
    }
    status
}

/// HAProxy's content switching: the first `use_backend` rule whose condition holds, else
/// `default_backend`.
pub(super) fn choose_backend<'g>(
    generation: &'g Generation,
    fe: &FrontendRuntime,
    view: &RequestView,
) -> Result<&'g Arc<Backend>, BalancerError> {
    let cfg = &fe.config;
    let name = cfg
        .use_backend
        .iter()
        .find(|r| r.condition.matches(view))
        .map(|r| r.backend.as_str())
        .or(cfg.default_backend.as_deref())
        .ok_or_else(|| BalancerError::NoRule { frontend: cfg.name.clone() })?;
    generation.backend(name).ok_or_else(|| BalancerError::MissingBackend {
        frontend: cfg.name.clone(),
        backend: name.to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Retries

/// Counts a retry and says where it goes: another server when `redispatch` allows and one
/// exists, else the same server again (None).
pub(super) fn retry_target(backend: &Backend, failed: usize) -> Option<usize> {
    let server = backend.servers.get(failed);
    if let Some(s) = server {
        counters::inc(&s.state.counters.wretr);
    }
    counters::inc(&backend.shared.counters.wretr);
    if backend.config.redispatch && backend.servers.len() > 1 {
        if let Some(s) = server {
            counters::inc(&s.state.counters.wredis);
        }
        counters::inc(&backend.shared.counters.wredis);
        Some(failed)
    } else {
        None
    }
}

/// Pooled connections found closed in a row before the server counts as failing.
pub(super) const MAX_STALE: u32 = 16;

/// A pooled connection that turned out closed costs no attempt (nothing reached the server),
/// but a server that closes every one of them is failing.
pub(super) fn count_stale(stale: &mut u32, backend: &str, server: &str) -> Result<(), BalancerError> {
    *stale += 1;
    if *stale > MAX_STALE {
        return Err(BalancerError::ServerFailed {
            backend: backend.to_string(),
            server: server.to_string(),
            message: "no usable connection".into(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Accounting

/// What one request that reached a server did: its bytes and times.
pub(super) struct Outcome {
    pub started: Instant,
    pub qtime: Duration,
    pub ctime: Duration,
    pub rtime: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Counts body bytes in `field` (`bin` or `bout`) of the frontend, backend and server the
/// moment they pass, as HAProxy does, so a long upload or download shows (and its rate)
/// while it runs rather than at its end.
pub(super) fn count_bytes(
    fe: &Counters,
    backend: &Backend,
    server: &ServerState,
    field: fn(&Counters) -> &AtomicU64,
    n: u64,
) {
    for c in [fe, &backend.shared.counters, &server.counters] {
        counters::add(field(c), n);
    }
}

/// Counts a finished request in its frontend, backend and server.
pub(super) fn record(fe: &Counters, backend: &Backend, server: &ServerState, o: &Outcome) {
    let total = o.started.elapsed();
    for c in [fe, &backend.shared.counters, &server.counters] {
        counters::add(&c.bin, o.bytes_in);
        counters::add(&c.bout, o.bytes_out);
    }
    for c in [&backend.shared.counters, &server.counters] {
        c.record_times(o.qtime, o.ctime, o.rtime, total);
    }
    backend.shared.histogram.observe(total);
}

//! One request's way to a server, the same for both HTTP paths: server choice, connect,
//! send, retries and redispatch (`retries`, `redispatch`, `retry_on`), and the accounting of
//! requests that reached a server or failed first. The paths differ only in how they talk to
//! a server (`Transport`): hyper's client for `proxy`, a raw socket for `h1`.
//!
//! Replay rule: a request goes again (to another server when `redispatch` allows) when
//! (a) it never reached the failing server (connect refused or timed out, or the connection
//! closed before any of the request was written: HAProxy's `conn-failure`), whatever its
//! method; or (b) it is replayable (idempotent by RFC 9110 with an empty or buffered body)
//! and the server closed or reset before any response byte (`empty-response`), sent
//! something that is not a response head (`junk-response`), did not answer within
//! `timeout_server` (`response-timeout`) or answered with a `retry_on` status, each as far
//! as `retry_on` allows. Every replay counts against `retries`.
//!
//! Idle connections carry only replayable requests (HAProxy's `http-reuse safe`): one that
//! closes before any response byte was most likely closed by the server while idle, and its
//! request goes again on another connection without counting a retry, up to `MAX_STALE`.

use super::acl::{MatchRequest, RequestView};
use super::counters::{self, Counters};
use super::error::{BalancerError, Fault};
use super::{Backend, FrontendRuntime, Generation, Server, ServerState, SessionGuard};
use hyper::StatusCode;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
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
// Connect and retry

/// How one HTTP path talks to a server.
pub(super) trait Transport {
    /// A connection to one server.
    type Conn;
    /// A response head, its body not read yet.
    type Answer;

    /// An idle connection to `server` the request may reuse.
    fn checkout(&self, server: &Server) -> Option<Self::Conn>;

    /// Whether a connection from the pool can carry the request; false: it turned out closed.
    fn revive(&mut self, conn: &mut Self::Conn, timeout: Duration) -> impl Future<Output = bool> + Send;

    fn connect(
        address: SocketAddr,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Conn, String>> + Send;

    /// Writes the request and waits (`timeout_server`) for the final response head.
    fn send(
        &mut self,
        conn: &mut Self::Conn,
        server: &Server,
        timeout: Duration,
    ) -> impl Future<Output = Result<Self::Answer, SendFailed>> + Send;

    fn status(answer: &Self::Answer) -> u16;
}

/// Why a request sent on a connection got no answer. The first four are HAProxy's
/// `retry-on` conditions (`conn-failure` for a connection that never took the request).
pub(super) enum SendFailed {
    /// The connection closed before any of the request was written.
    Unsent(String),
    /// Closed or reset after the request (or part of it) was written, before any response byte.
    Empty(String),
    /// Something that is not a complete response head came (a head cut short included).
    Junk(String),
    /// `timeout_server` passed with no activity and no response head.
    Timeout,
    /// The request cannot be sent again: its streamed body went to a server that failed.
    Unreplayable(String),
    /// The client went away while interim (1xx) answers were relayed to it.
    ClientGone,
}

/// A request a server answered.
pub(super) struct Reached<'a, C, A> {
    pub server: &'a Server,
    /// The server slot, held until the response ends.
    pub guard: SessionGuard,
    /// The connection the answer came on; its body is still to be read.
    pub conn: C,
    pub answer: A,
    pub qtime: Duration,
    pub ctime: Duration,
    pub rtime: Duration,
}

pub(super) enum Dispatched<'a, C, A> {
    Answered(Reached<'a, C, A>),
    /// Counted as a client abort; nothing more is owed to the client.
    ClientGone,
}

/// One request to `backend`: what it may do again, and when it began.
pub(super) struct Request<'a> {
    pub backend: &'a Backend,
    pub client: IpAddr,
    /// Idempotent, with an empty or buffered body.
    pub replayable: bool,
    pub started: Instant,
}

/// Picks a server, connects (or reuses an idle connection) and sends, again and elsewhere
/// as the replay rule allows, until a server answers. Returns an error only before any
/// answer, while the client can still get an error page.
pub(super) async fn dispatch<'a, T: Transport>(
    transport: &mut T,
    req: Request<'a>,
) -> Result<Dispatched<'a, T::Conn, T::Answer>, BalancerError> {
    let backend = req.backend;
    let cfg = &backend.config;
    let mut attempts = 0u32;
    let mut stale = 0u32;
    let mut avoid: Option<usize> = None;
    loop {
        let (index, guard, qtime) = backend.acquire(Some(req.client), avoid).await?;
        let Some(server) = backend.servers.get(index) else {
            return Err(BalancerError::Internal("selected server vanished".into()));
        };
        let connect_started = Instant::now();
        let pooled = if !cfg.httpclose && req.replayable { transport.checkout(server) } else { None };
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(mut conn) => {
                if !transport.revive(&mut conn, cfg.timeout_connect).await {
                    drop(guard);
                    count_stale(&mut stale, &cfg.name, &server.config.name)?;
                    continue;
                }
                conn
            }
            None => match T::connect(server.config.address, cfg.timeout_connect).await {
                Ok(conn) => conn,
                Err(message) => {
                    avoid = connect_failed(backend, server, index, guard, &mut attempts, message).await?;
                    continue;
                }
            },
        };
        let ctime = connect_started.elapsed();
        let sent_at = Instant::now();
        let failed = match transport.send(&mut conn, server, cfg.timeout_server).await {
            Ok(answer) => {
                let status = T::status(&answer);
                backend.observe(index, false, Some(status));
                if req.replayable && attempts < cfg.retries && cfg.retry_on.status(status) {
                    for c in [&server.state.counters, &backend.shared.counters] {
                        c.response(status);
                    }
                    // The answer is dropped unread, and its connection with it.
                    drop((answer, conn, guard));
                    attempts += 1;
                    avoid = retry_target(backend, index);
                    tracing::debug!(backend = %cfg.name, server = %server.config.name, status, "replaying an idempotent request (retry_on status)");
                    continue;
                }
                let rtime = sent_at.elapsed();
                for c in [&server.state.counters, &backend.shared.counters] {
                    c.session_at(req.started);
                    c.response(status);
                }
                let reached = Reached { server, guard, conn, answer, qtime, ctime, rtime };
                return Ok(Dispatched::Answered(reached));
            }
            Err(failed) => failed,
        };
        let (allowed, message) = match failed {
            SendFailed::ClientGone => {
                counters::inc(&backend.shared.counters.cli_abrt);
                counters::inc(&server.state.counters.cli_abrt);
                return Ok(Dispatched::ClientGone);
            }
            SendFailed::Unsent(_) | SendFailed::Empty(_) if reused => {
                drop(guard);
                count_stale(&mut stale, &cfg.name, &server.config.name)?;
                continue;
            }
            SendFailed::Unsent(message) => {
                avoid = connect_failed(backend, server, index, guard, &mut attempts, message).await?;
                continue;
            }
            SendFailed::Unreplayable(message) => {
                return Err(BalancerError::ServerFailed {
                    backend: cfg.name.clone(),
                    server: server.config.name.clone(),
                    message,
                });
            }
            SendFailed::Timeout => {
                counters::inc(&server.state.counters.eresp);
                counters::inc(&backend.shared.counters.eresp);
                backend.observe(index, false, Some(504));
                drop(guard);
                if req.replayable && cfg.retry_on.response_timeout && attempts < cfg.retries {
                    attempts += 1;
                    avoid = retry_target(backend, index);
                    tracing::debug!(backend = %cfg.name, server = %server.config.name, "replaying after a server timeout (retry_on response-timeout)");
                    continue;
                }
                return Err(BalancerError::ServerTimeout {
                    backend: cfg.name.clone(),
                    server: server.config.name.clone(),
                });
            }
            SendFailed::Empty(message) => (cfg.retry_on.empty_response, message),
            SendFailed::Junk(message) => (cfg.retry_on.junk_response, message),
        };
        drop(guard);
        counters::inc(&server.state.counters.eresp);
        counters::inc(&backend.shared.counters.eresp);
        backend.observe(index, true, None);
        if req.replayable && allowed && attempts < cfg.retries {
            attempts += 1;
            avoid = retry_target(backend, index);
            tracing::debug!(backend = %cfg.name, server = %server.config.name, error = %message, "replaying an idempotent request");
            continue;
        }
        return Err(BalancerError::ServerFailed {
            backend: cfg.name.clone(),
            server: server.config.name.clone(),
            message,
        });
    }
}

/// HAProxy's `conn-failure`: counts it, and says where the request goes next (see
/// `retry_target`), or fails it when `retries` or `retry_on` say so.
async fn connect_failed(
    backend: &Backend,
    server: &Server,
    index: usize,
    guard: SessionGuard,
    attempts: &mut u32,
    message: String,
) -> Result<Option<usize>, BalancerError> {
    let cfg = &backend.config;
    backend.connect_failed(index);
    drop(guard);
    if *attempts >= cfg.retries || !cfg.retry_on.conn_failure {
        return Err(BalancerError::Connect {
            backend: cfg.name.clone(),
            server: server.config.name.clone(),
            message,
        });
    }
    *attempts += 1;
    let avoid = retry_target(backend, index);
    if avoid.is_none() {
        // Same server again: give a restarting process a moment.
        tokio::time::sleep(Duration::from_millis(100).min(cfg.timeout_connect)).await;
    }
    Ok(avoid)
}

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
const MAX_STALE: u32 = 16;

/// A pooled connection that turned out closed costs no attempt (nothing reached the server),
/// but a server that closes every one of them is failing.
fn count_stale(stale: &mut u32, backend: &str, server: &str) -> Result<(), BalancerError> {
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

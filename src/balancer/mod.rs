//! The balancer role: HAProxy and haproxy_exporter in obsd.
//!
//! Frontends accept clients and hand each request (HTTP mode: `conn`, then the HTTP/1.1 fast
//! path `h1` or hyper in `proxy`) or connection (TCP mode, `tcp`) to a backend; the backend
//! picks a server (`select`) among those its health checks (`health`) keep UP, queues when
//! all are at maxconn, retries and redispatches on failures that are safe to replay
//! (`exchange`, for both HTTP paths). Counters (`counters`) feed the stats page, its CSV and
//! JSON, and `/metrics` with haproxy_exporter's names (`stats`). `import` turns a haproxy.cfg
//! into obsd TOML.
//!
//! Reload builds a new `Generation` (config + backends) and swaps it in; requests already
//! running keep the generation they started with. Per-server state (health, admin state,
//! counters, idle connections) lives in a registry keyed by backend and server name, so a
//! server that stays across a reload keeps it. Listeners whose bind does not change are
//! kept open, so a reload refuses no connection.

mod acl;
pub(crate) mod body;
mod conn;
pub mod counters;
mod error;
mod exchange;
mod h1;
pub(crate) mod headers;
pub mod health;
pub mod import;
mod io;
mod pool;
mod proxy;
pub mod select;
mod stats;
mod tcp;
mod threads;

pub use error::{BalancerError, Fault};
pub use stats::router;

use crate::config::{BackendConfig, BalancerConfig, FrontendConfig, ProxyMode, ServerConfig, TlsConfig};
use crate::lifecycle::{Ctx, Started};
use counters::{Counters, Histogram};
use health::{Admin, Health, Transition};
use pool::Pool;
use select::{Candidate, Pick, Selector};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Per-server state that survives reloads.
pub(crate) struct ServerState {
    pub address: SocketAddr,
    pub counters: Counters,
    pub health: Mutex<Health>,
    pool: Pool<pool::Upstream<body::UpBody>>,
    /// Idle sockets of the HTTP/1.1 fast path (`h1`).
    pub raw_pool: Pool<tokio::net::TcpStream>,
    /// HAProxy's `sid`.
    pub id: u64,
}

impl ServerState {
    pub fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        match self.health.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Per-backend state that survives reloads.
pub(crate) struct BackendShared {
    pub counters: Counters,
    pub histogram: Histogram,
    /// Woken whenever a server slot frees, for requests queued at maxconn.
    pub queue: Notify,
    pub id: u64,
    pub created: Instant,
}

pub(crate) struct Server {
    pub config: ServerConfig,
    pub state: Arc<ServerState>,
}

pub(crate) struct Backend {
    pub config: BackendConfig,
    pub servers: Vec<Server>,
    pub shared: Arc<BackendShared>,
    selector: Selector,
}

pub(crate) struct FrontendRuntime {
    pub config: FrontendConfig,
    pub counters: Arc<Counters>,
    pub id: u64,
}

/// One loaded configuration: what a request started under keeps using until it ends.
pub(crate) struct Generation {
    pub config: Arc<BalancerConfig>,
    pub frontends: Vec<FrontendRuntime>,
    pub backends: Vec<Arc<Backend>>,
    /// Dropping (or sending on) it ends this generation's health-check tasks.
    stop_checks: watch::Sender<bool>,
    /// `stats_auth` users, with their verified-password cache.
    pub stats_auth: crate::http::BasicAuth,
}

impl Generation {
    pub fn frontend(&self, name: &str) -> Option<&FrontendRuntime> {
        self.frontends.iter().find(|f| f.config.name == name)
    }

    pub fn backend(&self, name: &str) -> Option<&Arc<Backend>> {
        self.backends.iter().find(|b| b.config.name == name)
    }
}

/// Holds a server slot (and so counts in `scur`, leastconn and maxconn) until dropped.
pub(crate) struct SessionGuard {
    pub server: Arc<ServerState>,
    pub backend: Arc<BackendShared>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.server.counters.leave();
        self.backend.counters.leave();
        if self.backend.counters.qcur.load(Ordering::SeqCst) > 0 {
            self.backend.queue.notify_waiters();
        }
    }
}

impl Backend {
    fn effective_weight(server: &Server, health: &Health) -> u32 {
        let weight = server.config.weight;
        let slowstart = server.config.slowstart;
        match health.recovered_at {
            Some(at) if !slowstart.is_zero() && at.elapsed() < slowstart => {
                let ramp = at.elapsed().as_secs_f64() / slowstart.as_secs_f64();
                ((f64::from(weight) * ramp).ceil() as u32).clamp(1, weight.max(1))
            }
            _ => weight,
        }
    }

    /// The servers new traffic may go to: usable active servers, or failing those the first
    /// usable backup (HAProxy's default without `option allbackups`). A server a connection
    /// just failed to is used only when no other is left (as nginx's `max_fails=1
    /// fail_timeout`): until checks mark it DOWN every request sent to it would pay a failed
    /// connect and a redispatch.
    fn candidates(&self, avoid: Option<usize>) -> Vec<Candidate> {
        let mut active = Vec::with_capacity(self.servers.len());
        let mut active_failing = Vec::new();
        let mut backup: Option<Candidate> = None;
        let mut backup_failing: Option<Candidate> = None;
        for (index, server) in self.servers.iter().enumerate() {
            let health = server.state.health();
            if !health.usable() {
                continue;
            }
            let weight = Self::effective_weight(server, &health);
            let failing = health.connect_failed_recently();
            drop(health);
            if weight == 0 {
                continue;
            }
            let active_now = counters::load(&server.state.counters.scur);
            let full = server.config.maxconn > 0 && active_now >= u64::from(server.config.maxconn);
            let c = Candidate { index, weight, active: active_now, full };
            match (server.config.backup, failing) {
                (false, false) => active.push(c),
                (false, true) => active_failing.push(c),
                (true, false) => {
                    backup.get_or_insert(c);
                }
                (true, true) => {
                    backup_failing.get_or_insert(c);
                }
            }
        }
        let mut list = if !active.is_empty() {
            active
        } else if let Some(b) = backup {
            vec![b]
        } else if !active_failing.is_empty() {
            active_failing
        } else {
            backup_failing.into_iter().collect()
        };
        // Redispatch: prefer any other server; fall back to the same one when it is alone.
        if let Some(a) = avoid
            && list.len() > 1
        {
            list.retain(|c| c.index != a);
        }
        list
    }

    /// Takes a slot on a server `maxconn` allows, queueing up to `timeout_queue`.
    pub async fn acquire(
        &self,
        client: Option<IpAddr>,
        avoid: Option<usize>,
    ) -> Result<(usize, SessionGuard, Duration), BalancerError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started) + self.config.timeout_queue;
        let mut queued = false;
        let result = loop {
            // Registering for a wake-up costs a lock, so only requests about to queue do it,
            // after counting themselves in `qcur` (releases notify only when it is non-zero).
            let notified = self.shared.queue.notified();
            tokio::pin!(notified);
            if queued {
                notified.as_mut().enable();
            }
            match self.selector.pick(&self.candidates(avoid), client) {
                Pick::Server(index) => {
                    let Some(server) = self.servers.get(index) else {
                        break Err(BalancerError::Internal("selector returned an unknown server".into()));
                    };
                    let max = u64::from(server.config.maxconn);
                    let c = &server.state.counters;
                    // A slot is taken only if still free: two requests may have picked it.
                    let taken = c.scur.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
                        (max == 0 || v < max).then_some(v + 1)
                    });
                    match taken {
                        Ok(prev) => {
                            counters::raise(&c.smax, prev + 1);
                            counters::inc(&c.lbtot);
                            let b = &self.shared.counters;
                            let now = b.scur.fetch_add(1, Ordering::Relaxed) + 1;
                            counters::raise(&b.smax, now);
                            counters::inc(&b.lbtot);
                            let guard =
                                SessionGuard { server: server.state.clone(), backend: self.shared.clone() };
                            break Ok((index, guard, started.elapsed()));
                        }
                        Err(_) => continue,
                    }
                }
                Pick::None => break Err(BalancerError::NoServer { backend: self.config.name.clone() }),
                Pick::AllFull => {
                    if !queued {
                        queued = true;
                        self.shared.counters.queue_enter();
                        // Pick again with the wake-up registered, so a slot freed meanwhile
                        // is not missed.
                        continue;
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        break Err(BalancerError::QueueTimeout { backend: self.config.name.clone() });
                    }
                }
            }
        };
        if queued {
            self.shared.counters.queue_leave();
        }
        result
    }

    /// Passive health (`observe`): one request's outcome on a server.
    /// A connection to server `index` failed (refused, reset or timed out): counted as
    /// `econ`, observed, and unless `hold_failed_servers = false` the server is passed over
    /// for one `inter` (see `candidates`).
    pub fn connect_failed(&self, index: usize) {
        let Some(server) = self.servers.get(index) else { return };
        counters::inc(&server.state.counters.econ);
        counters::inc(&self.shared.counters.econ);
        if self.config.hold_failed_servers {
            server.state.health().connect_failed_until = Some(Instant::now() + server.config.inter);
        }
        self.observe(index, true, None);
    }

    pub fn observe(&self, index: usize, layer4_error: bool, status: Option<u16>) {
        let Some(server) = self.servers.get(index) else { return };
        let cfg = &server.config;
        let error = match cfg.observe {
            crate::config::Observe::Off => return,
            crate::config::Observe::Layer4 => layer4_error,
            // HAProxy's layer7 counts 5xx except 501 and 505 as errors.
            crate::config::Observe::Layer7 => {
                layer4_error || status.is_some_and(|s| (500..600).contains(&s) && s != 501 && s != 505)
            }
        };
        let transition = server.state.health().on_observed(error, cfg.error_limit, cfg.on_error);
        if let Some(t) = transition {
            log_transition(&self.config.name, server, t, "observed errors (on-error)");
        }
    }
}

fn log_transition(backend: &str, server: &Server, t: Transition, reason: &str) {
    match t {
        Transition::WentDown => {
            server.state.pool.clear();
            server.state.raw_pool.clear();
            tracing::warn!(backend, server = %server.config.name, reason, "server is DOWN");
        }
        Transition::WentUp => tracing::info!(backend, server = %server.config.name, reason, "server is UP"),
    }
}

/// Counts connections in every frontend so shutdown can wait for them to finish.
#[derive(Default)]
struct ConnTracker {
    open: AtomicUsize,
    idle: Notify,
}

pub(crate) struct ConnGuard(Arc<Inner>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.0.conns.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.conns.idle.notify_waiters();
        }
    }
}

#[derive(Default)]
struct Registry {
    servers: HashMap<(String, String), Arc<ServerState>>,
    backends: HashMap<String, Arc<BackendShared>>,
    frontends: HashMap<String, (Arc<Counters>, u64)>,
    next_id: u64,
}

struct FrontendHandle {
    bind: SocketAddr,
    mode: ProxyMode,
    tls_config: Option<TlsConfig>,
    alpn: Vec<String>,
    tls: Arc<RwLock<Option<tokio_rustls::TlsAcceptor>>>,
    stop: watch::Sender<bool>,
    local_addr: SocketAddr,
}

pub(crate) struct Inner {
    current: RwLock<Arc<Generation>>,
    registry: Mutex<Registry>,
    frontends: Mutex<HashMap<String, FrontendHandle>>,
    conns: ConnTracker,
    shutdown: watch::Receiver<bool>,
    /// The `stats` frontend/backend rows haproxy_exporter sees for `listen stats`.
    pub stats_counters: Counters,
    pub scrapes: AtomicU64,
    pub started: Instant,
}

impl Inner {
    pub fn current(&self) -> Arc<Generation> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn track_conn(self: &Arc<Self>) -> ConnGuard {
        self.conns.open.fetch_add(1, Ordering::AcqRel);
        ConnGuard(self.clone())
    }
}

/// The running balancer role.
#[derive(Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("frontend {name}: cannot bind {address}: {source}")]
    Bind { name: String, address: SocketAddr, source: std::io::Error },
    #[error("frontend {name}: TLS setup failed: {message}")]
    Tls { name: String, message: String },
    #[error(transparent)]
    Stats(#[from] crate::http::HttpError),
}

/// Starts the balancer role: the stats listener binds first, then every frontend, so any taken
/// port fails the start before traffic flows.
pub async fn start(config: &BalancerConfig, ctx: &Ctx) -> Result<Started<Balancer>, StartError> {
    let bound = crate::http::bind("balancer", &config.listen).await?;
    let balancer = Balancer::start(config.clone(), ctx.shutdown.clone())?;
    let router = stats::router(balancer.clone());
    Ok(Started { role: balancer, listeners: vec![(bound, router)] })
}

/// A frontend's TLS acceptor offering its `alpn` protocols (HAProxy's `alpn h2,http/1.1`).
fn frontend_tls(tls: &TlsConfig, alpn: &[String]) -> Result<tokio_rustls::TlsAcceptor, String> {
    let protocols: Vec<&[u8]> = alpn.iter().map(|p| p.as_bytes()).collect();
    crate::http::tls_acceptor_alpn(tls, &protocols)
}

/// The connection threads start once per process (HAProxy too needs a restart for a new
/// `nbthread`), so a count that differs from the running one is said rather than ignored.
fn warn_if_nbthread_differs(configured: Option<usize>) {
    let running = threads::threads().count();
    if let Some(wanted) = configured.filter(|&n| n != running) {
        tracing::warn!(
            configured = wanted,
            running,
            "nbthread differs from the running connection threads; it takes effect at the next restart"
        );
    }
}

fn bind_std(name: &str, address: SocketAddr) -> Result<TcpListener, StartError> {
    let err = |source| StartError::Bind { name: name.to_string(), address, source };
    let std_listener = std::net::TcpListener::bind(address).map_err(err)?;
    std_listener.set_nonblocking(true).map_err(err)?;
    TcpListener::from_std(std_listener).map_err(err)
}

impl Balancer {
    /// Binds every frontend (all or nothing), starts health checks and accept loops.
    pub fn start(config: BalancerConfig, shutdown: watch::Receiver<bool>) -> Result<Balancer, StartError> {
        let threads = threads::start(config.nbthread);
        tracing::info!(threads = threads.count(), "balancer connection threads (nbthread)");
        warn_if_nbthread_differs(config.nbthread);
        let (stop_checks, _) = watch::channel(false);
        let placeholder = Generation {
            config: Arc::new(config.clone()),
            frontends: Vec::new(),
            backends: Vec::new(),
            stop_checks,
            stats_auth: crate::http::BasicAuth::new(config.stats_auth.clone()),
        };
        let inner = Arc::new(Inner {
            current: RwLock::new(Arc::new(placeholder)),
            registry: Mutex::new(Registry::default()),
            frontends: Mutex::new(HashMap::new()),
            conns: ConnTracker::default(),
            shutdown,
            stats_counters: Counters::default(),
            scrapes: AtomicU64::new(0),
            started: Instant::now(),
        });
        let balancer = Balancer { inner };
        // Bind first so a taken port fails the start before any traffic flows.
        let mut bound = Vec::new();
        for f in &config.frontends {
            let listener = bind_std(&f.name, f.bind)?;
            let tls = match &f.tls {
                Some(t) => Some(
                    frontend_tls(t, &f.alpn)
                        .map_err(|message| StartError::Tls { name: f.name.clone(), message })?,
                ),
                None => None,
            };
            bound.push((f.clone(), listener, tls));
        }
        balancer.install(config);
        for (f, listener, tls) in bound {
            balancer.spawn_frontend(&f, listener, tls);
        }
        Ok(balancer)
    }

    /// Builds a generation from `config`, reusing registry state, and swaps it in.
    fn install(&self, config: BalancerConfig) {
        let (stop_checks, stop_rx) = watch::channel(false);
        let mut registry = match self.inner.registry.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut backends = Vec::new();
        let mut kept_servers = HashMap::new();
        let mut kept_backends = HashMap::new();
        for b in &config.backends {
            let shared = match registry.backends.get(&b.name) {
                Some(s) => s.clone(),
                None => {
                    registry.next_id += 1;
                    Arc::new(BackendShared {
                        counters: Counters::default(),
                        histogram: Histogram::default(),
                        queue: Notify::new(),
                        id: registry.next_id,
                        created: Instant::now(),
                    })
                }
            };
            kept_backends.insert(b.name.clone(), shared.clone());
            let mut servers = Vec::new();
            for s in &b.servers {
                let key = (b.name.clone(), s.name.clone());
                let state = match registry.servers.get(&key) {
                    Some(st) if st.address == s.address => {
                        st.health().reconfigure(s.rise, s.fall, s.check);
                        st.clone()
                    }
                    _ => {
                        registry.next_id += 1;
                        Arc::new(ServerState {
                            address: s.address,
                            counters: Counters::default(),
                            health: Mutex::new(Health::new(s.rise, s.fall, s.check)),
                            pool: Pool::default(),
                            raw_pool: Pool::default(),
                            id: registry.next_id,
                        })
                    }
                };
                kept_servers.insert(key, state.clone());
                servers.push(Server { config: s.clone(), state });
            }
            let selector = Selector::new(b.balance, servers.len());
            backends.push(Arc::new(Backend { config: b.clone(), servers, shared, selector }));
        }
        let mut frontends = Vec::new();
        let mut kept_frontends = HashMap::new();
        for f in &config.frontends {
            let (counters, id) = match registry.frontends.get(&f.name) {
                Some(c) => c.clone(),
                None => {
                    registry.next_id += 1;
                    (Arc::new(Counters::default()), registry.next_id)
                }
            };
            kept_frontends.insert(f.name.clone(), (counters.clone(), id));
            frontends.push(FrontendRuntime { config: f.clone(), counters, id });
        }
        registry.servers = kept_servers;
        registry.backends = kept_backends;
        registry.frontends = kept_frontends;
        drop(registry);
        let stats_auth = crate::http::BasicAuth::new(config.stats_auth.clone());
        let generation =
            Arc::new(Generation { config: Arc::new(config), frontends, backends, stop_checks, stats_auth });
        for backend in &generation.backends {
            for index in 0..backend.servers.len() {
                if backend.servers[index].config.check {
                    tokio::spawn(check_loop(
                        backend.clone(),
                        index,
                        stop_rx.clone(),
                        self.inner.shutdown.clone(),
                    ));
                }
            }
        }
        let old = {
            let mut current = match self.inner.current.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            std::mem::replace(&mut *current, generation)
        };
        let _ = old.stop_checks.send(true);
    }

    fn spawn_frontend(
        &self,
        f: &FrontendConfig,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let local_addr = listener.local_addr().unwrap_or(f.bind);
        let listener_name = format!("frontend.{}", f.name);
        // The same line http::bind logs, so operators and tests learn ports the same way.
        tracing::info!(listener = %listener_name, address = %local_addr, tls = tls.is_some(), "listening");
        let (stop, stop_rx) = watch::channel(false);
        let tls = Arc::new(RwLock::new(tls));
        let handle = FrontendHandle {
            bind: f.bind,
            mode: f.mode,
            tls_config: f.tls.clone(),
            alpn: f.alpn.clone(),
            tls: tls.clone(),
            stop,
            local_addr,
        };
        if let Ok(mut map) = self.inner.frontends.lock() {
            map.insert(f.name.clone(), handle);
        }
        tokio::spawn(accept_loop(self.inner.clone(), f.name.clone(), f.mode, listener, stop_rx, tls));
    }

    /// Applies a new configuration (SIGHUP). Unchanged listeners stay open; servers that stay
    /// keep their health; requests in flight finish on the configuration they started with.
    pub fn reload(&self, config: &BalancerConfig) {
        let config = config.clone();
        warn_if_nbthread_differs(config.nbthread);
        let mut to_bind = Vec::new();
        {
            let mut map = match self.inner.frontends.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let wanted: HashMap<&str, &FrontendConfig> =
                config.frontends.iter().map(|f| (f.name.as_str(), f)).collect();
            map.retain(|name, handle| {
                let keep = wanted.get(name.as_str()).is_some_and(|f| f.bind == handle.bind && f.mode == handle.mode);
                if !keep {
                    tracing::info!(frontend = %name, address = %handle.local_addr, "frontend removed or rebound; closing its listener");
                    let _ = handle.stop.send(true);
                }
                keep
            });
            for f in &config.frontends {
                match map.get_mut(&f.name) {
                    Some(handle) => {
                        if handle.tls_config != f.tls || handle.alpn != f.alpn {
                            let acceptor = match &f.tls {
                                Some(t) => match frontend_tls(t, &f.alpn) {
                                    Ok(a) => Some(a),
                                    Err(message) => {
                                        tracing::error!(frontend = %f.name, %message, "TLS reload failed; keeping the old certificate");
                                        continue;
                                    }
                                },
                                None => None,
                            };
                            if let Ok(mut slot) = handle.tls.write() {
                                *slot = acceptor;
                            }
                            handle.tls_config = f.tls.clone();
                            handle.alpn = f.alpn.clone();
                        }
                    }
                    None => to_bind.push(f.clone()),
                }
            }
        }
        let mut bound = Vec::new();
        for f in to_bind {
            let tls = match &f.tls {
                Some(t) => match frontend_tls(t, &f.alpn) {
                    Ok(a) => Some(a),
                    Err(message) => {
                        tracing::error!(frontend = %f.name, %message, "TLS setup failed; frontend not started");
                        continue;
                    }
                },
                None => None,
            };
            match bind_std(&f.name, f.bind) {
                Ok(l) => bound.push((f, l, tls)),
                Err(e) => tracing::error!(error = %e, "reload could not bind a new frontend"),
            }
        }
        self.install(config);
        for (f, l, tls) in bound {
            self.spawn_frontend(&f, l, tls);
        }
    }

    /// Once shutdown is signalled: waits for open connections to finish (at most the drain).
    pub async fn stop(self, ctx: &Ctx) {
        self.run_until_shutdown(ctx.drain).await
    }

    /// Waits for shutdown, then for open connections to finish (at most `drain`).
    async fn run_until_shutdown(self, drain: Duration) {
        let mut shutdown = self.inner.shutdown.clone();
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        let wait_idle = async {
            loop {
                let idle = self.inner.conns.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.inner.conns.open.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(drain, wait_idle).await.is_err() {
            tracing::warn!(
                open = self.inner.conns.open.load(Ordering::Acquire),
                "balancer drain time over; closing remaining connections"
            );
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Admin action on a server (stats page); false if no such server.
    pub fn set_admin(&self, backend: &str, server: &str, admin: Admin) -> bool {
        let generation = self.inner.current();
        let Some(b) = generation.backend(backend) else { return false };
        let Some(s) = b.servers.iter().find(|s| s.config.name == server) else { return false };
        let mut h = s.state.health();
        if h.admin != admin {
            h.admin = admin;
            h.last_change = Instant::now();
            tracing::info!(backend, server, state = ?admin, "server admin state changed");
        }
        true
    }
}

async fn accept_loop(
    inner: Arc<Inner>,
    name: String,
    mode: ProxyMode,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    tls: Arc<RwLock<Option<tokio_rustls::TlsAcceptor>>>,
) {
    let mut shutdown = inner.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(frontend = %name, error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = inner.track_conn();
        let acceptor = tls.read().ok().and_then(|t| t.clone());
        let (inner, name, stop) = (inner.clone(), name.clone(), stop.clone());
        // The socket moves to a connection thread's reactor.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(frontend = %name, %peer, error = %err, "accepted socket unusable");
                continue;
            }
        };
        threads::threads().spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(err) => {
                    tracing::warn!(frontend = %name, %peer, error = %err, "accepted socket unusable");
                    return;
                }
            };
            match mode {
                ProxyMode::Http => {
                    conn::serve_connection(inner, name, stream, peer, acceptor, stop, guard).await
                }
                ProxyMode::Tcp => tcp::serve_connection(inner, name, stream, peer, stop, guard).await,
            }
        });
    }
    tracing::debug!(frontend = %name, "accept loop stopped");
}

/// One server's active checks: sleep the interval its state calls for, check, update.
async fn check_loop(
    backend: Arc<Backend>,
    index: usize,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(server) = backend.servers.get(index) else { return };
    let cfg = &server.config;
    // HAProxy spreads first checks over the interval so a restart does not burst.
    let mut wait = Duration::from_millis(fastrand::u64(0..=cfg.inter.as_millis().min(1000) as u64));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
            _ = shutdown.changed() => return,
        }
        let maint = server.state.health().admin == Admin::Maint;
        if !maint {
            let timeout = backend.config.timeout_check.unwrap_or(cfg.inter);
            let result = health::run_check(cfg.address, backend.config.httpchk.as_ref(), timeout).await;
            if *stop.borrow() {
                return;
            }
            let mut h = server.state.health();
            let passed = result.passed;
            let desc = result.desc.clone();
            h.last_check = Some(result);
            let transition = h.on_check(passed);
            drop(h);
            if let Some(t) = transition {
                log_transition(&backend.config.name, server, t, &desc);
            }
        }
        wait = server.state.health().next_interval(cfg.inter, cfg.fastinter, cfg.downinter);
    }
}

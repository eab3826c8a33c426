//! The hyper path: HTTP/2 clients, and the HTTP/1 requests the fast path (`h1`) hands
//! over. Bodies stream both ways frame by frame (a 50 MB `/federate` answer is never held
//! whole); only request bodies up to `REPLAY_BUFFER` with a known length are buffered, so
//! they can be replayed on another server. Servers, retries and replays:
//! `exchange::dispatch`, as for the fast path.

use super::acl::{Headers, RequestView};
use super::body::{BoxError, PendingRecord, ProxyBody, ReqBody, UpBody, UpstreamBody, prepare_body};
use super::counters::{self, Counters};
use super::error::{BalancerError, error_page};
use super::exchange::{
    self, Dispatched, Reached, SendFailed, Transport, choose_backend, count_failure, idempotent,
};
use super::headers::{ClientInfo, add_forwarded, head_size, join_cookies, strip_hop_by_hop};
use super::io::WokenOnly;
use super::pool::{self, Upstream};
use super::{Backend, FrontendRuntime, Inner, Server};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One accepted client connection, whatever protocol it speaks.
pub(super) struct ClientConn {
    pub inner: Arc<Inner>,
    pub name: Arc<str>,
    pub peer: SocketAddr,
    pub fe_counters: Arc<Counters>,
    pub stop: watch::Receiver<bool>,
}

impl ClientConn {
    /// Serves the connection with hyper: HTTP/2, and HTTP/1 requests the fast path (`h1`)
    /// leaves to it.
    pub(super) async fn serve<I>(self, io: I, tls: bool, h2: bool, cfg: &crate::config::FrontendConfig)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let ClientConn { inner, name, peer, fe_counters, mut stop } = self;
        let mut shutdown = inner.shutdown.clone();
        let handler_inner = inner.clone();
        let client = Arc::new(ClientInfo::new(peer, tls));
        // HTTP/2 multiplexes: the connection is idle only while no stream is open.
        let streams = h2.then(|| Arc::new(Streams::default()));
        let service_streams = streams.clone();
        let service = hyper::service::service_fn(move |req| {
            let inner = handler_inner.clone();
            let name = name.clone();
            let client = client.clone();
            let stream = service_streams.as_ref().map(|s| s.open());
            async move {
                let response = handle(inner, name, client, req).await;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _stream: stream }))
            }
        });
        let result = if h2 {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX))
                // HAProxy's `tune.h2.max-concurrent-streams` default.
                .max_concurrent_streams(100)
                // A client that stops answering pings is gone; HAProxy cuts it at `timeout client`.
                .keep_alive_interval(cfg.timeout_http_keep_alive.max(Duration::from_secs(1)))
                .keep_alive_timeout(cfg.timeout_client);
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            let streams = streams.unwrap_or_default();
            tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => { conn.as_mut().graceful_shutdown(); conn.await }
                _ = shutdown.changed() => { conn.as_mut().graceful_shutdown(); conn.await }
                // HAProxy's `timeout client` on an idle h2 connection: pings answered in
                // time do not keep it open, only streams do.
                _ = streams.idle_for(cfg.timeout_client) => {
                    tracing::debug!(%peer, "idle HTTP/2 connection reached timeout_client; closing");
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        } else {
            let mut builder = hyper::server::conn::http1::Builder::new();
            // hyper arms its header timer whenever it waits for a request head, idle
            // keep-alive included, so one timer bounds both the slowloris head and the
            // keep-alive wait.
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(
                    cfg.timeout_http_request.min(cfg.timeout_http_keep_alive.max(cfg.timeout_http_request)),
                )
                .max_header_size(cfg.max_header_bytes)
                .max_headers(cfg.max_header_count)
                .keep_alive(true);
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            // The connection first: it is what woke the task nearly every time. The task wakes
            // several times per request; the watches are polled only when they fired.
            let stopped = WokenOnly::new(stop.changed());
            let shutting_down = WokenOnly::new(shutdown.changed());
            tokio::select! {
                biased;
                r = conn.as_mut() => r,
                _ = stopped => { conn.as_mut().graceful_shutdown(); conn.await }
                _ = shutting_down => { conn.as_mut().graceful_shutdown(); conn.await }
            }
        };
        if let Err(e) = result {
            if e.is_parse() || e.is_parse_too_large() || e.is_timeout() {
                counters::inc(&fe_counters.ereq);
            }
            tracing::debug!(%peer, error = %e, "client connection ended with an error");
        }
    }
}

/// Open streams of one HTTP/2 connection.
#[derive(Default)]
struct Streams {
    open: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Streams {
    fn open(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        StreamGuard(self.clone())
    }

    /// Returns once no stream has been open for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.open.load(Ordering::Acquire) > 0 {
                changed.await;
            } else if tokio::time::timeout(timeout, changed).await.is_err() {
                return;
            }
        }
    }
}

/// Counts a stream open from its request until its response body is done or dropped.
struct StreamGuard(Arc<Streams>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// A response body that holds its stream open (HTTP/2) until it ends.
pub struct Tracked {
    body: ProxyBody,
    _stream: Option<StreamGuard>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn page(status: StatusCode) -> Response<ProxyBody> {
    error_page(status).map(|b| ProxyBody::Full(Some(b)))
}

// ---------------------------------------------------------------------------------------------
// Requests

async fn handle(
    inner: Arc<Inner>,
    name: Arc<str>,
    client: Arc<ClientInfo>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let peer = client.peer;
    let started = Instant::now();
    let generation = inner.current();
    let Some(fe) = generation.frontend(&name) else {
        return page(StatusCode::SERVICE_UNAVAILABLE);
    };
    counters::inc(&fe.counters.req_tot);
    fe.counters.req_rate.hit_at(started);
    let view = RequestView {
        method: req.method().as_str(),
        path: req.uri().path(),
        headers: Headers::Map(req.headers()),
        authority: req.uri().authority().map(|a| a.as_str()),
    };
    let (backend, result) = match choose_backend(&generation, fe, &view) {
        Ok(b) => (Some(b), forward(fe, b, &client, req, started).await),
        Err(e) => (None, Err(e)),
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => page(count_failure(fe, backend.map(|b| &**b), peer, &e)),
    };
    fe.counters.response(response.status().as_u16());
    response
}

async fn forward(
    fe: &FrontendRuntime,
    backend: &Arc<Backend>,
    client: &ClientInfo,
    req: Request<Incoming>,
    started: Instant,
) -> Result<Response<ProxyBody>, BalancerError> {
    let cfg = &backend.config;
    let (parts, body) = req.into_parts();
    let method = parts.method;
    if method == Method::CONNECT {
        return Err(BalancerError::BadRequest("CONNECT is not supported".into()));
    }
    // Servers get origin-form targets even when the client sent absolute-form.
    let uri: Uri = match parts.uri.path_and_query() {
        Some(pq) => Uri::from(pq.clone()),
        None => Uri::from_static("/"),
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let h2_client = parts.version == Version::HTTP_2;
    if h2_client {
        join_cookies(&mut headers);
    }
    if !headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(header::HOST, v);
    }
    if cfg.forwardfor {
        add_forwarded(&mut headers, client);
    }
    if cfg.httpclose {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let target_len = uri.path_and_query().map_or(1, |pq| pq.as_str().len());
    let head_in = (method.as_str().len() + target_len + 11) as u64 + head_size(&headers);
    let body = prepare_body(body, fe.config.timeout_client).await?;
    let bytes_in = head_in + if let ReqBody::Bytes(b) = &body { b.len() as u64 } else { 0 };
    let replayable = idempotent(method.as_str()) && matches!(body, ReqBody::Bytes(_));
    let mut transport = HyperClient { fe, backend, method, uri, headers, body };
    let request = exchange::Request { backend, client: client.peer.ip(), replayable, started };
    let reached = match exchange::dispatch(&mut transport, request).await? {
        Dispatched::Answered(reached) => reached,
        // hyper's client keeps interim answers to itself: nothing went to the client yet.
        Dispatched::ClientGone => {
            return Err(BalancerError::Internal("client gone before any answer".into()));
        }
    };
    let Reached { server, guard, conn: upstream, answer: response, qtime, ctime, rtime } = reached;
    let (mut rparts, incoming) = response.into_parts();
    let server_keeps_alive = rparts.version == Version::HTTP_11
        && !rparts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.to_ascii_lowercase().contains("close")));
    strip_hop_by_hop(&mut rparts.headers);
    // HTTP/2 has no Connection header; its streams end without closing anything.
    if cfg.httpclose && !h2_client {
        rparts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let head_out = head_size(&rparts.headers) + 17;
    let record = PendingRecord {
        fe: fe.counters.clone(),
        backend: backend.clone(),
        server: server.state.clone(),
        _guard: guard,
        upstream: Some(upstream),
        reusable: server_keeps_alive && !cfg.httpclose,
        started,
        qtime,
        ctime,
        rtime,
        bytes_in,
        head_out,
    };
    let body = UpstreamBody::new(incoming, cfg.timeout_server, record);
    Ok(Response::from_parts(rparts, ProxyBody::Upstream(Box::new(body))))
}

/// hyper's HTTP/1.1 client, sending the request anew on each attempt.
struct HyperClient<'a> {
    fe: &'a FrontendRuntime,
    backend: &'a Arc<Backend>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: ReqBody,
}

impl Transport for HyperClient<'_> {
    type Conn = Upstream<UpBody>;
    type Answer = Response<Incoming>;

    fn checkout(&self, server: &Server) -> Option<Self::Conn> {
        server.state.pool.checkout(server.config.pool_purge_delay)
    }

    /// A connection checked in as its response ended may not have read the end yet; driving
    /// it until ready beats opening a new one. Not ready means it closed.
    async fn revive(&mut self, conn: &mut Self::Conn, timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, conn.ready()).await, Ok(true))
    }

    async fn connect(address: SocketAddr, timeout: Duration) -> Result<Self::Conn, String> {
        pool::connect(address, timeout).await.map_err(|e| e.to_string())
    }

    async fn send(
        &mut self,
        conn: &mut Self::Conn,
        server: &Server,
        timeout: Duration,
    ) -> Result<Self::Answer, SendFailed> {
        let body = match &mut self.body {
            ReqBody::Bytes(b) => UpBody::Bytes(Some(b.clone())),
            ReqBody::Stream(s) => match s.take() {
                Some(mut s) => {
                    s.count_in(self.fe.counters.clone(), self.backend.clone(), server.state.clone());
                    UpBody::Stream(s)
                }
                None => {
                    let message = "request body already sent to a failed server; not replayable";
                    return Err(SendFailed::Unreplayable(message.into()));
                }
            },
        };
        let passed = match &body {
            UpBody::Stream(s) => Some(s.passed()),
            UpBody::Bytes(_) => None,
        };
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = self.headers.clone();
        let sent = {
            let mut sending = std::pin::pin!(conn.send(request));
            loop {
                let before = passed.as_ref().map(|p| p.load(Ordering::Relaxed));
                match tokio::time::timeout(timeout, sending.as_mut()).await {
                    Ok(sent) => break sent,
                    // HAProxy's `timeout server` counts inactivity: a streamed upload still
                    // moving is not a silent server.
                    Err(_) if passed.as_ref().map(|p| p.load(Ordering::Relaxed)) != before => continue,
                    Err(_) => return Err(SendFailed::Timeout),
                }
            }
        };
        match sent {
            Ok(response) => Ok(response),
            Err(mut e) => {
                let message = e.error().to_string();
                if let Some(unsent) = e.take_message() {
                    // Nothing reached the server: a streamed body goes with the next attempt.
                    if let UpBody::Stream(s) = unsent.into_body() {
                        self.body = ReqBody::Stream(Some(s));
                    }
                    return Err(SendFailed::Unsent(message));
                }
                // A response hyper cannot parse, or one cut short, is HAProxy's junk-response;
                // a close or reset before any byte is an empty-response.
                if e.error().is_parse() || conn.answered_any() {
                    Err(SendFailed::Junk(message))
                } else {
                    Err(SendFailed::Empty(message))
                }
            }
        }
    }

    fn status(answer: &Self::Answer) -> u16 {
        answer.status().as_u16()
    }
}

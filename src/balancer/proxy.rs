//! HTTP mode: an HTTP/1.1 reverse proxy. Bodies stream both ways frame by frame (a 50 MB
//! `/federate` answer is never held whole); only request bodies up to `REPLAY_BUFFER` with a
//! known length are buffered, so they can be replayed on another server.
//!
//! Replay rule: a request goes to another server when (a) it never reached the failing one
//! (connect refused, connect timeout, or an idle pooled connection found closed before the
//! request was written), whatever its method; or (b) the server failed before sending any
//! response byte (reset, close) and the request is idempotent by RFC 9110 (GET, HEAD,
//! OPTIONS, TRACE, PUT, DELETE) with an empty or buffered body. A timeout waiting for the
//! response (timeout_server) is never replayed. Non-replayable requests always use a fresh
//! upstream connection (HAProxy's `http-reuse safe`), so an idle connection the server
//! closed cannot lose them.

use super::acl::MatchRequest;
use super::counters::{self, Counters};
use super::error::{BalancerError, Fault, error_page};
use super::pool::{self, Upstream};
use super::{Backend, ConnGuard, FrontendRuntime, Generation, Inner, ServerState, SessionGuard};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Sleep;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies up to this size (with a Content-Length) are buffered so they can be replayed.
pub(super) const REPLAY_BUFFER: u64 = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Client connections

/// Fails a write that makes no progress for `timeout` (HAProxy's `timeout client` while
/// sending the response), so a client that stops reading cannot pin a server connection.
pub struct TimedIo<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> TimedIo<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        TimedIo { inner, timeout, stalled: None }
    }

    fn stall<R>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<R>>) -> Poll<std::io::Result<R>> {
        match r {
            Poll::Ready(v) => {
                self.stalled = None;
                Poll::Ready(v)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "client write timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.stall(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.stall(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.stall(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Writes one buffer, or a few small ones (a response head and a short body) copied into one,
/// with `send`: cheaper in the kernel than `writev`, which copies and checks the vector and
/// goes through the file layer. Large vectored writes stay vectored, without the copy.
fn write_vectored_small_flat<T: AsyncWrite>(
    io: Pin<&mut T>,
    cx: &mut Context<'_>,
    bufs: &[std::io::IoSlice<'_>],
) -> Poll<std::io::Result<usize>> {
    const FLAT: usize = 4096;
    if let [one] = bufs {
        return io.poll_write(cx, one);
    }
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    if total > FLAT {
        return io.poll_write_vectored(cx, bufs);
    }
    thread_local! {
        // Reused, not zeroed per write: zeroing a 4 KiB array was 8% of a request's
        // instructions.
        static FLAT_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(FLAT));
    }
    FLAT_BUF.with(|flat| {
        let mut flat = flat.borrow_mut();
        flat.clear();
        for b in bufs {
            flat.extend_from_slice(b);
        }
        io.poll_write(cx, &flat)
    })
}

/// A socket (client or server side) whose small vectored writes go out as one `send`.
pub struct FlatSmallWrites<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for FlatSmallWrites<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FlatSmallWrites<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        write_vectored_small_flat(Pin::new(&mut self.get_mut().0), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

struct LeaveOnDrop(Arc<Counters>);

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// The client connection preface of HTTP/2 (RFC 9113 3.4): a plain-text connection that
/// opens with it speaks h2c with prior knowledge, as HAProxy detects on HTTP frontends.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads just enough of a plain-text connection to tell HTTP/2's preface from HTTP/1.x: one
/// byte settles most HTTP/1 requests. Returns whether it is HTTP/2 and the bytes read.
async fn sniff_preface<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<(bool, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::with_capacity(H2_PREFACE.len());
    let mut chunk = [0u8; 24];
    loop {
        let want = H2_PREFACE.len() - seen.len();
        let n = io.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok((false, seen));
        }
        seen.extend_from_slice(&chunk[..n]);
        if !H2_PREFACE.starts_with(&seen) {
            return Ok((false, seen));
        }
        if seen.len() == H2_PREFACE.len() {
            return Ok((true, seen));
        }
    }
}

/// Gives back the bytes `sniff_preface` read before reading on from the connection.
pub struct Prefixed<T> {
    pub prefix: Bytes,
    pub inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves one client connection of an HTTP frontend until it closes, the frontend is
/// removed, or obsd shuts down (then the request in flight finishes first). HTTP/2 is served
/// when TLS negotiates `h2` by ALPN, or when a plain-text client opens with h2's preface.
pub async fn serve_connection(
    inner: Arc<Inner>,
    name: String,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: watch::Receiver<bool>,
    _guard: ConnGuard,
) {
    let generation = inner.current();
    let Some(fe) = generation.frontend(&name) else { return };
    let cfg = fe.config.clone();
    let fe_counters = fe.counters.clone();
    drop(generation);
    counters::inc(&fe_counters.conn_tot);
    fe_counters.conn_rate.hit();
    fe_counters.enter();
    let _leave = LeaveOnDrop(fe_counters.clone());
    if counters::load(&fe_counters.scur) > cfg.maxconn as u64 {
        counters::inc(&fe_counters.dreq);
        tracing::warn!(frontend = %name, %peer, maxconn = cfg.maxconn, "frontend maxconn reached; closing connection");
        return;
    }
    let _ = stream.set_nodelay(true);
    let io = TimedIo::new(FlatSmallWrites(stream), cfg.timeout_client);
    let name: Arc<str> = name.into();
    let conn = ClientConn { inner, name, peer, fe_counters, stop };
    match tls {
        Some(acceptor) => match tokio::time::timeout(cfg.timeout_http_request, acceptor.accept(io)).await {
            Ok(Ok(s)) => {
                if s.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                    conn.serve(TokioIo::new(s), true, true, &cfg).await
                } else {
                    super::h1::serve(conn, s, bytes::BytesMut::new(), true, &cfg).await
                }
            }
            Ok(Err(e)) => {
                counters::inc(&conn.fe_counters.ereq);
                tracing::debug!(frontend = %conn.name, %peer, error = %e, "TLS handshake failed");
            }
            Err(_) => counters::inc(&conn.fe_counters.ereq),
        },
        None => {
            let mut io = io;
            match tokio::time::timeout(cfg.timeout_http_request, sniff_preface(&mut io)).await {
                Ok(Ok((_, seen))) if seen.is_empty() => {}
                Ok(Ok((true, seen))) => {
                    let io = Prefixed { prefix: Bytes::from(seen), inner: io };
                    conn.serve(TokioIo::new(io), false, true, &cfg).await
                }
                Ok(Ok((false, seen))) => {
                    super::h1::serve(conn, io, bytes::BytesMut::from(&seen[..]), false, &cfg).await
                }
                Ok(Err(e)) => tracing::debug!(frontend = %conn.name, %peer, error = %e, "client read failed"),
                // An idle or slowloris connection that never sent a byte: HAProxy's
                // `timeout http-request` closes it.
                Err(_) => counters::inc(&conn.fe_counters.ereq),
            }
        }
    }
}

/// Polls a future only once its own waker fired (and the first time, to register it).
/// `select!` polls every pending branch each time the task wakes; for the watches a client
/// connection waits on (reload, shutdown) that was a sixth of a small request's instructions.
pub(super) struct WokenOnly<F> {
    inner: Pin<Box<F>>,
    flag: Arc<WakeFlag>,
    waker: std::task::Waker,
}

struct WakeFlag {
    woken: std::sync::atomic::AtomicBool,
    task: std::sync::Mutex<Option<std::task::Waker>>,
}

impl std::task::Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = match self.task.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F: Future> WokenOnly<F> {
    pub(super) fn new(inner: F) -> Self {
        let flag = Arc::new(WakeFlag {
            woken: std::sync::atomic::AtomicBool::new(true),
            task: std::sync::Mutex::new(None),
        });
        WokenOnly { inner: Box::pin(inner), waker: std::task::Waker::from(flag.clone()), flag }
    }
}

impl<F: Future> Future for WokenOnly<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            let mut task = match this.flag.task.lock() {
                Ok(t) => t,
                Err(p) => p.into_inner(),
            };
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner.as_mut().poll(&mut Context::from_waker(&this.waker))
    }
}

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

// ---------------------------------------------------------------------------------------------
// Bodies

/// A client's request body streamed upstream, cut when the client stalls for `timeout_client`.
pub struct ClientBody {
    inner: Incoming,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// Where the bytes go in `bin` as they stream: set when the body is sent to a server.
    counted_in: Option<Inflow>,
}

/// The counters a streamed request body is added to as it passes, as HAProxy counts `bin`,
/// so a long upload shows while it runs.
struct Inflow {
    fe: Arc<Counters>,
    backend: Arc<Backend>,
    server: Arc<ServerState>,
}

/// What obsd sends upstream as a request body.
pub enum UpBody {
    Bytes(Option<Bytes>),
    Stream(ClientBody),
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpBody::Bytes(b) => Poll::Ready(b.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            UpBody::Stream(s) => match Pin::new(&mut s.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let (Some(d), Some(to)) = (frame.data_ref(), &s.counted_in) {
                        count_bytes(&to.fe, &to.backend, &to.server, |c| &c.bin, d.len() as u64);
                    }
                    s.stalled = None;
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    let timeout = s.timeout;
                    let sleep = s.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    if sleep.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Some(Err(Box::new(BalancerError::ClientTimeout))))
                    } else {
                        Poll::Pending
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Bytes(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            UpBody::Stream(s) => s.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Bytes(b) => SizeHint::with_exact(b.as_ref().map(|b| b.len() as u64).unwrap_or(0)),
            UpBody::Stream(s) => s.inner.size_hint(),
        }
    }
}

/// The bookkeeping of one request that reached a server, closed when its response ends.
struct Exchange {
    fe: Arc<Counters>,
    backend: Arc<Backend>,
    server: Arc<ServerState>,
    _guard: SessionGuard,
    /// Driven while the body streams; returned to the pool when the response ends cleanly
    /// and the connection may be reused.
    upstream: Option<Upstream>,
    reusable: bool,
    started: Instant,
    qtime: Duration,
    ctime: Duration,
    rtime: Duration,
    /// The request head and a buffered body; a streamed body counts as it passes (`Inflow`).
    bytes_in: u64,
    /// The response head; body bytes are counted as they pass (`count_bytes`).
    head_out: u64,
}

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

impl Exchange {
    fn finish(mut self, clean: bool) {
        let outcome = Outcome {
            started: self.started,
            qtime: self.qtime,
            ctime: self.ctime,
            rtime: self.rtime,
            bytes_in: self.bytes_in,
            bytes_out: self.head_out,
        };
        record(&self.fe, &self.backend, &self.server, &outcome);
        if clean
            && self.reusable
            && let Some(up) = self.upstream.take()
        {
            self.server.pool.checkin(up);
        }
    }
}

/// The response body obsd sends the client.
pub enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(Box<UpstreamBody>),
}

pub struct UpstreamBody {
    inner: Incoming,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    exchange: Option<Exchange>,
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Some(ex) = self.exchange.take() {
            // hyper stops polling once the body says it has ended; anything else is the
            // client going away mid-response.
            let clean = self.inner.is_end_stream();
            if !clean {
                counters::inc(&ex.backend.shared.counters.cli_abrt);
                counters::inc(&ex.server.counters.cli_abrt);
            }
            ex.finish(clean);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Full(b) => Poll::Ready(b.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(up) => {
                let up = &mut **up;
                // The upstream connection is driven here, in the client's task: each round
                // lets it decode what the server sent into the body. Three rounds cover a
                // chunk that was already buffered; past that the wakers registered by the
                // last round bring the task back.
                let mut polled = Pin::new(&mut up.inner).poll_frame(cx);
                for _ in 0..3 {
                    if polled.is_ready() {
                        break;
                    }
                    let Some(conn) = up.exchange.as_mut().and_then(|ex| ex.upstream.as_mut()) else {
                        break;
                    };
                    conn.poll_io(cx);
                    polled = Pin::new(&mut up.inner).poll_frame(cx);
                }
                match polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(d), Some(ex)) = (frame.data_ref(), up.exchange.as_ref()) {
                            count_bytes(&ex.fe, &ex.backend, &ex.server, |c| &c.bout, d.len() as u64);
                        }
                        up.stalled = None;
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        if let Some(ex) = up.exchange.take() {
                            counters::inc(&ex.backend.shared.counters.srv_abrt);
                            counters::inc(&ex.server.counters.srv_abrt);
                            ex.finish(false);
                        }
                        Poll::Ready(Some(Err(e.into())))
                    }
                    Poll::Ready(None) => {
                        if let Some(ex) = up.exchange.take() {
                            ex.finish(true);
                        }
                        Poll::Ready(None)
                    }
                    Poll::Pending => {
                        let timeout = up.timeout;
                        let sleep = up.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                        if sleep.as_mut().poll(cx).is_ready() {
                            if let Some(ex) = up.exchange.take() {
                                counters::inc(&ex.backend.shared.counters.srv_abrt);
                                counters::inc(&ex.server.counters.srv_abrt);
                                ex.finish(false);
                            }
                            Poll::Ready(Some(Err("server timeout while sending the response body".into())))
                        } else {
                            Poll::Pending
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Full(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            ProxyBody::Upstream(up) => up.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map(|b| b.len() as u64).unwrap_or(0)),
            ProxyBody::Upstream(up) => up.inner.size_hint(),
        }
    }
}

fn page(status: StatusCode) -> Response<ProxyBody> {
    error_page(status).map(|b| ProxyBody::Full(Some(b)))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// Hop-by-hop fields (RFC 9110 7.6.1) plus `expect`, which obsd answers itself. Static names:
/// removing by `&str` would parse the name again on every request.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(first) = headers.get(header::CONNECTION) {
        // Most requests say just `keep-alive` or `close`, which list nothing else to drop.
        let plain = headers.get_all(header::CONNECTION).iter().nth(1).is_none()
            && (first.as_bytes().eq_ignore_ascii_case(b"keep-alive")
                || first.as_bytes().eq_ignore_ascii_case(b"close"));
        if !plain {
            let listed: Vec<HeaderName> = headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|t| t.trim().as_bytes())
                .filter(|t| !super::h1::NEVER_HOP_BY_HOP.iter().any(|n| t.eq_ignore_ascii_case(n)))
                .filter_map(|t| HeaderName::from_bytes(t).ok())
                .collect();
            for name in listed {
                headers.remove(name);
            }
        }
    }
    // Most messages carry none of them (a response often only `connection`): one pass over
    // the names costs less than eight hashed removals (1.7k against 2.2k instructions per
    // request, both directions, by callgrind).
    let mut present = 0u8;
    for key in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == key) {
            present |= 1 << i;
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// HTTP/2 clients may split `cookie` into one field per pair (RFC 9113 8.2.3); an HTTP/1.1
/// server expects the one line, joined with "; ".
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers.get_all(header::COOKIE).iter().map(|v| v.as_bytes()).collect();
    let joined = joined.join(&b"; "[..]);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, v);
    }
}

fn head_size(headers: &HeaderMap) -> u64 {
    headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum::<u64>() + 2
}

/// What a client connection adds to every request it forwards, worked out once per
/// connection rather than formatted per request.
pub struct ClientInfo {
    pub(super) peer: SocketAddr,
    /// `X-Forwarded-For` when the request has none.
    pub(super) xff: Option<HeaderValue>,
    /// `Forwarded` without a host: `for=...;proto=...`.
    pub(super) element: String,
    /// The last `Host` seen and the `Forwarded` value made for it: one host per connection
    /// is the rule.
    last: std::sync::Mutex<Option<(HeaderValue, HeaderValue)>>,
}

impl ClientInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        let ip = peer.ip().to_canonical();
        let node = if ip.is_ipv6() { format!("\"[{ip}]\"") } else { ip.to_string() };
        ClientInfo {
            peer,
            xff: HeaderValue::from_str(&ip.to_string()).ok(),
            element: format!("for={node};proto={}", if tls { "https" } else { "http" }),
            last: std::sync::Mutex::new(None),
        }
    }

    fn forwarded(&self, host: Option<&HeaderValue>) -> String {
        let mut element = self.element.clone();
        if let Some(host) = host.and_then(|h| h.to_str().ok())
            && host.bytes().all(|b| b.is_ascii_graphic())
        {
            let mut quoted = Vec::with_capacity(host.len());
            super::h1::push_quoted(&mut quoted, host.as_bytes());
            element.push_str(";host=\"");
            element.push_str(&String::from_utf8_lossy(&quoted));
            element.push('"');
        }
        element
    }
}

fn add_forwarded(headers: &mut HeaderMap, client: &ClientInfo) {
    let xff_name = HeaderName::from_static("x-forwarded-for");
    match headers.get(&xff_name).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            let xff = format!("{prev}, {}", client.peer.ip().to_canonical());
            if let Ok(v) = HeaderValue::from_str(&xff) {
                headers.insert(xff_name, v);
            }
        }
        _ => {
            if let Some(v) = &client.xff {
                headers.insert(xff_name, v.clone());
            }
        }
    }
    let host = headers.get(header::HOST);
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            HeaderValue::from_str(&format!("{prev}, {}", client.forwarded(host))).ok()
        }
        _ => {
            let mut last = match client.last.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match &*last {
                Some((h, v)) if Some(h) == host => Some(v.clone()),
                _ => {
                    let v = HeaderValue::from_str(&client.forwarded(host)).ok();
                    if let (Some(h), Some(v)) = (host, &v) {
                        *last = Some((h.clone(), v.clone()));
                    }
                    v
                }
            }
        }
    };
    if let Some(v) = forwarded {
        headers.insert(header::FORWARDED, v);
    }
}

enum ReqBody {
    Bytes(Bytes),
    /// Taken by the first attempt that sends it.
    Stream(Option<ClientBody>),
}

async fn prepare_body(body: Incoming, timeout: Duration) -> Result<ReqBody, BalancerError> {
    if body.is_end_stream() {
        return Ok(ReqBody::Bytes(Bytes::new()));
    }
    if body.size_hint().exact().is_some_and(|n| n <= REPLAY_BUFFER) {
        let collected = tokio::time::timeout(timeout, body.collect())
            .await
            .map_err(|_| BalancerError::ClientTimeout)?
            .map_err(|e| BalancerError::ClientBody(e.to_string()))?;
        return Ok(ReqBody::Bytes(collected.to_bytes()));
    }
    Ok(ReqBody::Stream(Some(ClientBody { inner: body, timeout, stalled: None, counted_in: None })))
}

pub(super) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

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
    let view = super::acl::RequestView {
        method: req.method().as_str(),
        path: req.uri().path(),
        headers: super::acl::Headers::Map(req.headers()),
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
    view: &super::acl::RequestView,
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
    let mut body = prepare_body(body, fe.config.timeout_client).await?;
    let bytes_in = head_in + if let ReqBody::Bytes(b) = &body { b.len() as u64 } else { 0 };
    let replayable = idempotent(&method) && matches!(body, ReqBody::Bytes(_));
    let mut attempts = 0u32;
    let mut stale = 0u32;
    let mut avoid: Option<usize> = None;
    loop {
        let (index, guard, qtime) = backend.acquire(Some(client.peer.ip()), avoid).await?;
        let Some(server) = backend.servers.get(index) else {
            return Err(BalancerError::Internal("selected server vanished".into()));
        };
        let connect_started = Instant::now();
        let pooled = if !cfg.httpclose && replayable {
            server.state.pool.checkout(server.config.pool_purge_delay)
        } else {
            None
        };
        let mut upstream = match pooled {
            // A connection checked in as its response ended may not have read the end yet;
            // driving it until ready beats opening a new one. Not ready means it closed.
            Some(mut up) => match tokio::time::timeout(cfg.timeout_connect, up.ready()).await {
                Ok(true) => up,
                _ => {
                    drop(guard);
                    count_stale(&mut stale, &cfg.name, &server.config.name)?;
                    continue;
                }
            },
            None => match pool::connect(server.config.address, cfg.timeout_connect).await {
                Ok(up) => up,
                Err(e) => {
                    backend.connect_failed(index);
                    drop(guard);
                    if attempts >= cfg.retries || !cfg.retry_on.conn_failure {
                        return Err(BalancerError::Connect {
                            backend: cfg.name.clone(),
                            server: server.config.name.clone(),
                            message: e.to_string(),
                        });
                    }
                    attempts += 1;
                    avoid = retry_target(backend, index);
                    if avoid.is_none() {
                        // Same server again: give a restarting process a moment.
                        tokio::time::sleep(Duration::from_millis(100).min(cfg.timeout_connect)).await;
                    }
                    continue;
                }
            },
        };
        let ctime = connect_started.elapsed();
        let attempt_body = match &mut body {
            ReqBody::Bytes(b) => UpBody::Bytes(Some(b.clone())),
            ReqBody::Stream(s) => match s.take() {
                Some(mut s) => {
                    s.counted_in = Some(Inflow {
                        fe: fe.counters.clone(),
                        backend: backend.clone(),
                        server: server.state.clone(),
                    });
                    UpBody::Stream(s)
                }
                None => {
                    return Err(BalancerError::ServerFailed {
                        backend: cfg.name.clone(),
                        server: server.config.name.clone(),
                        message: "request body already sent to a failed server; not replayable".into(),
                    });
                }
            },
        };
        let mut request = Request::new(attempt_body);
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = headers.clone();
        let sent_at = Instant::now();
        let outcome = tokio::time::timeout(cfg.timeout_server, upstream.send(request)).await;
        match outcome {
            Err(_) => {
                counters::inc(&server.state.counters.eresp);
                counters::inc(&backend.shared.counters.eresp);
                backend.observe(index, false, Some(504));
                if replayable && cfg.retry_on.response_timeout && attempts < cfg.retries {
                    drop(guard);
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
            Ok(Err(mut e)) => {
                drop(guard);
                if let Some(unsent) = e.take_message() {
                    // The pooled connection was already closed; nothing reached the server.
                    if let UpBody::Stream(s) = unsent.into_body() {
                        body = ReqBody::Stream(Some(s));
                    }
                    count_stale(&mut stale, &cfg.name, &server.config.name)?;
                    continue;
                }
                let error = e.into_error();
                counters::inc(&server.state.counters.eresp);
                counters::inc(&backend.shared.counters.eresp);
                backend.observe(index, true, None);
                // A response hyper cannot parse is HAProxy's junk-response; a close or reset
                // before it is an empty-response.
                let allowed =
                    if error.is_parse() { cfg.retry_on.junk_response } else { cfg.retry_on.empty_response };
                if replayable && allowed && attempts < cfg.retries {
                    attempts += 1;
                    avoid = retry_target(backend, index);
                    tracing::debug!(backend = %cfg.name, server = %server.config.name, error = %error, "replaying an idempotent request");
                    continue;
                }
                return Err(BalancerError::ServerFailed {
                    backend: cfg.name.clone(),
                    server: server.config.name.clone(),
                    message: error.to_string(),
                });
            }
            Ok(Ok(response))
                if replayable
                    && attempts < cfg.retries
                    && cfg.retry_on.status(response.status().as_u16()) =>
            {
                let status = response.status().as_u16();
                backend.observe(index, false, Some(status));
                for c in [&server.state.counters, &backend.shared.counters] {
                    c.response(status);
                }
                // The answer is dropped unread, so its connection is not reused.
                drop(response);
                drop(guard);
                attempts += 1;
                avoid = retry_target(backend, index);
                tracing::debug!(backend = %cfg.name, server = %server.config.name, status, "replaying an idempotent request (retry_on status)");
                continue;
            }
            Ok(Ok(response)) => {
                let rtime = sent_at.elapsed();
                let status = response.status().as_u16();
                backend.observe(index, false, Some(status));
                for c in [&server.state.counters, &backend.shared.counters] {
                    c.session_at(started);
                    c.response(status);
                }
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
                let exchange = Exchange {
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
                let body = UpstreamBody {
                    inner: incoming,
                    timeout: cfg.timeout_server,
                    stalled: None,
                    exchange: Some(exchange),
                };
                return Ok(Response::from_parts(rparts, ProxyBody::Upstream(Box::new(body))));
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut n: Vec<String> = h.keys().map(|k| k.to_string()).collect();
        n.sort();
        n
    }

    /// Ready once `ready` is set; counts its polls and keeps the last waker it was given.
    struct Probe {
        polls: Arc<AtomicU64>,
        ready: Arc<std::sync::atomic::AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<std::task::Waker>>>,
    }

    impl Future for Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready.load(Ordering::SeqCst) { Poll::Ready(()) } else { Poll::Pending }
        }
    }

    struct TaskWakes(AtomicU64);

    impl std::task::Wake for TaskWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn woken_only_polls_its_future_only_after_that_future_woke() {
        let polls = Arc::new(AtomicU64::new(0));
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let inner_waker = Arc::new(std::sync::Mutex::new(None));
        let probe = Probe { polls: polls.clone(), ready: ready.clone(), waker: inner_waker.clone() };
        let mut gated = WokenOnly::new(probe);
        let task = Arc::new(TaskWakes(AtomicU64::new(0)));
        let waker = std::task::Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        // The first poll registers the inner future; later wake-ups of the task for other
        // reasons do not reach it.
        for _ in 0..5 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        ready.store(true, Ordering::SeqCst);
        let registered = inner_waker.lock().unwrap().take().expect("inner future registered a waker");
        registered.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task was not woken");
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_lists_are_dropped() {
        let mut h = map(&[
            ("host", "a"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("te", "gzip"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x"),
            ("expect", "100-continue"),
            ("content-type", "text/plain"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["content-type", "host"]);

        let mut plain = map(&[("connection", "close"), ("date", "x"), ("content-length", "3")]);
        strip_hop_by_hop(&mut plain);
        assert_eq!(names(&plain), ["content-length", "date"]);

        let mut none = map(&[("server", "nginx"), ("etag", "\"1\"")]);
        strip_hop_by_hop(&mut none);
        assert_eq!(names(&none), ["etag", "server"]);
    }
}

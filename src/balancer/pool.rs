//! Idle HTTP/1.1 connections to one server, reused LIFO (the most recently used is the least
//! likely to have been closed by the server) and purged after `pool_purge_delay`, as
//! HAProxy's `pool-purge-delay`.
//!
//! An upstream connection has no task of its own: the request that holds it polls its I/O
//! (`Upstream::conn`) in the client connection's task, while it waits for the response and
//! while it streams the body back. A request then costs no cross-task wake-ups, which were
//! most of the balancer's overhead on small responses. An idle connection is polled by
//! nobody; the next request that checks it out first drives it until it is ready, which is
//! also when a close by the server shows.

use super::io::{FlatSmallWrites, ReadSeen};
use hyper::body::Body;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Enough idle connections for a busy backend; more are closed instead of pooled.
const MAX_IDLE: usize = 512;

/// A server socket as hyper's client drives it.
type ServerIo = TokioIo<ReadSeen<FlatSmallWrites<TcpStream>>>;

/// What hyper's client needs of a request body type.
pub trait RequestBody:
    Body<Error: Into<Box<dyn std::error::Error + Send + Sync>>, Data: Send> + 'static
{
}

impl<B> RequestBody for B where
    B: Body<Error: Into<Box<dyn std::error::Error + Send + Sync>>, Data: Send> + 'static
{
}

/// One HTTP/1.1 connection to a server (requests with bodies of type `B`): the request
/// handle and the I/O state machine.
pub struct Upstream<B: RequestBody> {
    pub sender: SendRequest<B>,
    /// None once the connection ended. Boxed: the state machine with its buffers is large,
    /// and an `Upstream` moves through the pool, the request and its response body.
    pub conn: Option<Box<Connection<ServerIo, B>>>,
    /// Set when the server sent bytes since the last request began.
    answered: Arc<AtomicBool>,
}

impl<B: RequestBody> Upstream<B> {
    /// Drives the connection's I/O; true while it is still open.
    pub fn poll_io(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(conn) = self.conn.as_mut() else { return false };
        match Pin::new(&mut **conn).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                // Dropping the state machine hands requests it never wrote back to their
                // senders, so they can go elsewhere.
                self.conn = None;
                false
            }
        }
    }

    /// Ready for a request (true): the previous response fully read, the connection open.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let open = self.poll_io(cx);
        match self.sender.poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(open),
            Poll::Ready(Err(_)) => Poll::Ready(false),
            Poll::Pending if open => Poll::Pending,
            Poll::Pending => Poll::Ready(false),
        }
    }

    /// Whether the server sent any byte since the last `send` began.
    pub fn answered_any(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    pub async fn ready(&mut self) -> bool {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// Sends a request, driving the connection until its response head arrives.
    pub async fn send(
        &mut self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::client::conn::TrySendError<hyper::Request<B>>>
    {
        self.answered.store(false, Ordering::Relaxed);
        let mut response = std::pin::pin!(self.sender.try_send_request(request));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = response.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            if !self.poll_io(cx) {
                // The connection ended: the response future now resolves with its error.
                return response.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await
    }
}

/// A connection the pool can keep: it says when it is known to be closed.
pub trait Pooled {
    fn is_closed(&self) -> bool;
}

impl<B: RequestBody> Pooled for Upstream<B> {
    fn is_closed(&self) -> bool {
        self.conn.is_none() || self.sender.is_closed()
    }
}

/// A plain socket (the HTTP/1.1 fast path, `h1`) is probed with a non-blocking read: a
/// clean idle socket has nothing to read. End of stream is the server's idle close, seen
/// here instead of costing the next request a round-trip. Any byte is a stray answer (a body
/// after HEAD, 204 or 304, more than `Content-Length` sent), which the next request on this
/// socket would take for its own response, so the socket goes. tokio makes the read only when
/// the socket was marked readable, so a socket already probed costs nothing.
impl Pooled for TcpStream {
    fn is_closed(&self) -> bool {
        let mut byte = [0u8; 1];
        !matches!(self.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// One thread's idle connections, oldest at the front: expiry trims the front, reuse takes
/// the back.
type IdleList<T> = Mutex<VecDeque<(T, Instant)>>;

/// Idle connections per connection thread (`threads`), as HAProxy keeps them per thread: a
/// connection is registered with the reactor of the thread that opened it, and is only used
/// there. The last list is for code off those threads.
pub struct Pool<T> {
    idle: Box<[IdleList<T>]>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        let lists = super::threads::threads().count() + 1;
        Pool { idle: (0..lists).map(|_| Mutex::new(VecDeque::new())).collect() }
    }
}

impl<T: Pooled> Pool<T> {
    fn mine(&self) -> &IdleList<T> {
        let last = self.idle.len() - 1;
        &self.idle[super::threads::current().map_or(last, |i| i.min(last))]
    }

    /// The most recently used idle connection that is open and not past `purge_delay`. It
    /// may still be finishing its last response; `Transport::revive` drives it until it is ready.
    pub fn checkout(&self, purge_delay: Duration) -> Option<T> {
        let Ok(mut idle) = self.mine().lock() else { return None };
        let now = Instant::now();
        while idle.front().is_some_and(|(_, since)| now.duration_since(*since) >= purge_delay) {
            idle.pop_front();
        }
        while let Some((up, _)) = idle.pop_back() {
            if !up.is_closed() {
                return Some(up);
            }
        }
        None
    }

    pub fn checkin(&self, up: T) {
        if up.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.mine().lock()
            && idle.len() < MAX_IDLE
        {
            idle.push_back((up, Instant::now()));
        }
    }

    /// Drops every idle connection (the server went down: they are likely dead).
    pub fn clear(&self) {
        for list in &self.idle {
            if let Ok(mut idle) = list.lock() {
                idle.clear();
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

/// A fresh connection to a server.
pub async fn connect_socket(address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address)).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connect timeout after {timeout:?}"))
    })??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// A fresh HTTP/1.1 connection, driven by whoever holds it.
pub async fn connect<B: RequestBody>(
    address: SocketAddr,
    timeout: Duration,
) -> Result<Upstream<B>, ConnectError> {
    let stream = connect_socket(address, timeout).await?;
    let answered = Arc::new(AtomicBool::new(false));
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(512 * 1024)
        .handshake(TokioIo::new(ReadSeen { inner: FlatSmallWrites(stream), seen: answered.clone() }))
        .await?;
    Ok(Upstream { sender, conn: Some(Box::new(conn)), answered })
}

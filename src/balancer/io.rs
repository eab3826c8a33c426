//! Socket wrappers of the HTTP path: timed client writes, small vectored writes flattened
//! into one `send`, bytes already read given back, and a future polled only when it woke.

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

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

/// Notes when a read brings bytes. hyper reports a server that closed mid-head and one that
/// sent nothing alike (an incomplete message); HAProxy's `retry-on` tells them apart.
pub struct ReadSeen<T> {
    pub inner: T,
    pub seen: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadSeen<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.seen.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadSeen<T> {
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

/// Gives back bytes already read (the sniffed start of a connection, or what the fast path
/// read before handing the connection to hyper) before reading on from the connection.
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

/// Polls a future only once its own waker fired (and the first time, to register it).
/// `select!` polls every pending branch each time the task wakes; for the watches a client
/// connection waits on (reload, shutdown) that was a sixth of a small request's instructions.
pub struct WokenOnly<F> {
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
    pub fn new(inner: F) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

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

    #[tokio::test]
    async fn read_seen_notes_reads_that_bring_bytes_and_not_an_end_of_stream() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut server, client) = tokio::io::duplex(64);
        let seen = Arc::new(AtomicBool::new(false));
        let mut io = ReadSeen { inner: client, seen: seen.clone() };
        server.write_all(b"HTTP/1.1 2").await.unwrap();
        drop(server);
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 10);
        assert!(seen.swap(false, Ordering::Relaxed));
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(!seen.load(Ordering::Relaxed));
    }
}

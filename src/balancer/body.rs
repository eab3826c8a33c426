//! Message bodies. Request bodies: buffered up to `REPLAY_BUFFER` (with a known length) so a
//! request can go to another server, streamed past it. Response bodies: hyper's streamed
//! frame by frame to the client, the server connection driven in the client's task, with
//! the request's totals counted when the body ends; the fast path's followed by their
//! framing (`Framing`, `Chunked`) as they are relayed.

use super::counters::{self, Counters};
use super::error::BalancerError;
use super::exchange::{Outcome, count_bytes, record};
use super::pool::Upstream;
use super::{Backend, ServerState, SessionGuard};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies up to this size (with a Content-Length) are buffered so they can be replayed.
pub(super) const REPLAY_BUFFER: u64 = 64 * 1024;

/// A client's request body streamed upstream, cut when the client stalls for `timeout_client`.
pub(super) struct ClientBody {
    inner: Incoming,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// Where the bytes go in `bin` as they stream: set when the body is sent to a server.
    counted_in: Option<Inflow>,
    /// Bytes passed on so far, for whoever waits on the server meanwhile: `timeout_server`
    /// is an inactivity timeout, and an upload that moves is activity.
    passed: Arc<AtomicU64>,
}

impl ClientBody {
    /// Counts the body's bytes as they go to `server`.
    pub(super) fn passed(&self) -> Arc<AtomicU64> {
        self.passed.clone()
    }

    pub(super) fn count_in(&mut self, fe: Arc<Counters>, backend: Arc<Backend>, server: Arc<ServerState>) {
        self.counted_in = Some(Inflow { fe, backend, server });
    }
}

/// The counters a streamed request body is added to as it passes, as HAProxy counts `bin`,
/// so a long upload shows while it runs.
struct Inflow {
    fe: Arc<Counters>,
    backend: Arc<Backend>,
    server: Arc<ServerState>,
}

/// What obsd sends upstream as a request body.
pub(super) enum UpBody {
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
                    if let Some(d) = frame.data_ref() {
                        s.passed.fetch_add(d.len() as u64, Ordering::Relaxed);
                        if let Some(to) = &s.counted_in {
                            count_bytes(&to.fe, &to.backend, &to.server, |c| &c.bin, d.len() as u64);
                        }
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
pub(super) struct PendingRecord {
    pub fe: Arc<Counters>,
    pub backend: Arc<Backend>,
    pub server: Arc<ServerState>,
    /// Holds the server slot until the response ends.
    pub _guard: SessionGuard,
    /// Driven while the body streams; returned to the pool when the response ends cleanly
    /// and the connection may be reused.
    pub upstream: Option<Upstream<UpBody>>,
    pub reusable: bool,
    pub started: Instant,
    pub qtime: Duration,
    pub ctime: Duration,
    pub rtime: Duration,
    /// The request head and a buffered body; a streamed body counts as it passes (`Inflow`).
    pub bytes_in: u64,
    /// The response head; body bytes are counted as they pass (`count_bytes`).
    pub head_out: u64,
}

impl PendingRecord {
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
pub(super) enum ProxyBody {
    Full(Option<Bytes>),
    Upstream(Box<UpstreamBody>),
}

pub(super) struct UpstreamBody {
    inner: Incoming,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    record: Option<PendingRecord>,
}

impl UpstreamBody {
    /// A server's response body; `timeout` is `timeout_server`, for each wait on the server.
    pub(super) fn new(inner: Incoming, timeout: Duration, record: PendingRecord) -> Self {
        UpstreamBody { inner, timeout, stalled: None, record: Some(record) }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if let Some(rec) = self.record.take() {
            // hyper stops polling once the body says it has ended; anything else is the
            // client going away mid-response.
            let clean = self.inner.is_end_stream();
            if !clean {
                counters::inc(&rec.backend.shared.counters.cli_abrt);
                counters::inc(&rec.server.counters.cli_abrt);
            }
            rec.finish(clean);
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
                    let Some(conn) = up.record.as_mut().and_then(|rec| rec.upstream.as_mut()) else {
                        break;
                    };
                    conn.poll_io(cx);
                    polled = Pin::new(&mut up.inner).poll_frame(cx);
                }
                match polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(d), Some(rec)) = (frame.data_ref(), up.record.as_ref()) {
                            count_bytes(&rec.fe, &rec.backend, &rec.server, |c| &c.bout, d.len() as u64);
                        }
                        up.stalled = None;
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        if let Some(rec) = up.record.take() {
                            counters::inc(&rec.backend.shared.counters.srv_abrt);
                            counters::inc(&rec.server.counters.srv_abrt);
                            rec.finish(false);
                        }
                        Poll::Ready(Some(Err(e.into())))
                    }
                    Poll::Ready(None) => {
                        if let Some(rec) = up.record.take() {
                            rec.finish(true);
                        }
                        Poll::Ready(None)
                    }
                    Poll::Pending => {
                        let timeout = up.timeout;
                        let sleep = up.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                        if sleep.as_mut().poll(cx).is_ready() {
                            if let Some(rec) = up.record.take() {
                                counters::inc(&rec.backend.shared.counters.srv_abrt);
                                counters::inc(&rec.server.counters.srv_abrt);
                                rec.finish(false);
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

pub(super) enum ReqBody {
    Bytes(Bytes),
    /// Taken by the first attempt that sends it.
    Stream(Option<ClientBody>),
}

/// Reads a body `REPLAY_BUFFER` allows whole (within `timeout_client`); leaves a larger one
/// or one of unknown length to stream.
pub(super) async fn prepare_body(body: Incoming, timeout: Duration) -> Result<ReqBody, BalancerError> {
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
    Ok(ReqBody::Stream(Some(ClientBody {
        inner: body,
        timeout,
        stalled: None,
        counted_in: None,
        passed: Arc::default(),
    })))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1 framing

/// How a response body ends (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Finds where a chunked body ends while it streams by, byte by byte across reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    Size { size: u64, digits: u8 },
    Extension { size: u64 },
    SizeLf { size: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct BadChunk;

impl Chunked {
    pub(super) fn new() -> Self {
        Chunked::Size { size: 0, digits: 0 }
    }

    fn after_size(size: u64) -> Chunked {
        if size == 0 { Chunked::TrailerStart } else { Chunked::Data(size) }
    }

    /// How many bytes of `buf` belong to the body; stops at its end.
    pub(super) fn scan(&mut self, buf: &[u8]) -> Result<usize, BadChunk> {
        let mut pos = 0;
        while pos < buf.len() {
            if let Chunked::Data(left) = *self {
                let take = left.min((buf.len() - pos) as u64);
                pos += take as usize;
                *self = if take == left { Chunked::DataCr } else { Chunked::Data(left - take) };
                continue;
            }
            let b = buf[pos];
            pos += 1;
            *self = match (*self, b) {
                (Chunked::Done, _) => return Ok(pos - 1),
                (Chunked::Size { size, digits }, b) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(BadChunk);
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    Chunked::Size { size: size * 16 + u64::from(d), digits: digits + 1 }
                }
                (Chunked::Size { digits: 0, .. }, _) => return Err(BadChunk),
                (Chunked::Size { size, .. }, b';' | b' ' | b'\t') => Chunked::Extension { size },
                (Chunked::Size { size, .. } | Chunked::Extension { size }, b'\r') => Chunked::SizeLf { size },
                (
                    Chunked::Size { size, .. } | Chunked::Extension { size } | Chunked::SizeLf { size },
                    b'\n',
                ) => Chunked::after_size(size),
                (Chunked::Extension { size }, _) => Chunked::Extension { size },
                (Chunked::DataCr, b'\r') => Chunked::DataLf,
                (Chunked::DataCr | Chunked::DataLf, b'\n') => Chunked::new(),
                (Chunked::TrailerStart, b'\r') => Chunked::EndLf,
                (Chunked::TrailerStart | Chunked::EndLf, b'\n') => Chunked::Done,
                (Chunked::TrailerLine, b'\n') => Chunked::TrailerStart,
                (Chunked::TrailerStart | Chunked::TrailerLine, _) => Chunked::TrailerLine,
                _ => return Err(BadChunk),
            };
            if *self == Chunked::Done {
                return Ok(pos);
            }
        }
        Ok(pos)
    }
}

/// Fuzzing entry: a chunked body scanned whole and split at every point end at the same byte.
pub(crate) fn fuzz_chunked(data: &[u8]) {
    let mut whole = Chunked::new();
    let expect = whole.scan(data).map(|n| (n, whole));
    for cut in [1, data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        let cut = cut.min(data.len());
        let mut split = Chunked::new();
        let got = split.scan(&data[..cut]).and_then(|a| {
            if split == Chunked::Done { Ok(a) } else { split.scan(&data[cut..]).map(|b| a + b) }
        });
        match (&expect, got) {
            (Ok((n, _)), Ok(m)) => assert_eq!(*n, m, "cut {cut}"),
            (Err(_), Err(_)) => {}
            (e, g) => panic!("cut {cut}: whole {e:?}, split {g:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(pieces: &[&[u8]]) -> (Vec<usize>, Chunked) {
        let mut c = Chunked::new();
        let taken = pieces.iter().map(|p| c.scan(p).unwrap()).collect();
        (taken, c)
    }

    #[test]
    fn chunked_end_is_found_across_reads_and_nothing_after_it_is_taken() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nx-trailer: 1\r\n\r\nHTTP/1.1 200";
        let end = body.len() - b"HTTP/1.1 200".len();
        // Whole, then split at every point.
        let (taken, state) = scan_all(&[body]);
        assert_eq!((taken[0], state), (end, Chunked::Done));
        for cut in 1..end {
            let (taken, state) = scan_all(&[&body[..cut], &body[cut..]]);
            assert_eq!(taken, [cut, end - cut], "cut at {cut}");
            assert_eq!(state, Chunked::Done);
        }
        let (taken, state) = scan_all(&[b"A\r\n0123456789\r\n0\r\n\r\n"]);
        assert_eq!((taken[0], state), (20, Chunked::Done));
        let (_, state) = scan_all(&[b"10\r\n0123"]);
        assert_eq!(state, Chunked::Data(12));
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [&b"zz\r\n"[..], b"\r\n", b"4\r\nWikiXX", b"0\r\n\rX", b"1234567890abcdef0\r\n"] {
            assert_eq!(Chunked::new().scan(bad), Err(BadChunk), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

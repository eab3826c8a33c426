//! Accepted connections of an HTTP frontend: counted against `maxconn`, TLS-terminated,
//! then served by the HTTP/1.1 fast path (`h1`) or by hyper (`proxy`: HTTP/2, by ALPN or by
//! h2c's preface). The one place that picks between them; `h1` hands requests it does not
//! handle to hyper itself.

use super::counters::{self, Counters};
use super::io::{FlatSmallWrites, Prefixed, TimedIo};
use super::proxy::ClientConn;
use super::{ConnGuard, Inner, h1};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Counts the connection out of its frontend's `scur` however serving it ends.
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
                    h1::serve(conn, s, bytes::BytesMut::new(), true, &cfg).await
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
                    h1::serve(conn, io, bytes::BytesMut::from(&seen[..]), false, &cfg).await
                }
                Ok(Err(e)) => tracing::debug!(frontend = %conn.name, %peer, error = %e, "client read failed"),
                // An idle or slowloris connection that never sent a byte: HAProxy's
                // `timeout http-request` closes it.
                Err(_) => counters::inc(&conn.fe_counters.ereq),
            }
        }
    }
}

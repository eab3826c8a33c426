//! TCP mode (layer 4): each client connection is paired with one server connection and bytes
//! are copied both ways. Connect failures are retried and redispatched like HTTP mode's
//! (nothing was sent yet); once connected, an idle side is cut after `timeout_client` /
//! `timeout_server`.

use super::counters::{self, Counters};
use super::{ConnGuard, Inner};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

pub async fn serve_connection(
    inner: Arc<Inner>,
    name: String,
    client: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    _guard: ConnGuard,
) {
    let started = Instant::now();
    let generation = inner.current();
    let Some(fe) = generation.frontend(&name) else { return };
    let fe_counters = fe.counters.clone();
    counters::inc(&fe_counters.conn_tot);
    fe_counters.conn_rate.hit();
    fe_counters.enter();
    let _leave = Leave(fe_counters.clone());
    let Some(backend) = fe.config.default_backend.as_deref().and_then(|b| generation.backend(b)).cloned()
    else {
        return;
    };
    let timeout_client = fe.config.timeout_client;
    drop(generation);
    let cfg = &backend.config;
    let mut attempts = 0;
    let mut avoid = None;
    let (index, guard, qtime, upstream, ctime) = loop {
        let (index, guard, qtime) = match backend.acquire(Some(peer.ip()), avoid).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(frontend = %name, error = %e, "no server for a tcp connection");
                return;
            }
        };
        let Some(server) = backend.servers.get(index) else { return };
        let t = Instant::now();
        match tokio::time::timeout(cfg.timeout_connect, TcpStream::connect(server.config.address)).await {
            Ok(Ok(s)) => break (index, guard, qtime, s, t.elapsed()),
            _ => {
                backend.connect_failed(index);
                drop(guard);
                if attempts >= cfg.retries {
                    return;
                }
                attempts += 1;
                counters::inc(&server.state.counters.wretr);
                counters::inc(&backend.shared.counters.wretr);
                avoid = if cfg.redispatch && backend.servers.len() > 1 {
                    counters::inc(&server.state.counters.wredis);
                    counters::inc(&backend.shared.counters.wredis);
                    Some(index)
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    None
                };
            }
        }
    };
    let Some(server) = backend.servers.get(index) else { return };
    backend.observe(index, false, None);
    server.state.counters.session();
    backend.shared.counters.session();
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = pump(&mut cr, &mut uw, timeout_client);
    let down = pump(&mut ur, &mut cw, cfg.timeout_server);
    let ((bin, _), (bout, _)) = tokio::select! {
        r = async { tokio::join!(up, down) } => r,
        // On shutdown or frontend removal a TCP stream has no request boundary to wait for;
        // it gets the drain time (the caller's timeout) and is then closed.
        _ = stop.changed() => ((0, ()), (0, ())),
    };
    for c in [&*fe_counters, &backend.shared.counters, &server.state.counters] {
        counters::add(&c.bin, bin);
        counters::add(&c.bout, bout);
    }
    let total = started.elapsed();
    for c in [&backend.shared.counters, &server.state.counters] {
        c.record_times(qtime, ctime, Duration::ZERO, total);
    }
    backend.shared.histogram.observe(total);
    drop(guard);
}

struct Leave(Arc<Counters>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Copies until EOF, error or `idle` without data, then half-closes the writer.
async fn pump<R, W>(reader: &mut R, writer: &mut W, idle: Duration) -> (u64, ())
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match tokio::time::timeout(idle, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        match tokio::time::timeout(idle, writer.write_all(&buf[..n])).await {
            Ok(Ok(())) => total += n as u64,
            _ => break,
        }
    }
    let _ = writer.shutdown().await;
    (total, ())
}

//! Idle HTTP/1.1 connections to one server, reused LIFO (the most recently used is the least
//! likely to have been closed by the server) and purged after `pool_purge_delay`, as
//! HAProxy's `pool-purge-delay`.

use super::proxy::UpBody;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Enough idle connections for a busy backend; more are closed instead of pooled.
const MAX_IDLE: usize = 512;

#[derive(Default)]
pub struct Pool {
    /// Oldest at the front: expiry trims the front, reuse takes the back.
    idle: Mutex<VecDeque<(SendRequest<UpBody>, Instant)>>,
}

impl Pool {
    /// The most recently used idle connection that is open and not past `purge_delay`. It
    /// may still be finishing its last response; `forward` waits for it to be ready.
    pub fn checkout(&self, purge_delay: Duration) -> Option<SendRequest<UpBody>> {
        let Ok(mut idle) = self.idle.lock() else { return None };
        let now = Instant::now();
        while idle.front().is_some_and(|(_, since)| now.duration_since(*since) >= purge_delay) {
            idle.pop_front();
        }
        while let Some((sender, _)) = idle.pop_back() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    pub fn checkin(&self, sender: SendRequest<UpBody>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push_back((sender, Instant::now()));
        }
    }

    /// Drops every idle connection (the server went down: they are likely dead).
    pub fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timeout after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

/// A fresh HTTP/1.1 connection; its I/O task runs until the connection closes.
pub async fn connect(address: SocketAddr, timeout: Duration) -> Result<SendRequest<UpBody>, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))??;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(512 * 1024)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

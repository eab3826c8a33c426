//! The one HTTP listener every role serves on: bind, optional TLS (rustls), optional basic
//! auth, connection cap, header size and read-timeout limits, graceful drain on shutdown.

mod auth;
pub mod client_tls;
mod read_deadline;
mod tls;

pub use auth::{BasicAuth, constant_time_eq};
pub use client_tls::error_chain;
pub use tls::acceptor as tls_acceptor;
pub use tls::acceptor_alpn as tls_acceptor_alpn;

use crate::config::ListenerConfig;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("listener {name}: cannot bind {address}: {source}")]
    Bind { name: String, address: SocketAddr, source: std::io::Error },
    #[error("listener {name}: TLS setup failed: {message}")]
    Tls { name: String, message: String },
}

/// A socket bound but not yet serving, so every role can fail to bind before any serves.
pub struct BoundListener {
    pub name: String,
    pub local_addr: SocketAddr,
    listener: TcpListener,
    config: ListenerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

pub async fn bind(name: &str, config: &ListenerConfig) -> Result<BoundListener, HttpError> {
    let tls = match &config.tls {
        Some(t) => Some(tls::acceptor(t).map_err(|message| HttpError::Tls { name: name.into(), message })?),
        None => None,
    };
    let listener = TcpListener::bind(config.address).await.map_err(|source| HttpError::Bind {
        name: name.into(),
        address: config.address,
        source,
    })?;
    let local_addr = listener.local_addr().unwrap_or(config.address);
    // Logged at bind time so every "listening" line precedes "obsd started"; test harnesses
    // and operators read the real port from it when the config asked for port 0.
    tracing::info!(listener = %name, address = %local_addr, tls = tls.is_some(), "listening");
    Ok(BoundListener { name: name.to_string(), local_addr, listener, config: config.clone(), tls })
}

/// Serves `router` until `shutdown` turns true, then waits up to `drain` for open requests.
pub async fn serve(
    bound: BoundListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let BoundListener { name, local_addr: _, listener, config, tls } = bound;
    let read_timeout = config.read_timeout;
    let mut router =
        router.layer(DefaultBodyLimit::max(config.max_body_bytes)).layer(axum::middleware::map_request(
            move |req: axum::extract::Request| async move { read_deadline::limit(req, read_timeout) },
        ));
    if !config.basic_auth_users.is_empty() {
        router = auth::protect(router, BasicAuth::new(config.basic_auth_users.clone()));
    }
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(listener = %name, error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(listener = %name, %peer, max = config.max_connections, "connection limit reached; closing new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            // The read buffer alone is no limit: hyper reads into whatever capacity the buffer
            // was given, which ran a 64 KiB limit out to about 128 KiB. max_header_size counts
            // the head's own bytes, so the limit is exact; past it hyper answers 431, as Go's
            // net/http does for Prometheus and node_exporter.
            .max_header_size(config.max_header_bytes)
            .max_buf_size(config.max_header_bytes.max(8192));
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = config.header_read_timeout;
        let name = name.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(err)) => {
                            tracing::debug!(listener = %name, %peer, error = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(listener = %name, "drain time over; closing remaining connections");
    }
}

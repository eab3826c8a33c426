//! Why a proxied request failed, and whose fault it was: the client (bad or slow request),
//! the upstream (no server, connect failure, server error or timeout), or obsd itself.
//! Each maps to the status and body HAProxy would send, so clients and dashboards see the
//! same answers after the switch.

use bytes::Bytes;
use hyper::{Response, StatusCode, header};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    #[error("bad request from client: {0}")]
    BadRequest(String),
    #[error("client too slow sending the request body")]
    ClientTimeout,
    #[error("client request body failed: {0}")]
    ClientBody(String),
    #[error("backend {backend:?}: no server is available")]
    NoServer { backend: String },
    #[error("backend {backend:?}: queue timeout, every server at maxconn")]
    QueueTimeout { backend: String },
    #[error("backend {backend:?}: server {server:?} connect failed: {message}")]
    Connect { backend: String, server: String, message: String },
    #[error("backend {backend:?}: server {server:?} failed before answering: {message}")]
    ServerFailed { backend: String, server: String, message: String },
    #[error("backend {backend:?}: server {server:?} did not answer within timeout_server")]
    ServerTimeout { backend: String, server: String },
    #[error("frontend {frontend:?}: backend {backend:?} does not exist")]
    MissingBackend { frontend: String, backend: String },
    #[error("frontend {frontend:?}: no use_backend rule matched and there is no default_backend")]
    NoRule { frontend: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl BalancerError {
    pub fn fault(&self) -> Fault {
        match self {
            BalancerError::BadRequest(_) | BalancerError::ClientTimeout | BalancerError::ClientBody(_) => {
                Fault::Client
            }
            BalancerError::NoServer { .. }
            | BalancerError::NoRule { .. }
            | BalancerError::QueueTimeout { .. }
            | BalancerError::Connect { .. }
            | BalancerError::ServerFailed { .. }
            | BalancerError::ServerTimeout { .. } => Fault::Upstream,
            BalancerError::MissingBackend { .. } | BalancerError::Internal(_) => Fault::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            BalancerError::BadRequest(_) | BalancerError::ClientBody(_) => StatusCode::BAD_REQUEST,
            BalancerError::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            BalancerError::NoServer { .. }
            | BalancerError::QueueTimeout { .. }
            | BalancerError::NoRule { .. }
            | BalancerError::Connect { .. } => StatusCode::SERVICE_UNAVAILABLE,
            BalancerError::ServerFailed { .. } => StatusCode::BAD_GATEWAY,
            BalancerError::ServerTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            BalancerError::MissingBackend { .. } | BalancerError::Internal(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub fn response(&self) -> Response<Bytes> {
        error_page(self.status())
    }
}

/// HAProxy's built-in error pages (src/http_htx.c `http_err_msgs`).
pub fn error_page(status: StatusCode) -> Response<Bytes> {
    let body: &'static str = match status.as_u16() {
        400 => {
            "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
        }
        401 => {
            "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n"
        }
        403 => {
            "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n"
        }
        408 => {
            "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n"
        }
        502 => {
            "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"
        }
        504 => {
            "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"
        }
        _ => {
            "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"
        }
    };
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html"));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}

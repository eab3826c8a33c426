//! The HTTP client of one Alertmanager set: its timeout, redirects and TLS settings as
//! Prometheus's `config.HTTPClientConfig` applies them (TLS in `http::client_tls`).
//!
//! The client speaks HTTP/1.1 only (obsd is built without reqwest's HTTP/2); an explicit
//! `enable_http2: true` is warned about when the configuration is read.

use crate::config::alerting::AlertmanagerSet;
use crate::http::client_tls::{ClientTlsError, rustls_config};

/// Why a set's client could not be built: every send to the set fails with this until the
/// configuration is fixed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tls(#[from] ClientTlsError),
    #[error("HTTP client: {0}")]
    Build(String),
}

pub(super) fn build(set: &AlertmanagerSet) -> Result<reqwest::Client, ClientError> {
    let builder = reqwest::Client::builder()
        .timeout(set.timeout)
        .connect_timeout(set.timeout)
        .user_agent(super::USER_AGENT)
        .pool_max_idle_per_host(2)
        .redirect(if set.follow_redirects {
            reqwest::redirect::Policy::default()
        } else {
            reqwest::redirect::Policy::none()
        })
        .use_preconfigured_tls(rustls_config(&set.tls_config)?);
    builder.build().map_err(|e| ClientError::Build(e.to_string()))
}

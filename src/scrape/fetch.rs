//! The HTTP half of a scrape: the client a job's TLS and timeout settings build, and one fetch
//! with Prometheus's headers and the body size limit.

use super::error::ScrapeError;
use super::target::Target;
use crate::config::prometheus::Job;
use crate::exposition::Format;

pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Builds the HTTP client for a job: timeout, `tls_config` and redirects as Prometheus's
/// `config.HTTPClientConfig` applies them.
pub fn client_for(job: &Job) -> Result<reqwest::Client, String> {
    let tls = crate::http::client_tls::rustls_config(&job.tls_config).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .timeout(job.timeout)
        .connect_timeout(job.timeout)
        .user_agent(concat!("obsd/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(1)
        .redirect(if job.follow_redirects {
            reqwest::redirect::Policy::default()
        } else {
            reqwest::redirect::Policy::none()
        })
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| e.to_string())
}

pub(super) async fn fetch(
    client: &reqwest::Client,
    job: &Job,
    target: &Target,
) -> Result<(Vec<u8>, Format), ScrapeError> {
    let mut request = client
        .get(&target.url)
        .header("Accept", ACCEPT_HEADER)
        .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", job.timeout.as_secs_f64()));
    if let Some((user, password)) = &job.basic_auth {
        request = request.basic_auth(user, Some(password.expose()));
    }
    if let Some(token) = &job.bearer_token {
        request = request.header("Authorization", format!("{} {}", job.authorization_type, token.expose()));
    }
    let mut response = request.send().await.map_err(|e| {
        if e.is_timeout() { ScrapeError::Timeout } else { ScrapeError::Http(crate::http::error_chain(&e)) }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(ScrapeError::Status(status.to_string()));
    }
    let format = match response.headers().get("content-type").and_then(|v| v.to_str().ok()) {
        Some(ct) if ct.starts_with("application/openmetrics-text") => Format::OpenMetrics,
        _ => Format::Text,
    };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        if e.is_timeout() { ScrapeError::Timeout } else { ScrapeError::Http(crate::http::error_chain(&e)) }
    })? {
        body.extend_from_slice(&chunk);
        if job.body_size_limit > 0 && body.len() as u64 > job.body_size_limit {
            return Err(ScrapeError::BodyTooLarge);
        }
    }
    Ok((body, format))
}

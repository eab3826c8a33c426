//! `[balancer]`: HAProxy's configuration vocabulary in TOML. Section and key names follow
//! HAProxy's (`default_backend`, `balance`, `httpchk`, `inter`, `fastinter`, `rise`, `fall`,
//! `timeout_connect`, …) with `-` and spaces spelled `_`, so an SRE can map every line of a
//! haproxy.cfg onto it; `obsd balancer import-haproxy` does that mapping mechanically.
//!
//! `raw` holds the tables as written, `resolve` turns them into the types below with
//! HAProxy's defaults and every problem located by line.

mod raw;
mod resolve;

pub use raw::RawBalancer;
pub use resolve::parse_status_ranges;

use super::{ListenerConfig, PasswordCheck, TlsConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Http,
    Tcp,
}

impl ProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyMode::Http => "http",
            ProxyMode::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    First,
    Source,
    Random,
}

impl Balance {
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConn => "leastconn",
            Balance::First => "first",
            Balance::Source => "source",
            Balance::Random => "random",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    Off,
    Layer4,
    Layer7,
}

/// HAProxy's `on-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    FastInter,
    FailCheck,
    SuddenDeath,
    MarkDown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    pub method: String,
    pub path: String,
    pub version: String,
    /// Inclusive status ranges that pass; empty = HAProxy's default, 2xx and 3xx.
    pub expect_status: Vec<(u16, u16)>,
}

impl HttpCheck {
    pub fn passes(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            return (200..400).contains(&status);
        }
        self.expect_status.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FrontendConfig {
    pub name: String,
    pub bind: SocketAddr,
    pub tls: Option<TlsConfig>,
    /// ALPN protocols offered on TLS, in preference order.
    pub alpn: Vec<String>,
    pub mode: ProxyMode,
    /// None: a request no `use_backend` rule takes gets a 503, as in HAProxy.
    pub default_backend: Option<String>,
    pub use_backend: Vec<UseBackend>,
    pub maxconn: usize,
    pub timeout_client: Duration,
    pub timeout_http_request: Duration,
    pub timeout_http_keep_alive: Duration,
    pub max_header_bytes: usize,
    pub max_header_count: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UseBackend {
    pub backend: String,
    pub condition: crate::config::acl::Condition,
    /// `if …` / `unless …` as written, for `--check` output and logs.
    pub condition_text: String,
}

/// HAProxy's `retry-on`: which failures send a request again (to another server when
/// `redispatch` allows). Failures after the request reached a server are replayed only for
/// idempotent methods with a buffered body, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn {
    pub conn_failure: bool,
    /// The server closed or reset before any response byte.
    pub empty_response: bool,
    /// The server answered something that is not HTTP.
    pub junk_response: bool,
    /// `timeout server` expired before the response head.
    pub response_timeout: bool,
    /// Response statuses that are retried.
    pub statuses: [bool; 10],
}

/// Statuses `retry-on` accepts, in `RetryOn::statuses` order.
pub const RETRY_STATUSES: [u16; 10] = [401, 403, 404, 408, 425, 500, 501, 502, 503, 504];

impl RetryOn {
    /// obsd's default: connection failures, and empty responses for idempotent requests.
    pub const DEFAULT: RetryOn = RetryOn {
        conn_failure: true,
        empty_response: true,
        junk_response: false,
        response_timeout: false,
        statuses: [false; 10],
    };

    pub fn parse(text: &str) -> Result<RetryOn, String> {
        let mut r = RetryOn::default();
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            return Err("expected retry-on keywords, e.g. \"conn-failure empty-response 503\"".into());
        }
        for w in &words {
            match *w {
                "none" if words.len() == 1 => {}
                "none" => return Err("\"none\" cannot be combined with other keywords".into()),
                "conn-failure" => r.conn_failure = true,
                "empty-response" => r.empty_response = true,
                "junk-response" => r.junk_response = true,
                "response-timeout" => r.response_timeout = true,
                // obsd accepts no TLS early data, so nothing is ever rejected for it.
                "0rtt-rejected" => {}
                "all-retryable-errors" => {
                    r.conn_failure = true;
                    r.empty_response = true;
                    r.junk_response = true;
                    r.response_timeout = true;
                    for code in [500, 502, 503, 504] {
                        r.set_status(code);
                    }
                }
                other => match other.parse::<u16>() {
                    Ok(code) if RETRY_STATUSES.contains(&code) => r.set_status(code),
                    _ => {
                        return Err(format!(
                            "{other:?}: expected none, conn-failure, empty-response, junk-response, \
                             response-timeout, 0rtt-rejected, all-retryable-errors or one of {RETRY_STATUSES:?}"
                        ));
                    }
                },
            }
        }
        Ok(r)
    }

    fn set_status(&mut self, code: u16) {
        if let Some(i) = RETRY_STATUSES.iter().position(|c| *c == code) {
            self.statuses[i] = true;
        }
    }

    pub fn status(&self, code: u16) -> bool {
        RETRY_STATUSES.iter().position(|c| *c == code).is_some_and(|i| self.statuses[i])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    /// As written, for the stats page's `addr` column.
    pub address_text: String,
    pub address: SocketAddr,
    pub backup: bool,
    pub weight: u32,
    /// 0 = no limit.
    pub maxconn: u32,
    pub check: bool,
    pub inter: Duration,
    pub fastinter: Duration,
    pub downinter: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Zero = off.
    pub slowstart: Duration,
    pub observe: Observe,
    pub error_limit: u32,
    pub on_error: OnError,
    /// How long an idle upstream connection stays pooled.
    pub pool_purge_delay: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    pub name: String,
    pub mode: ProxyMode,
    pub balance: Balance,
    pub httpchk: Option<HttpCheck>,
    pub httpclose: bool,
    pub forwardfor: bool,
    pub retries: u32,
    pub redispatch: bool,
    /// New requests pass over a server a connection just failed to (obsd's addition).
    pub hold_failed_servers: bool,
    pub retry_on: RetryOn,
    pub timeout_connect: Duration,
    pub timeout_server: Duration,
    pub timeout_queue: Duration,
    /// None = the server's `inter`.
    pub timeout_check: Option<Duration>,
    pub servers: Vec<ServerConfig>,
}

#[derive(Debug, Clone)]
pub struct BalancerConfig {
    pub listen: ListenerConfig,
    pub stats_uri: String,
    pub stats_auth: BTreeMap<String, PasswordCheck>,
    pub stats_realm: String,
    pub stats_admin: bool,
    pub stats_refresh: Duration,
    /// None: one per CPU. Fixed at start, as HAProxy's (a reload keeps the running count).
    pub nbthread: Option<usize>,
    pub frontends: Vec<FrontendConfig>,
    pub backends: Vec<BackendConfig>,
}

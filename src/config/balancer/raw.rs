//! `[balancer]` as written: every key optional, unknown keys rejected, spans kept for
//! file:line errors.

use super::super::Secret;
use super::super::check::{RawListener, RawTls};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBalancer {
    /// The stats listener (HAProxy's `listen stats` bind), also serving `/metrics`.
    pub listen: RawListener,
    pub stats_uri: Option<Spanned<String>>,
    /// `user:password` entries, as HAProxy's `stats auth` lines; the password may be a bcrypt hash.
    pub stats_auth: Vec<Spanned<Secret>>,
    pub stats_realm: Option<Spanned<String>>,
    /// HAProxy's `stats admin if TRUE` for authenticated users.
    pub stats_admin: Option<bool>,
    pub stats_refresh: Option<Spanned<String>>,
    /// HAProxy's `nbthread`: threads serving client connections; default one per CPU.
    pub nbthread: Option<Spanned<u32>>,
    pub defaults: RawDefaults,
    pub frontends: Vec<RawFrontend>,
    pub backends: Vec<RawBackend>,
}

/// HAProxy's `defaults` section: values frontends and backends inherit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDefaults {
    pub mode: Option<Spanned<String>>,
    pub balance: Option<Spanned<String>>,
    pub retries: Option<u32>,
    pub redispatch: Option<bool>,
    pub hold_failed_servers: Option<bool>,
    pub retry_on: Option<Spanned<String>>,
    pub httpclose: Option<bool>,
    pub forwardfor: Option<bool>,
    pub maxconn: Option<usize>,
    pub timeout_connect: Option<Spanned<String>>,
    pub timeout_client: Option<Spanned<String>>,
    pub timeout_server: Option<Spanned<String>>,
    pub timeout_queue: Option<Spanned<String>>,
    pub timeout_check: Option<Spanned<String>>,
    pub timeout_http_request: Option<Spanned<String>>,
    pub timeout_http_keep_alive: Option<Spanned<String>>,
    pub default_server: Option<RawServerDefaults>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFrontend {
    pub name: Option<Spanned<String>>,
    pub bind: Option<Spanned<String>>,
    pub tls: Option<RawTls>,
    /// Protocols offered by TLS ALPN, HAProxy's `alpn h2,http/1.1` (the default).
    pub alpn: Option<Spanned<Vec<String>>>,
    pub mode: Option<Spanned<String>>,
    pub default_backend: Option<Spanned<String>>,
    /// HAProxy's `acl <name> <criterion> <values>`: a string, or a list of them (ORed, as
    /// several `acl` lines with one name).
    pub acls: BTreeMap<String, Spanned<toml::Value>>,
    /// HAProxy's `use_backend <name> if|unless <condition>`, first match wins.
    pub use_backend: Vec<RawUseBackend>,
    pub maxconn: Option<usize>,
    pub timeout_client: Option<Spanned<String>>,
    pub timeout_http_request: Option<Spanned<String>>,
    pub timeout_http_keep_alive: Option<Spanned<String>>,
    /// HAProxy's `tune.bufsize`-bounded request head: larger heads get 431/400.
    pub max_header_bytes: Option<usize>,
    /// HAProxy's `tune.http.maxhdr` (101).
    pub max_header_count: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUseBackend {
    pub backend: Option<Spanned<String>>,
    #[serde(rename = "if")]
    pub if_: Option<Spanned<String>>,
    pub unless: Option<Spanned<String>>,
}

/// Settings a `server` line may carry; `default_server` supplies them for every server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServerDefaults {
    pub weight: Option<Spanned<u32>>,
    pub maxconn: Option<u32>,
    pub check: Option<bool>,
    pub inter: Option<Spanned<String>>,
    pub fastinter: Option<Spanned<String>>,
    pub downinter: Option<Spanned<String>>,
    pub rise: Option<Spanned<u32>>,
    pub fall: Option<Spanned<u32>>,
    pub slowstart: Option<Spanned<String>>,
    pub observe: Option<Spanned<String>>,
    pub error_limit: Option<Spanned<u32>>,
    pub on_error: Option<Spanned<String>>,
    pub pool_purge_delay: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub name: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    pub backup: Option<bool>,
    pub weight: Option<Spanned<u32>>,
    pub maxconn: Option<u32>,
    pub check: Option<bool>,
    pub inter: Option<Spanned<String>>,
    pub fastinter: Option<Spanned<String>>,
    pub downinter: Option<Spanned<String>>,
    pub rise: Option<Spanned<u32>>,
    pub fall: Option<Spanned<u32>>,
    pub slowstart: Option<Spanned<String>>,
    pub observe: Option<Spanned<String>>,
    pub error_limit: Option<Spanned<u32>>,
    pub on_error: Option<Spanned<String>>,
    pub pool_purge_delay: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttpCheck {
    /// Default `OPTIONS`, as a bare `option httpchk`.
    pub method: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    /// Default `HTTP/1.0`.
    pub version: Option<Spanned<String>>,
    /// `http-check expect status`: `"200"`, `"200-399"` or `"200,204"`. Default 2xx and 3xx.
    pub expect_status: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBackend {
    pub name: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub balance: Option<Spanned<String>>,
    /// Present = `option httpchk`; absent = TCP connect checks.
    pub httpchk: Option<RawHttpCheck>,
    pub httpclose: Option<bool>,
    pub forwardfor: Option<bool>,
    pub retries: Option<u32>,
    pub redispatch: Option<bool>,
    pub hold_failed_servers: Option<bool>,
    /// HAProxy's `retry-on` keywords, space-separated.
    pub retry_on: Option<Spanned<String>>,
    pub timeout_connect: Option<Spanned<String>>,
    pub timeout_server: Option<Spanned<String>>,
    pub timeout_queue: Option<Spanned<String>>,
    pub timeout_check: Option<Spanned<String>>,
    pub default_server: Option<RawServerDefaults>,
    pub servers: Vec<RawServer>,
}

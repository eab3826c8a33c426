//! What every part of the config checker shares: the listener and TLS tables all roles and
//! frontends write, and the `Checker` that resolves values while collecting every problem and
//! warning with its line. The role sections (`validate`), the balancer's (`balancer`) and the
//! plugins' (`plugins`) each extend it, and import nothing of each other.

use super::listeners::ListenSite;
use super::{ConfigProblem, ListenerConfig, PasswordCheck, Secret, TlsConfig, line_col, parse_duration};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// The one listener shape every HTTP endpoint of every role shares.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawListener {
    pub address: Option<Spanned<String>>,
    pub tls: Option<RawTls>,
    /// user → password: a bcrypt hash (`$2y$…`, as Prometheus's web config) or `plain:<secret>`.
    pub basic_auth_users: Option<BTreeMap<String, Spanned<Secret>>>,
    pub max_connections: Option<usize>,
    pub header_read_timeout: Option<Spanned<String>>,
    pub read_timeout: Option<Spanned<String>>,
    pub max_header_bytes: Option<usize>,
    pub max_body_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: Spanned<String>,
    pub key_file: Spanned<Secret>,
}

pub(super) struct Checker<'a> {
    pub(super) text: &'a str,
    pub(super) problems: Vec<ConfigProblem>,
    pub(super) warnings: Vec<ConfigProblem>,
    /// Every socket of every role, for the clash check once all are resolved.
    pub(super) sites: Vec<ListenSite>,
    /// The obsd config file's directory: relative paths in it are read from there.
    pub(super) base_dir: PathBuf,
}

impl Checker<'_> {
    pub(super) fn site(
        &mut self,
        key: &str,
        address: SocketAddr,
        udp: bool,
        value: Option<&Spanned<String>>,
    ) {
        let Some(role) = ListenSite::role_of(key) else { return };
        let at = value.map(|v| line_col(self.text, v.span().start));
        self.sites.push(ListenSite { role, key: key.to_string(), address, udp, at });
    }

    pub(super) fn warning<T>(&mut self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) {
        let (line, column) = line_col(self.text, spanned.span().start);
        self.warnings.push(ConfigProblem { line, column, key: key.to_string(), message: message.into() });
    }

    /// A listener's or frontend's `tls` table: both files must exist.
    pub(super) fn tls(&mut self, t: &RawTls, key: &str) -> TlsConfig {
        if !std::path::Path::new(t.cert_file.get_ref()).is_file() {
            self.problem(
                &t.cert_file,
                &format!("{key}.tls.cert_file"),
                format!("file {:?} does not exist", t.cert_file.get_ref()),
            );
        }
        // The key's path is a secret like the key (status pages show `<secret>`); the
        // problem's line and key say which setting it is.
        if !std::path::Path::new(t.key_file.get_ref().expose()).is_file() {
            self.problem(&t.key_file, &format!("{key}.tls.key_file"), "file does not exist");
        }
        TlsConfig { cert_file: t.cert_file.get_ref().into(), key_file: t.key_file.get_ref().clone() }
    }

    pub(super) fn problem<T>(&mut self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) {
        let (line, column) = line_col(self.text, spanned.span().start);
        self.problems.push(ConfigProblem { line, column, key: key.to_string(), message: message.into() });
    }

    pub(super) fn duration(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) => d,
                Err(e) => {
                    self.problem(v, key, e.to_string());
                    default
                }
            },
        }
    }

    pub(super) fn regex(&mut self, value: &Option<Spanned<String>>, key: &str, default: &str) -> Regex {
        let fallback = || Regex::new(default).unwrap_or_else(|_| Regex::new("$^").expect("trivial regex"));
        match value {
            None => fallback(),
            Some(v) => match Regex::new(v.get_ref()) {
                Ok(r) => r,
                Err(e) => {
                    self.problem(v, key, format!("invalid regular expression: {e}"));
                    fallback()
                }
            },
        }
    }

    pub(super) fn listener(&mut self, raw: &RawListener, key: &str, default_address: &str) -> ListenerConfig {
        self.listener_with_body_limit(raw, key, default_address, 32 * 1024 * 1024)
    }

    /// A listener whose `max_body_bytes` defaults to `default_body_bytes`.
    pub(super) fn listener_with_body_limit(
        &mut self,
        raw: &RawListener,
        key: &str,
        default_address: &str,
        default_body_bytes: usize,
    ) -> ListenerConfig {
        let fallback: SocketAddr = default_address.parse().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        let address = match &raw.address {
            None => fallback,
            Some(a) => match resolve_address(a.get_ref()) {
                Ok(addr) => addr,
                Err(message) => {
                    self.problem(a, &format!("{key}.address"), message);
                    fallback
                }
            },
        };
        self.site(&format!("{key}.address"), address, false, raw.address.as_ref());
        let tls = raw.tls.as_ref().map(|t| self.tls(t, key));
        let mut basic_auth_users = std::collections::BTreeMap::new();
        for (user, secret) in raw.basic_auth_users.iter().flatten() {
            let s = secret.get_ref().expose();
            let check = if let Some(plain) = s.strip_prefix("plain:") {
                PasswordCheck::Plain(Secret::new(plain))
            } else if s.starts_with("$2a$") || s.starts_with("$2b$") || s.starts_with("$2y$") {
                PasswordCheck::Bcrypt(secret.get_ref().clone())
            } else {
                self.problem(
                    secret,
                    &format!("{key}.basic_auth_users.{user}"),
                    "expected a bcrypt hash ($2y$…) or plain:<password>",
                );
                continue;
            };
            basic_auth_users.insert(user.clone(), check);
        }
        ListenerConfig {
            address,
            tls,
            basic_auth_users,
            max_connections: raw.max_connections.unwrap_or(1024),
            header_read_timeout: self.duration(
                &raw.header_read_timeout,
                &format!("{key}.header_read_timeout"),
                Duration::from_secs(10),
            ),
            // Prometheus's --web.read-timeout default.
            read_timeout: self.duration(
                &raw.read_timeout,
                &format!("{key}.read_timeout"),
                Duration::from_secs(300),
            ),
            max_header_bytes: raw.max_header_bytes.unwrap_or(64 * 1024),
            max_body_bytes: raw.max_body_bytes.unwrap_or(default_body_bytes),
        }
    }

    pub(super) fn byte_size(&mut self, value: &Option<Spanned<String>>, key: &str) -> Option<u64> {
        let s = value.as_ref()?;
        match crate::model::units::parse_byte_size(s.get_ref()) {
            Some(b) => Some(b),
            None => {
                self.problem(s, key, "not a size (expected e.g. 10GB, 512MB)");
                None
            }
        }
    }

    pub(super) fn udp_address(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: &str,
    ) -> Option<SocketAddr> {
        let address = match value {
            None => default.parse().ok(),
            Some(v) if v.get_ref().is_empty() => None,
            Some(v) => match resolve_address(v.get_ref()) {
                Ok(a) => Some(a),
                Err(message) => {
                    self.problem(v, key, message);
                    None
                }
            },
        };
        if let Some(a) = address {
            self.site(key, a, true, value.as_ref());
        }
        address
    }
}

/// Accepts `host:port`, `:port` (all interfaces, as Go programs do) and `[::1]:port`.
fn resolve_address(text: &str) -> Result<SocketAddr, String> {
    let candidate =
        if let Some(port) = text.strip_prefix(':') { format!("0.0.0.0:{port}") } else { text.to_string() };
    if let Ok(addr) = candidate.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(("localhost", port)) = candidate.rsplit_once(':')
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(([127, 0, 0, 1], port).into());
    }
    Err(format!("{text:?} is not a listen address (expected host:port, :port or [::1]:port)"))
}

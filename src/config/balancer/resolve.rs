//! Raw `[balancer]` tables → the resolved config, with HAProxy's defaults, `defaults`
//! inheritance, ACLs and every problem located by line.

use super::raw::{RawBackend, RawBalancer, RawDefaults, RawFrontend, RawServer, RawServerDefaults};
use super::{
    BackendConfig, Balance, BalancerConfig, FrontendConfig, HttpCheck, Observe, OnError, ProxyMode, RetryOn,
    ServerConfig, UseBackend,
};
use crate::config::check::Checker;
use crate::config::{PasswordCheck, Secret};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use toml::Spanned;

// HAProxy's defaults (doc/configuration.txt) where it has one; obsd's where HAProxy's is
// "infinite" (a missing timeout only draws a warning there).
const DEFAULT_INTER: Duration = Duration::from_secs(2);
const DEFAULT_RISE: u32 = 2;
const DEFAULT_FALL: u32 = 3;
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_ERROR_LIMIT: u32 = 10;
const DEFAULT_TIMEOUT_CONNECT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT_CLIENT: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT_SERVER: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT_HTTP_REQUEST: Duration = Duration::from_secs(10);
const DEFAULT_POOL_PURGE_DELAY: Duration = Duration::from_secs(5);
const DEFAULT_MAX_HEADER_COUNT: usize = 101;
const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

fn resolve_host_port(text: &str) -> Result<SocketAddr, String> {
    let candidate =
        if let Some(port) = text.strip_prefix(':') { format!("0.0.0.0:{port}") } else { text.to_string() };
    if let Ok(addr) = candidate.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Host names resolve once, at load and at each reload, as HAProxy does without `resolvers`.
    match candidate.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{text:?} resolves to no address")),
        Err(e) => Err(format!("{text:?} is not host:port or does not resolve: {e}")),
    }
}

/// The server's own value, else its backend's `default_server`, else `defaults.default_server`.
fn pick<'a, T>(
    own: Option<&'a T>,
    inherit: &Inherit<'a>,
    f: fn(&'a RawServerDefaults) -> Option<&'a T>,
) -> Option<&'a T> {
    own.or_else(|| inherit.backend.and_then(f))
        .or_else(|| inherit.defaults.default_server.as_ref().and_then(f))
}

struct Inherit<'a> {
    defaults: &'a RawDefaults,
    backend: Option<&'a RawServerDefaults>,
}

impl Checker<'_> {
    fn mode(&mut self, value: Option<&Spanned<String>>, key: &str, fallback: ProxyMode) -> ProxyMode {
        match value {
            None => fallback,
            Some(v) => match v.get_ref().as_str() {
                "http" => ProxyMode::Http,
                "tcp" => ProxyMode::Tcp,
                _ => {
                    self.problem(v, key, "expected \"http\" or \"tcp\"");
                    fallback
                }
            },
        }
    }

    fn opt_duration(&mut self, value: &Option<Spanned<String>>, key: &str) -> Option<Duration> {
        value.as_ref().map(|_| self.duration(value, key, Duration::ZERO))
    }

    /// First present of (own, backend default_server, defaults default_server).
    fn server_duration(
        &mut self,
        own: &Option<Spanned<String>>,
        pick: impl Fn(&RawServerDefaults) -> &Option<Spanned<String>>,
        inherit: &Inherit,
        key: &str,
    ) -> Option<Duration> {
        if own.is_some() {
            return self.opt_duration(own, key);
        }
        if let Some(b) = inherit.backend
            && pick(b).is_some()
        {
            return self.opt_duration(pick(b), key);
        }
        if let Some(d) = &inherit.defaults.default_server
            && pick(d).is_some()
        {
            return self.opt_duration(pick(d), key);
        }
        None
    }

    fn positive(&mut self, v: Option<&Spanned<u32>>, key: &str, default: u32) -> u32 {
        match v {
            None => default,
            Some(n) if *n.get_ref() == 0 => {
                self.problem(n, key, "must be at least 1");
                default
            }
            Some(n) => *n.get_ref(),
        }
    }

    fn server<'r>(
        &mut self,
        raw: &'r RawServer,
        inherit: &Inherit<'r>,
        key: &str,
        names: &mut BTreeSet<String>,
    ) -> Option<ServerConfig> {
        let Some(name) = &raw.name else {
            self.problems.push(crate::config::ConfigProblem {
                line: 1,
                column: 1,
                key: format!("{key}.name"),
                message: "every server needs a name".into(),
            });
            return None;
        };
        if !names.insert(name.get_ref().clone()) {
            self.problem(name, &format!("{key}.name"), "duplicate server name in this backend");
        }
        let Some(address) = &raw.address else {
            self.problem(name, &format!("{key}.address"), "server has no address (host:port)");
            return None;
        };
        let addr = match resolve_host_port(address.get_ref()) {
            Ok(a) => a,
            Err(m) => {
                self.problem(address, &format!("{key}.address"), m);
                return None;
            }
        };
        let pick_u32 = |own, f| pick(own, inherit, f);
        let weight = pick_u32(raw.weight.as_ref(), |d| d.weight.as_ref());
        let weight = match weight {
            None => 1,
            Some(w) if *w.get_ref() > 256 => {
                self.problem(w, &format!("{key}.weight"), "weight must be 0..256, as HAProxy's");
                1
            }
            Some(w) => *w.get_ref(),
        };
        let rise = pick_u32(raw.rise.as_ref(), |d| d.rise.as_ref());
        let rise = self.positive(rise, &format!("{key}.rise"), DEFAULT_RISE);
        let fall = pick_u32(raw.fall.as_ref(), |d| d.fall.as_ref());
        let fall = self.positive(fall, &format!("{key}.fall"), DEFAULT_FALL);
        let error_limit = pick_u32(raw.error_limit.as_ref(), |d| d.error_limit.as_ref());
        let error_limit = self.positive(error_limit, &format!("{key}.error_limit"), DEFAULT_ERROR_LIMIT);
        let inter = self
            .server_duration(&raw.inter, |d| &d.inter, inherit, &format!("{key}.inter"))
            .unwrap_or(DEFAULT_INTER);
        let inter = if inter.is_zero() { DEFAULT_INTER } else { inter };
        let fastinter = self
            .server_duration(&raw.fastinter, |d| &d.fastinter, inherit, &format!("{key}.fastinter"))
            .unwrap_or(inter);
        let downinter = self
            .server_duration(&raw.downinter, |d| &d.downinter, inherit, &format!("{key}.downinter"))
            .unwrap_or(inter);
        let slowstart = self
            .server_duration(&raw.slowstart, |d| &d.slowstart, inherit, &format!("{key}.slowstart"))
            .unwrap_or(Duration::ZERO);
        let pool_purge_delay = self
            .server_duration(
                &raw.pool_purge_delay,
                |d| &d.pool_purge_delay,
                inherit,
                &format!("{key}.pool_purge_delay"),
            )
            .unwrap_or(DEFAULT_POOL_PURGE_DELAY);
        let pick_str = |own, f| pick(own, inherit, f);
        let observe = match pick_str(raw.observe.as_ref(), |d| d.observe.as_ref()) {
            None => Observe::Off,
            Some(v) => match v.get_ref().as_str() {
                "layer4" => Observe::Layer4,
                "layer7" => Observe::Layer7,
                "none" | "off" => Observe::Off,
                _ => {
                    self.problem(v, &format!("{key}.observe"), "expected \"layer4\" or \"layer7\"");
                    Observe::Off
                }
            },
        };
        let on_error = match pick_str(raw.on_error.as_ref(), |d| d.on_error.as_ref()) {
            None => OnError::FailCheck,
            Some(v) => match v.get_ref().as_str() {
                "fastinter" => OnError::FastInter,
                "fail-check" | "fail_check" => OnError::FailCheck,
                "sudden-death" | "sudden_death" => OnError::SuddenDeath,
                "mark-down" | "mark_down" => OnError::MarkDown,
                _ => {
                    self.problem(
                        v,
                        &format!("{key}.on_error"),
                        "expected fastinter, fail-check, sudden-death or mark-down",
                    );
                    OnError::FailCheck
                }
            },
        };
        let maxconn = raw
            .maxconn
            .or_else(|| inherit.backend.and_then(|d| d.maxconn))
            .or_else(|| inherit.defaults.default_server.as_ref().and_then(|d| d.maxconn))
            .unwrap_or(0);
        let check = raw
            .check
            .or_else(|| inherit.backend.and_then(|d| d.check))
            .or_else(|| inherit.defaults.default_server.as_ref().and_then(|d| d.check))
            .unwrap_or(true);
        Some(ServerConfig {
            name: name.get_ref().clone(),
            address_text: address.get_ref().clone(),
            address: addr,
            backup: raw.backup.unwrap_or(false),
            weight,
            maxconn,
            check,
            inter,
            fastinter,
            downinter,
            rise,
            fall,
            slowstart,
            observe,
            error_limit,
            on_error,
            pool_purge_delay,
        })
    }

    fn backend(&mut self, raw: &RawBackend, d: &RawDefaults, key: &str) -> Option<BackendConfig> {
        let Some(name) = &raw.name else {
            self.problems.push(crate::config::ConfigProblem {
                line: 1,
                column: 1,
                key: format!("{key}.name"),
                message: "every backend needs a name".into(),
            });
            return None;
        };
        let default_mode = self.mode(d.mode.as_ref(), "balancer.defaults.mode", ProxyMode::Http);
        let mode = self.mode(raw.mode.as_ref(), &format!("{key}.mode"), default_mode);
        let balance_value = raw.balance.as_ref().or(d.balance.as_ref());
        let balance = match balance_value {
            None => Balance::RoundRobin,
            Some(b) => match b.get_ref().as_str() {
                "roundrobin" | "static-rr" => Balance::RoundRobin,
                "leastconn" => Balance::LeastConn,
                "first" => Balance::First,
                "source" => Balance::Source,
                "random" | "random(2)" => Balance::Random,
                _ => {
                    self.problem(
                        b,
                        &format!("{key}.balance"),
                        "expected roundrobin, leastconn, first, source or random",
                    );
                    Balance::RoundRobin
                }
            },
        };
        let httpchk = raw.httpchk.as_ref().map(|h| {
            let mut expect_status = Vec::new();
            if let Some(e) = &h.expect_status {
                match parse_status_ranges(e.get_ref()) {
                    Ok(r) => expect_status = r,
                    Err(m) => self.problem(e, &format!("{key}.httpchk.expect_status"), m),
                }
            }
            let path = h.path.as_ref().map(|p| p.get_ref().clone()).unwrap_or_else(|| "/".into());
            if !path.starts_with('/')
                && let Some(p) = &h.path
            {
                self.problem(p, &format!("{key}.httpchk.path"), "must start with /");
            }
            HttpCheck {
                method: h
                    .method
                    .as_ref()
                    .map(|m| m.get_ref().to_uppercase())
                    .unwrap_or_else(|| "OPTIONS".into()),
                path,
                version: h.version.as_ref().map(|v| v.get_ref().clone()).unwrap_or_else(|| "HTTP/1.0".into()),
                expect_status,
            }
        });
        let timeout_connect = self
            .opt_duration(&raw.timeout_connect, &format!("{key}.timeout_connect"))
            .or_else(|| self.opt_duration(&d.timeout_connect, "balancer.defaults.timeout_connect"))
            .unwrap_or(DEFAULT_TIMEOUT_CONNECT);
        let timeout_server = self
            .opt_duration(&raw.timeout_server, &format!("{key}.timeout_server"))
            .or_else(|| self.opt_duration(&d.timeout_server, "balancer.defaults.timeout_server"))
            .unwrap_or(DEFAULT_TIMEOUT_SERVER);
        // HAProxy: "If unspecified, the same value as the backend's connection timeout".
        let timeout_queue = self
            .opt_duration(&raw.timeout_queue, &format!("{key}.timeout_queue"))
            .or_else(|| self.opt_duration(&d.timeout_queue, "balancer.defaults.timeout_queue"))
            .unwrap_or(timeout_connect);
        let timeout_check = self
            .opt_duration(&raw.timeout_check, &format!("{key}.timeout_check"))
            .or_else(|| self.opt_duration(&d.timeout_check, "balancer.defaults.timeout_check"));
        let retry_on = match raw
            .retry_on
            .as_ref()
            .map(|r| (r, format!("{key}.retry_on")))
            .or_else(|| d.retry_on.as_ref().map(|r| (r, "balancer.defaults.retry_on".to_string())))
        {
            None => RetryOn::DEFAULT,
            Some((r, k)) => match RetryOn::parse(r.get_ref()) {
                Ok(v) => v,
                Err(m) => {
                    self.problem(r, &k, m);
                    RetryOn::DEFAULT
                }
            },
        };
        let inherit = Inherit { defaults: d, backend: raw.default_server.as_ref() };
        let mut names = BTreeSet::new();
        let servers: Vec<ServerConfig> = raw
            .servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.server(s, &inherit, &format!("{key}.servers[{i}]"), &mut names))
            .collect();
        Some(BackendConfig {
            name: name.get_ref().clone(),
            mode,
            balance,
            httpchk,
            httpclose: raw.httpclose.or(d.httpclose).unwrap_or(false),
            forwardfor: raw.forwardfor.or(d.forwardfor).unwrap_or(true),
            retries: raw.retries.or(d.retries).unwrap_or(DEFAULT_RETRIES),
            // HAProxy's default is off; obsd's is on so that a dead server costs no request.
            redispatch: raw.redispatch.or(d.redispatch).unwrap_or(true),
            hold_failed_servers: raw.hold_failed_servers.or(d.hold_failed_servers).unwrap_or(true),
            retry_on,
            timeout_connect,
            timeout_server,
            timeout_queue,
            timeout_check,
            servers,
        })
    }

    fn frontend(&mut self, raw: &RawFrontend, d: &RawDefaults, key: &str) -> Option<FrontendConfig> {
        let Some(name) = &raw.name else {
            self.problems.push(crate::config::ConfigProblem {
                line: 1,
                column: 1,
                key: format!("{key}.name"),
                message: "every frontend needs a name".into(),
            });
            return None;
        };
        let Some(bind) = &raw.bind else {
            self.problem(name, &format!("{key}.bind"), "frontend has no bind address");
            return None;
        };
        let bind_addr = match resolve_host_port(bind.get_ref()) {
            Ok(a) => a,
            Err(m) => {
                self.problem(bind, &format!("{key}.bind"), m);
                return None;
            }
        };
        if raw.default_backend.is_none() && raw.use_backend.is_empty() {
            self.problem(
                name,
                &format!("{key}.default_backend"),
                "frontend has no default_backend and no use_backend",
            );
            return None;
        }
        let use_backend = self.use_backend_rules(raw, key);
        let tls = raw.tls.as_ref().map(|t| self.tls(t, key));
        let alpn = match &raw.alpn {
            None => vec!["h2".to_string(), "http/1.1".to_string()],
            Some(list) => {
                let bad = list.get_ref().iter().find(|p| !["h2", "http/1.1"].contains(&p.as_str()));
                if let Some(p) = bad {
                    self.problem(
                        list,
                        &format!("{key}.alpn"),
                        format!("{p:?}: expected \"h2\" or \"http/1.1\""),
                    );
                } else if list.get_ref().is_empty() {
                    self.problem(list, &format!("{key}.alpn"), "offer at least one of \"h2\", \"http/1.1\"");
                }
                list.get_ref().clone()
            }
        };
        let default_mode = self.mode(d.mode.as_ref(), "balancer.defaults.mode", ProxyMode::Http);
        let timeout_http_request = self
            .opt_duration(&raw.timeout_http_request, &format!("{key}.timeout_http_request"))
            .or_else(|| self.opt_duration(&d.timeout_http_request, "balancer.defaults.timeout_http_request"))
            .unwrap_or(DEFAULT_TIMEOUT_HTTP_REQUEST);
        Some(FrontendConfig {
            name: name.get_ref().clone(),
            bind: bind_addr,
            tls,
            alpn,
            mode: self.mode(raw.mode.as_ref(), &format!("{key}.mode"), default_mode),
            default_backend: raw.default_backend.as_ref().map(|b| b.get_ref().clone()),
            use_backend,
            maxconn: raw.maxconn.or(d.maxconn).unwrap_or(4096),
            timeout_client: self
                .opt_duration(&raw.timeout_client, &format!("{key}.timeout_client"))
                .or_else(|| self.opt_duration(&d.timeout_client, "balancer.defaults.timeout_client"))
                .unwrap_or(DEFAULT_TIMEOUT_CLIENT),
            timeout_http_request,
            // HAProxy: "If not set, timeout http-request applies".
            timeout_http_keep_alive: self
                .opt_duration(&raw.timeout_http_keep_alive, &format!("{key}.timeout_http_keep_alive"))
                .or_else(|| {
                    self.opt_duration(&d.timeout_http_keep_alive, "balancer.defaults.timeout_http_keep_alive")
                })
                .unwrap_or(timeout_http_request),
            max_header_bytes: raw.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            max_header_count: raw.max_header_count.unwrap_or(DEFAULT_MAX_HEADER_COUNT),
        })
    }

    /// Resolves a frontend's `acls` and `use_backend` rules (backend names are checked later,
    /// once every backend is known).
    fn use_backend_rules(&mut self, raw: &RawFrontend, key: &str) -> Vec<UseBackend> {
        let mut acls: BTreeMap<&str, Vec<crate::config::acl::Acl>> = BTreeMap::new();
        for (name, value) in &raw.acls {
            let akey = format!("{key}.acls.{name}");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c)) {
                self.problem(value, &akey, "ACL names are letters, digits, '_', '-', '.' and ':'");
                continue;
            }
            let texts: Vec<String> = match value.get_ref() {
                toml::Value::String(s) => vec![s.clone()],
                toml::Value::Array(items) if items.iter().all(|i| i.is_str()) => {
                    items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
                }
                _ => {
                    self.problem(value, &akey, "expected \"<fetch> [flags] <values>\" or a list of them");
                    continue;
                }
            };
            let mut parsed = Vec::new();
            for text in texts {
                match crate::config::acl::Acl::parse(&text.split_whitespace().collect::<Vec<_>>()) {
                    Ok(a) => parsed.push(a),
                    Err(m) => self.problem(value, &akey, m),
                }
            }
            acls.insert(name.as_str(), parsed);
        }
        let lookup = |n: &str| acls.get(n).cloned();
        let mut rules = Vec::new();
        for (i, rule) in raw.use_backend.iter().enumerate() {
            let rkey = format!("{key}.use_backend[{i}]");
            let Some(backend) = &rule.backend else {
                let at = rule.if_.as_ref().or(rule.unless.as_ref());
                match at {
                    Some(at) => {
                        self.problem(at, &format!("{rkey}.backend"), "use_backend rule names no backend")
                    }
                    None => self.problems.push(crate::config::ConfigProblem {
                        line: 1,
                        column: 1,
                        key: format!("{rkey}.backend"),
                        message: "use_backend rule names no backend".into(),
                    }),
                }
                continue;
            };
            let (text, unless, ckey) = match (&rule.if_, &rule.unless) {
                (Some(c), None) => (c, false, format!("{rkey}.if")),
                (None, Some(c)) => (c, true, format!("{rkey}.unless")),
                (Some(c), Some(_)) => {
                    self.problem(c, &rkey, "give `if` or `unless`, not both");
                    continue;
                }
                (None, None) => {
                    self.problem(
                        backend,
                        &rkey,
                        "use_backend needs `if` or `unless` (else use default_backend)",
                    );
                    continue;
                }
            };
            match crate::config::acl::Condition::parse(text.get_ref(), unless, &lookup) {
                Ok(condition) => rules.push(UseBackend {
                    backend: backend.get_ref().clone(),
                    condition,
                    condition_text: format!("{} {}", if unless { "unless" } else { "if" }, text.get_ref()),
                }),
                Err(m) => self.problem(text, &ckey, m),
            }
        }
        rules
    }

    /// Checks that a backend a frontend names exists and speaks the frontend's mode.
    fn check_backend_ref(
        &mut self,
        at: &Spanned<String>,
        key: &str,
        frontend: &FrontendConfig,
        mode_given: bool,
        backends: &[BackendConfig],
    ) {
        match backends.iter().find(|b| &b.name == at.get_ref()) {
            None => self.problem(at, key, format!("no backend named {:?}", at.get_ref())),
            Some(b) if b.mode != frontend.mode && (frontend.mode != ProxyMode::Tcp || mode_given) => self
                .problem(
                    at,
                    key,
                    format!(
                        "frontend mode {} does not match backend {:?} mode {}",
                        frontend.mode.as_str(),
                        b.name,
                        b.mode.as_str()
                    ),
                ),
            _ => {}
        }
    }

    pub(in crate::config) fn balancer(&mut self, raw: &RawBalancer) -> BalancerConfig {
        let listen = self.listener(&raw.listen, "balancer.listen", "0.0.0.0:8404");
        let stats_uri =
            raw.stats_uri.as_ref().map(|u| u.get_ref().clone()).unwrap_or_else(|| "/stats".into());
        if let Some(u) = &raw.stats_uri
            && (!stats_uri.starts_with('/')
                || ["/metrics", "/-/healthy", "/-/ready"].contains(&stats_uri.as_str()))
        {
            self.problem(
                u,
                "balancer.stats_uri",
                "must start with / and not be /metrics, /-/healthy or /-/ready",
            );
        }
        let mut stats_auth = BTreeMap::new();
        for (i, entry) in raw.stats_auth.iter().enumerate() {
            match entry.get_ref().expose().split_once(':') {
                Some((user, pass)) if !user.is_empty() => {
                    let check =
                        if pass.starts_with("$2a$") || pass.starts_with("$2b$") || pass.starts_with("$2y$") {
                            PasswordCheck::Bcrypt(Secret::new(pass))
                        } else {
                            PasswordCheck::Plain(Secret::new(pass))
                        };
                    stats_auth.insert(user.to_string(), check);
                }
                _ => self.problem(entry, &format!("balancer.stats_auth[{i}]"), "expected \"user:password\""),
            }
        }
        let d = &raw.defaults;
        let mut backends = Vec::new();
        let mut backend_names = BTreeSet::new();
        for (i, b) in raw.backends.iter().enumerate() {
            let key = format!("balancer.backends[{i}]");
            if let Some(resolved) = self.backend(b, d, &key) {
                if !backend_names.insert(resolved.name.clone())
                    && let Some(n) = &b.name
                {
                    self.problem(n, &format!("{key}.name"), "duplicate backend name");
                }
                backends.push(resolved);
            }
        }
        let mut frontends: Vec<FrontendConfig> = Vec::new();
        for (i, f) in raw.frontends.iter().enumerate() {
            let key = format!("balancer.frontends[{i}]");
            let Some(resolved) = self.frontend(f, d, &key) else { continue };
            if let Some(n) = &f.name
                && frontends.iter().any(|x| x.name == resolved.name)
            {
                self.problem(n, &format!("{key}.name"), "duplicate frontend name");
            }
            // Clashes with the stats listener and other frontends are found with every role's.
            self.site(&format!("{key}.bind"), resolved.bind, false, f.bind.as_ref());
            if let Some(db) = &f.default_backend {
                self.check_backend_ref(
                    db,
                    &format!("{key}.default_backend"),
                    &resolved,
                    f.mode.is_some(),
                    &backends,
                );
            }
            for (j, rule) in f.use_backend.iter().enumerate() {
                if let Some(b) = &rule.backend {
                    let rkey = format!("{key}.use_backend[{j}].backend");
                    self.check_backend_ref(b, &rkey, &resolved, f.mode.is_some(), &backends);
                    if backends.iter().any(|x| &x.name == b.get_ref() && x.mode == ProxyMode::Tcp) {
                        self.problem(
                            b,
                            &rkey,
                            "use_backend switches HTTP requests; a tcp backend cannot take them",
                        );
                    }
                }
            }
            frontends.push(resolved);
        }
        // HAProxy upgrades a mode-less (tcp) frontend to http when its backend is http; the
        // `defaults` mode is the only way a frontend gets tcp without saying so.
        for f in &mut frontends {
            if let Some(b) = backends.iter().find(|b| Some(&b.name) == f.default_backend.as_ref()) {
                f.mode = b.mode;
            } else if !f.use_backend.is_empty() {
                f.mode = ProxyMode::Http;
            }
        }
        BalancerConfig {
            listen,
            stats_uri,
            stats_auth,
            stats_realm: raw
                .stats_realm
                .as_ref()
                .map(|r| r.get_ref().clone())
                .unwrap_or_else(|| "HAProxy Statistics".into()),
            stats_admin: raw.stats_admin.unwrap_or(false),
            stats_refresh: self.duration(
                &raw.stats_refresh,
                "balancer.stats_refresh",
                Duration::from_secs(10),
            ),
            nbthread: raw.nbthread.as_ref().map(|n| self.positive(Some(n), "balancer.nbthread", 1) as usize),
            frontends,
            backends,
        }
    }
}

/// `"200"`, `"200-399"`, `"200,204,300-399"` → inclusive ranges.
pub fn parse_status_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c));
        match (parse(lo), parse(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => out.push((lo, hi)),
            _ => return Err(format!("{part:?} is not a status code or range like 200-399")),
        }
    }
    if out.is_empty() {
        return Err("expected a status code or range like 200-399".into());
    }
    Ok(out)
}

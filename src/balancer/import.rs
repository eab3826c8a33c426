//! `obsd balancer import-haproxy haproxy.cfg`: translates HAProxy's configuration into the
//! `[balancer]` TOML, line by line, and names every line it could not translate (with its
//! line number) instead of guessing.

use std::fmt::Write;

#[derive(Debug, Default)]
pub struct Imported {
    pub toml: String,
    /// `line N: <text>: <why>` for everything left out.
    pub untranslated: Vec<String>,
}

#[derive(Default)]
struct Section {
    kind: String,
    name: String,
    line: usize,
    mode: Option<String>,
    binds: Vec<String>,
    tls: Option<(String, String)>,
    default_backend: Option<String>,
    balance: Option<String>,
    httpchk: Option<Vec<String>>,
    expect_status: Option<String>,
    flags: Vec<(String, bool)>,
    numbers: Vec<(String, u64)>,
    timeouts: Vec<(String, String)>,
    default_server: Vec<(String, String)>,
    servers: Vec<Vec<(String, String)>>,
    stats: bool,
    stats_uri: Option<String>,
    stats_auth: Vec<String>,
    stats_admin: bool,
    stats_realm: Option<String>,
    stats_refresh: Option<String>,
    alpn: Option<Vec<String>>,
    /// `acl <name> <criterion...>` in file order.
    acls: Vec<(String, String)>,
    /// `use_backend <backend> if|unless <condition>` in file order.
    use_backend: Vec<(String, String, String)>,
    retry_on: Option<String>,
}

/// HAProxy time (`5s`, `100ms`, `2m`, bare number = ms) → obsd duration string.
fn time(value: &str) -> Option<String> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (num, unit) = value.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit {
        "" | "ms" => Some(format!("{n}ms")),
        "us" => Some(format!("{}ms", n.div_ceil(1000))),
        "s" | "m" | "h" | "d" => Some(format!("{n}{unit}")),
        _ => None,
    }
}

fn address(value: &str) -> String {
    let first = value.split(',').next().unwrap_or(value);
    if let Some(port) = first.strip_prefix("*:") {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = first.strip_prefix("0.0.0.0:") {
        format!("0.0.0.0:{port}")
    } else {
        first.to_string()
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Server-line keywords obsd knows, with their TOML key and whether they take a time value.
fn server_param(word: &str) -> Option<(&'static str, ParamKind)> {
    Some(match word {
        "weight" => ("weight", ParamKind::Number),
        "maxconn" => ("maxconn", ParamKind::Number),
        "inter" => ("inter", ParamKind::Time),
        "fastinter" => ("fastinter", ParamKind::Time),
        "downinter" => ("downinter", ParamKind::Time),
        "rise" => ("rise", ParamKind::Number),
        "fall" => ("fall", ParamKind::Number),
        "slowstart" => ("slowstart", ParamKind::Time),
        "observe" => ("observe", ParamKind::Text),
        "error-limit" => ("error_limit", ParamKind::Number),
        "on-error" => ("on_error", ParamKind::Text),
        "pool-purge-delay" => ("pool_purge_delay", ParamKind::Time),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum ParamKind {
    Number,
    Time,
    Text,
}

/// Parses `check`, `backup` and `key value` pairs of a server or default-server line.
fn server_params(words: &[&str], line: usize, raw: &str, out: &mut Vec<String>) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w {
            "check" => params.push(("check".into(), "true".into())),
            "backup" => params.push(("backup".into(), "true".into())),
            "no-check" => params.push(("check".into(), "false".into())),
            _ => match server_param(w) {
                Some((key, kind)) if i + 1 < words.len() => {
                    let v = words[i + 1];
                    let rendered = match kind {
                        ParamKind::Number => v.parse::<u64>().ok().map(|n| n.to_string()),
                        ParamKind::Time => time(v).map(|t| quote(&t)),
                        ParamKind::Text => Some(quote(v)),
                    };
                    match rendered {
                        Some(r) => params.push((key.into(), r)),
                        None => {
                            out.push(format!("line {line}: {raw}: `{w} {v}` has a value obsd cannot read"))
                        }
                    }
                    i += 1;
                }
                _ => out.push(format!("line {line}: {raw}: server option `{w}` is not supported")),
            },
        }
        i += 1;
    }
    params
}

pub fn translate(text: &str) -> Imported {
    let mut untranslated = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut defaults = Section { kind: "defaults".into(), ..Default::default() };
    let mut in_defaults = false;
    let mut nbthread: Option<u32> = None;
    for (i, full) in text.lines().enumerate() {
        let line = i + 1;
        let content = full.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let words: Vec<&str> = content.split_whitespace().collect();
        let keyword = words[0];
        match keyword {
            "global" => {
                in_defaults = false;
                sections.push(Section { kind: "global".into(), line, ..Default::default() });
                continue;
            }
            "defaults" => {
                in_defaults = true;
                continue;
            }
            "frontend" | "backend" | "listen" => {
                in_defaults = false;
                let name = words.get(1).copied().unwrap_or("unnamed").to_string();
                sections.push(Section { kind: keyword.into(), name, line, ..Default::default() });
                continue;
            }
            "userlist" | "peers" | "resolvers" | "mailers" | "cache" | "program" | "http-errors" | "ring" => {
                in_defaults = false;
                untranslated
                    .push(format!("line {line}: {content}: section `{keyword}` has no obsd equivalent"));
                sections.push(Section { kind: "ignored".into(), line, ..Default::default() });
                continue;
            }
            _ => {}
        }
        let section = if in_defaults {
            &mut defaults
        } else {
            match sections.last_mut() {
                Some(s) => s,
                None => {
                    untranslated.push(format!("line {line}: {content}: outside any section"));
                    continue;
                }
            }
        };
        if section.kind == "ignored" {
            continue;
        }
        if section.kind == "global" {
            if keyword == "nbthread"
                && let Some(n) = words.get(1).and_then(|n| n.parse::<u32>().ok()).filter(|n| *n > 0)
            {
                nbthread = Some(n);
                continue;
            }
            untranslated.push(format!(
                "line {line}: {content}: global settings are process-wide in HAProxy; obsd has no equivalent"
            ));
            continue;
        }
        let mut skip = |why: &str| untranslated.push(format!("line {line}: {content}: {why}"));
        match (keyword, words.get(1).copied()) {
            ("mode", Some(m)) if m == "http" || m == "tcp" => section.mode = Some(m.into()),
            ("bind", Some(addr)) => {
                section.binds.push(address(addr));
                if let Some(pos) = words.iter().position(|w| *w == "alpn") {
                    match words.get(pos + 1) {
                        Some(list) => section.alpn = Some(list.split(',').map(str::to_string).collect()),
                        None => skip("alpn needs a protocol list"),
                    }
                }
                if let Some(pos) = words.iter().position(|w| *w == "crt") {
                    let crt = words.get(pos + 1).copied().unwrap_or("");
                    section.tls = Some((crt.to_string(), crt.to_string()));
                    skip(
                        "TLS: HAProxy's crt holds certificate and key in one PEM; obsd was given the same file for both, check it",
                    );
                } else if words.len() > 2 && !words.contains(&"alpn") {
                    skip("bind options beyond the address are not translated");
                }
                if addr.contains(',') {
                    skip("only the first of several bind addresses is translated");
                }
            }
            ("default_backend", Some(b)) => section.default_backend = Some(b.into()),
            ("acl", Some(name)) if words.len() > 2 && section.kind != "backend" && !in_defaults => {
                section.acls.push((name.into(), words[2..].join(" ")))
            }
            ("acl", _) => skip("only frontend ACLs, for use_backend, are translated"),
            ("use_backend", Some(b)) => match words.get(2).copied() {
                Some(kind @ ("if" | "unless")) if words.len() > 3 && !b.contains('%') => {
                    section.use_backend.push((b.into(), kind.into(), words[3..].join(" ")))
                }
                _ if b.contains('%') => skip("dynamic backend names (%[...]) are not supported"),
                _ => skip("use_backend needs `if` or `unless` and a condition"),
            },
            ("retry-on", Some(_)) => section.retry_on = Some(words[1..].join(" ")),
            ("balance", Some(b)) => {
                if ["roundrobin", "static-rr", "leastconn", "first", "source", "random"].contains(&b) {
                    section.balance = Some(b.into());
                } else {
                    skip(
                        "balance algorithm not supported (roundrobin, leastconn, first, source, random are)",
                    );
                }
            }
            ("retries", Some(n)) => match n.parse() {
                Ok(n) => section.numbers.push(("retries".into(), n)),
                Err(_) => skip("retries needs a number"),
            },
            ("maxconn", Some(n)) => match n.parse() {
                Ok(n) => section.numbers.push(("maxconn".into(), n)),
                Err(_) => skip("maxconn needs a number"),
            },
            ("timeout", Some(which)) => {
                let key = match which {
                    "connect" => "timeout_connect",
                    "client" => "timeout_client",
                    "server" => "timeout_server",
                    "queue" => "timeout_queue",
                    "check" => "timeout_check",
                    "http-request" => "timeout_http_request",
                    "http-keep-alive" => "timeout_http_keep_alive",
                    _ => {
                        skip("this timeout has no obsd equivalent");
                        continue;
                    }
                };
                match words.get(2).and_then(|v| time(v)) {
                    Some(t) => section.timeouts.push((key.into(), t)),
                    None => skip("timeout value not understood"),
                }
            }
            ("option", Some(opt)) => match opt {
                "httpchk" => section.httpchk = Some(words[2..].iter().map(|s| s.to_string()).collect()),
                "httpclose" | "http-server-close" | "forceclose" => {
                    section.flags.push(("httpclose".into(), true))
                }
                "forwardfor" => section.flags.push(("forwardfor".into(), true)),
                "redispatch" => section.flags.push(("redispatch".into(), true)),
                "http-keep-alive" => section.flags.push(("httpclose".into(), false)),
                "httplog" | "tcplog" | "dontlognull" | "log-health-checks" => {
                    skip("logging options are not translated; obsd logs through tracing")
                }
                _ => skip("option not supported"),
            },
            ("no", Some("option")) => match words.get(2).copied() {
                Some("redispatch") => section.flags.push(("redispatch".into(), false)),
                Some("httpclose") => section.flags.push(("httpclose".into(), false)),
                Some("forwardfor") => section.flags.push(("forwardfor".into(), false)),
                _ => skip("option not supported"),
            },
            ("http-check", Some("expect")) => match (words.get(2).copied(), words.get(3).copied()) {
                (Some("status"), Some(code)) => section.expect_status = Some(code.into()),
                _ => skip("only `http-check expect status <code>` is translated"),
            },
            ("default-server", _) => {
                section.default_server = server_params(&words[1..], line, content, &mut untranslated);
            }
            ("server", Some(name)) => {
                let Some(addr) = words.get(2) else {
                    skip("server line without an address");
                    continue;
                };
                let mut params =
                    vec![("name".to_string(), quote(name)), ("address".to_string(), quote(addr))];
                params.extend(server_params(&words[3..], line, content, &mut untranslated));
                section.servers.push(params);
            }
            ("stats", Some(what)) => {
                section.stats = true;
                match what {
                    "enable" => {}
                    "uri" => section.stats_uri = words.get(2).map(|s| s.to_string()),
                    "auth" => section.stats_auth.extend(words.get(2).map(|s| s.to_string())),
                    "realm" => section.stats_realm = Some(words[2..].join(" ")),
                    "refresh" => section.stats_refresh = words.get(2).and_then(|v| time(v)),
                    "admin" => {
                        section.stats_admin = true;
                        if words.get(2..) != Some(&["if", "TRUE"][..]) {
                            skip(
                                "stats admin conditions are not translated: every authenticated user gets admin",
                            )
                        }
                    }
                    _ => skip("stats option not supported"),
                }
            }
            ("log", _) => skip("logging is not translated; obsd logs through tracing"),
            _ => skip("not supported by obsd's balancer"),
        }
    }

    let mut o = String::new();
    let _ = writeln!(o, "# Translated from haproxy.cfg by `obsd balancer import-haproxy`.");
    let stats = sections.iter().find(|s| s.kind == "listen" && s.stats);
    let _ = writeln!(o, "[balancer]");
    if let Some(n) = nbthread {
        let _ = writeln!(o, "nbthread = {n}");
    }
    if let Some(s) = stats {
        if let Some(uri) = &s.stats_uri {
            let _ = writeln!(o, "stats_uri = {}", quote(uri));
        }
        if !s.stats_auth.is_empty() {
            let list: Vec<String> = s.stats_auth.iter().map(|a| quote(a)).collect();
            let _ = writeln!(o, "stats_auth = [{}]", list.join(", "));
        }
        if s.stats_admin {
            let _ = writeln!(o, "stats_admin = true");
        }
        if let Some(r) = &s.stats_realm {
            let _ = writeln!(o, "stats_realm = {}", quote(r.trim_matches('"')));
        }
        if let Some(r) = &s.stats_refresh {
            let _ = writeln!(o, "stats_refresh = {}", quote(r));
        }
        if let Some(bind) = s.binds.first() {
            let _ = writeln!(o, "\n[balancer.listen]\naddress = {}", quote(bind));
        }
        if !s.servers.is_empty() {
            untranslated.push(format!(
                "line {}: listen {}: servers in the stats section are not translated",
                s.line, s.name
            ));
        }
    } else {
        let _ = writeln!(
            o,
            "# no `listen` section with stats: the stats page keeps obsd's defaults (:8404 /stats)"
        );
    }
    let has_defaults = defaults.mode.is_some()
        || defaults.balance.is_some()
        || defaults.retry_on.is_some()
        || !defaults.flags.is_empty()
        || !defaults.numbers.is_empty()
        || !defaults.timeouts.is_empty()
        || !defaults.default_server.is_empty();
    if has_defaults {
        let _ = writeln!(o, "\n[balancer.defaults]");
        if let Some(m) = &defaults.mode {
            let _ = writeln!(o, "mode = {}", quote(m));
        }
        if let Some(b) = &defaults.balance {
            let _ = writeln!(o, "balance = {}", quote(b));
        }
        write_common(&mut o, &defaults, true);
        if !defaults.default_server.is_empty() {
            let _ = writeln!(o, "\n[balancer.defaults.default_server]");
            for (k, v) in &defaults.default_server {
                let _ = writeln!(o, "{k} = {v}");
            }
        }
    } else {
        // HAProxy's mode without `defaults` is tcp; obsd's default is http, so say it.
        let _ = writeln!(
            o,
            "\n[balancer.defaults]\nmode = \"tcp\"   # HAProxy's implicit mode without a defaults section"
        );
    }
    for s in sections.iter().filter(|s| s.kind == "frontend" || (s.kind == "listen" && !s.stats)) {
        let Some(bind) = s.binds.first() else {
            untranslated.push(format!("line {}: {} {}: no bind line; left out", s.line, s.kind, s.name));
            continue;
        };
        let backend = if s.kind == "listen" { Some(s.name.clone()) } else { s.default_backend.clone() };
        if backend.is_none() && s.use_backend.is_empty() {
            untranslated.push(format!(
                "line {}: frontend {}: no default_backend and no use_backend; left out",
                s.line, s.name
            ));
            continue;
        }
        let _ = writeln!(o, "\n[[balancer.frontends]]\nname = {}\nbind = {}", quote(&s.name), quote(bind));
        if let Some(b) = &backend {
            let _ = writeln!(o, "default_backend = {}", quote(b));
        }
        if let Some(alpn) = &s.alpn {
            let list: Vec<String> = alpn.iter().map(|p| quote(p)).collect();
            let _ = writeln!(o, "alpn = [{}]", list.join(", "));
        }
        if !s.acls.is_empty() {
            // Several `acl` lines with one name are ORed: they become one list.
            let mut names: Vec<&str> = Vec::new();
            for (n, _) in &s.acls {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
            let entries: Vec<String> = names
                .iter()
                .map(|n| {
                    let defs: Vec<String> =
                        s.acls.iter().filter(|(m, _)| m == n).map(|(_, d)| quote(d)).collect();
                    let value =
                        if defs.len() == 1 { defs[0].clone() } else { format!("[{}]", defs.join(", ")) };
                    format!("{} = {value}", quote(n))
                })
                .collect();
            let _ = writeln!(o, "acls = {{ {} }}", entries.join(", "));
        }
        if let Some(m) = &s.mode {
            let _ = writeln!(o, "mode = {}", quote(m));
        }
        if let Some((cert, key)) = &s.tls {
            let _ = writeln!(o, "tls = {{ cert_file = {}, key_file = {} }}", quote(cert), quote(key));
        }
        for (k, v) in &s.numbers {
            if k == "maxconn" {
                let _ = writeln!(o, "maxconn = {v}");
            }
        }
        for (k, v) in &s.timeouts {
            if ["timeout_client", "timeout_http_request", "timeout_http_keep_alive"].contains(&k.as_str()) {
                let _ = writeln!(o, "{k} = {}", quote(v));
            } else {
                untranslated.push(format!(
                    "line {}: {} {}: {k} belongs on a backend in obsd",
                    s.line, s.kind, s.name
                ));
            }
        }
        // Array-of-tables entries come last: any key after them would land inside the rule.
        for (b, kind, cond) in &s.use_backend {
            let _ = writeln!(
                o,
                "[[balancer.frontends.use_backend]]\nbackend = {}\n{kind} = {}",
                quote(b),
                quote(cond)
            );
        }
        if s.kind == "frontend" && !s.flags.is_empty() {
            let flags: Vec<&str> = s.flags.iter().map(|(k, _)| k.as_str()).collect();
            untranslated.push(format!(
                "line {}: frontend {}: option(s) {} apply to backends in obsd; set them on its backends",
                s.line,
                s.name,
                flags.join(", ")
            ));
        }
    }
    for s in sections.iter().filter(|s| s.kind == "backend" || (s.kind == "listen" && !s.stats)) {
        let _ = writeln!(o, "\n[[balancer.backends]]\nname = {}", quote(&s.name));
        if let Some(m) = &s.mode {
            let _ = writeln!(o, "mode = {}", quote(m));
        }
        if let Some(b) = &s.balance {
            let _ = writeln!(o, "balance = {}", quote(b));
        }
        write_common(&mut o, s, false);
        if let Some(words) = &s.httpchk {
            let mut fields = Vec::new();
            // `option httpchk <uri>` alone is a path; with two or more words the first is the method.
            match words.as_slice() {
                [] => {}
                [uri] => fields.push(format!("path = {}", quote(uri))),
                [method, uri, rest @ ..] => {
                    fields.push(format!("method = {}", quote(method)));
                    fields.push(format!("path = {}", quote(uri)));
                    if let Some(v) = rest.first() {
                        fields.push(format!("version = {}", quote(v)));
                    }
                }
            }
            if let Some(e) = &s.expect_status {
                fields.push(format!("expect_status = {}", quote(e)));
            }
            let _ = writeln!(o, "httpchk = {{ {} }}", fields.join(", "));
        }
        if !s.default_server.is_empty() {
            let pairs: Vec<String> = s.default_server.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let _ = writeln!(o, "default_server = {{ {} }}", pairs.join(", "));
        }
        for server in &s.servers {
            let mut params = server.clone();
            // HAProxy checks only servers that say `check`; obsd's default is to check.
            if !params.iter().any(|(k, _)| k == "check") {
                params.push(("check".into(), "false".into()));
            }
            let _ = writeln!(o, "[[balancer.backends.servers]]");
            for (k, v) in params {
                let _ = writeln!(o, "{k} = {v}");
            }
        }
    }
    Imported { toml: o, untranslated }
}

fn write_common(o: &mut String, s: &Section, defaults: bool) {
    for (k, v) in &s.flags {
        let _ = writeln!(o, "{k} = {v}");
    }
    if let Some(r) = &s.retry_on {
        let _ = writeln!(o, "retry_on = {}", quote(r));
    }
    for (k, v) in &s.numbers {
        if k == "retries" || (defaults && k == "maxconn") {
            let _ = writeln!(o, "{k} = {v}");
        }
    }
    for (k, v) in &s.timeouts {
        let frontend_only =
            ["timeout_client", "timeout_http_request", "timeout_http_keep_alive"].contains(&k.as_str());
        if defaults || !frontend_only {
            let _ = writeln!(o, "{k} = {}", quote(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "\
global
    log /dev/log local0
    maxconn 4096
    nbthread 2

frontend prometheus_frontend
    bind *:9092
    default_backend prometheus_backends

backend prometheus_backends
    mode http
    balance leastconn
    option httpchk GET /
    option httpclose
    timeout check 5s
    default-server inter 5s fall 2 rise 3
    server replica1 127.0.0.1:9090 check
    server replica2 127.0.0.1:9091 check cookie r2

listen stats
    bind :8404
    mode http
    stats enable
    stats uri /stats
    stats auth admin:admin
";

    #[test]
    fn seed_config_translates_and_loads() {
        let out = translate(SEED);
        assert!(out.toml.contains("balance = \"leastconn\""), "{}", out.toml);
        assert!(out.toml.contains("httpchk = { method = \"GET\", path = \"/\" }"), "{}", out.toml);
        assert!(out.toml.contains("default_server = { inter = \"5s\", fall = 2, rise = 3 }"), "{}", out.toml);
        assert!(out.toml.contains("stats_auth = [\"admin:admin\"]"), "{}", out.toml);
        assert!(
            out.untranslated.iter().any(|u| u.contains("line 2") && u.contains("global")),
            "{:?}",
            out.untranslated
        );
        assert!(out.untranslated.iter().any(|u| u.contains("cookie")), "{:?}", out.untranslated);
        let config =
            crate::config::parse_str(&out.toml, None).unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
        let b = &config.balancer;
        assert_eq!(b.nbthread, Some(2));
        assert_eq!(b.stats_uri, "/stats");
        assert_eq!(b.listen.address.port(), 8404);
        let be = &b.backends[0];
        assert_eq!(be.balance, crate::config::Balance::LeastConn);
        assert!(be.httpclose);
        assert_eq!(be.timeout_check, Some(std::time::Duration::from_secs(5)));
        assert_eq!(be.servers[0].inter, std::time::Duration::from_secs(5));
        assert_eq!((be.servers[0].rise, be.servers[0].fall), (3, 2));
        assert_eq!(be.httpchk.as_ref().map(|h| h.method.as_str()), Some("GET"));
        // A mode-less frontend in front of an http backend runs as http (HAProxy upgrades it).
        assert_eq!(b.frontends[0].mode, crate::config::ProxyMode::Http);
        assert_eq!(b.frontends[0].bind.port(), 9092);
    }

    #[test]
    fn content_switching_and_retry_on_translate_and_load() {
        let cfg = "\
defaults
    mode http
    retry-on conn-failure empty-response 503
frontend fe
    bind 127.0.0.1:8443 ssl crt /etc/ssl/x.pem alpn h2,http/1.1
    acl is_api path_beg /api/
    acl is_api path /api
    acl grafana hdr(host) -i grafana.example
    use_backend api if is_api !{ method POST }
    use_backend grafana if grafana || { path_beg /d/ }
    use_backend %[req.hdr(x-be)] if TRUE
    default_backend web
    timeout client 30s
backend api
    acl x path /x
    retries 2
    option redispatch
    server a 127.0.0.1:1
backend grafana
    server g 127.0.0.1:2
backend web
    retry-on all-retryable-errors
    server w 127.0.0.1:3
";
        let out = translate(cfg);
        assert!(
            out.untranslated.iter().any(|u| u.contains("line 11") && u.contains("dynamic")),
            "{:?}",
            out.untranslated
        );
        assert!(
            out.untranslated.iter().any(|u| u.contains("line 15") && u.contains("ACL")),
            "{:?}",
            out.untranslated
        );
        let toml_text = out.toml.replace("/etc/ssl/x.pem", file!());
        let config =
            crate::config::parse_str(&toml_text, None).unwrap_or_else(|e| panic!("{e}\n{toml_text}"));
        let b = &config.balancer;
        let fe = &b.frontends[0];
        assert_eq!(fe.alpn, vec!["h2".to_string(), "http/1.1".to_string()]);
        assert_eq!(fe.default_backend.as_deref(), Some("web"));
        assert_eq!(fe.timeout_client, std::time::Duration::from_secs(30));
        let rules: Vec<(&str, &str)> =
            fe.use_backend.iter().map(|r| (r.backend.as_str(), r.condition_text.as_str())).collect();
        assert_eq!(
            rules,
            vec![("api", "if is_api !{ method POST }"), ("grafana", "if grafana || { path_beg /d/ }")]
        );
        let headers = hyper::HeaderMap::new();
        use crate::balancer::acl::MatchRequest;
        let view = |method, path| crate::balancer::acl::RequestView {
            method,
            path,
            headers: crate::balancer::acl::Headers::Map(&headers),
            authority: None,
        };
        assert!(fe.use_backend[0].condition.matches(&view("GET", "/api")));
        assert!(!fe.use_backend[0].condition.matches(&view("POST", "/api/x")));
        let api = b.backends.iter().find(|x| x.name == "api").unwrap();
        assert!(api.retry_on.status(503) && api.retry_on.conn_failure && !api.retry_on.status(502));
        assert_eq!((api.retries, api.redispatch), (2, true));
        let web = b.backends.iter().find(|x| x.name == "web").unwrap();
        assert!(web.retry_on.status(502) && web.retry_on.response_timeout);
    }

    #[test]
    fn times() {
        assert_eq!(time("5s").as_deref(), Some("5s"));
        assert_eq!(time("100").as_deref(), Some("100ms"));
        assert_eq!(time("1500us").as_deref(), Some("2ms"));
        assert_eq!(time("x"), None);
    }
}

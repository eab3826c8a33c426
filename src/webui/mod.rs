//! The built-in web UI: page code and the vendored charting library compiled into the binary
//! and served by each role's own listener (so it inherits that listener's TLS and basic auth),
//! calling the APIs that listener already serves. No request leaves the machine.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::{Arc, OnceLock};

/// What the listener serving the UI offers, so the shell shows only the pages it can fill.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// The Prometheus API (`/api/v1`), targets and federation: replica and federation roles.
    pub metrics: bool,
    /// The Jaeger query API (`/api/services`, `/api/traces`, `/api/dependencies`): the collector.
    pub traces: bool,
    /// The federation's replica view.
    pub federation: bool,
    /// The balancer's stats listener: its stats URI and whether admin actions are enabled.
    pub balancer: Option<BalancerUi>,
    /// Alertmanager's API v2: the alertmanager role.
    pub alertmanager: bool,
}

#[derive(Debug, Clone, Default)]
pub struct BalancerUi {
    pub stats_uri: String,
    pub admin: bool,
}

impl Features {
    fn names(&self) -> String {
        let mut v = Vec::new();
        if self.metrics {
            v.push("metrics");
        }
        if self.traces {
            v.push("traces");
        }
        if self.federation {
            v.push("federation");
        }
        if self.balancer.is_some() {
            v.push("balancer");
        }
        if self.alertmanager {
            v.push("alertmanager");
        }
        v.join(",")
    }

    /// The page's settings: what only the server knows (the balancer's stats URI).
    fn settings(&self) -> String {
        let json = match &self.balancer {
            Some(b) => serde_json::json!({ "statsUri": b.stats_uri, "admin": b.admin }),
            None => serde_json::json!({}),
        };
        attribute_escape(&json.to_string())
    }
}

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/ui/app.css"),
    },
    Asset { name: "app.js", content_type: JS, body: include_bytes!("../../web/ui/app.js") },
    Asset { name: "api.js", content_type: JS, body: include_bytes!("../../web/ui/api.js") },
    Asset { name: "chart.js", content_type: JS, body: include_bytes!("../../web/ui/chart.js") },
    Asset { name: "query.js", content_type: JS, body: include_bytes!("../../web/ui/query.js") },
    Asset { name: "complete.js", content_type: JS, body: include_bytes!("../../web/ui/complete.js") },
    Asset { name: "targets.js", content_type: JS, body: include_bytes!("../../web/ui/targets.js") },
    Asset { name: "rules.js", content_type: JS, body: include_bytes!("../../web/ui/rules.js") },
    Asset { name: "traces.js", content_type: JS, body: include_bytes!("../../web/ui/traces.js") },
    Asset { name: "dashboard.js", content_type: JS, body: include_bytes!("../../web/ui/dashboard.js") },
    Asset { name: "balancer.js", content_type: JS, body: include_bytes!("../../web/ui/balancer.js") },
    Asset { name: "alertmanager.js", content_type: JS, body: include_bytes!("../../web/ui/alertmanager.js") },
    Asset {
        name: "vendor/uPlot.esm.js",
        content_type: JS,
        body: include_bytes!("../../web/vendor/uPlot.esm.js"),
    },
    Asset {
        name: "vendor/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/vendor/uPlot.min.css"),
    },
];

fn attribute_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../../web/ui/index.html");

/// FNV-1a over the content: a strong validator that changes exactly when the bytes do.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016x}\"")
}

fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| ASSETS.iter().map(|a| etag(a.body)).collect())
}

/// The shell page for `features`, with its validator.
pub struct Shell {
    html: String,
    tag: String,
}

impl Shell {
    pub fn new(features: &Features) -> Shell {
        let html =
            INDEX.replace("{{FEATURES}}", &features.names()).replace("{{SETTINGS}}", &features.settings());
        let tag = etag(html.as_bytes());
        Shell { html, tag }
    }

    pub fn response(&self, headers: &HeaderMap) -> Response {
        respond(headers, "text/html; charset=utf-8", Body::from(self.html.clone()), &self.tag)
    }
}

/// `GET /` (the shell) and `GET /ui/…` (its assets). `GET /` stays a 200 because the seed's
/// balancer health check probes it.
pub fn router(features: Features) -> Router {
    let shell = Arc::new(Shell::new(&features));
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                let shell = shell.clone();
                async move { shell.response(&headers) }
            }),
        )
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { asset(&path, &headers) }),
        )
}

/// One asset by its name under `/ui/`, or 404.
pub fn asset(path: &str, headers: &HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.name == path) {
        Some(i) => {
            let a = &ASSETS[i];
            respond(headers, a.content_type, Body::from(a.body), &etags()[i])
        }
        None => (StatusCode::NOT_FOUND, "no such UI asset\n").into_response(),
    }
}

fn respond(headers: &HeaderMap, content_type: &'static str, body: Body, tag: &str) -> Response {
    // Revalidated on every load: the binary can be upgraded under the same URL, and a 304
    // costs one small round trip.
    let cache = [(header::CACHE_CONTROL, "no-cache")];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let tag = HeaderValue::from_str(tag).unwrap_or(HeaderValue::from_static("\"0\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache, [(header::ETAG, tag)]).into_response();
    }
    (
        cache,
        [(header::ETAG, tag)],
        [(header::CONTENT_TYPE, content_type), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod vendor_check;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module a page imports is embedded (else the browser gets a 404), and every
    /// embedded file is used by the shell or another asset (else it is dead weight).
    #[test]
    fn assets_and_imports_match() {
        let import = regex::Regex::new(r#"(?:from|import\()\s*'\./([^']+)'"#).unwrap();
        let mut used = std::collections::BTreeSet::new();
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.name.rsplit_once('/').map_or("", |(d, _)| d);
            for c in import.captures_iter(text) {
                let name = if dir.is_empty() { c[1].to_string() } else { format!("{dir}/{}", &c[1]) };
                assert!(
                    ASSETS.iter().any(|x| x.name == name),
                    "{} imports {name}, which is not embedded",
                    a.name
                );
                used.insert(name);
            }
        }
        for a in ASSETS {
            let linked = INDEX.contains(&format!("/ui/{}", a.name));
            assert!(linked || used.contains(a.name), "{} is embedded but nothing loads it", a.name);
        }
        assert!(INDEX.contains("{{FEATURES}}") && INDEX.contains("{{SETTINGS}}"));
    }

    #[test]
    fn settings_are_escaped_into_the_attribute() {
        let f = Features {
            balancer: Some(BalancerUi { stats_uri: "/st\"a<ts>".into(), admin: true }),
            ..Default::default()
        };
        let shell = Shell::new(&f);
        assert!(shell.html.contains(r#"content="balancer""#));
        assert!(
            shell.html.contains("&quot;statsUri&quot;:&quot;/st\\&quot;a&lt;ts&gt;&quot;"),
            "{}",
            shell.html
        );
    }

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
    }
}

//! The stats listener's routes: `/metrics`, health, the page in its three formats behind
//! `stats auth`, the web UI's balancer page, and admin actions.

use super::{Kind, Val, csv, html, json, metrics_text, rows};
use crate::balancer::counters;
use crate::balancer::health::Admin;
use crate::balancer::{Balancer, Generation};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub fn router(balancer: Balancer) -> Router {
    Router::new().fallback(dispatch).with_state(balancer)
}

fn text_response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(super) async fn dispatch(
    State(balancer): State<Balancer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    match path {
        "/metrics" => {
            return text_response(StatusCode::OK, crate::self_metrics::TEXT_FORMAT, metrics_text(&balancer));
        }
        "/-/healthy" => return text_response(StatusCode::OK, "text/plain; charset=utf-8", "Healthy.\n"),
        "/-/ready" => return text_response(StatusCode::OK, "text/plain; charset=utf-8", "Ready.\n"),
        _ => {}
    }
    let inner = balancer.inner().clone();
    let generation = inner.current();
    let config = generation.config.clone();
    // The web UI's balancer page, behind the same `stats auth` as the page it reads.
    if path == "/ui" || path.starts_with("/ui/") {
        if let Some(denied) = stats_auth_denied(&generation, &headers).await {
            return denied;
        }
        return match path.strip_prefix("/ui/").filter(|p| !p.is_empty()) {
            Some(asset) => crate::webui::asset(asset, &headers),
            None => crate::webui::Shell::new(&crate::webui::Features {
                balancer: Some(crate::webui::BalancerUi {
                    stats_uri: config.stats_uri.clone(),
                    admin: config.stats_admin,
                }),
                ..Default::default()
            })
            .response(&headers),
        };
    }
    // HAProxy matches the stats URI as a prefix and reads options after it (`;csv`, `;up`…),
    // in the path or the query.
    let Some(rest) = path.strip_prefix(config.stats_uri.as_str()) else {
        return crate::balancer::error::error_page(StatusCode::NOT_FOUND)
            .map(|_| Body::from("<html><body><h1>404 Not Found</h1>\n</body></html>\n"))
            .into_response();
    };
    let options = format!("{rest};{}", uri.query().unwrap_or(""));
    let stats = &inner.stats_counters;
    counters::inc(&stats.req_tot);
    stats.enter();
    let response = stats_page(&balancer, &generation, &options, method, &headers, body).await;
    stats.leave();
    stats.response(response.status().as_u16());
    response
}

pub(super) async fn stats_page(
    balancer: &Balancer,
    generation: &Arc<Generation>,
    options: &str,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let config = &generation.config;
    if let Some(denied) = stats_auth_denied(generation, headers).await {
        return denied;
    }
    if method == Method::POST {
        return admin_action(balancer, config, body);
    }
    let opts: Vec<&str> = options.split(';').filter(|o| !o.is_empty()).collect();
    let mut rows = rows(generation, &balancer.inner().stats_counters);
    if opts.contains(&"up") {
        rows.retain(|r| {
            r.kind != Kind::Server
                || r.get("status").is_some_and(
                    |s| matches!(s, Val::S(s) if !s.starts_with("DOWN") && !s.starts_with("MAINT")),
                )
        });
    }
    if opts.contains(&"csv") {
        return text_response(StatusCode::OK, "text/plain", csv(&rows));
    }
    if opts.contains(&"json") {
        return text_response(StatusCode::OK, "application/json", json(&rows).to_string());
    }
    let refresh = (!opts.contains(&"norefresh")).then(|| config.stats_refresh.as_secs().max(1));
    let message = opts.iter().find_map(|o| o.strip_prefix("st="));
    text_response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        html::html(balancer, &rows, config.stats_admin, refresh, message),
    )
}

/// The 401 (with HAProxy's realm) when `stats auth` is set and the request lacks its credentials.
pub(super) async fn stats_auth_denied(generation: &Arc<Generation>, headers: &HeaderMap) -> Option<Response> {
    let config = &generation.config;
    if config.stats_auth.is_empty() {
        return None;
    }
    let auth = generation.stats_auth.clone();
    let header_value = headers.get(header::AUTHORIZATION).cloned();
    let allowed =
        tokio::task::spawn_blocking(move || auth.allows(header_value.as_ref())).await.unwrap_or(false);
    if allowed {
        return None;
    }
    let mut r = crate::balancer::error::error_page(StatusCode::UNAUTHORIZED).map(Body::from);
    let realm = format!("Basic realm=\"{}\"", config.stats_realm.replace('"', ""));
    if let Ok(v) = HeaderValue::from_str(&realm) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Some(r)
}

/// HAProxy's stats admin POST: `b=<backend>&s=<server>…&action=ready|drain|maint`, answered
/// with a 303 to `<stats uri>;st=<result>`.
fn admin_action(balancer: &Balancer, config: &crate::config::BalancerConfig, body: Bytes) -> Response {
    let result = if !config.stats_admin {
        "DENY"
    } else {
        let mut backend = None;
        let mut servers = Vec::new();
        let mut action = None;
        for (k, v) in form_pairs(&body) {
            match k.as_str() {
                "b" => backend = Some(v.trim_start_matches('#').to_string()),
                "s" => servers.push(v),
                "action" => action = Some(v),
                _ => {}
            }
        }
        let admin = match action.as_deref() {
            Some("ready") => Some(Admin::Ready),
            Some("drain") => Some(Admin::Drain),
            Some("maint") => Some(Admin::Maint),
            _ => None,
        };
        match (backend, admin) {
            (Some(b), Some(a)) if !servers.is_empty() => {
                let mut changed = 0;
                for s in &servers {
                    if balancer.set_admin(&b, s, a) {
                        changed += 1;
                    }
                }
                if changed > 0 { "DONE" } else { "ERRP" }
            }
            (Some(_), None) if action.is_some() => "ERRP",
            (_, _) if servers.is_empty() => "NONE",
            _ => "ERRP",
        }
    };
    let location = format!("{};st={result}", config.stats_uri);
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 3 <= bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let pairs = form_pairs(b"s=web%201&s=b+2&action=drain&b=%23be");
        assert_eq!(pairs[0], ("s".into(), "web 1".into()));
        assert_eq!(pairs[1], ("s".into(), "b 2".into()));
        assert_eq!(pairs[3], ("b".into(), "#be".into()));
        assert_eq!(form_pairs(b"a=%4"), vec![("a".into(), "%4".into())]);
    }
}

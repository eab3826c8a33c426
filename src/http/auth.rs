//! HTTP basic auth as Prometheus's web config does it: bcrypt hashes, with verified
//! credentials cached so a scrape every few seconds does not pay bcrypt's cost each time.

use crate::config::PasswordCheck;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct BasicAuth {
    users: Arc<BTreeMap<String, PasswordCheck>>,
    /// (user, password) pairs that passed bcrypt; bounded so it cannot grow without limit.
    verified: Arc<Mutex<HashSet<(String, String)>>>,
}

const VERIFIED_CACHE_MAX: usize = 1024;

impl BasicAuth {
    pub fn new(users: BTreeMap<String, PasswordCheck>) -> Self {
        BasicAuth { users: Arc::new(users), verified: Arc::new(Mutex::new(HashSet::new())) }
    }

    /// Checks an `Authorization` header value.
    pub fn allows(&self, header_value: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header_value.and_then(decode_basic) else {
            return false;
        };
        let Some(check) = self.users.get(&user) else {
            return false;
        };
        match check {
            PasswordCheck::Plain(expected) => {
                constant_time_eq(expected.expose().as_bytes(), password.as_bytes())
            }
            PasswordCheck::Bcrypt(hash) => {
                let key = (user, password);
                if self.verified.lock().map(|v| v.contains(&key)).unwrap_or(false) {
                    return true;
                }
                let ok = bcrypt::verify(&key.1, hash.expose()).unwrap_or(false);
                if ok && let Ok(mut v) = self.verified.lock() {
                    if v.len() >= VERIFIED_CACHE_MAX {
                        v.clear();
                    }
                    v.insert(key);
                }
                ok
            }
        }
    }
}

fn decode_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let encoded = text.strip_prefix("Basic ").or_else(|| text.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_auth(State(auth): State<BasicAuth>, request: Request, next: Next) -> Response {
    let header_value = request.headers().get(header::AUTHORIZATION).cloned();
    let allowed = tokio::task::spawn_blocking({
        let auth = auth.clone();
        move || auth.allows(header_value.as_ref())
    })
    .await
    .unwrap_or(false);
    if allowed {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"obsd\""))],
        "Unauthorized\n",
    )
        .into_response()
}

pub fn protect(router: Router, auth: BasicAuth) -> Router {
    router.layer(middleware::from_fn_with_state(auth, require_auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> HeaderValue {
        let raw = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {raw}")).unwrap()
    }

    #[test]
    fn plain_and_bcrypt_users() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let mut users = BTreeMap::new();
        users.insert("admin".to_string(), PasswordCheck::Plain(crate::config::Secret::new("admin")));
        users.insert("ops".to_string(), PasswordCheck::Bcrypt(crate::config::Secret::new(hash)));
        let auth = BasicAuth::new(users);
        assert!(auth.allows(Some(&header("admin", "admin"))));
        assert!(!auth.allows(Some(&header("admin", "nope"))));
        assert!(auth.allows(Some(&header("ops", "s3cret"))));
        assert!(auth.allows(Some(&header("ops", "s3cret"))), "cached path");
        assert!(!auth.allows(Some(&header("ops", "wrong"))));
        assert!(!auth.allows(Some(&header("nobody", "x"))));
        assert!(!auth.allows(None));
        assert!(!auth.allows(Some(&HeaderValue::from_static("Bearer abc"))));
    }
}

//! `use_backend` conditions (parsed by `config::acl`) matched against a request, whichever
//! path parsed it: hyper's header map or the HTTP/1.1 fast path's fields parsed in place.

use crate::config::acl::{Acl, Condition, Fetch, MatchKind};

/// A request's header fields as the path that parsed them holds them.
#[derive(Clone, Copy)]
pub enum Headers<'a> {
    Map(&'a hyper::HeaderMap),
    Raw(&'a [httparse::Header<'a>]),
}

impl<'a> Headers<'a> {
    /// The values of every field named `name` (lower case), in order.
    pub fn values(self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (map, raw) = match self {
            Headers::Map(m) => (Some(m.get_all(name).into_iter().map(|v| v.as_bytes())), None),
            Headers::Raw(r) => {
                (None, Some(r.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)))
            }
        };
        map.into_iter().flatten().chain(raw.into_iter().flatten())
    }
}

/// The parts of a request ACLs can see.
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Headers<'a>,
    /// The request target's authority (HTTP/2 `:authority`, or an absolute-form URI's).
    pub authority: Option<&'a str>,
}

/// Holds for a request or not. A trait because the parsed types belong to `config`, which
/// must not know about requests.
pub trait MatchRequest {
    fn matches(&self, req: &RequestView) -> bool;
}

impl MatchRequest for Acl {
    fn matches(&self, req: &RequestView) -> bool {
        match &self.fetch {
            Fetch::Path => sample_matches(self, req.path.as_bytes()),
            Fetch::Method => sample_matches(self, req.method.as_bytes()),
            Fetch::Header(name) => {
                let mut found = false;
                for value in req.headers.values(name.as_str()) {
                    for part in value.split(|b| *b == b',') {
                        found = true;
                        if sample_matches(self, part.trim_ascii()) {
                            return true;
                        }
                    }
                }
                if !found
                    && name == "host"
                    && let Some(authority) = req.authority
                {
                    return sample_matches(self, authority.as_bytes());
                }
                false
            }
        }
    }
}

impl MatchRequest for Condition {
    fn matches(&self, req: &RequestView) -> bool {
        let hit = self
            .any_of
            .iter()
            .any(|all| all.iter().all(|t| t.acls.iter().any(|a| a.matches(req)) != t.negate));
        hit != self.unless
    }
}

fn sample_matches(acl: &Acl, sample: &[u8]) -> bool {
    if acl.kind == MatchKind::Found {
        return true;
    }
    if acl.kind == MatchKind::Regex {
        return acl.regexes().iter().any(|r| r.is_match(sample));
    }
    let lowered;
    let sample = if acl.ignore_case {
        lowered = sample.to_ascii_lowercase();
        &lowered[..]
    } else {
        sample
    };
    acl.values.iter().any(|v| {
        let v = v.as_bytes();
        match acl.kind {
            MatchKind::Exact => sample == v,
            MatchKind::Begin => sample.starts_with(v),
            MatchKind::End => sample.ends_with(v),
            MatchKind::Sub => sample.windows(v.len().max(1)).any(|w| w == v),
            MatchKind::Domain => domain_match(sample, v),
            MatchKind::Regex | MatchKind::Found => false,
        }
    })
}

/// HAProxy's `-m dom`: `v` occurs in `sample` delimited by `/`, `.`, `?` or the ends.
fn domain_match(sample: &[u8], v: &[u8]) -> bool {
    if v.is_empty() || v.len() > sample.len() {
        return false;
    }
    let delim = |b: u8| b == b'.' || b == b'/' || b == b'?';
    (0..=sample.len() - v.len()).any(|start| {
        let end = start + v.len();
        &sample[start..end] == v
            && (start == 0 || delim(sample[start - 1]))
            && (end == sample.len() || delim(sample[end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(method: &'a str, path: &'a str, headers: &'a hyper::HeaderMap) -> RequestView<'a> {
        RequestView { method, path, headers: Headers::Map(headers), authority: None }
    }

    fn acl(text: &str) -> Acl {
        Acl::parse(&text.split_whitespace().collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn fetches_and_match_kinds() {
        let mut h = hyper::HeaderMap::new();
        h.insert("host", "Grafana.Example.com:3000".parse().unwrap());
        h.insert("x-list", "a, b ,c".parse().unwrap());
        let r = view("GET", "/api/v1/query", &h);
        assert!(acl("path_beg /x /api").matches(&r));
        assert!(!acl("path_beg /API").matches(&r));
        assert!(acl("path_beg -i /API").matches(&r));
        assert!(acl("path /api/v1/query").matches(&r));
        assert!(!acl("path /api").matches(&r));
        assert!(acl("path_end /query").matches(&r));
        assert!(acl("path_sub v1").matches(&r));
        assert!(acl("path_reg ^/api/v[0-9]+/").matches(&r));
        assert!(acl("path -m beg /api").matches(&r));
        assert!(acl("method GET HEAD").matches(&r));
        assert!(!acl("method POST").matches(&r));
        assert!(acl("hdr(host) -i grafana.example.com:3000").matches(&r));
        assert!(!acl("hdr(host) grafana.example.com:3000").matches(&r));
        assert!(acl("hdr_dom(host) -i example.com:3000").matches(&r));
        assert!(!acl("hdr_dom(host) -i ample.com:3000").matches(&r));
        assert!(acl("hdr(x-list) b").matches(&r));
        assert!(acl("hdr(x-list) -m found").matches(&r));
        assert!(!acl("hdr(x-none) -m found").matches(&r));
        let empty = hyper::HeaderMap::new();
        let h2 = RequestView {
            method: "GET",
            path: "/",
            headers: Headers::Map(&empty),
            authority: Some("grafana:3000"),
        };
        assert!(acl("hdr(host) grafana:3000").matches(&h2));
    }

    #[test]
    fn conditions_and_or_not_anonymous() {
        let lookup = |name: &str| match name {
            "is_api" => Some(vec![acl("path_beg /api")]),
            // Two definitions of one name are ORed.
            "is_read" => Some(vec![acl("method GET"), acl("method HEAD")]),
            _ => None,
        };
        let h = hyper::HeaderMap::new();
        let get_api = view("GET", "/api/x", &h);
        let post_api = view("POST", "/api/x", &h);
        let head_web = view("HEAD", "/web", &h);
        let c = Condition::parse("is_api is_read", false, &lookup).unwrap();
        assert!(c.matches(&get_api) && !c.matches(&post_api) && !c.matches(&head_web));
        let c = Condition::parse("is_api !is_read || { path_beg /web }", false, &lookup).unwrap();
        assert!(!c.matches(&get_api) && c.matches(&post_api) && c.matches(&head_web));
        let c = Condition::parse("! is_api or METH_POST", true, &lookup).unwrap();
        assert!(c.matches(&get_api) && !c.matches(&post_api) && !c.matches(&head_web));
        let c = Condition::parse("{path_beg /web}", false, &lookup).unwrap();
        assert!(c.matches(&head_web) && !c.matches(&get_api));
        assert!(Condition::parse("TRUE", false, &lookup).unwrap().matches(&get_api));
        assert!(!Condition::parse("FALSE", false, &lookup).unwrap().matches(&get_api));
    }
}

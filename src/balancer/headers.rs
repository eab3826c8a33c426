//! Which fields a proxy keeps and which it adds, for both paths: hop-by-hop rules (RFC 9110
//! 7.6.1) over hyper's header maps and over fields parsed in place, the fast path's server
//! answers rewritten for the client, and the forwarding fields (`X-Forwarded-For`,
//! `Forwarded`) made once per client connection.

use super::body::Framing;
use httparse::{Header, Status};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;

// ---------------------------------------------------------------------------------------------
// Header maps (hyper)

/// Hop-by-hop fields (RFC 9110 7.6.1) plus `expect`, which obsd answers itself. Static names:
/// removing by `&str` would parse the name again on every request.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(first) = headers.get(header::CONNECTION) {
        // Most requests say just `keep-alive` or `close`, which list nothing else to drop.
        let plain = headers.get_all(header::CONNECTION).iter().nth(1).is_none()
            && (first.as_bytes().eq_ignore_ascii_case(b"keep-alive")
                || first.as_bytes().eq_ignore_ascii_case(b"close"));
        if !plain {
            let listed: Vec<HeaderName> = headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|t| t.trim().as_bytes())
                .filter(|t| !NEVER_HOP_BY_HOP.iter().any(|n| t.eq_ignore_ascii_case(n)))
                .filter_map(|t| HeaderName::from_bytes(t).ok())
                .collect();
            for name in listed {
                headers.remove(name);
            }
        }
    }
    // Most messages carry none of them (a response often only `connection`): one pass over
    // the names costs less than eight hashed removals (1.7k against 2.2k instructions per
    // request, both directions, by callgrind).
    let mut present = 0u8;
    for key in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == key) {
            present |= 1 << i;
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// HTTP/2 clients may split `cookie` into one field per pair (RFC 9113 8.2.3); an HTTP/1.1
/// server expects the one line, joined with "; ".
pub(super) fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers.get_all(header::COOKIE).iter().map(|v| v.as_bytes()).collect();
    let joined = joined.join(&b"; "[..]);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, v);
    }
}

pub(super) fn head_size(headers: &HeaderMap) -> u64 {
    headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum::<u64>() + 2
}

// ---------------------------------------------------------------------------------------------
// Fields parsed in place (the HTTP/1.1 fast path)

/// Fields a proxy never forwards (RFC 9110 7.6.1) and `expect`, which hyper answers.
pub(super) const REQUEST_HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];
/// In a response `transfer-encoding` (and the `trailer` it announces) stays: the body is
/// relayed in the framing the server chose.
pub(super) const RESPONSE_HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "upgrade"];

pub(super) fn is_named(name: &str, list: &[&str]) -> bool {
    list.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Fields a `Connection` list never removes. Dropping a framing field while still relaying
/// the body by it would let a client smuggle a second request to the server (and a server
/// desync the client): `Connection: content-length` must not do that.
const NEVER_HOP_BY_HOP: [&[u8]; 3] = [b"content-length", b"transfer-encoding", b"host"];

/// The tokens of every `Connection` field: whether one is `close`, and the names of the
/// fields it lists (hop-by-hop for this message), `keep-alive` and `close` left out.
pub(super) fn connection_tokens<'a>(headers: &[Header<'a>]) -> (bool, Vec<&'a [u8]>) {
    let mut close = false;
    let mut listed = Vec::new();
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("connection")) {
        for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !token.is_empty()
                && !token.eq_ignore_ascii_case(b"keep-alive")
                && !NEVER_HOP_BY_HOP.iter().any(|n| token.eq_ignore_ascii_case(n))
            {
                listed.push(token);
            }
        }
    }
    (close, listed)
}

/// A `Content-Length` value as RFC 9110 8.6 writes it: ASCII digits only. `+5` or a
/// Unicode space would be read differently by the server than by obsd.
pub(super) fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Writes `value` as the inside of a quoted-string (RFC 9110 5.6.4): a `"` or `\` in a
/// Host field must not end obsd's `Forwarded` element and start one of the client's.
fn push_quoted(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

pub(super) fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_status(out: &mut Vec<u8>, code: u16) {
    out.extend_from_slice(&[
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
}

// ---------------------------------------------------------------------------------------------
// Response heads (the HTTP/1.1 fast path)

/// Response fields parsed in place; a response with more is junk.
pub(super) const MAX_RESPONSE_HEADERS: usize = 128;

/// A server's answer, its head rewritten for the client into the caller's buffer.
pub(super) struct ResponseHead {
    pub status: u16,
    pub framing: Framing,
    /// The server keeps the connection open after this answer.
    pub server_keeps_alive: bool,
    /// The client connection closes after this answer.
    pub close_client: bool,
    /// Bytes of interim (1xx) answers already written to the client.
    pub interim_bytes: u64,
}

/// Rewrites an interim (1xx) answer for the client into `out`: its fields go on, the
/// hop-by-hop ones excepted.
pub(super) fn interim_head(code: u16, res: &httparse::Response, out: &mut Vec<u8>) {
    let (_, listed) = connection_tokens(res.headers);
    // An interim answer has no body, so no field that frames one.
    push_response_head(out, code, res.reason, res.headers, &listed, |name| {
        name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    });
    out.extend_from_slice(b"\r\n");
}

/// Writes a response's status line and fields for the client into `out` (cleared first),
/// leaving out hop-by-hop fields, the ones `Connection` lists, and those `drop` names. The
/// head's final empty line is the caller's.
fn push_response_head(
    out: &mut Vec<u8>,
    code: u16,
    reason: Option<&str>,
    headers: &[Header],
    listed: &[&[u8]],
    drop: impl Fn(&str) -> bool,
) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(out, code);
    out.push(b' ');
    out.extend_from_slice(reason.unwrap_or_default().as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers {
        if drop(h.name)
            || is_named(h.name, &RESPONSE_HOP_BY_HOP)
            || listed.iter().any(|l| l.eq_ignore_ascii_case(h.name.as_bytes()))
        {
            continue;
        }
        push_field(out, h.name.as_bytes(), h.value);
    }
}

/// Rewrites a server's final response head for the client into `out`. None: not a response
/// obsd can relay (junk).
pub(super) fn plan_response(
    res: &httparse::Response,
    head_method: bool,
    close_client: bool,
    out: &mut Vec<u8>,
) -> Option<ResponseHead> {
    let (Some(version), Some(status)) = (res.version, res.code) else { return None };
    // obsd never asks to switch protocols.
    if status == 101 {
        return None;
    }
    let headers: &[Header] = res.headers;
    let (server_close, listed) = connection_tokens(headers);
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value)?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default().trim_ascii();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        }
    }
    let framing = if head_method || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    let close_client = close_client || framing == Framing::UntilClose;
    // With a transfer coding the length is not the body's (RFC 9112 6.3).
    push_response_head(out, status, res.reason, headers, &listed, |name| {
        chunked.is_some() && name.eq_ignore_ascii_case("content-length")
    });
    if close_client {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(ResponseHead {
        status,
        framing,
        server_keeps_alive: version == 1 && !server_close,
        close_client,
        interim_bytes: 0,
    })
}

/// Fuzzing entry: a server's response head, as the fast path parses and rewrites it. The
/// rewritten head must parse again, with the same status.
pub(crate) fn fuzz_response_head(data: &[u8]) {
    let mut fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut res = httparse::Response::new(&mut fields);
    let Ok(Status::Complete(_)) = res.parse(data) else { return };
    let mut out = Vec::new();
    if let Some(head) = plan_response(&res, false, false, &mut out) {
        let mut again_fields = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS + 1];
        let mut again = httparse::Response::new(&mut again_fields);
        assert!(matches!(again.parse(&out), Ok(Status::Complete(n)) if n == out.len()), "{out:?}");
        assert_eq!(again.code, Some(head.status));
    }
    let (_, _) = connection_tokens(res.headers);
    for h in res.headers.iter() {
        let _ = content_length(h.value);
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding fields

/// What a client connection adds to every request it forwards, worked out once per
/// connection rather than formatted per request.
pub(super) struct ClientInfo {
    pub(super) peer: SocketAddr,
    /// `X-Forwarded-For` when the request has none.
    xff: Option<HeaderValue>,
    /// `Forwarded` without a host: `for=...;proto=...`.
    element: String,
    /// The last `Host` seen and the `Forwarded` value made for it: one host per connection
    /// is the rule.
    last: std::sync::Mutex<Option<(HeaderValue, HeaderValue)>>,
}

impl ClientInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        let ip = peer.ip().to_canonical();
        let node = if ip.is_ipv6() { format!("\"[{ip}]\"") } else { ip.to_string() };
        ClientInfo {
            peer,
            xff: HeaderValue::from_str(&ip.to_string()).ok(),
            element: format!("for={node};proto={}", if tls { "https" } else { "http" }),
            last: std::sync::Mutex::new(None),
        }
    }

    fn forwarded(&self, host: Option<&HeaderValue>) -> String {
        let mut element = self.element.clone();
        if let Some(host) = host.and_then(|h| h.to_str().ok())
            && host.bytes().all(|b| b.is_ascii_graphic())
        {
            let mut quoted = Vec::with_capacity(host.len());
            push_quoted(&mut quoted, host.as_bytes());
            element.push_str(";host=\"");
            element.push_str(&String::from_utf8_lossy(&quoted));
            element.push('"');
        }
        element
    }

    /// Writes `X-Forwarded-For` and `Forwarded` into a request head built in place. Fields
    /// of their own after any the client sent: a list split over several fields means the
    /// same as one joined with commas (RFC 9110 5.3).
    pub(super) fn push_forwarding(&self, out: &mut Vec<u8>, host: Option<&[u8]>) {
        if let Some(ip) = &self.xff {
            push_field(out, b"x-forwarded-for", ip.as_bytes());
        }
        out.extend_from_slice(b"forwarded: ");
        out.extend_from_slice(self.element.as_bytes());
        if let Some(host) = host.filter(|h| !h.is_empty() && h.iter().all(u8::is_ascii_graphic)) {
            out.extend_from_slice(b";host=\"");
            push_quoted(out, host);
            out.push(b'"');
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the client to `X-Forwarded-For` and `Forwarded` in a hyper header map, as
/// `option forwardfor` does.
pub(super) fn add_forwarded(headers: &mut HeaderMap, client: &ClientInfo) {
    let xff_name = HeaderName::from_static("x-forwarded-for");
    match headers.get(&xff_name).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            let xff = format!("{prev}, {}", client.peer.ip().to_canonical());
            if let Ok(v) = HeaderValue::from_str(&xff) {
                headers.insert(xff_name, v);
            }
        }
        _ => {
            if let Some(v) = &client.xff {
                headers.insert(xff_name, v.clone());
            }
        }
    }
    let host = headers.get(header::HOST);
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            HeaderValue::from_str(&format!("{prev}, {}", client.forwarded(host))).ok()
        }
        _ => {
            let mut last = match client.last.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match &*last {
                Some((h, v)) if Some(h) == host => Some(v.clone()),
                _ => {
                    let v = HeaderValue::from_str(&client.forwarded(host)).ok();
                    if let (Some(h), Some(v)) = (host, &v) {
                        *last = Some((h.clone(), v.clone()));
                    }
                    v
                }
            }
        }
    };
    if let Some(v) = forwarded {
        headers.insert(header::FORWARDED, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut n: Vec<String> = h.keys().map(|k| k.to_string()).collect();
        n.sort();
        n
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_lists_are_dropped() {
        let mut h = map(&[
            ("host", "a"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("te", "gzip"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x"),
            ("expect", "100-continue"),
            ("content-type", "text/plain"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["content-type", "host"]);

        let mut plain = map(&[("connection", "close"), ("date", "x"), ("content-length", "3")]);
        strip_hop_by_hop(&mut plain);
        assert_eq!(names(&plain), ["content-length", "date"]);

        let mut none = map(&[("server", "nginx"), ("etag", "\"1\"")]);
        strip_hop_by_hop(&mut none);
        assert_eq!(names(&none), ["etag", "server"]);
    }
    #[test]
    fn a_content_length_is_ascii_digits_only() {
        assert_eq!(content_length(b" 42 "), Some(42));
        assert_eq!(content_length(b"0"), Some(0));
        for bad in [&b"+5"[..], b"-1", b"5\xc2\xa0", b"", b"4 2", b"0x10", b"99999999999999999999"] {
            assert_eq!(content_length(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_connection_list_never_names_a_framing_field() {
        let headers =
            [Header { name: "Connection", value: b"close, Content-Length, x-hop, Transfer-Encoding, host" }];
        let (close, listed) = connection_tokens(&headers);
        assert!(close);
        assert_eq!(listed, vec![&b"x-hop"[..]]);
    }

    #[test]
    fn a_quote_in_host_cannot_end_the_forwarded_element() {
        let mut out = Vec::new();
        push_quoted(&mut out, br#"a",for=6.6.6.6;x="\"#);
        assert_eq!(out, br#"a\",for=6.6.6.6;x=\"\\"#);
    }

    fn response(raw: &[u8], head_method: bool, close: bool) -> (Option<ResponseHead>, String) {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut fields);
        assert!(res.parse(raw).unwrap().is_complete());
        let mut out = Vec::new();
        let head = plan_response(&res, head_method, close, &mut out);
        (head, String::from_utf8(out).unwrap())
    }

    #[test]
    fn response_heads_keep_their_framing_and_lose_hop_by_hop_fields() {
        let (head, out) = response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nServer: nginx\r\n\r\n",
            false,
            false,
        );
        let head = head.unwrap();
        assert_eq!(
            (head.status, head.framing, head.server_keeps_alive, head.close_client),
            (200, Framing::Length(3), true, false)
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: nginx\r\n\r\n");

        let (head, out) = response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
            false,
            true,
        );
        let head = head.unwrap();
        assert_eq!((head.framing, head.close_client), (Framing::Chunked, true));
        assert_eq!(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n");

        // No length and no chunking: the body ends when the server closes, and so does the
        // client's connection.
        let (head, out) = response(b"HTTP/1.0 200 OK\r\n\r\n", false, false);
        let head = head.unwrap();
        assert_eq!(
            (head.framing, head.server_keeps_alive, head.close_client),
            (Framing::UntilClose, false, true)
        );
        assert!(out.ends_with("connection: close\r\n\r\n"), "{out}");

        for (raw, head_method) in [
            (&b"HTTP/1.1 204 No Content\r\n\r\n"[..], false),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true),
        ] {
            assert_eq!(response(raw, head_method, false).0.unwrap().framing, Framing::Empty);
        }
        assert!(
            response(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, false)
                .0
                .is_some_and(|h| !h.server_keeps_alive)
        );
        assert!(
            response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, false)
                .0
                .is_none()
        );
        assert!(response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false, false).0.is_none());
    }

    #[test]
    fn interim_heads_keep_their_fields_but_not_framing_or_hop_by_hop_ones() {
        let raw = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: x-hop\r\nX-Hop: 1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\nLink: </b.js>; rel=preload\r\n\r\n";
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut res = httparse::Response::new(&mut fields);
        assert!(res.parse(raw).unwrap().is_complete());
        let mut out = Vec::new();
        interim_head(103, &res, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\n"
        );
    }
}

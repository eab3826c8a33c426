//! The HTTP/1.1 fast path: a request a client sends in HTTP/1.1 is proxied from its bytes.
//! The head is parsed in place (httparse), rewritten into one buffer (hop-by-hop fields
//! out, forwarding fields in) and written with its body to a pooled server socket in one
//! `send`; the answer's head is rewritten the same way and its body relayed as it is read,
//! its framing (length, chunked, until close) followed but not re-encoded; interim 1xx
//! answers are forwarded as they come. HAProxy works
//! this way; building hyper's request and response values, header maps and body frames and
//! driving its client dispatch cost obsd about twice HAProxy's CPU per small request.
//!
//! What the fast path hands to hyper (`proxy`), with the connection and the bytes read so
//! far, before anything of that request reached a server: HTTP/1.0, `Expect`, `Upgrade`,
//! `Transfer-Encoding` and bodies past `REPLAY_BUFFER` (hyper streams them), targets that
//! are not origin-form, more fields than the fast path parses.
//!
//! Replay rule: `proxy`'s. A request is sent whole (its body is at most `REPLAY_BUFFER`), so
//! every request here may go to another server when the connect fails; an idempotent one
//! also when the server closes or resets before any response byte. Idle server sockets carry
//! only idempotent requests (HAProxy's `http-reuse safe`): one that ends before answering
//! was most likely closed while idle, and its request goes again on a fresh connection
//! without counting a retry.

use super::acl::{Headers, RequestView};
use super::counters::{self, Counters};
use super::error::{BalancerError, error_page};
use super::proxy::{self, ClientConn, ClientInfo, Outcome, Prefixed, REPLAY_BUFFER, WokenOnly};
use super::{Backend, FrontendRuntime, Generation, ServerState};
use crate::config::FrontendConfig;
use bytes::{Buf, BytesMut};
use httparse::{Header, Status};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Request fields parsed in place; a request with more goes to hyper when the frontend's
/// `max_header_count` allows more, else it is refused.
const MAX_REQUEST_HEADERS: usize = 128;
const MAX_RESPONSE_HEADERS: usize = 128;
/// A server's response head past this is junk (HAProxy's `tune.bufsize` is 16 kB).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Room made for each read from a client.
const CLIENT_READ: usize = 4096;
/// Room made for each read from a server: a 200 kB answer in a few reads.
const SERVER_READ: usize = 64 * 1024;

/// Fields a proxy never forwards (RFC 9110 7.6.1) and `expect`, which hyper answers.
const REQUEST_HOP_BY_HOP: [&str; 8] = [
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
const RESPONSE_HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "upgrade"];

fn is_named(name: &str, list: &[&str]) -> bool {
    list.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// Fields a `Connection` list never removes. Dropping a framing field while still relaying
/// the body by it would let a client smuggle a second request to the server (and a server
/// desync the client): `Connection: content-length` must not do that.
pub(super) const NEVER_HOP_BY_HOP: [&[u8]; 3] = [b"content-length", b"transfer-encoding", b"host"];

/// The tokens of every `Connection` field: whether one is `close`, and the names of the
/// fields it lists (hop-by-hop for this message), `keep-alive` and `close` left out.
fn connection_tokens<'a>(headers: &[Header<'a>]) -> (bool, Vec<&'a [u8]>) {
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
fn content_length(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Writes `value` as the inside of a quoted-string (RFC 9110 5.6.4): a `"` or `\` in a
/// Host field must not end obsd's `Forwarded` element and start one of the client's.
pub(super) fn push_quoted(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn push_status(out: &mut Vec<u8>, code: u16) {
    out.extend_from_slice(&[
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
}

/// What a complete request head asks for.
enum Plan {
    Proxy(Request),
    /// Served by hyper from this request on.
    Hyper,
    /// Refused with this status; the connection closes.
    Refuse(StatusCode),
}

/// A request the fast path proxies; its head for the server is in the caller's buffer.
struct Request {
    generation: Arc<Generation>,
    frontend: usize,
    backend: Result<Arc<Backend>, BalancerError>,
    head_len: usize,
    body_len: usize,
    idempotent: bool,
    head_method: bool,
    client_close: bool,
}

/// Decides what to do with a parsed request head and, for a request it proxies, writes the
/// head the server gets into `out`.
fn plan_request(
    req: &httparse::Request,
    head_len: usize,
    generation: Arc<Generation>,
    frontend: &str,
    client: &ClientInfo,
    out: &mut Vec<u8>,
) -> Plan {
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Plan::Hyper;
    };
    if method == "CONNECT" || !target.starts_with('/') {
        return Plan::Hyper;
    }
    let Some(fe_index) = generation.frontends.iter().position(|f| f.config.name == frontend) else {
        return Plan::Refuse(StatusCode::SERVICE_UNAVAILABLE);
    };
    let fe = &generation.frontends[fe_index];
    let headers: &[Header] = req.headers;
    if headers.len() > fe.config.max_header_count || head_len > fe.config.max_header_bytes {
        return Plan::Refuse(StatusCode::BAD_REQUEST);
    }
    let mut body_len: Option<usize> = None;
    let mut host: Option<&[u8]> = None;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = content_length(h.value).and_then(|n| usize::try_from(n).ok());
            match (body_len, parsed) {
                // hyper refuses a bad or repeated length with 400 itself.
                (Some(_), _) | (None, None) => return Plan::Hyper,
                (None, Some(n)) => body_len = Some(n),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            return Plan::Hyper;
        } else if name.eq_ignore_ascii_case("host") {
            host = Some(h.value);
        }
    }
    let body_len = body_len.unwrap_or(0);
    if body_len as u64 > REPLAY_BUFFER {
        return Plan::Hyper;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let view = RequestView { method, path, headers: Headers::Raw(headers), authority: None };
    let backend = proxy::choose_backend(&generation, fe, &view).cloned();
    let (client_close, listed) = connection_tokens(headers);
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in headers {
        if is_named(h.name, &REQUEST_HOP_BY_HOP)
            || listed.iter().any(|l| l.eq_ignore_ascii_case(h.name.as_bytes()))
        {
            continue;
        }
        push_field(out, h.name.as_bytes(), h.value);
    }
    if let Ok(b) = &backend {
        // Added as fields of their own after any the client sent: a list split over
        // several fields means the same as one joined with commas (RFC 9110 5.3).
        if b.config.forwardfor {
            if let Some(ip) = &client.xff {
                push_field(out, b"x-forwarded-for", ip.as_bytes());
            }
            out.extend_from_slice(b"forwarded: ");
            out.extend_from_slice(client.element.as_bytes());
            if let Some(host) = host.filter(|h| !h.is_empty() && h.iter().all(u8::is_ascii_graphic)) {
                out.extend_from_slice(b";host=\"");
                push_quoted(out, host);
                out.push(b'"');
            }
            out.extend_from_slice(b"\r\n");
        }
        if b.config.httpclose {
            out.extend_from_slice(b"connection: close\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    Plan::Proxy(Request {
        generation,
        frontend: fe_index,
        backend,
        head_len,
        body_len,
        idempotent: matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"),
        head_method: method == "HEAD",
        client_close,
    })
}

/// How a response body ends (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A server's answer, its head rewritten for the client into the caller's buffer.
struct ResponseHead {
    status: u16,
    framing: Framing,
    /// The server keeps the connection open after this answer.
    server_keeps_alive: bool,
    /// The client connection closes after this answer.
    close_client: bool,
    /// Bytes of interim (1xx) answers already written to the client.
    interim_bytes: u64,
}

/// Rewrites an interim (1xx) answer for the client into `out`: its fields go on, the
/// hop-by-hop ones excepted.
fn interim_head(code: u16, res: &httparse::Response, out: &mut Vec<u8>) {
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
fn plan_response(
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

/// Finds where a chunked body ends while it streams by, byte by byte across reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    Size { size: u64, digits: u8 },
    Extension { size: u64 },
    SizeLf { size: u64 },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

#[derive(Debug, PartialEq, Eq)]
struct BadChunk;

impl Chunked {
    fn new() -> Self {
        Chunked::Size { size: 0, digits: 0 }
    }

    fn after_size(size: u64) -> Chunked {
        if size == 0 { Chunked::TrailerStart } else { Chunked::Data(size) }
    }

    /// How many bytes of `buf` belong to the body; stops at its end.
    fn scan(&mut self, buf: &[u8]) -> Result<usize, BadChunk> {
        let mut pos = 0;
        while pos < buf.len() {
            if let Chunked::Data(left) = *self {
                let take = left.min((buf.len() - pos) as u64);
                pos += take as usize;
                *self = if take == left { Chunked::DataCr } else { Chunked::Data(left - take) };
                continue;
            }
            let b = buf[pos];
            pos += 1;
            *self = match (*self, b) {
                (Chunked::Done, _) => return Ok(pos - 1),
                (Chunked::Size { size, digits }, b) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(BadChunk);
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    Chunked::Size { size: size * 16 + u64::from(d), digits: digits + 1 }
                }
                (Chunked::Size { digits: 0, .. }, _) => return Err(BadChunk),
                (Chunked::Size { size, .. }, b';' | b' ' | b'\t') => Chunked::Extension { size },
                (Chunked::Size { size, .. } | Chunked::Extension { size }, b'\r') => Chunked::SizeLf { size },
                (
                    Chunked::Size { size, .. } | Chunked::Extension { size } | Chunked::SizeLf { size },
                    b'\n',
                ) => Chunked::after_size(size),
                (Chunked::Extension { size }, _) => Chunked::Extension { size },
                (Chunked::DataCr, b'\r') => Chunked::DataLf,
                (Chunked::DataCr | Chunked::DataLf, b'\n') => Chunked::new(),
                (Chunked::TrailerStart, b'\r') => Chunked::EndLf,
                (Chunked::TrailerStart | Chunked::EndLf, b'\n') => Chunked::Done,
                (Chunked::TrailerLine, b'\n') => Chunked::TrailerStart,
                (Chunked::TrailerStart | Chunked::TrailerLine, _) => Chunked::TrailerLine,
                _ => return Err(BadChunk),
            };
            if *self == Chunked::Done {
                return Ok(pos);
            }
        }
        Ok(pos)
    }
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

/// Fuzzing entry: a chunked body scanned whole and split at every point end at the same byte.
pub(crate) fn fuzz_chunked(data: &[u8]) {
    let mut whole = Chunked::new();
    let expect = whole.scan(data).map(|n| (n, whole));
    for cut in [1, data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        let cut = cut.min(data.len());
        let mut split = Chunked::new();
        let got = split.scan(&data[..cut]).and_then(|a| {
            if split == Chunked::Done { Ok(a) } else { split.scan(&data[cut..]).map(|b| a + b) }
        });
        match (&expect, got) {
            (Ok((n, _)), Ok(m)) => assert_eq!(*n, m, "cut {cut}"),
            (Err(_), Err(_)) => {}
            (e, g) => panic!("cut {cut}: whole {e:?}, split {g:?}"),
        }
    }
}

enum Fill {
    Data,
    Closed,
    TimedOut,
    Stopped,
}

async fn read_more<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    room: usize,
    deadline: tokio::time::Instant,
) -> Fill {
    buf.reserve(room);
    match tokio::time::timeout_at(deadline, io.read_buf(buf)).await {
        Err(_) => Fill::TimedOut,
        Ok(Ok(0)) | Ok(Err(_)) => Fill::Closed,
        Ok(Ok(_)) => Fill::Data,
    }
}

/// HAProxy's error answer; `close` adds `connection: close`.
fn error_response(status: StatusCode, close: bool) -> Vec<u8> {
    let page = error_page(status);
    let body = page.body();
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(b"HTTP/1.1 ");
    push_status(&mut out, status.as_u16());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Error").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in page.headers() {
        push_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    push_field(&mut out, b"content-length", body.len().to_string().as_bytes());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Buffers a client connection keeps from request to request.
struct Buffers {
    /// Bytes from the client not yet handled: the next request and anything after it.
    client: BytesMut,
    /// The request as the server gets it.
    request: Vec<u8>,
    /// Bytes from the server.
    server: BytesMut,
    /// The response head for the client, and the start of its body.
    response: Vec<u8>,
}

/// Serves an HTTP/1.1 client connection; `read` holds what was already read from it.
pub(super) async fn serve<IO>(conn: ClientConn, mut io: IO, read: BytesMut, tls: bool, cfg: &FrontendConfig)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ClientConn { inner, name, peer, fe_counters, stop } = conn;
    let hyper_stop = stop.clone();
    let mut stop = stop;
    let mut shutdown = inner.shutdown.clone();
    // Polled only while waiting for the next request: one in flight always finishes.
    let mut stopped = WokenOnly::new(stop.changed());
    let mut shutting_down = WokenOnly::new(shutdown.changed());
    let client = ClientInfo::new(peer, tls);
    let mut bufs = Buffers {
        client: read,
        request: Vec::with_capacity(1024),
        server: BytesMut::with_capacity(SERVER_READ),
        response: Vec::with_capacity(1024),
    };
    let mut head_started = Instant::now();
    // The first request's wait counts in `timeout_http_request`; later ones first wait
    // `timeout_http_keep_alive` for their first byte.
    let mut idle = false;
    let mut first = true;
    loop {
        let plan = loop {
            if !bufs.client.is_empty() {
                let mut fields = [const { MaybeUninit::<Header>::uninit() }; MAX_REQUEST_HEADERS];
                let mut req = httparse::Request::new(&mut []);
                match req.parse_with_uninit_headers(&bufs.client, &mut fields) {
                    Ok(Status::Complete(n)) => {
                        break plan_request(&req, n, inner.current(), &name, &client, &mut bufs.request);
                    }
                    Ok(Status::Partial) if bufs.client.len() > cfg.max_header_bytes => {
                        break Plan::Refuse(StatusCode::BAD_REQUEST);
                    }
                    Ok(Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) if cfg.max_header_count > MAX_REQUEST_HEADERS => {
                        break Plan::Hyper;
                    }
                    // hyper says 400 to HTTP/2 and other versions the fast path does not speak.
                    Err(httparse::Error::Version) => break Plan::Hyper,
                    Err(_) => break Plan::Refuse(StatusCode::BAD_REQUEST),
                }
            }
            let fill = if idle {
                let deadline = tokio::time::Instant::now() + cfg.timeout_http_keep_alive;
                tokio::select! {
                    biased;
                    f = read_more(&mut io, &mut bufs.client, CLIENT_READ, deadline) => f,
                    _ = &mut stopped => Fill::Stopped,
                    _ = &mut shutting_down => Fill::Stopped,
                }
            } else {
                let deadline = tokio::time::Instant::from_std(head_started + cfg.timeout_http_request);
                read_more(&mut io, &mut bufs.client, CLIENT_READ, deadline).await
            };
            match fill {
                Fill::Data => {
                    if idle {
                        idle = false;
                        head_started = Instant::now();
                    }
                }
                Fill::Closed | Fill::Stopped => return,
                Fill::TimedOut if bufs.client.is_empty() => {
                    // A connection that never sent a byte is cut like a slow one, quietly
                    // once it has been served.
                    if first {
                        counters::inc(&fe_counters.ereq);
                    }
                    return;
                }
                Fill::TimedOut => {
                    // HAProxy's `timeout http-request`: a slow head gets 408.
                    counters::inc(&fe_counters.ereq);
                    fe_counters.response(408);
                    let _ = io.write_all(&error_response(StatusCode::REQUEST_TIMEOUT, true)).await;
                    return;
                }
            }
        };
        first = false;
        let req = match plan {
            Plan::Proxy(req) => req,
            Plan::Hyper => {
                drop((stopped, shutting_down));
                let conn = ClientConn { inner, name, peer, fe_counters, stop: hyper_stop };
                let io = Prefixed { prefix: bufs.client.freeze(), inner: io };
                conn.serve(TokioIo::new(io), tls, false, cfg).await;
                return;
            }
            Plan::Refuse(status) => {
                counters::inc(&fe_counters.ereq);
                fe_counters.response(status.as_u16());
                let _ = io.write_all(&error_response(status, true)).await;
                return;
            }
        };
        let started = Instant::now();
        let fe = &req.generation.frontends[req.frontend];
        // The body: at most REPLAY_BUFFER, read whole so the request can go to another server.
        let whole = req.head_len + req.body_len;
        let body_deadline = tokio::time::Instant::from_std(started + fe.config.timeout_client);
        while bufs.client.len() < whole {
            let room = whole - bufs.client.len();
            match read_more(&mut io, &mut bufs.client, room, body_deadline).await {
                Fill::Data => {}
                Fill::TimedOut => {
                    let status = proxy::count_failure(fe, None, peer, &BalancerError::ClientTimeout);
                    fe.counters.response(status.as_u16());
                    let _ = io.write_all(&error_response(status, true)).await;
                    return;
                }
                Fill::Closed | Fill::Stopped => return,
            }
        }
        bufs.request.extend_from_slice(&bufs.client[req.head_len..whole]);
        bufs.client.advance(whole);
        counters::inc(&fe.counters.req_tot);
        fe.counters.req_rate.hit_at(started);
        let backend = match &req.backend {
            Ok(b) => b,
            Err(e) => {
                let status = proxy::count_failure(fe, None, peer, e);
                fe.counters.response(status.as_u16());
                if io.write_all(&error_response(status, req.client_close)).await.is_err() || req.client_close
                {
                    return;
                }
                idle = true;
                continue;
            }
        };
        let exchange = Exchange { fe, backend, peer: peer.ip(), req: &req, started, bytes_in: whole as u64 };
        let close = match exchange.run(&mut io, &mut bufs).await {
            Ok(answered) => {
                if let Some(status) = answered.status {
                    fe.counters.response(status);
                }
                answered.close
            }
            Err(e) => {
                let status = proxy::count_failure(fe, Some(backend), peer, &e);
                fe.counters.response(status.as_u16());
                let close = req.client_close || status == StatusCode::BAD_REQUEST;
                io.write_all(&error_response(status, close)).await.is_err() || close
            }
        };
        if close || io.flush().await.is_err() {
            let _ = io.shutdown().await;
            return;
        }
        idle = bufs.client.is_empty();
        if !idle {
            // Pipelined: the next head is already here.
            head_started = Instant::now();
        }
    }
}

/// How a request that a server answered went for the client.
struct Answered {
    /// None when the client went away before the final answer began.
    status: Option<u16>,
    close: bool,
}

/// Why no usable answer came from a server.
enum Failed {
    Timeout,
    /// Closed or reset; `any` when some response bytes had come.
    Closed {
        any: bool,
        message: String,
    },
    Junk,
    /// The client could not take an interim answer.
    ClientGone,
}

/// One request on its way to a server of `backend` and back.
struct Exchange<'a> {
    fe: &'a FrontendRuntime,
    backend: &'a Arc<Backend>,
    peer: IpAddr,
    req: &'a Request,
    started: Instant,
    bytes_in: u64,
}

impl Exchange<'_> {
    /// Picks servers, sends and retries (`proxy`'s rules) until one answers; relays the
    /// answer. An error is returned only while the client can still get an error page.
    async fn run<IO>(&self, io: &mut IO, bufs: &mut Buffers) -> Result<Answered, BalancerError>
    where
        IO: AsyncWrite + Unpin,
    {
        let backend = self.backend;
        let cfg = &backend.config;
        let replayable = self.req.idempotent;
        let mut attempts = 0u32;
        let mut stale = 0u32;
        let mut avoid: Option<usize> = None;
        loop {
            let (index, guard, qtime) = backend.acquire(Some(self.peer), avoid).await?;
            let Some(server) = backend.servers.get(index) else {
                return Err(BalancerError::Internal("selected server vanished".into()));
            };
            let connect_started = Instant::now();
            let pooled = if !cfg.httpclose && replayable {
                server.state.raw_pool.checkout(server.config.pool_purge_delay)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut socket = match pooled {
                Some(s) => s,
                None => match connect(server.config.address, cfg.timeout_connect).await {
                    Ok(s) => s,
                    Err(e) => {
                        backend.connect_failed(index);
                        drop(guard);
                        if attempts >= cfg.retries || !cfg.retry_on.conn_failure {
                            return Err(BalancerError::Connect {
                                backend: cfg.name.clone(),
                                server: server.config.name.clone(),
                                message: e.to_string(),
                            });
                        }
                        attempts += 1;
                        avoid = proxy::retry_target(backend, index);
                        if avoid.is_none() {
                            // Same server again: give a restarting process a moment.
                            tokio::time::sleep(Duration::from_millis(100).min(cfg.timeout_connect)).await;
                        }
                        continue;
                    }
                },
            };
            let ctime = connect_started.elapsed();
            let sent_at = Instant::now();
            let close_client = self.req.client_close || cfg.httpclose;
            let sent = send(io, &mut socket, bufs, cfg.timeout_server, self.req.head_method, close_client);
            let head = match sent.await {
                Ok(head) => head,
                Err(Failed::ClientGone) => {
                    counters::inc(&backend.shared.counters.cli_abrt);
                    counters::inc(&server.state.counters.cli_abrt);
                    return Ok(Answered { status: None, close: true });
                }
                Err(Failed::Closed { any: false, .. }) if reused => {
                    drop(guard);
                    proxy::count_stale(&mut stale, &cfg.name, &server.config.name)?;
                    continue;
                }
                Err(Failed::Timeout) => {
                    counters::inc(&server.state.counters.eresp);
                    counters::inc(&backend.shared.counters.eresp);
                    backend.observe(index, false, Some(504));
                    drop(guard);
                    if replayable && cfg.retry_on.response_timeout && attempts < cfg.retries {
                        attempts += 1;
                        avoid = proxy::retry_target(backend, index);
                        tracing::debug!(backend = %cfg.name, server = %server.config.name, "replaying after a server timeout (retry_on response-timeout)");
                        continue;
                    }
                    return Err(BalancerError::ServerTimeout {
                        backend: cfg.name.clone(),
                        server: server.config.name.clone(),
                    });
                }
                Err(failed) => {
                    drop(guard);
                    counters::inc(&server.state.counters.eresp);
                    counters::inc(&backend.shared.counters.eresp);
                    backend.observe(index, true, None);
                    // HAProxy's junk-response (which includes a head cut short) and
                    // empty-response (closed before any byte).
                    let (allowed, message) = match failed {
                        Failed::Junk => (cfg.retry_on.junk_response, "invalid response".to_string()),
                        Failed::Closed { any: true, message } => (cfg.retry_on.junk_response, message),
                        Failed::Closed { any: false, message } => (cfg.retry_on.empty_response, message),
                        Failed::Timeout | Failed::ClientGone => (false, String::new()),
                    };
                    if replayable && allowed && attempts < cfg.retries {
                        attempts += 1;
                        avoid = proxy::retry_target(backend, index);
                        tracing::debug!(backend = %cfg.name, server = %server.config.name, error = %message, "replaying an idempotent request");
                        continue;
                    }
                    return Err(BalancerError::ServerFailed {
                        backend: cfg.name.clone(),
                        server: server.config.name.clone(),
                        message,
                    });
                }
            };
            let status = head.status;
            backend.observe(index, false, Some(status));
            if replayable && attempts < cfg.retries && cfg.retry_on.status(status) {
                for c in [&server.state.counters, &backend.shared.counters] {
                    c.response(status);
                }
                // The answer is dropped unread, and its connection with it.
                drop((socket, guard));
                attempts += 1;
                avoid = proxy::retry_target(backend, index);
                tracing::debug!(backend = %cfg.name, server = %server.config.name, status, "replaying an idempotent request (retry_on status)");
                continue;
            }
            let rtime = sent_at.elapsed();
            for c in [&server.state.counters, &backend.shared.counters] {
                c.session_at(self.started);
                c.response(status);
            }
            let out = Outflow { fe: &self.fe.counters, backend, server: &server.state };
            let relayed = relay(io, &mut socket, bufs, &head, cfg.timeout_server, out).await;
            let clean = match relayed.end {
                RelayEnd::Done => true,
                RelayEnd::ClientGone => {
                    counters::inc(&backend.shared.counters.cli_abrt);
                    counters::inc(&server.state.counters.cli_abrt);
                    false
                }
                RelayEnd::ServerGone => {
                    counters::inc(&backend.shared.counters.srv_abrt);
                    counters::inc(&server.state.counters.srv_abrt);
                    false
                }
            };
            if clean && relayed.reusable && head.server_keeps_alive && !cfg.httpclose {
                server.state.raw_pool.checkin(socket);
            }
            let outcome = Outcome {
                started: self.started,
                qtime,
                ctime,
                rtime,
                bytes_in: self.bytes_in,
                bytes_out: head.interim_bytes,
            };
            proxy::record(&self.fe.counters, backend, &server.state, &outcome);
            drop(guard);
            return Ok(Answered { status: Some(status), close: head.close_client || !clean });
        }
    }
}

/// A fresh connection to a server.
async fn connect(address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address)).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connect timeout after {timeout:?}"))
    })??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Writes the request and reads the final response head, which it rewrites for the client
/// into `bufs.response`; what follows the head stays in `bufs.server`. Interim answers
/// (1xx, such as 103 Early Hints) go to the client as they come, as a proxy must forward
/// them (RFC 9110 15.2); the fast path serves HTTP/1.1 clients only, which accept them.
async fn send<IO>(
    io: &mut IO,
    socket: &mut TcpStream,
    bufs: &mut Buffers,
    timeout: Duration,
    head_method: bool,
    close_client: bool,
) -> Result<ResponseHead, Failed>
where
    IO: AsyncWrite + Unpin,
{
    let closed = |any: bool, e: &dyn std::fmt::Display| Failed::Closed { any, message: e.to_string() };
    match tokio::time::timeout(timeout, socket.write_all(&bufs.request)).await {
        Err(_) => return Err(Failed::Timeout),
        Ok(Err(e)) => return Err(closed(false, &e)),
        Ok(Ok(())) => {}
    }
    bufs.server.clear();
    let mut any = false;
    let mut interim_bytes = 0u64;
    loop {
        if !bufs.server.is_empty() {
            let mut fields = [const { MaybeUninit::<Header>::uninit() }; MAX_RESPONSE_HEADERS];
            let mut res = httparse::Response::new(&mut []);
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut res,
                &bufs.server,
                &mut fields,
            ) {
                Ok(Status::Complete(n)) => {
                    if let Some(code) = res.code.filter(|c| (100..200).contains(c) && *c != 101) {
                        interim_head(code, &res, &mut bufs.response);
                        bufs.server.advance(n);
                        if io.write_all(&bufs.response).await.is_err() || io.flush().await.is_err() {
                            return Err(Failed::ClientGone);
                        }
                        interim_bytes += bufs.response.len() as u64;
                        continue;
                    }
                    let head = plan_response(&res, head_method, close_client, &mut bufs.response);
                    bufs.server.advance(n);
                    return head.map(|h| ResponseHead { interim_bytes, ..h }).ok_or(Failed::Junk);
                }
                Ok(Status::Partial) if bufs.server.len() > MAX_RESPONSE_HEAD => return Err(Failed::Junk),
                Ok(Status::Partial) => {}
                Err(_) => return Err(Failed::Junk),
            }
        }
        bufs.server.reserve(SERVER_READ);
        match tokio::time::timeout(timeout, socket.read_buf(&mut bufs.server)).await {
            Err(_) => return Err(Failed::Timeout),
            Ok(Ok(0)) => return Err(closed(any, &"server closed the connection before answering")),
            Ok(Err(e)) => return Err(closed(any, &e)),
            Ok(Ok(_)) => any = true,
        }
    }
}

enum RelayEnd {
    Done,
    ClientGone,
    ServerGone,
}

struct Relayed {
    end: RelayEnd,
    /// Nothing followed the body: the server connection may carry another request.
    reusable: bool,
}

/// Where the bytes relayed to the client are counted.
struct Outflow<'a> {
    fe: &'a Counters,
    backend: &'a Backend,
    server: &'a ServerState,
}

/// Sends the response head and relays the body as the server sends it. Each write is
/// counted in `bout` before it is made, so the count never trails what the client has.
async fn relay<IO>(
    io: &mut IO,
    socket: &mut TcpStream,
    bufs: &mut Buffers,
    head: &ResponseHead,
    timeout: Duration,
    out: Outflow<'_>,
) -> Relayed
where
    IO: AsyncWrite + Unpin,
{
    let mut left = match head.framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut chunked = Chunked::new();
    let mut first = true;
    loop {
        // The part of what the server sent that belongs to the body.
        let (take, done) = match head.framing {
            Framing::Empty => (0, true),
            Framing::Length(_) => {
                let take = left.min(bufs.server.len() as u64) as usize;
                left -= take as u64;
                (take, left == 0)
            }
            Framing::Chunked => match chunked.scan(&bufs.server) {
                Ok(n) => (n, chunked == Chunked::Done),
                Err(BadChunk) => return Relayed { end: RelayEnd::ServerGone, reusable: false },
            },
            Framing::UntilClose => (bufs.server.len(), false),
        };
        let write = if first {
            // The head leaves with whatever part of the body came with it: a small answer
            // is one write.
            first = false;
            bufs.response.extend_from_slice(&bufs.server[..take]);
            proxy::count_bytes(out.fe, out.backend, out.server, |c| &c.bout, bufs.response.len() as u64);
            io.write_all(&bufs.response).await
        } else {
            proxy::count_bytes(out.fe, out.backend, out.server, |c| &c.bout, take as u64);
            io.write_all(&bufs.server[..take]).await
        };
        if write.is_err() {
            return Relayed { end: RelayEnd::ClientGone, reusable: false };
        }
        let extra = bufs.server.len() > take;
        bufs.server.clear();
        if done {
            return Relayed { end: RelayEnd::Done, reusable: !extra };
        }
        bufs.server.reserve(SERVER_READ);
        match tokio::time::timeout(timeout, socket.read_buf(&mut bufs.server)).await {
            Ok(Ok(0)) if head.framing == Framing::UntilClose => {
                return Relayed { end: RelayEnd::Done, reusable: false };
            }
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                return Relayed { end: RelayEnd::ServerGone, reusable: false };
            }
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(pieces: &[&[u8]]) -> (Vec<usize>, Chunked) {
        let mut c = Chunked::new();
        let taken = pieces.iter().map(|p| c.scan(p).unwrap()).collect();
        (taken, c)
    }

    #[test]
    fn chunked_end_is_found_across_reads_and_nothing_after_it_is_taken() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nx-trailer: 1\r\n\r\nHTTP/1.1 200";
        let end = body.len() - b"HTTP/1.1 200".len();
        // Whole, then split at every point.
        let (taken, state) = scan_all(&[body]);
        assert_eq!((taken[0], state), (end, Chunked::Done));
        for cut in 1..end {
            let (taken, state) = scan_all(&[&body[..cut], &body[cut..]]);
            assert_eq!(taken, [cut, end - cut], "cut at {cut}");
            assert_eq!(state, Chunked::Done);
        }
        let (taken, state) = scan_all(&[b"A\r\n0123456789\r\n0\r\n\r\n"]);
        assert_eq!((taken[0], state), (20, Chunked::Done));
        let (_, state) = scan_all(&[b"10\r\n0123"]);
        assert_eq!(state, Chunked::Data(12));
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

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [&b"zz\r\n"[..], b"\r\n", b"4\r\nWikiXX", b"0\r\n\rX", b"1234567890abcdef0\r\n"] {
            assert_eq!(Chunked::new().scan(bad), Err(BadChunk), "{:?}", String::from_utf8_lossy(bad));
        }
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

    #[test]
    fn error_responses_carry_haproxys_page_and_length() {
        let out = String::from_utf8(error_response(StatusCode::SERVICE_UNAVAILABLE, false)).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        assert!(!head.contains("connection: close"));
        assert!(body.contains("No server is available"));
        assert!(
            String::from_utf8(error_response(StatusCode::BAD_REQUEST, true))
                .unwrap()
                .contains("connection: close\r\n")
        );
    }
}

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
//! Servers, retries and replays: `exchange::dispatch`, as for hyper. A request is sent whole
//! (its body is at most `REPLAY_BUFFER`), so every idempotent one here is replayable.

use super::acl::{Headers, RequestView};
use super::body::{BadChunk, Chunked, Framing, REPLAY_BUFFER};
use super::counters::{self, Counters};
use super::error::{BalancerError, error_page};
use super::exchange::{
    self, Dispatched, Outcome, Reached, SendFailed, Transport, choose_backend, count_bytes, count_failure,
    idempotent, record,
};
use super::headers::{
    ClientInfo, MAX_RESPONSE_HEADERS, REQUEST_HOP_BY_HOP, ResponseHead, connection_tokens, content_length,
    interim_head, is_named, plan_response, push_field, push_status,
};
use super::io::{Prefixed, WokenOnly};
use super::pool;
use super::proxy::ClientConn;
use super::{Backend, FrontendRuntime, Generation, Server, ServerState};
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
/// A server's response head past this is junk (HAProxy's `tune.bufsize` is 16 kB).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Room made for each read from a client.
const CLIENT_READ: usize = 4096;
/// Room made for each read from a server: a 200 kB answer in a few reads.
const SERVER_READ: usize = 64 * 1024;

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
    let backend = choose_backend(&generation, fe, &view).cloned();
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
        if b.config.forwardfor {
            client.push_forwarding(out, host);
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
        idempotent: idempotent(method),
        head_method: method == "HEAD",
        client_close,
    })
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
                    let status = count_failure(fe, None, peer, &BalancerError::ClientTimeout);
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
                let status = count_failure(fe, None, peer, e);
                fe.counters.response(status.as_u16());
                if io.write_all(&error_response(status, req.client_close)).await.is_err() || req.client_close
                {
                    return;
                }
                idle = true;
                continue;
            }
        };
        let forward = Forward { fe, backend, peer: peer.ip(), req: &req, started, bytes_in: whole as u64 };
        let close = match forward.run(&mut io, &mut bufs).await {
            Ok(answered) => {
                if let Some(status) = answered.status {
                    fe.counters.response(status);
                }
                answered.close
            }
            Err(e) => {
                let status = count_failure(fe, Some(backend), peer, &e);
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

/// One request on its way to a server of `backend` and back.
struct Forward<'a> {
    fe: &'a FrontendRuntime,
    backend: &'a Arc<Backend>,
    peer: IpAddr,
    req: &'a Request,
    started: Instant,
    bytes_in: u64,
}

impl Forward<'_> {
    /// Sends the request (`exchange::dispatch` picks servers and retries) and relays the
    /// answer. An error is returned only while the client can still get an error page.
    async fn run<IO>(&self, io: &mut IO, bufs: &mut Buffers) -> Result<Answered, BalancerError>
    where
        IO: AsyncWrite + Unpin + Send,
    {
        let backend = self.backend;
        let cfg = &backend.config;
        let close_client = self.req.client_close || cfg.httpclose;
        let mut socket = RawSocket { io, bufs, head_method: self.req.head_method, close_client };
        let request = exchange::Request {
            backend,
            client: self.peer,
            replayable: self.req.idempotent,
            started: self.started,
        };
        let reached = match exchange::dispatch(&mut socket, request).await? {
            Dispatched::Answered(reached) => reached,
            Dispatched::ClientGone => return Ok(Answered { status: None, close: true }),
        };
        let Reached { server, guard, conn: mut stream, answer: head, qtime, ctime, rtime } = reached;
        let RawSocket { io, bufs, .. } = socket;
        let out = Outflow { fe: &self.fe.counters, backend, server: &server.state };
        let relayed = relay(io, &mut stream, bufs, &head, cfg.timeout_server, out).await;
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
            server.state.raw_pool.checkin(stream);
        }
        let outcome = Outcome {
            started: self.started,
            qtime,
            ctime,
            rtime,
            bytes_in: self.bytes_in,
            bytes_out: head.interim_bytes,
        };
        record(&self.fe.counters, backend, &server.state, &outcome);
        drop(guard);
        Ok(Answered { status: Some(head.status), close: head.close_client || !clean })
    }
}

/// A plain socket to a server, the request and the answer's head in the client connection's
/// buffers.
struct RawSocket<'a, IO> {
    /// The client, which gets interim answers as they come.
    io: &'a mut IO,
    bufs: &'a mut Buffers,
    head_method: bool,
    close_client: bool,
}

impl<IO: AsyncWrite + Unpin + Send> Transport for RawSocket<'_, IO> {
    type Conn = TcpStream;
    type Answer = ResponseHead;

    fn checkout(&self, server: &Server) -> Option<TcpStream> {
        server.state.raw_pool.checkout(server.config.pool_purge_delay)
    }

    /// The pool probed the socket as it handed it out (`Pooled for TcpStream`).
    async fn revive(&mut self, _: &mut TcpStream, _: Duration) -> bool {
        true
    }

    async fn connect(address: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
        pool::connect_socket(address, timeout).await.map_err(|e| e.to_string())
    }

    async fn send(
        &mut self,
        conn: &mut TcpStream,
        _: &Server,
        timeout: Duration,
    ) -> Result<ResponseHead, SendFailed> {
        send(self.io, conn, self.bufs, timeout, self.head_method, self.close_client).await
    }

    fn status(answer: &ResponseHead) -> u16 {
        answer.status
    }
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
) -> Result<ResponseHead, SendFailed>
where
    IO: AsyncWrite + Unpin,
{
    let mut written = 0;
    let write = async {
        while written < bufs.request.len() {
            match socket.write(&bufs.request[written..]).await? {
                0 => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                n => written += n,
            }
        }
        Ok(())
    };
    let wrote = tokio::time::timeout(timeout, write).await;
    match wrote {
        Err(_) => return Err(SendFailed::Timeout),
        Ok(Err(e)) if written == 0 => return Err(SendFailed::Unsent(e.to_string())),
        Ok(Err(e)) => return Err(SendFailed::Empty(e.to_string())),
        Ok(Ok(())) => {}
    }
    // Some bytes but no complete head is HAProxy's junk-response, as a head cut short.
    let closed = |any: bool, e: &dyn std::fmt::Display| {
        if any { SendFailed::Junk(e.to_string()) } else { SendFailed::Empty(e.to_string()) }
    };
    let junk = || SendFailed::Junk("invalid response".into());
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
                            return Err(SendFailed::ClientGone);
                        }
                        interim_bytes += bufs.response.len() as u64;
                        continue;
                    }
                    let head = plan_response(&res, head_method, close_client, &mut bufs.response);
                    bufs.server.advance(n);
                    return head.map(|h| ResponseHead { interim_bytes, ..h }).ok_or_else(junk);
                }
                Ok(Status::Partial) if bufs.server.len() > MAX_RESPONSE_HEAD => return Err(junk()),
                Ok(Status::Partial) => {}
                Err(_) => return Err(junk()),
            }
        }
        bufs.server.reserve(SERVER_READ);
        match tokio::time::timeout(timeout, socket.read_buf(&mut bufs.server)).await {
            Err(_) => return Err(SendFailed::Timeout),
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
            count_bytes(out.fe, out.backend, out.server, |c| &c.bout, bufs.response.len() as u64);
            io.write_all(&bufs.response).await
        } else {
            count_bytes(out.fe, out.backend, out.server, |c| &c.bout, take as u64);
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

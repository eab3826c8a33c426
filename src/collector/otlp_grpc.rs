//! OTLP/gRPC `TraceService/Export` on tonic's HTTP/2 server. The request message is pruned to
//! the span limits on the wire before prost decodes it (as OTLP/HTTP does), so tonic's
//! generated server, which decodes the whole message first, is replaced by one with a codec
//! of our own. A layer reads the grpc-status of every response so refusals made by tonic
//! before our codec or handler runs are counted too.

use super::intake::{Intake, IntakeError, Protocol, Reason};
use super::otlp;
use super::otlp_limits::{self, Dropped, SpanLimits, WireError};
use bytes::Buf;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::{Request, Response, Status};

const SERVICE_NAME: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// An export request as the span limits left it, and what they took out.
struct Pruned {
    request: ExportTraceServiceRequest,
    dropped: Dropped,
}

/// Why a request was refused, carried as the source of its `Status` so that `CountErrors`
/// can count it by reason rather than guess one from the status code (INVALID_ARGUMENT is
/// both an undecodable and an oversized request).
#[derive(Debug, thiserror::Error)]
#[error("{0:?}")]
struct Refused(Reason);

fn refuse(reason: Reason, message: String) -> Status {
    let mut status = Status::invalid_argument(message);
    status.set_source(Arc::new(Refused(reason)));
    status
}

#[derive(Clone, Copy)]
struct PruningCodec {
    /// Bytes the kept part of a request may take decoded; past this it is refused undecoded.
    max_decoded: usize,
}

impl Codec for PruningCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Pruned;
    type Encoder = ResponseEncoder;
    type Decoder = PruningDecoder;

    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> PruningDecoder {
        PruningDecoder { max_decoded: self.max_decoded }
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

struct PruningDecoder {
    max_decoded: usize,
}

impl Decoder for PruningDecoder {
    type Item = Pruned;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Pruned>, Status> {
        // tonic hands over one whole message (already inflated and within the message size
        // limit); taking it as `Bytes` splits tonic's buffer instead of copying it.
        let raw = src.copy_to_bytes(src.remaining());
        let (pruned, dropped) =
            match otlp_limits::prune_protobuf(&raw, SpanLimits::default(), self.max_decoded) {
                Ok(p) => p,
                Err(e @ WireError::TooLarge { .. }) => return Err(refuse(Reason::Oversized, e.to_string())),
                Err(e) => return Err(refuse(Reason::Malformed, e.to_string())),
            };
        drop(raw);
        match ExportTraceServiceRequest::decode(pruned.as_slice()) {
            Ok(request) => Ok(Some(Pruned { request, dropped })),
            Err(e) => Err(refuse(Reason::Malformed, format!("cannot decode ExportTraceServiceRequest: {e}"))),
        }
    }
}

#[derive(Clone)]
struct Export {
    intake: Intake,
}

impl tonic::server::UnaryService<Pruned> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<ExportTraceServiceResponse>, Status>;

    fn call(&mut self, request: Request<Pruned>) -> Self::Future {
        let intake = self.intake.clone();
        Box::pin(async move { export(&intake, request.into_inner()).await })
    }
}

async fn export(intake: &Intake, pruned: Pruned) -> Result<Response<ExportTraceServiceResponse>, Status> {
    let p = Protocol::OtlpGrpc;
    let Pruned { request, dropped } = pruned;
    intake.counters.limited(p, dropped);
    let count = otlp::span_count(&request);
    if count > intake.max_batch_spans() {
        intake.counters.rejected_spans(p, Reason::Oversized, count);
        return Err(refuse(
            Reason::Oversized,
            format!("batch of {count} spans exceeds the limit of {}", intake.max_batch_spans()),
        ));
    }
    let converted = otlp::convert(request);
    intake.counters.rejected_spans(p, Reason::InvalidId, converted.rejected);
    match intake.submit(p, converted.spans).await {
        Ok(outcome) => {
            Ok(Response::new(super::otlp_http::response_for(converted.rejected, converted.error, outcome)))
        }
        // UNAVAILABLE is the code OTLP clients retry with backoff.
        Err(IntakeError::QueueFull) => Err(Status::unavailable("span queue full; retry later")),
        Err(e @ IntakeError::TooManySpans { .. }) => Err(Status::invalid_argument(e.to_string())),
        Err(e) => Err(Status::unavailable(e.to_string())),
    }
}

/// `TraceService` served with `PruningCodec`, as the generated `TraceServiceServer` serves it
/// with prost's codec.
#[derive(Clone)]
struct TraceServer {
    intake: Intake,
    max_message_bytes: usize,
}

impl<B> tower::Service<http::Request<B>> for TraceServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != EXPORT_PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let method = Export { intake: self.intake.clone() };
        let codec = PruningCodec {
            max_decoded: self.max_message_bytes.saturating_mul(super::otlp_http::DECODED_PER_BODY_BYTE),
        };
        let mut grpc = tonic::server::Grpc::new(codec)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(self.max_message_bytes);
        Box::pin(async move { Ok(grpc.unary(method, req).await) })
    }
}

impl tonic::server::NamedService for TraceServer {
    const NAME: &'static str = SERVICE_NAME;
}

/// Counts responses with a non-zero grpc-status (tonic puts it in the headers of error
/// responses), whether our handler or tonic's decoder produced them.
#[derive(Clone)]
struct CountErrors<S> {
    inner: S,
    intake: Intake,
}

impl<S, B> tower::Service<axum::http::Request<B>> for CountErrors<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        let intake = self.intake.clone();
        Box::pin(async move {
            let resp = fut.await?;
            let refused = resp
                .extensions()
                .get::<Status>()
                .and_then(std::error::Error::source)
                .and_then(|e| e.downcast_ref::<Refused>())
                .map(|r| r.0);
            let code =
                resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|s| s.parse().ok());
            let reason = refused.or(match code {
                None | Some(0) => None,
                Some(3) | Some(13) => Some(Reason::Malformed),
                Some(8) | Some(11) => Some(Reason::Oversized),
                Some(14) => Some(Reason::QueueFull),
                Some(12) => Some(Reason::Unsupported),
                Some(_) => Some(Reason::StoreError),
            });
            if let Some(reason) = reason {
                intake.counters.rejected_batch(Protocol::OtlpGrpc, reason);
            }
            Ok(resp)
        })
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for CountErrors<S> {
    const NAME: &'static str = S::NAME;
}

pub async fn bind(address: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    tracing::info!(listener = %"collector-otlp-grpc", address = %local, tls = false, "listening");
    Ok((listener, local))
}

/// OTLP/gRPC export requests decoded and stored at once, over all connections.
const MAX_CONCURRENT_EXPORTS: usize = 16;

pub async fn serve(
    listener: TcpListener,
    intake: Intake,
    max_message_bytes: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let server = TraceServer { intake: intake.clone(), max_message_bytes };
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let result = tonic::transport::Server::builder()
        // A request takes its message and up to 8 times that decoded (`max_message_bytes` and
        // the codec's `max_decoded` bound one): past this many at once, further requests wait
        // for a turn (HTTP/2 flow control holds their senders) instead of each taking that.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_EXPORTS))
        .max_concurrent_streams(Some(100))
        .timeout(Duration::from_secs(30))
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(CountErrors { inner: server, intake })
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.changed().await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "OTLP gRPC server stopped");
    }
}

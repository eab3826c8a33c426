//! OTLP/gRPC `TraceService/Export` on tonic's HTTP/2 server. Undecodable messages are
//! refused by tonic before our handler runs; a layer reads the grpc-status of every response
//! so those are counted too.

use super::intake::{Intake, IntakeError, Protocol, Reason};
use super::otlp;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

struct Service {
    intake: Intake,
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let p = Protocol::OtlpGrpc;
        let mut request = request.into_inner();
        let count = otlp::span_count(&request);
        if count > self.intake.max_batch_spans() {
            self.intake.counters.rejected_spans(p, Reason::Oversized, count);
            return Err(Status::invalid_argument(format!(
                "batch of {count} spans exceeds the limit of {}",
                self.intake.max_batch_spans()
            )));
        }
        // tonic has decoded the request already; its size is bounded by the message size
        // limit and MAX_CONCURRENT_EXPORTS, and what is kept by the span limits.
        let dropped = super::otlp_limits::apply(&mut request, super::otlp_limits::SpanLimits::default());
        self.intake.counters.limited(p, dropped);
        let converted = otlp::convert(request);
        self.intake.counters.rejected_spans(p, Reason::InvalidId, converted.rejected);
        match self.intake.submit(p, converted.spans).await {
            Ok(outcome) => Ok(Response::new(super::otlp_http::response_for(
                converted.rejected,
                converted.error,
                outcome,
            ))),
            // UNAVAILABLE is the code OTLP clients retry with backoff.
            Err(IntakeError::QueueFull) => Err(Status::unavailable("span queue full; retry later")),
            Err(e @ IntakeError::TooManySpans { .. }) => Err(Status::invalid_argument(e.to_string())),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
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
            let code =
                resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|s| s.parse().ok());
            let reason = match code {
                None | Some(0) => None,
                Some(3) | Some(13) => Some(Reason::Malformed),
                Some(8) | Some(11) => Some(Reason::Oversized),
                Some(14) => Some(Reason::QueueFull),
                Some(12) => Some(Reason::Unsupported),
                Some(_) => Some(Reason::StoreError),
            };
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
    let server = TraceServiceServer::new(Service { intake: intake.clone() })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message_bytes);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let result = tonic::transport::Server::builder()
        // A request decodes to many times its wire size (`max_message_bytes` bounds one):
        // past this many at once, further requests wait for a turn (HTTP/2 flow control
        // holds their senders) instead of each taking its decoded size in memory.
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

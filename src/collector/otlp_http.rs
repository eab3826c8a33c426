//! OTLP/HTTP `POST /v1/traces` (OTLP 1.x "OTLP/HTTP"): protobuf or JSON, optionally gzip.
//! 200 with `ExportTraceServiceResponse` (partial success when some spans were refused),
//! 400 with a `google.rpc.Status` for undecodable data, 413 too large, 415 unknown media type,
//! 429 + Retry-After when the queue is full, 503 + Retry-After when the store fails.

use super::intake::{Intake, IntakeError, Protocol, Reason};
use super::otlp;
use super::otlp_limits::{self, SpanLimits, WireError};
use crate::trace_store::{FUTURE_ALLOWANCE_US, WriteOutcome};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::sync::Arc;

/// `google.rpc.Status`, the body OTLP/HTTP error responses carry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Decoded bytes a request may take per byte of the body limit: a well-formed span decodes
/// to about 3 times its protobuf size.
pub(super) const DECODED_PER_BODY_BYTE: usize = 8;

struct HttpState {
    intake: Intake,
    max_body_bytes: usize,
}

pub fn router(intake: Intake, max_body_bytes: usize) -> Router {
    Router::new().route("/v1/traces", post(export)).with_state(Arc::new(HttpState { intake, max_body_bytes }))
}

fn status_response(enc: Encoding, status: StatusCode, grpc_code: i32, message: String) -> Response {
    let body = match enc {
        Encoding::Protobuf => RpcStatus { code: grpc_code, message }.encode_to_vec(),
        Encoding::Json => {
            serde_json::json!({ "code": grpc_code, "message": message }).to_string().into_bytes()
        }
    };
    (status, [(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

fn retry_later(enc: Encoding, status: StatusCode, message: String) -> Response {
    // gRPC code 14 UNAVAILABLE / 8 RESOURCE_EXHAUSTED, mirrored for the HTTP body.
    let code = if status == StatusCode::TOO_MANY_REQUESTS { 8 } else { 14 };
    let mut r = status_response(enc, status, code, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Inflates gzip with a cap on the inflated size, so a small bomb cannot fill memory.
pub fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(bytes).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| format!("invalid gzip body: {e}"))?;
    if out.len() > limit {
        return Err(format!("body inflates to more than {limit} bytes"));
    }
    Ok(out)
}

async fn export(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    let intake = &state.intake;
    let p = Protocol::OtlpHttp;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let enc = match ctype.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            intake.counters.rejected_batch(p, Reason::Unsupported);
            return status_response(
                Encoding::Protobuf,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                3,
                format!("unsupported content type {other:?}; use application/x-protobuf or application/json"),
            );
        }
    };
    let raw = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            intake.counters.rejected_batch(p, Reason::Oversized);
            return status_response(enc, StatusCode::PAYLOAD_TOO_LARGE, 8, format!("request body: {e}"));
        }
    };
    let content_encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let bytes = match content_encoding {
        "" | "identity" => raw.to_vec(),
        "gzip" => match gunzip(&raw, state.max_body_bytes) {
            Ok(b) => b,
            Err(e) => {
                intake.counters.rejected_batch(p, Reason::Malformed);
                return status_response(enc, StatusCode::BAD_REQUEST, 3, e);
            }
        },
        other => {
            intake.counters.rejected_batch(p, Reason::Unsupported);
            return status_response(
                enc,
                StatusCode::BAD_REQUEST,
                3,
                format!("unsupported Content-Encoding {other:?}"),
            );
        }
    };
    // A request decodes to several times its size; past this it is refused undecoded.
    let max_decoded = state.max_body_bytes.saturating_mul(DECODED_PER_BODY_BYTE);
    let limits = SpanLimits::default();
    let request = match enc {
        Encoding::Protobuf => match otlp_limits::prune_protobuf(&bytes, limits, max_decoded) {
            Ok((pruned, dropped)) => {
                drop(bytes);
                intake.counters.limited(p, dropped);
                ExportTraceServiceRequest::decode(pruned.as_slice()).map_err(|e| e.to_string())
            }
            Err(e @ WireError::TooLarge { .. }) => {
                intake.counters.rejected_batch(p, Reason::Oversized);
                return status_response(enc, StatusCode::BAD_REQUEST, 3, e.to_string());
            }
            Err(e) => Err(e.to_string()),
        },
        Encoding::Json => {
            if let Err(e) = otlp_limits::check_json_size(&bytes, max_decoded) {
                intake.counters.rejected_batch(p, Reason::Oversized);
                return status_response(enc, StatusCode::BAD_REQUEST, 3, e.to_string());
            }
            serde_json::from_slice::<ExportTraceServiceRequest>(&bytes).map_err(|e| e.to_string()).map(
                |mut r| {
                    intake.counters.limited(p, otlp_limits::apply(&mut r, limits));
                    r
                },
            )
        }
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            intake.counters.rejected_batch(p, Reason::Malformed);
            return status_response(
                enc,
                StatusCode::BAD_REQUEST,
                3,
                format!("cannot decode ExportTraceServiceRequest: {e}"),
            );
        }
    };
    let count = otlp::span_count(&request);
    if count > intake.max_batch_spans() {
        intake.counters.rejected_batch(p, Reason::Oversized);
        intake.counters.rejected_spans(p, Reason::Oversized, count);
        return status_response(
            enc,
            StatusCode::BAD_REQUEST,
            3,
            format!("batch of {count} spans exceeds the limit of {}", intake.max_batch_spans()),
        );
    }
    let converted = otlp::convert(request);
    intake.counters.rejected_spans(p, Reason::InvalidId, converted.rejected);
    let outcome = match intake.submit(p, converted.spans).await {
        Ok(o) => o,
        Err(IntakeError::QueueFull) => {
            return retry_later(enc, StatusCode::TOO_MANY_REQUESTS, "span queue full; retry later".into());
        }
        Err(e @ IntakeError::TooManySpans { .. }) => {
            return status_response(enc, StatusCode::BAD_REQUEST, 3, e.to_string());
        }
        Err(e) => return retry_later(enc, StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let response = response_for(converted.rejected, converted.error, outcome);
    let body = match enc {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

/// OTLP's partial success: spans refused at conversion (`invalid`, with their `error`) and
/// those the store would not keep.
pub fn response_for(
    invalid: usize,
    error: Option<String>,
    stored: WriteOutcome,
) -> ExportTraceServiceResponse {
    let rejected = invalid + stored.expired + stored.future;
    if rejected == 0 {
        return ExportTraceServiceResponse { partial_success: None };
    }
    let mut message = error.unwrap_or_default();
    for (n, why) in [
        (stored.expired, "older than the retention period".to_string()),
        (
            stored.future,
            format!("starting more than {}h ahead of this host's clock", FUTURE_ALLOWANCE_US / 3_600_000_000),
        ),
    ] {
        if n > 0 {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&format!("{n} spans {why}"));
        }
    }
    ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: message,
        }),
    }
}

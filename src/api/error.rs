//! The one place where engine and request errors become Prometheus's error envelope and HTTP
//! status (`web/api/v1/api.go`, `returnAPIError` and `respondError`).

use crate::promql::QueryError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad parameter, bad PromQL): the client's fault.
    #[error("{0}")]
    BadData(String),
    /// The query ran into a PromQL runtime error.
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Canceled(String),
    /// Storage or server failure: not the client's fault.
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    NotFound(String),
}

/// Prometheus's `errorType` for an engine error.
pub fn error_type(e: &QueryError) -> &'static str {
    match e {
        QueryError::Parse(_) | QueryError::BadData(_) => "bad_data",
        QueryError::Execution(_) | QueryError::TooManySamples(_) => "execution",
        QueryError::Timeout(_) => "timeout",
        QueryError::Canceled(_) => "canceled",
        QueryError::Storage(_) => "internal",
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let msg = e.to_string();
        match e {
            QueryError::Parse(_) => ApiError::BadData(format!("invalid parameter \"query\": {msg}")),
            QueryError::BadData(_) => ApiError::BadData(msg),
            QueryError::Execution(_) | QueryError::TooManySamples(_) => ApiError::Execution(msg),
            QueryError::Timeout(_) => ApiError::Timeout(msg),
            QueryError::Canceled(_) => ApiError::Canceled(msg),
            QueryError::Storage(_) => ApiError::Internal(msg),
        }
    }
}

impl ApiError {
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::BadData(_) => "bad_data",
            ApiError::Execution(_) => "execution",
            ApiError::Timeout(_) => "timeout",
            ApiError::Canceled(_) => "canceled",
            ApiError::Internal(_) => "internal",
            ApiError::NotFound(_) => "not_found",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadData(_) => StatusCode::BAD_REQUEST,
            ApiError::Execution(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            // Prometheus answers 499 ("client closed connection") for canceled queries.
            ApiError::Canceled(_) => StatusCode::from_u16(499).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "status": "error",
            "errorType": self.error_type(),
            "error": self.to_string(),
        });
        (self.status(), [("content-type", "application/json")], body.to_string()).into_response()
    }
}

/// A plain-text error body, for the endpoints Prometheus answers in text (`/federate`,
/// `/api/v1/write`) rather than in the JSON envelope.
pub fn text_error(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
}

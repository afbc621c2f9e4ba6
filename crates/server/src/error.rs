//! The one error type of the HTTP layer. Each error knows its status and renders itself
//! in the format of the endpoint that failed (the wallet API's, OpenAI's or Anthropic's),
//! in this one place; handlers only construct them.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use spendgate_core::FieldError;
use spendgate_store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    /// The client was too slow to send its request.
    RequestTimeout,
    /// A rate limit: retry after a short wait.
    RateLimited,
    /// A spend or request cap: no retry helps until the cycle ends.
    QuotaExceeded,
    Internal,
    /// The provider could not be reached or answered garbage.
    BadGateway,
    /// The provider did not answer in time.
    GatewayTimeout,
    Unavailable,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::RateLimited | ErrorKind::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `error.type` in the wallet API and in Anthropic's format.
    fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest
            | ErrorKind::MethodNotAllowed
            | ErrorKind::Conflict
            | ErrorKind::RequestTimeout => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::PayloadTooLarge => "request_too_large",
            ErrorKind::RateLimited | ErrorKind::QuotaExceeded => "rate_limit_error",
            ErrorKind::Internal | ErrorKind::BadGateway | ErrorKind::GatewayTimeout => "api_error",
            ErrorKind::Unavailable => "overloaded_error",
        }
    }

    /// `error.type` in OpenAI's format.
    fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "requests",
            ErrorKind::QuotaExceeded => "insufficient_quota",
            ErrorKind::Internal | ErrorKind::BadGateway | ErrorKind::GatewayTimeout | ErrorKind::Unavailable => {
                "server_error"
            }
            ErrorKind::PermissionDenied => "permission_error",
            _ => "invalid_request_error",
        }
    }

    fn management_type(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict_error",
            ErrorKind::Unavailable => "unavailable_error",
            other => other.anthropic_type(),
        }
    }
}

/// Which shape an error takes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"type", "message", "param"?}}`
    Management,
    /// `{"error": {"message", "type", "param", "code"}}`
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`
    Anthropic,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The offending field, as a JSON path (`spend_limit.amount`).
    pub param: Option<String>,
    /// OpenAI's `error.code` (`invalid_api_key`, `model_not_found`, ...).
    pub code: Option<&'static str>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into(), param: None, code: None, headers: Vec::new() }
    }

    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { param: Some(param.into()), ..ApiError::new(ErrorKind::InvalidRequest, message) }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Authentication, message).with_code("invalid_api_key")
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        ApiError::new(ErrorKind::Internal, "internal error; the server log has the details")
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// The response in `format`.
    pub fn render(self, format: ErrorFormat) -> Response {
        let body = match format {
            ErrorFormat::Management => {
                let mut error = json!({ "type": self.kind.management_type(), "message": self.message });
                if let Some(param) = self.param {
                    error["param"] = param.into();
                }
                json!({ "error": error })
            }
            ErrorFormat::OpenAi => json!({ "error": {
                "message": self.message,
                "type": self.kind.openai_type(),
                "param": self.param,
                "code": self.code,
            }}),
            ErrorFormat::Anthropic => json!({
                "type": "error",
                "error": { "type": self.kind.anthropic_type(), "message": self.message },
            }),
        };
        let mut response = (self.kind.status(), axum::Json(body)).into_response();
        if matches!(self.kind, ErrorKind::PayloadTooLarge | ErrorKind::RequestTimeout) {
            // The rest of the body was not read: this connection cannot carry another
            // request, so tell the client not to reuse it (else its next request on it fails).
            response.headers_mut().insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response.headers_mut().extend(self.headers);
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.param.clone(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the database is unreachable");
            return ApiError::new(ErrorKind::Unavailable, "the database is unreachable; retry in a moment");
        }
        ApiError::internal(e)
    }
}

/// The wallet API's format.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render(ErrorFormat::Management)
    }
}

//! Error answers in each provider's format, rendered in one place: OpenAI
//! `{"error": {message, type, param, code}}` and Anthropic
//! `{"type": "error", "error": {type, message}, "request_id"}`, with the type (and
//! OpenAI code) that the real API uses for the status. Retryable statuses carry a
//! short `retry-after-ms` (and `retry-after: 1`) so SDK retries stay fast in tests.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which wire format an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

/// One error answer, before rendering.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI `param` (Anthropic has none).
    pub param: Option<String>,
    /// OpenAI `code`, overriding the default for the status.
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), param: None, code: None }
    }

    /// A 400 naming the offending field.
    pub fn invalid(param: &str, message: impl Into<String>) -> ApiError {
        ApiError { param: Some(param.to_owned()), ..ApiError::new(400, message) }
    }

    /// A 400 for a required field that is missing.
    pub fn missing(provider: Provider, field: &str) -> ApiError {
        let message = match provider {
            Provider::OpenAi => format!("Missing required parameter: '{field}'."),
            Provider::Anthropic => format!("{field}: Field required"),
        };
        ApiError { code: Some("missing_required_parameter"), ..ApiError::invalid(field, message) }
    }

    /// What the `error:STATUS` directive answers.
    pub fn directive(status: u16) -> ApiError {
        let message = match status {
            400 => "mock: invalid request (requested with [[mock:error:400]])",
            401 => "mock: invalid API key (requested with [[mock:error:401]])",
            403 => "mock: permission denied (requested with [[mock:error:403]])",
            404 => "mock: model not found (requested with [[mock:error:404]])",
            413 => "mock: request too large (requested with [[mock:error:413]])",
            429 => "mock: rate limit reached (requested with [[mock:error:429]])",
            529 => "Overloaded",
            _ => "mock: error requested with [[mock:error:STATUS]]",
        };
        ApiError::new(status, message)
    }

    pub fn render(&self, provider: Provider, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match provider {
            Provider::OpenAi => {
                let (kind, code) = openai_type(self.status);
                json!({"error": {
                    "message": self.message,
                    "type": kind,
                    "param": self.param,
                    "code": self.code.or(code),
                }})
            }
            Provider::Anthropic => json!({
                "type": "error",
                "error": {"type": anthropic_type(self.status), "message": self.message},
                "request_id": request_id,
            }),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        let id_header = match provider {
            Provider::OpenAi => "x-request-id",
            Provider::Anthropic => "request-id",
        };
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(HeaderName::from_static(id_header), value);
        }
        if matches!(self.status, 408 | 409 | 429) || self.status >= 500 {
            headers.insert(HeaderName::from_static("retry-after-ms"), HeaderValue::from_static("10"));
            headers.insert(HeaderName::from_static("retry-after"), HeaderValue::from_static("1"));
        }
        response
    }
}

/// OpenAI `type` and default `code` for a status.
fn openai_type(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("invalid_request_error", Some("permission_denied")),
        404 => ("invalid_request_error", Some("model_not_found")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// Anthropic error `type` for a status.
pub fn anthropic_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The OpenAI in-stream error (a `data:` line whose JSON has an `error` key).
pub fn openai_stream_error() -> Value {
    json!({"error": {
        "message": "The server had an error while processing your request. (mock: [[mock:midstream_error]])",
        "type": "server_error",
        "param": null,
        "code": null,
    }})
}

/// The Anthropic in-stream error (`event: error`).
pub fn anthropic_stream_error() -> Value {
    json!({
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded (mock: [[mock:midstream_error]])"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_types() {
        let expected = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (529, "overloaded_error"),
        ];
        for (status, kind) in expected {
            assert_eq!(anthropic_type(status), kind, "{status}");
        }
    }

    #[test]
    fn openai_types() {
        assert_eq!(openai_type(401), ("invalid_request_error", Some("invalid_api_key")));
        assert_eq!(openai_type(500), ("server_error", None));
        assert_eq!(openai_type(422), ("invalid_request_error", None));
    }
}

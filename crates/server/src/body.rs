//! JSON request bodies, with errors in our format: 413 past the size limit, 400 with
//! the position for malformed JSON. The Content-Type is not insisted upon (curl's
//! default form type would otherwise confuse people); the body must be JSON.

use crate::error::{ApiError, ErrorKind};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::Value;

/// Request bodies on the wallet API are limited to 1 MiB.
pub const WALLET_API_BODY_LIMIT: usize = 1 << 20;

pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorKind::PayloadTooLarge,
                    format!("request body is larger than the limit of {WALLET_API_BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::invalid("body", format!("could not read the request body: {rejection}"))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid("body", "body: is empty; send a JSON object"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::invalid("body", format!("body: is not valid JSON ({e})")))
    }
}

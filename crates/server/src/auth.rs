//! Who is calling: the credential from `Authorization: Bearer` or `x-api-key`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use spendgate_core::{Secret, WalletKey};

/// The key a request presented, if any: `Authorization: Bearer <key>` or `x-api-key`.
pub fn presented_key(parts: &Parts) -> Option<Secret> {
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let api_key = || parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer
        .or_else(api_key)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::presented)
}

/// An authenticated wallet API key.
pub struct WalletAuth(pub WalletKey);

impl FromRequestParts<AppState> for WalletAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = presented_key(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "missing API key: send your wallet API key as Authorization: Bearer lava_wk_...",
            )
        })?;
        if secret.looks_like_preview() {
            return Err(ApiError::unauthorized(
                "that is a key preview (it ends in ****), not the full key; use the full wallet API key",
            ));
        }
        if secret.expose().starts_with(&state.config.spend_key_prefix) {
            return Err(ApiError::unauthorized(format!(
                "a spend key ({}...) cannot manage keys; use a wallet API key ({}...)",
                state.config.spend_key_prefix, state.config.wallet_key_prefix
            )));
        }
        match state.store.wallet_key_by_hash(&secret.hash()).await? {
            Some(key) => Ok(WalletAuth(key)),
            None => Err(ApiError::unauthorized(
                "invalid wallet API key (unknown or revoked)",
            )),
        }
    }
}

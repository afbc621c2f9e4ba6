//! Who is calling: the credential from `Authorization: Bearer` or `x-api-key`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use spendgate_core::{Secret, SpendKey, WalletKey};

/// The key a request presented, if any: `Authorization: Bearer <key>` or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<Secret> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let api_key = || headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or_else(api_key).map(str::trim).filter(|k| !k.is_empty()).map(Secret::presented)
}

fn require_key(parts: &Parts) -> Result<Secret, ApiError> {
    let secret = presented_key(&parts.headers).ok_or_else(|| {
        ApiError::unauthorized("missing API key: send it as Authorization: Bearer <key> (or x-api-key)")
    })?;
    if secret.looks_like_preview() {
        return Err(ApiError::unauthorized(
            "that is a key preview (it ends in ****), not the full key; use the full key, or rotate the key to get a new one",
        ));
    }
    Ok(secret)
}

fn is_spend_key(state: &AppState, secret: &Secret) -> bool {
    secret.expose().starts_with(&state.config.spend_key_prefix)
}

async fn wallet_key(state: &AppState, secret: &Secret) -> Result<WalletKey, ApiError> {
    state
        .store
        .wallet_key_by_hash(&secret.hash())
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid wallet API key (unknown or revoked)"))
}

/// An authenticated wallet API key: the only credential of the management routes.
pub struct WalletAuth(pub WalletKey);

impl FromRequestParts<AppState> for WalletAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = require_key(parts)?;
        if is_spend_key(state, &secret) {
            return Err(ApiError::unauthorized(format!(
                "a spend key ({}...) cannot manage keys; use a wallet API key ({}...)",
                state.config.spend_key_prefix, state.config.wallet_key_prefix
            )));
        }
        Ok(WalletAuth(wallet_key(state, &secret).await?))
    }
}

/// A caller of a route that both kinds of key may use (`GET /v1/models`).
pub enum Caller {
    Wallet(WalletKey),
    /// A spend key that is usable now (active, not revoked, not expired).
    Spend(SpendKey),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = require_key(parts)?;
        if is_spend_key(state, &secret) {
            let (_, key) = crate::gateway::authenticate(state, &parts.headers)?;
            return Ok(Caller::Spend((*key).clone()));
        }
        Ok(Caller::Wallet(wallet_key(state, &secret).await?))
    }
}

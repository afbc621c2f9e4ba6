//! The wallet API (`/v1/spend_keys`, usage, requests, `/v1/audit_log`, `/v1/models`):
//! thin handlers that parse, call [`keys`], and render [`views`].

pub mod audit;
pub mod keys;
pub mod openapi;
pub mod usage;
pub mod views;
pub mod webhooks;

use crate::auth::{Caller, WalletAuth};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use openapi::{CreateSpendKeyBody, ErrorView, UpdateSpendKeyBody};
use spendgate_core::{Model, SpendKeyId};
use std::collections::HashMap;
use views::{AnthropicModelListView, ListView, ModelListView, RevokedView, SpendKeyView};

pub const DEFAULT_PAGE: u32 = 10;
pub const MAX_PAGE: u32 = 100;
const CURSOR_PREFIX: &str = "cur_";

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/spend_keys", post(create).get(list))
        .route("/v1/spend_keys/{id}", get(retrieve).put(update).patch(update).delete(revoke))
        .route("/v1/spend_keys/{id}/rotate", post(rotate))
        .route("/v1/spend_keys/{id}/usage", get(usage::key_usage))
        .route("/v1/usage", get(usage::wallet_usage))
        .route("/v1/requests", get(usage::list_requests))
        .route("/v1/requests/export", get(usage::export_requests))
        .route("/v1/audit_log", get(audit::list))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/openapi.json", get(openapi::serve))
        .merge(models_route())
}

/// `GET /v1/models`, which spend keys may call too.
pub fn models_route() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/models", get(models))
}

async fn render(
    state: &AppState,
    key: &spendgate_core::SpendKey,
    secret: Option<&spendgate_core::Secret>,
) -> Result<SpendKeyView, ApiError> {
    let usage = crate::counters::usage(state, &[key]).await.pop().unwrap_or_default();
    Ok(SpendKeyView::new(key, &usage, secret))
}

#[utoipa::path(post, path = "/v1/spend_keys", tag = "spend keys", operation_id = "createSpendKey",
    summary = "Create a spend key",
    request_body = CreateSpendKeyBody,
    responses(
        (status = 201, description = "The new key, with its secret `key` (shown this once)", body = SpendKeyView),
        (status = 400, description = "A field is invalid (`param` names it), or the body is not JSON", body = ErrorView),
        (status = 413, description = "The body is over 1 MiB", body = ErrorView),
    ))]
async fn create(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    JsonBody(body): JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    let (key, secret) = keys::create(&state, &auth, &body).await?;
    Ok((StatusCode::CREATED, Json(render(&state, &key, Some(&secret)).await?)))
}

/// `limit` (1..=100, default 10) and `cursor` (a `seq` written as `prefix` + base 36)
/// from a list call's query.
pub(crate) fn parse_page(query: &HashMap<String, String>, prefix: &str) -> Result<(Option<i64>, u32), ApiError> {
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => DEFAULT_PAGE,
        Some(l) => l.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
            ApiError::invalid("limit", format!("limit: must be a whole number from 1 to {MAX_PAGE}, got {l:?}"))
        })?,
    };
    let before = match query.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(c) => Some(c.strip_prefix(prefix).and_then(|n| i64::from_str_radix(n, 36).ok()).ok_or_else(|| {
            ApiError::invalid("cursor", "cursor: is not a cursor this API returned (use next_cursor)")
        })?),
    };
    Ok((before, limit))
}

/// The answer for a list call that fetched `limit + 1` rows (`seq`, item), newest first:
/// the first `limit` rendered by `view`, `has_more`, and the cursor of the next page.
pub(crate) fn page_of<T, V>(mut rows: Vec<(i64, T)>, limit: u32, prefix: &str, view: impl Fn(&T) -> V) -> ListView<V> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more { rows.last().map(|(seq, _)| format!("{prefix}{}", radix36(*seq))) } else { None };
    ListView { data: rows.iter().map(|(_, item)| view(item)).collect(), has_more, next_cursor }
}

#[utoipa::path(get, path = "/v1/spend_keys", tag = "spend keys", operation_id = "listSpendKeys",
    summary = "List the wallet's spend keys, newest first (revoked keys are not listed)",
    params(
        openapi::Page,
    ),
    responses(
        (status = 200, description = "One page", body = ListView<SpendKeyView>),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorView),
    ))]
async fn list(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ListView<SpendKeyView>>, ApiError> {
    let (before, limit) = parse_page(&query, CURSOR_PREFIX)?;
    let (page, has_more) = keys::list(&state, &auth.wallet_id, before, limit).await?;
    let next_cursor = if has_more { page.last().map(|l| format!("{CURSOR_PREFIX}{}", radix36(l.seq))) } else { None };
    let page_keys: Vec<&spendgate_core::SpendKey> = page.iter().map(|l| &l.key).collect();
    let usages = crate::counters::usage(&state, &page_keys).await;
    let data = page_keys.iter().zip(&usages).map(|(k, u)| SpendKeyView::new(k, u, None)).collect();
    Ok(Json(ListView { data, has_more, next_cursor }))
}

pub(crate) fn radix36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[utoipa::path(get, path = "/v1/spend_keys/{id}", tag = "spend keys", operation_id = "retrieveSpendKey",
    summary = "Get a spend key, with its usage",
    params(("id" = String, Path, description = "The spend key's id")),
    responses(
        (status = 200, description = "The key", body = SpendKeyView),
        (status = 404, description = "No such key in this wallet (or it was revoked)", body = ErrorView),
    ))]
async fn retrieve(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
) -> Result<Json<SpendKeyView>, ApiError> {
    let key = keys::get(&state, &auth.wallet_id, &SpendKeyId::new(id)).await?;
    Ok(Json(render(&state, &key, None).await?))
}

#[utoipa::path(method(put, patch), path = "/v1/spend_keys/{id}", tag = "spend keys", operation_id = "updateSpendKey",
    summary = "Change a spend key's settings (only the fields sent; null clears one)",
    params(("id" = String, Path, description = "The spend key's id")),
    request_body = UpdateSpendKeyBody,
    responses(
        (status = 200, description = "The key as changed", body = SpendKeyView),
        (status = 400, description = "A field is invalid (`param` names it), or the body is not JSON", body = ErrorView),
        (status = 404, description = "No such key in this wallet (or it was revoked)", body = ErrorView),
        (status = 409, description = "The key kept changing under this request; retry", body = ErrorView),
        (status = 413, description = "The body is over 1 MiB", body = ErrorView),
    ))]
async fn update(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<SpendKeyView>, ApiError> {
    let key = keys::update(&state, &auth, &SpendKeyId::new(id), &body).await?;
    Ok(Json(render(&state, &key, None).await?))
}

#[utoipa::path(post, path = "/v1/spend_keys/{id}/rotate", tag = "spend keys", operation_id = "rotateSpendKey",
    summary = "Replace a spend key's secret (the old one stops working at once); settings and usage stay",
    params(("id" = String, Path, description = "The spend key's id")),
    responses(
        (status = 200, description = "The key, with its new secret `key` (shown this once)", body = SpendKeyView),
        (status = 404, description = "No such key in this wallet (or it was revoked)", body = ErrorView),
        (status = 409, description = "The key kept changing under this request; retry", body = ErrorView),
    ))]
async fn rotate(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
) -> Result<Json<SpendKeyView>, ApiError> {
    let (key, secret) = keys::rotate(&state, &auth, &SpendKeyId::new(id)).await?;
    Ok(Json(render(&state, &key, Some(&secret)).await?))
}

#[utoipa::path(delete, path = "/v1/spend_keys/{id}", tag = "spend keys", operation_id = "revokeSpendKey",
    summary = "Revoke a spend key for good (its usage stays in the records)",
    params(("id" = String, Path, description = "The spend key's id")),
    responses(
        (status = 200, description = "Revoked", body = RevokedView),
        (status = 404, description = "No such key in this wallet (or it was revoked already)", body = ErrorView),
        (status = 409, description = "The key kept changing under this request; retry", body = ErrorView),
    ))]
async fn revoke(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
) -> Result<Json<RevokedView>, ApiError> {
    keys::revoke(&state, &auth, &SpendKeyId::new(id)).await?;
    Ok(Json(RevokedView { success: true }))
}

/// Every model the gateway routes (wallet key), or those a spend key may use. In
/// Anthropic's list shape when the client is an Anthropic SDK (it sends
/// `anthropic-version`), else OpenAI's.
#[utoipa::path(get, path = "/v1/models", tag = "models", operation_id = "listModels",
    summary = "The models the gateway routes (with a spend key: those it may use)",
    params(("anthropic-version" = Option<String>, Header, description = "Sent by Anthropic SDKs: the answer is then in Anthropic's list shape")),
    responses(
        (status = 200, description = "OpenAI's list shape, or Anthropic's when `anthropic-version` is sent",
            body = inline(ModelListOrAnthropic)),
    ))]
async fn models(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> Response {
    let all = state.config.catalog.models().iter();
    let models: Vec<&Model> = match &caller {
        Caller::Wallet(_) => all.collect(),
        Caller::Spend(key) => all.filter(|m| key.allows(m)).collect(),
    };
    if headers.contains_key("anthropic-version") {
        return Json(views::AnthropicModelListView::of(&models)).into_response();
    }
    Json(ModelListView::of(models)).into_response()
}

/// `GET /v1/models`'s two shapes.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // A schema only.
#[serde(untagged)]
enum ModelListOrAnthropic {
    OpenAi(ModelListView),
    Anthropic(AnthropicModelListView),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for seq in [0i64, 1, 35, 36, 1_000_000, i64::MAX] {
            let mut q = HashMap::new();
            q.insert("cursor".to_string(), format!("{CURSOR_PREFIX}{}", radix36(seq)));
            assert_eq!(parse_page(&q, CURSOR_PREFIX).unwrap(), (Some(seq), DEFAULT_PAGE));
        }
        let mut q = HashMap::new();
        q.insert("cursor".to_string(), "garbage".to_string());
        assert_eq!(parse_page(&q, CURSOR_PREFIX).unwrap_err().param.as_deref(), Some("cursor"));
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            let q = HashMap::from([("limit".to_string(), bad.to_string())]);
            assert_eq!(parse_page(&q, CURSOR_PREFIX).unwrap_err().param.as_deref(), Some("limit"), "{bad}");
        }
    }
}

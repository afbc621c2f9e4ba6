//! Budget-alert webhooks: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`, the
//! delivery log `GET /v1/webhooks/{id}/deliveries`, and `POST /v1/webhooks/{id}/test`.
//! The alerts themselves are found and sent by [`crate::alerts`].

use super::openapi::{ErrorView, timestamp};
use super::views::{ListView, RevokedView};
use crate::auth::WalletAuth;
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorKind};
use crate::random;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use spendgate_core::Action;
use spendgate_core::alert::{self, AlertEvent, Delivery, Webhook, WebhookId, WebhookSpec};
use std::collections::HashMap;
use utoipa::ToSchema;

const CURSOR_PREFIX: &str = "dlv_cur_";

/// A webhook that is sent the wallet's budget alerts.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookView {
    pub webhook_id: String,
    /// Where the alerts are POSTed.
    pub url: String,
    /// Only this key's alerts; null: every key of the wallet.
    pub spend_key_id: Option<String>,
    #[schema(schema_with = super::openapi::alert_events)]
    pub events: Vec<&'static str>,
    /// Percents of a key's spend limit that send `spend.threshold`.
    pub thresholds: Vec<u32>,
    #[schema(schema_with = timestamp)]
    pub created_at: String,
    /// The signing secret (`whsec_...`): only in the answer to create, and never again.
    /// Each delivery carries `spendgate-signature: t=<unix seconds>,v1=<hex
    /// HMAC-SHA256 of "<t>.<body>" under this secret>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = String)]
    pub secret: Option<String>,
}

impl WebhookView {
    fn new(w: &Webhook, with_secret: bool) -> Self {
        WebhookView {
            webhook_id: w.id.to_string(),
            url: w.url.clone(),
            spend_key_id: w.spend_key_id.as_ref().map(ToString::to_string),
            events: w.events.iter().map(|e| e.as_str()).collect(),
            thresholds: w.thresholds.clone(),
            created_at: w.created_at.to_string(),
            secret: with_secret.then(|| w.secret.clone()),
        }
    }
}

/// One alert sent (or being sent) to a webhook.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryView {
    /// The event's id (the body's `id`, and the `spendgate-delivery` header).
    pub delivery_id: String,
    pub webhook_id: String,
    #[schema(schema_with = super::openapi::alert_event)]
    pub event: &'static str,
    /// `pending` (tried again at `next_attempt_at`), `delivered` or `failed` (given up).
    #[schema(value_type = String, pattern = "^(pending|delivered|failed)$")]
    pub status: &'static str,
    pub attempts: u32,
    /// The receiver's HTTP status on the last attempt; null: no answer.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(schema_with = timestamp)]
    pub created_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<String>,
    /// The JSON body sent: `{id, type, created_at, data}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl DeliveryView {
    fn new(d: &Delivery) -> Self {
        DeliveryView {
            delivery_id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            event: d.event.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            next_attempt_at: d
                .next_attempt_at
                .filter(|_| d.status == alert::DeliveryStatus::Pending)
                .map(|t| t.to_string()),
            created_at: d.created_at.to_string(),
            delivered_at: d.delivered_at.map(|t| t.to_string()),
            payload: serde_json::from_str(&d.payload).unwrap_or_default(),
        }
    }
}

/// The body of `POST /v1/webhooks`.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only: the body is parsed by `WebhookSpec::parse`.
pub struct CreateWebhookBody {
    /// Where to POST the alerts: an `http://` or `https://` URL (no user or password).
    #[schema(min_length = 8, max_length = 2048, pattern = "^https?://[^/@?#\\s]+[^\\s]*$")]
    url: String,
    /// Only this key's alerts; null or absent: every key of the wallet.
    spend_key_id: Option<String>,
    /// The events to send (default: all three).
    #[schema(schema_with = super::openapi::subscribable_events)]
    events: Option<Vec<String>>,
    /// Percents of a key's spend limit that send `spend.threshold` (default: 50, 80, 100).
    #[schema(schema_with = super::openapi::thresholds)]
    thresholds: Option<Vec<u32>>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no webhook with id {id} in this wallet"))
}

async fn find(state: &AppState, wallet: &spendgate_core::WalletId, id: &str) -> Result<Webhook, ApiError> {
    let hooks = state.store.webhooks(Some(wallet)).await?;
    hooks.into_iter().find(|w| w.id.as_str() == id).ok_or_else(|| not_found(id))
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "alerts", operation_id = "createWebhook",
    summary = "Register a webhook for budget alerts (spend thresholds, request limit reached, key expired)",
    request_body = CreateWebhookBody,
    responses(
        (status = 201, description = "The webhook, with its signing `secret` (shown this once)", body = WebhookView),
        (status = 400, description = "A field is invalid (`param` names it), or the body is not JSON", body = ErrorView),
        (status = 409, description = "The wallet has the most webhooks it may have (20)", body = ErrorView),
        (status = 413, description = "The body is over 1 MiB", body = ErrorView),
    ))]
pub async fn create(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let spec = WebhookSpec::parse(&body)?;
    if let Some(key) = &spec.spend_key_id
        && state.store.spend_key(&auth.wallet_id, key).await?.is_none()
    {
        return Err(ApiError::invalid("spend_key_id", format!("spend_key_id: no spend key {key} in this wallet")));
    }
    if state.store.webhooks(Some(&auth.wallet_id)).await?.len() >= alert::MAX_WEBHOOKS_PER_WALLET {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("a wallet has at most {} webhooks; delete one first", alert::MAX_WEBHOOKS_PER_WALLET),
        ));
    }
    let now = state.now();
    let webhook = Webhook {
        id: WebhookId::generate(random::bytes()?),
        wallet_id: auth.wallet_id.clone(),
        spend_key_id: spec.spend_key_id,
        url: spec.url,
        secret: alert::signing_secret(random::bytes()?),
        events: spec.events,
        thresholds: spec.thresholds,
        created_at: now,
    };
    let mut settings = serde_json::to_value(WebhookView::new(&webhook, false)).unwrap_or_default();
    if let Some(fields) = settings.as_object_mut() {
        fields.retain(|f, _| !["webhook_id", "created_at"].contains(&f.as_str()));
    }
    let audit = auth.audit(Action::WebhookCreated, webhook.id.as_str(), settings, now)?;
    state.store.insert_webhook(&webhook, &audit).await?;
    tracing::info!(wallet = %auth.wallet_id, webhook = %webhook.id, "webhook created");
    Ok((StatusCode::CREATED, Json(WebhookView::new(&webhook, true))))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "alerts", operation_id = "listWebhooks",
    summary = "The wallet's webhooks, oldest first",
    responses((status = 200, description = "Every webhook of the wallet", body = ListView<WebhookView>)))]
pub async fn list(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
) -> Result<Json<ListView<WebhookView>>, ApiError> {
    let hooks = state.store.webhooks(Some(&auth.wallet_id)).await?;
    Ok(Json(ListView {
        data: hooks.iter().map(|w| WebhookView::new(w, false)).collect(),
        has_more: false,
        next_cursor: None,
    }))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "alerts", operation_id = "deleteWebhook",
    summary = "Delete a webhook (alerts not yet delivered to it are not sent)",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "Deleted", body = RevokedView),
        (status = 404, description = "No such webhook in this wallet", body = ErrorView),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
) -> Result<Json<RevokedView>, ApiError> {
    let now = state.now();
    let audit = auth.audit(Action::WebhookDeleted, &id, json!({}), now)?;
    if !state.store.delete_webhook(&auth.wallet_id, &WebhookId::new(id.as_str()), now, &audit).await? {
        return Err(not_found(&id));
    }
    Ok(Json(RevokedView { success: true }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "alerts", operation_id = "listWebhookDeliveries",
    summary = "A webhook's deliveries, newest first: what was sent, and how each attempt went",
    params(
        ("id" = String, Path, description = "The webhook's id"),
        super::openapi::Page,
    ),
    responses(
        (status = 200, description = "One page", body = ListView<DeliveryView>),
        (status = 400, description = "`limit` or `cursor` is invalid", body = ErrorView),
        (status = 404, description = "No such webhook in this wallet", body = ErrorView),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Json<ListView<DeliveryView>>, ApiError> {
    let (before, limit) = super::parse_page(&p, CURSOR_PREFIX)?;
    let webhook = find(&state, &auth.wallet_id, &id).await?;
    let rows = state.store.list_deliveries(&auth.wallet_id, &webhook.id, before, limit + 1).await?;
    Ok(Json(super::page_of(rows, limit, CURSOR_PREFIX, DeliveryView::new)))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "alerts", operation_id = "testWebhook",
    summary = "Send the webhook a `webhook.test` event (to try the receiver and its signature check)",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 202, description = "Queued: it is sent within a check interval; its delivery shows how it went", body = DeliveryView),
        (status = 404, description = "No such webhook in this wallet", body = ErrorView),
    ))]
pub async fn test(
    State(state): State<AppState>,
    WalletAuth(auth): WalletAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let webhook = find(&state, &auth.wallet_id, &id).await?;
    let now = state.now();
    let delivery = crate::alerts::new_delivery(&webhook, AlertEvent::Test, "", now, |id| {
        json!({ "id": id.as_str(), "type": AlertEvent::Test.as_str(), "created_at": now.to_string(),
            "data": { "webhook_id": webhook.id.as_str() } })
    })?;
    let delivery = Delivery { dedup: format!("test:{}", delivery.id), ..delivery };
    state.store.enqueue_delivery(&delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::new(&delivery))))
}

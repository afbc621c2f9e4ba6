//! The wallet API's JSON shapes (wire-compatible with `@lavapayments/nodejs` 11.x).
//! Each derives its OpenAPI schema ([`super::openapi`]) from the same definition that
//! serializes it, so the document cannot describe a shape the API does not send.

use super::openapi::{amount, burst, cycle, key_status, request_count, request_shape, rpm, timestamp};
use serde::Serialize;
use spendgate_core::{AuditEntry, KeyUsage, Model, Secret, SpendKey};
use spendgate_store::RequestRecord;
use utoipa::ToSchema;

/// A spend limit: at most `amount` USD per `cycle`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendLimitView {
    #[schema(schema_with = amount)]
    pub amount: String,
    #[schema(schema_with = cycle)]
    pub cycle: &'static str,
}

/// A request limit: at most `count` model requests per `cycle`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestLimitView {
    #[schema(schema_with = request_count)]
    pub count: u64,
    #[schema(schema_with = cycle)]
    pub cycle: &'static str,
}

/// A rate limit: `rpm` requests per minute, with bursts of up to `burst` (default: `rpm`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitView {
    #[schema(schema_with = rpm)]
    pub rpm: u32,
    #[schema(schema_with = burst, required = false)]
    pub burst: Option<u32>,
}

/// A spend key. Revoked keys are not shown (they answer 404).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendKeyView {
    pub spend_key_id: String,
    /// The key's prefix and first characters, then `****`: never the whole key.
    pub key_preview: String,
    pub name: String,
    #[schema(schema_with = key_status)]
    pub status: &'static str,
    /// The request format of the tools that use the key.
    #[schema(schema_with = request_shape)]
    pub request_shape: &'static str,
    pub wallet_id: String,
    /// The models the key may use; null: all.
    pub allowed_models: Option<Vec<String>>,
    /// The providers the key may use; null: all.
    pub allowed_providers: Option<Vec<String>>,
    pub spend_limit: Option<SpendLimitView>,
    /// USD spent in the current spend-limit cycle (the calendar month without a limit).
    #[schema(schema_with = amount)]
    pub current_spend: String,
    /// USD spent over the key's whole life.
    #[schema(schema_with = amount)]
    pub total_spend: String,
    pub request_limit: Option<RequestLimitView>,
    /// Requests in the current request-limit cycle (the calendar month without a limit).
    pub current_requests: u64,
    pub total_requests: u64,
    pub rate_limit: Option<RateLimitView>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<String>,
    #[schema(schema_with = timestamp)]
    pub created_at: String,
    /// The full secret: only in the answers to create and rotate, and never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = String)]
    pub key: Option<String>,
}

impl SpendKeyView {
    pub fn new(k: &SpendKey, usage: &KeyUsage, secret: Option<&Secret>) -> Self {
        SpendKeyView {
            spend_key_id: k.id.to_string(),
            key_preview: k.key_preview.clone(),
            name: k.name.clone(),
            status: k.status.as_str(),
            request_shape: k.request_shape.as_str(),
            wallet_id: k.wallet_id.to_string(),
            allowed_models: k.allowed_models.clone(),
            allowed_providers: k.allowed_providers.clone(),
            spend_limit: k
                .spend_limit
                .map(|l| SpendLimitView { amount: l.amount.to_string(), cycle: l.cycle.as_str() }),
            current_spend: usage.current_spend.to_string(),
            total_spend: usage.total_spend.to_string(),
            request_limit: k.request_limit.map(|l| RequestLimitView { count: l.count, cycle: l.cycle.as_str() }),
            current_requests: usage.current_requests,
            total_requests: usage.total_requests,
            rate_limit: k.rate_limit.map(|l| RateLimitView { rpm: l.rpm, burst: l.burst }),
            expires_at: k.expires_at.map(|t| t.to_string()),
            last_used_at: usage.last_used_at.map(|t| t.to_string()),
            created_at: k.created_at.to_string(),
            key: secret.map(|s| s.expose().to_string()),
        }
    }
}

/// The fields of [`SpendKeyView`] that are not settings (ids, usage, the creation time).
const NOT_SETTINGS: &[&str] = &[
    "spend_key_id",
    "wallet_id",
    "current_spend",
    "total_spend",
    "current_requests",
    "total_requests",
    "last_used_at",
    "created_at",
];

/// A key's settings as the API shows them: what the audit log records and compares.
pub fn settings(k: &SpendKey) -> serde_json::Value {
    let mut v = serde_json::to_value(SpendKeyView::new(k, &KeyUsage::default(), None)).unwrap_or_default();
    if let Some(fields) = v.as_object_mut() {
        fields.retain(|f, _| !NOT_SETTINGS.contains(&f.as_str()));
    }
    v
}

/// One page of a list, newest first.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListView<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// The `cursor` of the next page; only when `has_more`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = String)]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelView {
    pub id: String,
    #[schema(value_type = String, pattern = "^model$")]
    pub object: &'static str,
    /// Release date, unix seconds.
    pub created: i64,
    /// The provider.
    pub owned_by: String,
}

/// OpenAI's model list shape (`owned_by` is the provider).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelListView {
    #[schema(value_type = String, pattern = "^list$")]
    pub object: &'static str,
    pub data: Vec<ModelView>,
}

impl ModelListView {
    pub fn of<'a>(models: impl IntoIterator<Item = &'a Model>) -> Self {
        let data = models
            .into_iter()
            .map(|m| ModelView { id: m.id.clone(), object: "model", created: m.created, owned_by: m.provider.clone() })
            .collect();
        ModelListView { object: "list", data }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnthropicModelView {
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^model$")]
    pub kind: &'static str,
    pub id: String,
    pub display_name: String,
    #[schema(schema_with = timestamp)]
    pub created_at: String,
}

/// Anthropic's model list shape (for clients that send `anthropic-version`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnthropicModelListView {
    pub data: Vec<AnthropicModelView>,
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

impl AnthropicModelListView {
    pub fn of(models: &[&Model]) -> Self {
        let data = models
            .iter()
            .map(|m| AnthropicModelView {
                kind: "model",
                id: m.id.clone(),
                display_name: m.id.clone(),
                created_at: spendgate_core::Timestamp::from_unix_millis(m.created.saturating_mul(1000)).to_string(),
            })
            .collect();
        AnthropicModelListView {
            data,
            has_more: false,
            first_id: models.first().map(|m| m.id.clone()),
            last_id: models.last().map(|m| m.id.clone()),
        }
    }
}

/// Requests, tokens and USD over a period. (Open to other fields: the usage views
/// flatten it into theirs.)
#[derive(Serialize, ToSchema)]
pub struct TotalsView {
    pub total_requests: u64,
    pub total_usage_tokens: u64,
    #[schema(schema_with = amount)]
    pub total_cost: String,
    /// What the requests were charged (equal to the cost: spendgate adds no fee).
    #[schema(schema_with = amount)]
    pub total_charge: String,
}

impl TotalsView {
    pub fn new(requests: u64, tokens: u64, cost: spendgate_core::Usd) -> Self {
        TotalsView {
            total_requests: requests,
            total_usage_tokens: tokens,
            total_cost: cost.to_string(),
            total_charge: cost.to_string(),
        }
    }
}

/// One UTC day of usage.
#[derive(Serialize, ToSchema)]
pub struct UsageDayView {
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub date: String,
    #[schema(schema_with = timestamp)]
    pub start: String,
    #[schema(schema_with = timestamp)]
    pub end: String,
    #[serde(flatten)]
    pub totals: TotalsView,
}

/// Usage of one model over the whole range.
#[derive(Serialize, ToSchema)]
pub struct ModelUsageView {
    pub model: String,
    pub provider: String,
    #[serde(flatten)]
    pub totals: TotalsView,
}

/// Usage over a range: an item per UTC day (days without requests included), the totals,
/// and the totals per model.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageView {
    pub items: Vec<UsageDayView>,
    pub totals: TotalsView,
    pub by_model: Vec<ModelUsageView>,
}

/// The tokens of one request.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelTokensView {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// One model request made with a spend key of the wallet.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestView {
    /// The gateway's request id (also its `x-request-id` answer header).
    pub request_id: String,
    pub spend_key_id: String,
    pub model: String,
    pub provider: String,
    /// The endpoint called, like `/v1/chat/completions`.
    pub endpoint: String,
    /// `completed` (2xx), `cancelled` (the client went away) or `error`.
    #[schema(value_type = String, pattern = "^(completed|cancelled|error)$")]
    pub status: &'static str,
    /// The status the client was answered with (499: it went away first).
    pub http_status: u16,
    pub model_usage: ModelTokensView,
    #[schema(schema_with = amount)]
    pub cost: String,
    pub latency_ms: u64,
    #[schema(schema_with = timestamp)]
    pub created_at: String,
}

impl RequestView {
    pub fn new(r: &RequestRecord) -> Self {
        let u = &r.usage;
        RequestView {
            request_id: r.id.clone(),
            spend_key_id: r.key_id.to_string(),
            model: r.model.clone(),
            provider: r.provider.clone(),
            endpoint: r.endpoint.clone(),
            status: status_word(r.status),
            http_status: r.status,
            model_usage: ModelTokensView {
                input_tokens: u.input,
                cached_input_tokens: u.cached_input,
                cache_write_tokens: u.cache_write,
                output_tokens: u.output,
                total_tokens: u.total(),
            },
            cost: r.cost.to_string(),
            latency_ms: r.latency_ms,
            created_at: r.created_at.to_string(),
        }
    }
}

/// A request's outcome in a word: `completed`, `cancelled` or `error`.
pub fn status_word(status: u16) -> &'static str {
    match status {
        200..=299 => "completed",
        499 => "cancelled",
        _ => "error",
    }
}

/// Who made a change.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorView {
    /// `wallet_key` (the wallet API), `dashboard_session` or `operator` (the CLI on the store).
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(wallet_key|dashboard_session|operator)$")]
    pub kind: &'static str,
    /// The wallet API key's id; null for the operator.
    pub id: Option<String>,
}

/// One management action.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntryView {
    pub audit_id: String,
    #[schema(schema_with = super::openapi::audit_action)]
    pub action: &'static str,
    pub actor: ActorView,
    /// The id of what was acted on (a wallet, wallet API key or spend key).
    pub target_id: String,
    /// For a creation the settings it was made with; for a change
    /// `{field: {"from": old, "to": new}}`. Never a secret.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    /// The client's address; null for the operator.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(schema_with = timestamp)]
    pub created_at: String,
}

impl AuditEntryView {
    pub fn new(e: &AuditEntry) -> Self {
        let (kind, id) = e.actor.parts();
        AuditEntryView {
            audit_id: e.id.as_str().to_string(),
            action: e.action.as_str(),
            actor: ActorView { kind, id: id.map(str::to_string) },
            target_id: e.target_id.clone(),
            changes: e.changes.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            created_at: e.created_at.to_string(),
        }
    }
}

/// The answer to a revocation.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokedView {
    pub success: bool,
}

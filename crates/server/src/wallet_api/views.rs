//! The wallet API's JSON shapes (wire-compatible with `@lavapayments/nodejs` 11.x).

use serde::Serialize;
use spendgate_core::{KeyUsage, Model, Secret, SpendKey};

#[derive(Serialize)]
pub struct SpendLimitView {
    pub amount: String,
    pub cycle: &'static str,
}

#[derive(Serialize)]
pub struct RequestLimitView {
    pub count: u64,
    pub cycle: &'static str,
}

#[derive(Serialize)]
pub struct RateLimitView {
    pub rpm: u32,
    pub burst: Option<u32>,
}

#[derive(Serialize)]
pub struct SpendKeyView {
    pub spend_key_id: String,
    pub key_preview: String,
    pub name: String,
    pub status: &'static str,
    pub request_shape: &'static str,
    pub wallet_id: String,
    pub allowed_models: Option<Vec<String>>,
    pub allowed_providers: Option<Vec<String>>,
    pub spend_limit: Option<SpendLimitView>,
    pub current_spend: String,
    pub total_spend: String,
    pub request_limit: Option<RequestLimitView>,
    pub current_requests: u64,
    pub total_requests: u64,
    pub rate_limit: Option<RateLimitView>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
    /// The full secret: only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Serialize)]
pub struct ListView<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct ModelView {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub owned_by: String,
}

/// OpenAI's model list shape (`owned_by` is the provider).
#[derive(Serialize)]
pub struct ModelListView {
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

/// Anthropic's model list: `{data: [{type, id, display_name, created_at}], has_more,
/// first_id, last_id}`.
pub fn anthropic_models(models: &[&Model]) -> serde_json::Value {
    let data: Vec<serde_json::Value> = models
        .iter()
        .map(|m| {
            let created = spendgate_core::Timestamp::from_unix_millis(m.created.saturating_mul(1000));
            serde_json::json!({ "type": "model", "id": m.id, "display_name": m.id, "created_at": created.to_string() })
        })
        .collect();
    serde_json::json!({
        "data": data,
        "has_more": false,
        "first_id": models.first().map(|m| &m.id),
        "last_id": models.last().map(|m| &m.id),
    })
}

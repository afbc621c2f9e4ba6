//! A client for spendgate's wallet API: spend keys (create, list, retrieve, update,
//! rotate, revoke), the wallet's audit log, and budget-alert webhooks (create, list,
//! delete, deliveries, test), authenticated with a wallet API key.
//!
//! ```no_run
//! # async fn example() -> Result<(), spendgate_client::Error> {
//! use spendgate_client::{Client, NewSpendKey, SpendLimit};
//!
//! let wallet = Client::new("http://127.0.0.1:8080", "lava_wk_...")?;
//! let key = wallet
//!     .create_spend_key(&NewSpendKey {
//!         name: "Claude Code".into(),
//!         request_shape: Some("anthropic".into()),
//!         spend_limit: Some(SpendLimit { amount: "50.00".into(), cycle: "monthly".into() }),
//!         ..NewSpendKey::default()
//!     })
//!     .await?;
//! println!("{} (shown once): {}", key.spend_key_id, key.key.as_deref().unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Values are the API's own: amounts are USD decimal strings, instants RFC 3339
//! strings, cycles `daily`, `weekly`, `monthly` or `total`. The server validates every
//! field; a refusal is an [`Error::Api`] with the HTTP status, the message and the
//! offending field.
#![forbid(unsafe_code)]

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error.
    #[error("{status} {message}")]
    Api {
        status: u16,
        /// `invalid_request_error`, `authentication_error`, `not_found_error`, ...
        kind: Option<String>,
        message: String,
        /// The field the error is about (`spend_limit.amount`), if any.
        param: Option<String>,
    },
    /// No answer from the server at all.
    #[error("cannot reach spendgate at {url}; is `spendgate serve` running? ({source})")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Unexpected { url: String, reason: String },
    /// The client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// A spend limit: `amount` USD per `cycle`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendLimit {
    pub amount: String,
    pub cycle: String,
}

/// A request limit: `count` requests per `cycle`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLimit {
    pub count: i64,
    pub cycle: String,
}

/// A rate limit: requests per minute, with an optional burst.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub rpm: i64,
    pub burst: Option<i64>,
}

/// A spend key as the API shows it. `key` (the full secret) is only in the answers to
/// create and rotate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendKey {
    pub spend_key_id: String,
    pub key_preview: String,
    pub name: String,
    /// `active` or `paused`.
    pub status: String,
    /// `openai` or `anthropic`.
    pub request_shape: String,
    pub wallet_id: String,
    pub allowed_models: Option<Vec<String>>,
    pub allowed_providers: Option<Vec<String>>,
    pub spend_limit: Option<SpendLimit>,
    pub current_spend: String,
    pub total_spend: String,
    pub request_limit: Option<RequestLimit>,
    pub current_requests: u64,
    pub total_requests: u64,
    pub rate_limit: Option<RateLimit>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A new spend key: a name, and whatever else is given (absent: the server's default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NewSpendKey {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_shape: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_providers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_limit: Option<SpendLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_limit: Option<RequestLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Changes to a spend key: a field left `None` stays as it is; `Some(None)` clears it
/// (all models again, no limit, no expiry); `Some(Some(v))` sets it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpendKeyChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_shape: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_providers: Option<Option<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_limit: Option<Option<SpendLimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_limit: Option<Option<RequestLimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<Option<RateLimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<String>>,
}

impl SpendKeyChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == SpendKeyChanges::default()
    }
}

/// One page of a list, newest first; `next_cursor` fetches the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Who did a management action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `wallet_key`, `dashboard_session` or `operator`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The wallet API key's id (none for the operator).
    pub id: Option<String>,
}

/// An entry of the wallet's audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub audit_id: String,
    /// `spend_key.created`, `spend_key.updated`, ...
    pub action: String,
    pub actor: Actor,
    pub target_id: String,
    /// What changed: `{"field": {"from": ..., "to": ...}}`, or a creation's settings.
    pub changes: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: String,
}

/// A budget-alert webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub webhook_id: String,
    pub url: String,
    /// Only this key's alerts; `None`: every key of the wallet.
    pub spend_key_id: Option<String>,
    /// `spend.threshold`, `request_limit.reached`, `spend_key.expired`.
    pub events: Vec<String>,
    /// Percents of a key's spend limit that send `spend.threshold`.
    pub thresholds: Vec<u32>,
    pub created_at: String,
    /// The signing secret (`whsec_...`): only in the answer to [`Client::create_webhook`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A webhook to register. `None` fields take the server's defaults (every key, every
/// event, 50/80/100 percent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NewWebhook {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Vec<u32>>,
}

/// One alert sent (or being sent) to a webhook, and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// The body sent: `{id, type, created_at, data}`.
    pub payload: serde_json::Value,
}

/// A client of one server, as one wallet (by its wallet API key).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    wallet_key: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Ids go into paths: anything but letters, digits, `_` and `-` is refused rather than
/// sent to some other path.
fn id_segment(what: &str, id: &str) -> Result<String, Error> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Ok(id.to_string());
    }
    Err(Error::Api {
        status: 400,
        kind: Some("invalid_request_error".into()),
        message: format!("{id:?} is not a {what} id"),
        param: Some("id".into()),
    })
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8080`) for the wallet
    /// whose API key is `wallet_key`.
    pub fn new(base_url: &str, wallet_key: &str) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("spendgate-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Build)?;
        Ok(Client::with_http(http, base_url, wallet_key))
    }

    /// The same with an HTTP client of the caller's (proxies, timeouts, roots).
    pub fn with_http(http: reqwest::Client, base_url: &str, wallet_key: &str) -> Client {
        Client { http, base: base_url.trim_end_matches('/').to_string(), wallet_key: wallet_key.to_string() }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.wallet_key);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|source| Error::Unreachable { url: self.base.clone(), source })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|source| Error::Unreachable { url: self.base.clone(), source })?;
        if !status.is_success() {
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let error = &body["error"];
            let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
            return Err(Error::Api {
                status: status.as_u16(),
                kind: text(&error["type"]),
                message: text(&error["message"]).unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
                param: text(&error["param"]),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected { url, reason: e.to_string() })
    }

    /// Creates a spend key; the answer carries the full secret (`key`), shown once.
    pub async fn create_spend_key(&self, new: &NewSpendKey) -> Result<SpendKey, Error> {
        self.call(Method::POST, "/v1/spend_keys", Some(new)).await
    }

    /// One page of the wallet's spend keys, newest first (`limit` 1..=100).
    pub async fn list_spend_keys(&self, limit: u32, cursor: Option<&str>) -> Result<Page<SpendKey>, Error> {
        let mut path = format!("/v1/spend_keys?limit={limit}");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", id_segment("cursor", c)?));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Every spend key of the wallet, page after page.
    pub async fn all_spend_keys(&self) -> Result<Vec<SpendKey>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_spend_keys(100, cursor.as_deref()).await?;
            keys.extend(page.data);
            match page.next_cursor {
                Some(next) if page.has_more => cursor = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    pub async fn spend_key(&self, id: &str) -> Result<SpendKey, Error> {
        self.call(Method::GET, &format!("/v1/spend_keys/{}", id_segment("spend key", id)?), None::<&()>).await
    }

    /// Changes the fields given in `changes`; the others stay.
    pub async fn update_spend_key(&self, id: &str, changes: &SpendKeyChanges) -> Result<SpendKey, Error> {
        self.call(Method::PATCH, &format!("/v1/spend_keys/{}", id_segment("spend key", id)?), Some(changes)).await
    }

    /// A new secret for the same key (id, limits and usage stay); the answer carries it.
    pub async fn rotate_spend_key(&self, id: &str) -> Result<SpendKey, Error> {
        self.call(Method::POST, &format!("/v1/spend_keys/{}/rotate", id_segment("spend key", id)?), None::<&()>).await
    }

    /// Revokes a spend key for good.
    pub async fn revoke_spend_key(&self, id: &str) -> Result<(), Error> {
        let path = format!("/v1/spend_keys/{}", id_segment("spend key", id)?);
        let _: serde_json::Value = self.call(Method::DELETE, &path, None::<&()>).await?;
        Ok(())
    }

    /// One page of the wallet's audit log, newest first; only the entries about
    /// `target` (a spend key, wallet key or wallet id) if given.
    pub async fn audit_log(
        &self,
        target: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEntry>, Error> {
        let mut path = format!("/v1/audit_log?limit={limit}");
        if let Some(t) = target {
            path.push_str(&format!("&target_id={}", id_segment("target", t)?));
        }
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", id_segment("cursor", c)?));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Registers a webhook for budget alerts; the answer carries its signing secret, once.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<Webhook, Error> {
        self.call(Method::POST, "/v1/webhooks", Some(new)).await
    }

    /// The wallet's webhooks, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, Error> {
        let page: Page<Webhook> = self.call(Method::GET, "/v1/webhooks", None::<&()>).await?;
        Ok(page.data)
    }

    /// Deletes a webhook (alerts not yet delivered to it are not sent).
    pub async fn delete_webhook(&self, id: &str) -> Result<(), Error> {
        let path = format!("/v1/webhooks/{}", id_segment("webhook", id)?);
        let _: serde_json::Value = self.call(Method::DELETE, &path, None::<&()>).await?;
        Ok(())
    }

    /// One page of a webhook's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Delivery>, Error> {
        let mut path = format!("/v1/webhooks/{}/deliveries?limit={limit}", id_segment("webhook", id)?);
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", id_segment("cursor", c)?));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Queues a `webhook.test` event for the webhook; its delivery shows how it went.
    pub async fn test_webhook(&self, id: &str) -> Result<Delivery, Error> {
        self.call(Method::POST, &format!("/v1/webhooks/{}/test", id_segment("webhook", id)?), None::<&()>).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_leave_out_what_stays_and_send_null_for_what_is_cleared() {
        let changes = SpendKeyChanges {
            name: Some("renamed".into()),
            spend_limit: Some(None),
            rate_limit: Some(Some(RateLimit { rpm: 60, burst: None })),
            ..SpendKeyChanges::default()
        };
        assert_eq!(
            serde_json::to_value(&changes).unwrap(),
            json!({"name": "renamed", "spend_limit": null, "rate_limit": {"rpm": 60, "burst": null}})
        );
        assert!(SpendKeyChanges::default().is_empty() && !changes.is_empty());
        let new = NewSpendKey { name: "a".into(), ..NewSpendKey::default() };
        assert_eq!(serde_json::to_value(&new).unwrap(), json!({"name": "a"}));
    }

    #[test]
    fn ids_that_would_leave_their_path_are_refused() {
        for bad in ["", "../healthz", "key_1/rotate", "a b", "key?x=1"] {
            assert!(id_segment("spend key", bad).is_err(), "{bad}");
        }
        assert_eq!(id_segment("spend key", "key_AbC-1_z").unwrap(), "key_AbC-1_z");
    }
}

//! Spend-key management: the business logic behind the wallet API's handlers.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::random;
use crate::state::AppState;
use crate::wallet_api::views::settings;
use serde_json::{Value, json};
use spendgate_core::audit::diff;
use spendgate_core::{Action, KeyStatus, Mode, Secret, SpendKey, SpendKeyChanges, SpendKeyId, WalletId};
use spendgate_store::Listed;

/// How often a change is retried when a writer in another process changed the key
/// between our read and our write.
const MAX_ATTEMPTS: usize = 8;

fn not_found(id: &SpendKeyId) -> ApiError {
    ApiError::not_found(format!("no spend key with id {id} in this wallet"))
}

pub async fn create(state: &AppState, by: &Principal, body: &Value) -> Result<(SpendKey, Secret), ApiError> {
    let wallet = &by.wallet_id;
    let now = state.now();
    let changes = SpendKeyChanges::parse(body, Mode::Create, &state.config.catalog, now)?;
    let prefix = &state.config.spend_key_prefix;
    let secret = Secret::generate(prefix, random::bytes()?);
    let mut key = SpendKey {
        id: SpendKeyId::generate(random::bytes()?),
        wallet_id: wallet.clone(),
        name: String::new(),
        status: KeyStatus::Active,
        request_shape: spendgate_core::WireFormat::OpenAi,
        allowed_models: None,
        allowed_providers: None,
        spend_limit: None,
        request_limit: None,
        rate_limit: None,
        expires_at: None,
        key_hash: secret.hash(),
        key_preview: secret.preview(prefix),
        created_at: now,
        updated_at: now,
        revoked_at: None,
        version: 0,
    };
    key.apply(changes, now);
    let audit = by.audit(Action::SpendKeyCreated, key.id.as_str(), settings(&key), now)?;
    state.store.insert_spend_key(&key, &audit).await?;
    state.keys.put_new(key.clone());
    state.counters.changed(&key).await;
    tracing::info!(wallet = %wallet, key = %key.id, "spend key created");
    Ok((key, secret))
}

pub async fn get(state: &AppState, wallet: &WalletId, id: &SpendKeyId) -> Result<SpendKey, ApiError> {
    state.store.spend_key(wallet, id).await?.ok_or_else(|| not_found(id))
}

/// One page, newest first, and whether more follow.
pub async fn list(
    state: &AppState,
    wallet: &WalletId,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<Listed>, bool), ApiError> {
    let mut page = state.store.list_spend_keys(wallet, before, limit + 1).await?;
    let has_more = page.len() > limit as usize;
    page.truncate(limit as usize);
    Ok((page, has_more))
}

pub async fn update(state: &AppState, by: &Principal, id: &SpendKeyId, body: &Value) -> Result<SpendKey, ApiError> {
    let now = state.now();
    let changes = SpendKeyChanges::parse(body, Mode::Update, &state.config.catalog, now)?;
    let key = modify(state, by, Action::SpendKeyUpdated, id, |key| key.apply(changes.clone(), now)).await?;
    // A new limit may be reached already: the budget alerts look at the key again.
    state.alerts.add([&key.id]);
    tracing::info!(wallet = %by.wallet_id, key = %id, "spend key updated");
    Ok(key)
}

/// A new secret for the same key: id, limits and usage stay; the old secret stops working.
pub async fn rotate(state: &AppState, by: &Principal, id: &SpendKeyId) -> Result<(SpendKey, Secret), ApiError> {
    let prefix = &state.config.spend_key_prefix;
    let secret = Secret::generate(prefix, random::bytes()?);
    let now = state.now();
    let key = modify(state, by, Action::SpendKeyRotated, id, |key| {
        key.key_hash = secret.hash();
        key.key_preview = secret.preview(prefix);
        key.updated_at = now;
        key.version += 1;
    })
    .await?;
    tracing::info!(wallet = %by.wallet_id, key = %id, "spend key rotated");
    Ok((key, secret))
}

/// Revokes for good (a soft delete: the key and its usage stay in the store).
pub async fn revoke(state: &AppState, by: &Principal, id: &SpendKeyId) -> Result<(), ApiError> {
    let now = state.now();
    modify(state, by, Action::SpendKeyRevoked, id, |key| {
        key.revoked_at = Some(now);
        key.updated_at = now;
        key.version += 1;
    })
    .await?;
    tracing::info!(wallet = %by.wallet_id, key = %id, "spend key revoked");
    Ok(())
}

/// Read, change, write (with its audit entry) if nobody changed the key meanwhile; else
/// again.
async fn modify(
    state: &AppState,
    by: &Principal,
    action: Action,
    id: &SpendKeyId,
    mut change: impl FnMut(&mut SpendKey),
) -> Result<SpendKey, ApiError> {
    let now = state.now();
    let entry = state.keys.by_id(id);
    let _queued = match &entry {
        Some(e) => Some(e.edit.lock().await),
        None => None,
    };
    for _ in 0..MAX_ATTEMPTS {
        let mut key = get(state, &by.wallet_id, id).await?;
        let version = key.version;
        let before = settings(&key);
        change(&mut key);
        let changes = match action {
            Action::SpendKeyRevoked => json!({}),
            _ => diff(&before, &settings(&key)),
        };
        let audit = by.audit(action, id.as_str(), changes, now)?;
        if state.store.update_spend_key(&key, version, &audit).await? {
            // In force for the very next request, on this instance and (cluster mode)
            // on every other.
            state.keys.put(&*state.store, key.clone(), now).await?;
            state.counters.changed(&key).await;
            return Ok(key);
        }
    }
    Err(ApiError::new(
        crate::error::ErrorKind::Conflict,
        format!("spend key {id} is being changed by other requests; try again"),
    ))
}

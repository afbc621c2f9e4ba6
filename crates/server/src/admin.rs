//! Operator actions that work directly on the store (the bootstrap: there is no
//! wallet key yet to call the API with). Used by `spendgate wallets ...`.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::random;
use crate::state::AppState;
use crate::wallet_api::keys;
use serde_json::json;
use spendgate_core::{Action, Secret, Timestamp, Wallet, WalletId, WalletKey, WalletKeyId};
use spendgate_store::Store;

/// Creates a wallet and its first API key. The secret is returned once, here.
pub async fn create_wallet(
    store: &dyn Store,
    name: &str,
    prefix: &str,
    now: Timestamp,
) -> Result<(Wallet, WalletKey, Secret), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > spendgate_core::spend_key::NAME_MAX_CHARS {
        return Err(ApiError::invalid("name", "name must be 1 to 200 characters"));
    }
    let wallet = Wallet { id: WalletId::generate(random::bytes()?), name: name.to_string(), created_at: now };
    let (key, secret) = new_wallet_key(&wallet.id, "default", prefix, now)?;
    let changes = json!({"name": wallet.name, "wallet_key": wallet_key_settings(&key)});
    let audit =
        Principal::operator(wallet.id.clone()).audit(Action::WalletCreated, wallet.id.as_str(), changes, now)?;
    store.create_wallet(&wallet, &key, &audit).await?;
    Ok((wallet, key, secret))
}

/// Adds another API key to a wallet.
pub async fn create_wallet_key(
    store: &dyn Store,
    wallet: &WalletId,
    name: &str,
    prefix: &str,
    now: Timestamp,
) -> Result<(WalletKey, Secret), ApiError> {
    if store.wallet(wallet).await?.is_none() {
        return Err(ApiError::not_found(format!("no wallet with id {wallet}")));
    }
    let (key, secret) = new_wallet_key(wallet, name, prefix, now)?;
    let audit = Principal::operator(wallet.clone()).audit(
        Action::WalletKeyCreated,
        key.id.as_str(),
        wallet_key_settings(&key),
        now,
    )?;
    store.insert_wallet_key(&key, &audit).await?;
    Ok((key, secret))
}

/// Revokes a wallet API key; false if the wallet has no such unrevoked key.
pub async fn revoke_wallet_key(
    store: &dyn Store,
    wallet: &WalletId,
    id: &WalletKeyId,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let audit = Principal::operator(wallet.clone()).audit(Action::WalletKeyRevoked, id.as_str(), json!({}), now)?;
    Ok(store.revoke_wallet_key(wallet, id, now, &audit).await?)
}

/// What the audit log records of a new wallet API key (its secret never).
fn wallet_key_settings(key: &WalletKey) -> serde_json::Value {
    json!({"name": key.name, "key_preview": key.key_preview})
}

fn new_wallet_key(
    wallet: &WalletId,
    name: &str,
    prefix: &str,
    now: Timestamp,
) -> Result<(WalletKey, Secret), ApiError> {
    let secret = Secret::generate(prefix, random::bytes()?);
    let key = WalletKey {
        id: WalletKeyId::generate(random::bytes()?),
        wallet_id: wallet.clone(),
        name: name.to_string(),
        key_hash: secret.hash(),
        key_preview: secret.preview(prefix),
        created_at: now,
        revoked_at: None,
    };
    Ok((key, secret))
}

/// The credentials `serve --demo` prints.
pub struct DemoKeys {
    pub wallet_key: Secret,
    pub openai_key: Secret,
    pub anthropic_key: Secret,
}

/// Sets up the demo wallet: created on first use; on every start a fresh wallet API key
/// (older demo wallet keys are revoked) and fresh secrets for its two spend keys (rotated
/// if they exist, so their usage history stays).
pub async fn demo_bootstrap(state: &AppState) -> Result<DemoKeys, ApiError> {
    const WALLET: &str = "demo";
    let now = state.now();
    let store = &*state.store;
    let prefix = &state.config.wallet_key_prefix;
    let wallet = match store.list_wallets().await?.into_iter().find(|w| w.name == WALLET) {
        Some(w) => w,
        None => create_wallet(store, WALLET, prefix, now).await?.0,
    };
    for old in store.list_wallet_keys(&wallet.id).await?.iter().filter(|k| k.revoked_at.is_none()) {
        revoke_wallet_key(store, &wallet.id, &old.id, now).await?;
    }
    let operator = Principal::operator(wallet.id.clone());
    let (_, wallet_key) = create_wallet_key(store, &wallet.id, "demo", prefix, now).await?;
    let existing = store.list_spend_keys(&wallet.id, None, 100).await?;
    let secret_for = async |name: &str, shape: &str| -> Result<Secret, ApiError> {
        match existing.iter().find(|l| l.key.name == name) {
            Some(l) => Ok(keys::rotate(state, &operator, &l.key.id).await?.1),
            None => {
                let body =
                    json!({"name": name, "request_shape": shape, "spend_limit": {"amount": "1.00", "cycle": "daily"}});
                Ok(keys::create(state, &operator, &body).await?.1)
            }
        }
    };
    let openai_key = secret_for("demo-openai", "openai").await?;
    let anthropic_key = secret_for("demo-anthropic", "anthropic").await?;
    Ok(DemoKeys { wallet_key, openai_key, anthropic_key })
}

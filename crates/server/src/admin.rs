//! Operator actions that work directly on the store (the bootstrap: there is no
//! wallet key yet to call the API with). Used by `spendgate wallets ...`.

use crate::error::ApiError;
use crate::random;
use spendgate_core::{Secret, Timestamp, Wallet, WalletId, WalletKey, WalletKeyId};
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
    store.create_wallet(&wallet, &key).await?;
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
    store.insert_wallet_key(&key).await?;
    Ok((key, secret))
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

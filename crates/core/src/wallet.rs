//! Wallets and their API keys (the management credentials).

use crate::secret::{KeyHash, WalletId, WalletKeyId};
use crate::timestamp::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub name: String,
    pub created_at: Timestamp,
}

/// A wallet API key (`lava_wk_...`): manages the wallet's spend keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletKey {
    pub id: WalletKeyId,
    pub wallet_id: WalletId,
    pub name: String,
    pub key_hash: KeyHash,
    pub key_preview: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

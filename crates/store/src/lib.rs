//! spendgate's durable state: wallets, wallet API keys, spend keys and request
//! records, behind the [`Store`] trait. The store keeps what it is given; rules live
//! in `spendgate-core`. Implementations: [`SqliteStore`] (embedded default) and
//! [`PostgresStore`] (shared by the instances of a cluster).
#![forbid(unsafe_code)]

mod postgres;
mod rows;
mod sqlite;
pub mod testing;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use spendgate_core::alert::{Delivery, Webhook, WebhookId};
use spendgate_core::{
    AuditEntry, KeyHash, KeyUsage, SpendKey, SpendKeyId, Timestamp, TokenUsage, Usd, Wallet, WalletId, WalletKey,
    WalletKeyId,
};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is not supported; use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("{0} needs a PostgreSQL database (--database postgres://...)")]
    NeedsPostgres(&'static str),
    #[error("the database schema is version {found}, newer than this spendgate knows ({known}); upgrade spendgate")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    /// The database could not be reached (down, unreachable, out of connections), as
    /// opposed to refusing a query.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
            )
        )
    }
}

/// One request that reached a provider, as metered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: String,
    pub key_id: SpendKeyId,
    pub wallet_id: WalletId,
    pub model: String,
    pub provider: String,
    pub endpoint: String,
    pub status: u16,
    pub usage: TokenUsage,
    pub cost: Usd,
    pub latency_ms: u64,
    pub created_at: Timestamp,
}

/// What a batch of records did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Per record of the batch, in order: whether it was new (false: already stored, or
    /// listed earlier in the batch).
    pub fresh: Vec<bool>,
    /// The counter epoch the batch committed in (see [`CounterRebuild`]; empty where the
    /// backend has none).
    pub epoch: String,
    /// Per record, in order: for one that an earlier batch had stored, the epoch it was
    /// committed in (`None` for a fresh one, one listed earlier in this batch, or where
    /// the backend has no epochs). A writer that never learnt whether that earlier batch
    /// committed compares it with `epoch`: the same, and its charge is still missing
    /// from the shared counters; another, and the rebuild since has counted it.
    pub earlier: Vec<Option<String>>,
}

/// A key's usage on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDay {
    pub key_id: SpendKeyId,
    pub day: i64,
    pub spend: Usd,
    pub requests: u64,
}

/// A key's recent days and lifetime totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyHistory {
    pub days: Vec<UsageDay>,
    pub total: Option<UsageTotal>,
}

/// A key's usage over its whole life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageTotal {
    pub key_id: SpendKeyId,
    pub spend: Usd,
    pub requests: u64,
    pub last_used_at: Option<Timestamp>,
}

/// A dashboard session: a browser signed in with a wallet API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub token_hash: KeyHash,
    pub wallet_id: WalletId,
    pub wallet_key_id: WalletKeyId,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Usage totals for one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayTotal {
    pub day: i64,
    pub requests: u64,
    pub tokens: u64,
    pub spend: Usd,
}

/// Usage totals for one model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelTotal {
    pub model: String,
    pub provider: String,
    pub requests: u64,
    pub tokens: u64,
    pub spend: Usd,
}

/// A spend key with its position in its wallet's creation order (the list cursor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub seq: i64,
    pub key: SpendKey,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the store answers a query.
    async fn ping(&self) -> Result<(), StoreError>;

    // Every change below writes its audit entry in the same transaction: a change is
    // stored with its entry or not at all.

    /// Creates a wallet together with its first API key, atomically.
    async fn create_wallet(&self, wallet: &Wallet, first_key: &WalletKey, audit: &AuditEntry)
    -> Result<(), StoreError>;
    async fn list_wallets(&self) -> Result<Vec<Wallet>, StoreError>;
    async fn wallet(&self, id: &WalletId) -> Result<Option<Wallet>, StoreError>;

    async fn insert_wallet_key(&self, key: &WalletKey, audit: &AuditEntry) -> Result<(), StoreError>;
    async fn list_wallet_keys(&self, wallet: &WalletId) -> Result<Vec<WalletKey>, StoreError>;
    /// Marks a wallet key revoked; false (and no audit entry) if it does not exist in
    /// that wallet or is revoked.
    async fn revoke_wallet_key(
        &self,
        wallet: &WalletId,
        id: &WalletKeyId,
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
    /// An unrevoked wallet key by the hash of its secret.
    async fn wallet_key_by_hash(&self, hash: &KeyHash) -> Result<Option<WalletKey>, StoreError>;

    async fn insert_spend_key(&self, key: &SpendKey, audit: &AuditEntry) -> Result<(), StoreError>;
    /// An unrevoked spend key of `wallet` (another wallet's key is `None`, as unknown).
    async fn spend_key(&self, wallet: &WalletId, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError>;
    /// Unrevoked keys of `wallet`, newest first, created before `before` (a `seq`).
    async fn list_spend_keys(
        &self,
        wallet: &WalletId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Listed>, StoreError>;
    /// Writes `key` if the stored row still has `expected_version` and is not revoked;
    /// false otherwise, and no audit entry (a concurrent change won: re-read and try
    /// again).
    async fn update_spend_key(
        &self,
        key: &SpendKey,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// A spend key by id, whatever its wallet, revoked or not (a gateway refreshing its
    /// copy after another instance changed the key).
    async fn spend_key_by_id(&self, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError>;
    /// A spend key by the hash of its secret, revoked or not (a gateway meeting a key
    /// that another instance created).
    async fn spend_key_by_hash(&self, hash: &KeyHash) -> Result<Option<SpendKey>, StoreError>;
    /// One key's usage: per day on `since_day` (days since the epoch) and after, and its
    /// lifetime totals (`None` if it was never used). What the gateway's meter for the
    /// key starts from when it first meets the key.
    async fn key_history(&self, key: &SpendKeyId, since_day: i64) -> Result<KeyHistory, StoreError>;

    /// Appends request records and their daily aggregates in one transaction. A record
    /// whose id is already stored is skipped (a retried batch counts once).
    async fn record_requests(&self, records: &[RequestRecord]) -> Result<Committed, StoreError>;
    /// Request records of `wallet` (of one key, if given), newest first, before `before`
    /// (a `seq`).
    async fn list_requests(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, RequestRecord)>, StoreError>;
    /// Per UTC day from `from_day` to `to_day` (inclusive), the usage of `wallet` (of one
    /// key, if given); days without usage are left out.
    async fn usage_by_day(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayTotal>, StoreError>;
    /// Per model, the usage of `wallet` (of one key, if given) in `[from, to)`.
    async fn usage_by_model(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ModelTotal>, StoreError>;

    async fn create_session(&self, session: &Session, audit: &AuditEntry) -> Result<(), StoreError>;
    /// A live session: not revoked, not expired at `now`, its wallet key not revoked.
    async fn session(&self, token_hash: &KeyHash, now: Timestamp) -> Result<Option<Session>, StoreError>;
    /// Ends a session (no audit entry if it had already ended).
    async fn revoke_session(&self, token_hash: &KeyHash, at: Timestamp, audit: &AuditEntry) -> Result<(), StoreError>;

    /// Audit entries of `wallet` (about one target, if given), newest first, before
    /// `before` (a `seq`).
    async fn audit_log(
        &self,
        wallet: &WalletId,
        target: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError>;

    /// Stores a new webhook.
    async fn insert_webhook(&self, webhook: &Webhook, audit: &AuditEntry) -> Result<(), StoreError>;
    /// The webhooks of `wallet` (of every wallet, if `None`), oldest first; deleted
    /// ones are left out.
    async fn webhooks(&self, wallet: Option<&WalletId>) -> Result<Vec<Webhook>, StoreError>;
    /// Deletes a webhook of `wallet` (its pending deliveries are no longer sent; its log
    /// stays); false, and no audit entry, if it has none by that id.
    async fn delete_webhook(
        &self,
        wallet: &WalletId,
        id: &WebhookId,
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
    /// Stores a delivery unless its webhook has one with the same `dedup` already;
    /// whether it was stored.
    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError>;
    /// Pending deliveries due at `now` of webhooks not deleted, oldest first, at most
    /// `limit`; each is claimed (its `next_attempt_at` set to `lease_until`) in the same
    /// statement, so that no other instance sends it meanwhile.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Writes how an attempt went: status, attempts, next attempt, last answer.
    async fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Deliveries of a webhook of `wallet`, newest first, before `before` (a `seq`).
    async fn list_deliveries(
        &self,
        wallet: &WalletId,
        webhook: &WebhookId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, Delivery)>, StoreError>;
    /// Unrevoked spend keys of wallets with webhooks whose `expires_at` is in `(after, until]`.
    async fn keys_expired_between(&self, after: Timestamp, until: Timestamp) -> Result<Vec<SpendKey>, StoreError>;

    /// Usage of a key: totals, and figures since the starts of its spend and request cycles.
    async fn key_usage(
        &self,
        key: &SpendKeyId,
        spend_since: Timestamp,
        requests_since: Timestamp,
    ) -> Result<KeyUsage, StoreError>;

    /// The epoch of the last counter rebuild that committed, read as a record writer
    /// would (waiting for a rebuild in progress).
    async fn counter_epoch(&self) -> Result<String, StoreError> {
        Err(StoreError::NeedsPostgres("shared counters (--redis)"))
    }

    /// Starts rebuilding shared counters from the ledger (cluster mode): until the
    /// rebuild commits or is dropped, no batch of records commits, so the figures it
    /// reads and the epoch it sets agree with every batch's.
    async fn begin_rebuild(&self) -> Result<Box<dyn CounterRebuild>, StoreError> {
        Err(StoreError::NeedsPostgres("shared counters (--redis)"))
    }
}

/// The ledger's figures for rebuilding shared counters, read in one transaction that
/// excludes the writers of request records (PostgreSQL: an advisory lock they take
/// shared). Commit sets the new epoch: a batch committed before it is in these figures,
/// one committed after it notes the new epoch.
#[async_trait]
pub trait CounterRebuild: Send {
    /// The epoch of the previous rebuild (empty: this is the first).
    async fn epoch(&mut self) -> Result<String, StoreError>;
    /// Every spend key's id and version.
    async fn key_versions(&mut self) -> Result<Vec<(SpendKeyId, i64)>, StoreError>;
    /// Per key and day, usage on `since_day` and after.
    async fn usage_days(&mut self, since_day: i64) -> Result<Vec<UsageDay>, StoreError>;
    /// Per key, lifetime totals.
    async fn usage_totals(&mut self) -> Result<Vec<UsageTotal>, StoreError>;
    /// Stores `epoch` as the counters' epoch and ends the transaction.
    async fn commit(self: Box<Self>, epoch: &str) -> Result<(), StoreError>;
}

/// Opens the store a URL names (`sqlite://PATH` or `postgres://...`), applying
/// migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url).await?));
    }
    Err(StoreError::UnsupportedUrl(url.to_string()))
}

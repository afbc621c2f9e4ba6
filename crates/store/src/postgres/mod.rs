//! The shared store: PostgreSQL, for several gateway instances (cluster mode). Same
//! tables and contract as SQLite's; in addition the ledger of request records carries
//! the epoch of the shared counters (see [`CounterRebuild`]): each batch of records
//! takes an advisory lock shared and notes the epoch it committed in, and a rebuild
//! takes it exclusive.

mod migrate;

use crate::rows::{self, RECORD_COLUMNS, SPEND_KEY_COLUMNS, bind_spend_key};
use crate::{
    Committed, CounterRebuild, DayTotal, KeyHistory, Listed, ModelTotal, RequestRecord, Session, Store, StoreError,
    UsageDay, UsageTotal,
};
use async_trait::async_trait;
use spendgate_core::alert::{Delivery, Webhook, WebhookId};
use spendgate_core::{
    AuditEntry, KeyHash, KeyUsage, SpendKey, SpendKeyId, Timestamp, Wallet, WalletId, WalletKey, WalletKeyId,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Postgres, QueryBuilder, Row, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

/// The advisory lock between writers of request records (shared) and rebuilds of the
/// shared counters (exclusive). ASCII "spendgat".
const LEDGER_LOCK: i64 = 0x7370_656e_6467_6174;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` and migrates it.
    pub async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("spendgate");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // Fail fast when the server is away: the gateway keeps serving from memory
            // and queues its records; the wallet API answers 503.
            .acquire_timeout(Duration::from_secs(1))
            .connect_with(options)
            .await?;
        migrate::run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// Runs `change` and, when it changed one row, writes `audit` in the same
    /// transaction; whether it did (no row changed: nothing written, no entry).
    async fn audited_change<'q>(
        &self,
        change: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if change.execute(&mut *tx).await?.rows_affected() != 1 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// `$1, $2, ...` for the n-th placeholder.
fn mark(n: usize) -> String {
    format!("${n}")
}

async fn insert_wallet_key<'e>(exec: impl Executor<'e, Database = Postgres>, k: &WalletKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO wallet_keys (id, wallet_id, name, key_hash, key_preview, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(k.id.as_str())
    .bind(k.wallet_id.as_str())
    .bind(&k.name)
    .bind(&k.key_hash.0[..])
    .bind(&k.key_preview)
    .bind(k.created_at.unix_millis())
    .bind(k.revoked_at.map(Timestamp::unix_millis))
    .execute(exec)
    .await?;
    Ok(())
}

async fn usage_days<'e>(
    exec: impl Executor<'e, Database = Postgres>,
    since_day: i64,
) -> Result<Vec<UsageDay>, StoreError> {
    let rows = sqlx::query("SELECT key_id, day, spend_nanos, requests FROM key_usage_daily WHERE day >= $1")
        .bind(since_day)
        .fetch_all(exec)
        .await?;
    rows.iter().map(rows::usage_day).collect()
}

async fn usage_totals<'e>(exec: impl Executor<'e, Database = Postgres>) -> Result<Vec<UsageTotal>, StoreError> {
    let rows = sqlx::query(
        "SELECT key_id, SUM(spend_nanos)::BIGINT AS spend, SUM(requests)::BIGINT AS requests, \
         MAX(last_used_at) AS last_used_at FROM key_usage_daily GROUP BY key_id",
    )
    .fetch_all(exec)
    .await?;
    rows.iter().map(rows::usage_total).collect()
}

async fn insert_audit(tx: &mut sqlx::PgConnection, e: &AuditEntry) -> Result<(), StoreError> {
    rows::insert_audit::<Postgres>(e).build().execute(tx).await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_wallet(
        &self,
        wallet: &Wallet,
        first_key: &WalletKey,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO wallets (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(wallet.id.as_str())
            .bind(&wallet.name)
            .bind(wallet.created_at.unix_millis())
            .execute(&mut *tx)
            .await?;
        insert_wallet_key(&mut *tx, first_key).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_wallets(&self) -> Result<Vec<Wallet>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM wallets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::wallet).collect()
    }

    async fn wallet(&self, id: &WalletId) -> Result<Option<Wallet>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM wallets WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::wallet).transpose()
    }

    async fn insert_wallet_key(&self, key: &WalletKey, audit: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_wallet_key(&mut *tx, key).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_wallet_keys(&self, wallet: &WalletId) -> Result<Vec<WalletKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM wallet_keys WHERE wallet_id = $1 ORDER BY created_at, id")
            .bind(wallet.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::wallet_key).collect()
    }

    async fn revoke_wallet_key(
        &self,
        wallet: &WalletId,
        id: &WalletKeyId,
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query(
            "UPDATE wallet_keys SET revoked_at = $1 WHERE id = $2 AND wallet_id = $3 AND revoked_at IS NULL",
        )
        .bind(at.unix_millis())
        .bind(id.as_str())
        .bind(wallet.as_str());
        self.audited_change(change, audit).await
    }

    async fn wallet_key_by_hash(&self, hash: &KeyHash) -> Result<Option<WalletKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM wallet_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await?;
        let key = row.as_ref().map(rows::wallet_key).transpose()?;
        Ok(key.filter(|k| k.key_hash.ct_eq(hash)))
    }

    async fn insert_spend_key(&self, key: &SpendKey, audit: &AuditEntry) -> Result<(), StoreError> {
        let columns = SPEND_KEY_COLUMNS.trim_start_matches("seq, ");
        let marks: Vec<String> = (1..=columns.split(", ").count()).map(mark).collect();
        let sql = format!("INSERT INTO spend_keys ({columns}) VALUES ({})", marks.join(", "));
        let mut tx = self.pool.begin().await?;
        bind_spend_key(sqlx::query(&sql), key).execute(&mut *tx).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn spend_key(&self, wallet: &WalletId, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError> {
        let sql = format!(
            "SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE id = $1 AND wallet_id = $2 AND revoked_at IS NULL"
        );
        let row = sqlx::query(&sql).bind(id.as_str()).bind(wallet.as_str()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(rows::spend_key).transpose()?.map(|l| l.key))
    }

    async fn list_spend_keys(
        &self,
        wallet: &WalletId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Listed>, StoreError> {
        let sql = format!(
            "SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE wallet_id = $1 AND revoked_at IS NULL AND seq < $2 \
             ORDER BY seq DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(wallet.as_str())
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::spend_key).collect()
    }

    async fn update_spend_key(
        &self,
        key: &SpendKey,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let n = SPEND_KEY_COLUMNS.split(", ").count() - 1;
        let sql = format!(
            "UPDATE spend_keys SET {} WHERE id = {} AND wallet_id = {} AND version = {} AND revoked_at IS NULL",
            rows::spend_key_assignments(mark),
            mark(n + 1),
            mark(n + 2),
            mark(n + 3)
        );
        let change = bind_spend_key(sqlx::query(&sql), key)
            .bind(key.id.as_str())
            .bind(key.wallet_id.as_str())
            .bind(expected_version);
        self.audited_change(change, audit).await
    }

    async fn spend_key_by_id(&self, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError> {
        let sql = format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(rows::spend_key).transpose()?.map(|l| l.key))
    }

    async fn spend_key_by_hash(&self, hash: &KeyHash) -> Result<Option<SpendKey>, StoreError> {
        let sql = format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE key_hash = $1");
        let row = sqlx::query(&sql).bind(&hash.0[..]).fetch_optional(&self.pool).await?;
        let key = row.as_ref().map(rows::spend_key).transpose()?.map(|l| l.key);
        Ok(key.filter(|k| k.key_hash.ct_eq(hash)))
    }

    async fn key_history(&self, key: &SpendKeyId, since_day: i64) -> Result<KeyHistory, StoreError> {
        let days = sqlx::query(
            "SELECT key_id, day, spend_nanos, requests FROM key_usage_daily WHERE key_id = $1 AND day >= $2 ORDER BY day",
        )
        .bind(key.as_str())
        .bind(since_day)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(
            "SELECT key_id, SUM(spend_nanos)::BIGINT AS spend, SUM(requests)::BIGINT AS requests, \
             MAX(last_used_at) AS last_used_at FROM key_usage_daily WHERE key_id = $1 GROUP BY key_id",
        )
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(KeyHistory {
            days: days.iter().map(rows::usage_day).collect::<Result<_, _>>()?,
            total: total.as_ref().map(rows::usage_total).transpose()?,
        })
    }

    async fn record_requests(&self, records: &[RequestRecord]) -> Result<Committed, StoreError> {
        if records.is_empty() {
            return Ok(Committed::default());
        }
        let mut tx = self.pool.begin().await?;
        // Shared with other writers, exclusive of a counter rebuild (see `begin_rebuild`).
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(LEDGER_LOCK).execute(&mut *tx).await?;
        // The epoch, also noted on each record inserted (the column's default reads it).
        let epoch: String =
            sqlx::query("SELECT epoch, set_config('spendgate.epoch', epoch, true) FROM counter_epoch WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?
                .try_get("epoch")?;
        let mut inserted = HashSet::new();
        for chunk in rows::chunks(records) {
            let mut q = QueryBuilder::new(format!("INSERT INTO request_records ({RECORD_COLUMNS}) "));
            rows::push_records(&mut q, chunk);
            q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
            for row in q.build().fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get::<String, _>("id")?);
            }
        }
        let inserted_here = inserted.clone();
        let fresh: Vec<bool> = records.iter().map(|r| inserted.remove(&r.id)).collect();
        // Records an earlier batch stored: the epochs they were committed in.
        let stored_before: Vec<String> =
            records.iter().filter(|r| !inserted_here.contains(&r.id)).map(|r| r.id.clone()).collect();
        let mut epochs = std::collections::HashMap::new();
        if !stored_before.is_empty() {
            for row in sqlx::query("SELECT id, epoch FROM request_records WHERE id = ANY($1)")
                .bind(&stored_before)
                .fetch_all(&mut *tx)
                .await?
            {
                epochs.insert(row.try_get::<String, _>("id")?, row.try_get::<String, _>("epoch")?);
            }
        }
        // Once per id: a record listed twice counts once.
        let earlier = records.iter().map(|r| epochs.remove(&r.id)).collect();
        let new = records.iter().zip(&fresh).filter(|(_, f)| **f).map(|(r, _)| r);
        for chunk in rows::chunks(&rows::daily_deltas(new)) {
            let mut q = QueryBuilder::new(
                "INSERT INTO key_usage_daily (key_id, day, requests, spend_nanos, tokens, last_used_at) ",
            );
            rows::push_deltas(&mut q, chunk);
            q.push(
                " ON CONFLICT (key_id, day) DO UPDATE SET requests = key_usage_daily.requests + excluded.requests, \
                 spend_nanos = key_usage_daily.spend_nanos + excluded.spend_nanos, \
                 tokens = key_usage_daily.tokens + excluded.tokens, \
                 last_used_at = GREATEST(key_usage_daily.last_used_at, excluded.last_used_at)",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Committed { fresh, epoch, earlier })
    }

    async fn list_requests(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, RequestRecord)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT seq, {RECORD_COLUMNS} FROM request_records \
             WHERE wallet_id = $1 AND ($2::TEXT IS NULL OR key_id = $2) AND seq < $3 ORDER BY seq DESC LIMIT $4"
        ))
        .bind(wallet.as_str())
        .bind(key.map(SpendKeyId::as_str))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::record).collect()
    }

    async fn usage_by_day(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<DayTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.day AS day, SUM(u.requests)::BIGINT AS requests, SUM(u.tokens)::BIGINT AS tokens, \
                    SUM(u.spend_nanos)::BIGINT AS spend \
             FROM key_usage_daily u JOIN spend_keys k ON k.id = u.key_id \
             WHERE k.wallet_id = $1 AND ($2::TEXT IS NULL OR u.key_id = $2) AND u.day BETWEEN $3 AND $4 \
             GROUP BY u.day ORDER BY u.day",
        )
        .bind(wallet.as_str())
        .bind(key.map(SpendKeyId::as_str))
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::day_total).collect()
    }

    async fn usage_by_model(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ModelTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, provider, COUNT(*) AS requests, \
                    SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens)::BIGINT AS tokens, \
                    SUM(cost_nanos)::BIGINT AS spend \
             FROM request_records \
             WHERE wallet_id = $1 AND ($2::TEXT IS NULL OR key_id = $2) AND created_at >= $3 AND created_at < $4 \
             GROUP BY model, provider ORDER BY spend DESC, model",
        )
        .bind(wallet.as_str())
        .bind(key.map(SpendKeyId::as_str))
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::model_total).collect()
    }

    async fn create_session(&self, s: &Session, audit: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (token_hash, wallet_id, wallet_key_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.token_hash.0[..])
        .bind(s.wallet_id.as_str())
        .bind(s.wallet_key_id.as_str())
        .bind(&s.csrf_token)
        .bind(s.created_at.unix_millis())
        .bind(s.expires_at.unix_millis())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, token_hash: &KeyHash, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT s.* FROM dashboard_sessions s JOIN wallet_keys k ON k.id = s.wallet_key_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND k.revoked_at IS NULL",
        )
        .bind(&token_hash.0[..])
        .bind(now.unix_millis())
        .fetch_optional(&self.pool)
        .await?;
        let session = row.as_ref().map(rows::session).transpose()?;
        Ok(session.filter(|s| s.token_hash.ct_eq(token_hash)))
    }

    async fn revoke_session(&self, token_hash: &KeyHash, at: Timestamp, audit: &AuditEntry) -> Result<(), StoreError> {
        let change =
            sqlx::query("UPDATE dashboard_sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
                .bind(at.unix_millis())
                .bind(&token_hash.0[..]);
        self.audited_change(change, audit).await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        wallet: &WalletId,
        target: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE wallet_id = $1 AND ($2::TEXT IS NULL OR target_id = $2) AND seq < $3 \
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(wallet.as_str())
        .bind(target)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::audit_entry).collect()
    }

    async fn insert_webhook(&self, w: &Webhook, audit: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        rows::insert_webhook::<sqlx::Postgres>(w).build().execute(&mut *tx).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhooks(&self, wallet: Option<&WalletId>) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM webhooks WHERE deleted_at IS NULL AND ($1::TEXT IS NULL OR wallet_id = $1) ORDER BY seq",
        )
        .bind(wallet.map(WalletId::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::webhook).collect()
    }

    async fn delete_webhook(
        &self,
        wallet: &WalletId,
        id: &WebhookId,
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let change =
            sqlx::query("UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND wallet_id = $3 AND deleted_at IS NULL")
                .bind(at.unix_millis())
                .bind(id.as_str())
                .bind(wallet.as_str());
        self.audited_change(change, audit).await
    }

    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
        let done = rows::enqueue_delivery::<sqlx::Postgres>(d).build().execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id IN (\
               SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= $2 AND w.deleted_at IS NULL \
               ORDER BY d.seq LIMIT $3 FOR UPDATE OF d SKIP LOCKED) RETURNING *",
        )
        .bind(lease_until.unix_millis())
        .bind(now.unix_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(i64, Delivery)> = rows.iter().map(rows::delivery).collect::<Result<_, _>>()?;
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, d)| d).collect())
    }

    async fn update_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        rows::update_delivery::<sqlx::Postgres>(d).build().execute(&self.pool).await?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        wallet: &WalletId,
        webhook: &WebhookId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, Delivery)>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE wallet_id = $1 AND webhook_id = $2 AND seq < $3 \
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(wallet.as_str())
        .bind(webhook.as_str())
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::delivery).collect()
    }

    async fn keys_expired_between(&self, after: Timestamp, until: Timestamp) -> Result<Vec<SpendKey>, StoreError> {
        let sql = format!(
            "SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE revoked_at IS NULL AND expires_at > $1 AND expires_at <= $2 \
             AND wallet_id IN (SELECT wallet_id FROM webhooks WHERE deleted_at IS NULL)"
        );
        let rows = sqlx::query(&sql).bind(after.unix_millis()).bind(until.unix_millis()).fetch_all(&self.pool).await?;
        rows.iter().map(|r| rows::spend_key(r).map(|l| l.key)).collect()
    }

    async fn key_usage(
        &self,
        key: &SpendKeyId,
        spend_since: Timestamp,
        requests_since: Timestamp,
    ) -> Result<KeyUsage, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN day >= $1 THEN spend_nanos END), 0)::BIGINT AS current_spend, \
                    COALESCE(SUM(spend_nanos), 0)::BIGINT AS total_spend, \
                    COALESCE(SUM(CASE WHEN day >= $2 THEN requests END), 0)::BIGINT AS current_requests, \
                    COALESCE(SUM(requests), 0)::BIGINT AS total_requests, \
                    MAX(last_used_at) AS last_used_at \
             FROM key_usage_daily WHERE key_id = $3",
        )
        .bind(spend_since.unix_day())
        .bind(requests_since.unix_day())
        .bind(key.as_str())
        .fetch_one(&self.pool)
        .await?;
        rows::key_usage(&row)
    }

    async fn counter_epoch(&self) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(LEDGER_LOCK).execute(&mut *tx).await?;
        let epoch =
            sqlx::query("SELECT epoch FROM counter_epoch WHERE id = 1").fetch_one(&mut *tx).await?.try_get("epoch")?;
        tx.commit().await?;
        Ok(epoch)
    }

    async fn begin_rebuild(&self) -> Result<Box<dyn CounterRebuild>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LEDGER_LOCK).execute(&mut *tx).await?;
        Ok(Box::new(PgRebuild { tx }))
    }
}

struct PgRebuild {
    tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl CounterRebuild for PgRebuild {
    async fn epoch(&mut self) -> Result<String, StoreError> {
        Ok(sqlx::query("SELECT epoch FROM counter_epoch WHERE id = 1")
            .fetch_one(&mut *self.tx)
            .await?
            .try_get("epoch")?)
    }

    async fn key_versions(&mut self) -> Result<Vec<(SpendKeyId, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, version FROM spend_keys").fetch_all(&mut *self.tx).await?;
        rows.iter().map(|r| Ok((SpendKeyId::new(r.try_get::<String, _>("id")?), r.try_get("version")?))).collect()
    }

    async fn usage_days(&mut self, since_day: i64) -> Result<Vec<UsageDay>, StoreError> {
        usage_days(&mut *self.tx, since_day).await
    }

    async fn usage_totals(&mut self) -> Result<Vec<UsageTotal>, StoreError> {
        usage_totals(&mut *self.tx).await
    }

    async fn commit(mut self: Box<Self>, epoch: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE counter_epoch SET epoch = $1 WHERE id = 1").bind(epoch).execute(&mut *self.tx).await?;
        self.tx.commit().await?;
        Ok(())
    }
}

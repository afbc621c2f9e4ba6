//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so an
//! acknowledged write survives `kill -9` and power loss alike.

mod migrate;

use crate::rows::{self, RECORD_COLUMNS, SPEND_KEY_COLUMNS, bind_spend_key};
use crate::{Committed, DayTotal, KeyHistory, Listed, ModelTotal, RequestRecord, Session, Store, StoreError};
use async_trait::async_trait;
use spendgate_core::alert::{Delivery, Webhook, WebhookId};
use spendgate_core::{
    AuditEntry, KeyHash, KeyUsage, SpendKey, SpendKeyId, Timestamp, Wallet, WalletId, WalletKey, WalletKeyId,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection kept for the request-record batches, so that its page cache and
    /// prepared statements stay warm: a connection whose last view is older than the
    /// latest commit must drop its cache, and a batch on any connection of the pool
    /// would read its pages back from the file.
    records: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if need be) the database file at `path` and migrates it.
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Statement journals and sorts in memory, not in temporary files.
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await?;
        migrate::run(&pool).await?;
        let records = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool, records })
    }

    /// Runs `change` and, when it changed one row, writes `audit` in the same
    /// transaction; whether it did (no row changed: nothing written, no entry).
    async fn audited_change<'q>(
        &self,
        change: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
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

async fn insert_wallet_key<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    k: &WalletKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO wallet_keys (id, wallet_id, name, key_hash, key_preview, created_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
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

async fn insert_audit(tx: &mut sqlx::SqliteConnection, e: &AuditEntry) -> Result<(), StoreError> {
    rows::insert_audit::<sqlx::Sqlite>(e).build().execute(tx).await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
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
        sqlx::query("INSERT INTO wallets (id, name, created_at) VALUES (?, ?, ?)")
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
        let row = sqlx::query("SELECT id, name, created_at FROM wallets WHERE id = ?")
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
        let rows = sqlx::query("SELECT * FROM wallet_keys WHERE wallet_id = ? ORDER BY created_at, id")
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
        let change =
            sqlx::query("UPDATE wallet_keys SET revoked_at = ? WHERE id = ? AND wallet_id = ? AND revoked_at IS NULL")
                .bind(at.unix_millis())
                .bind(id.as_str())
                .bind(wallet.as_str());
        self.audited_change(change, audit).await
    }

    async fn wallet_key_by_hash(&self, hash: &KeyHash) -> Result<Option<WalletKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM wallet_keys WHERE key_hash = ? AND revoked_at IS NULL")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await?;
        let key = row.as_ref().map(rows::wallet_key).transpose()?;
        Ok(key.filter(|k| k.key_hash.ct_eq(hash)))
    }

    async fn insert_spend_key(&self, key: &SpendKey, audit: &AuditEntry) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO spend_keys ({}) VALUES ({})",
            SPEND_KEY_COLUMNS.trim_start_matches("seq, "),
            ["?"; 20].join(", ")
        );
        let mut tx = self.pool.begin().await?;
        bind_spend_key(sqlx::query(&sql), key).execute(&mut *tx).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn spend_key(&self, wallet: &WalletId, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError> {
        let sql =
            format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE id = ? AND wallet_id = ? AND revoked_at IS NULL");
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
            "SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE wallet_id = ? AND revoked_at IS NULL AND seq < ? \
             ORDER BY seq DESC LIMIT ?"
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
        let sql = format!(
            "UPDATE spend_keys SET {} WHERE id = ? AND wallet_id = ? AND version = ? AND revoked_at IS NULL",
            rows::spend_key_assignments(|_| "?".to_string())
        );
        let change = bind_spend_key(sqlx::query(&sql), key)
            .bind(key.id.as_str())
            .bind(key.wallet_id.as_str())
            .bind(expected_version);
        self.audited_change(change, audit).await
    }

    async fn spend_key_by_id(&self, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError> {
        let sql = format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE id = ?");
        let row = sqlx::query(&sql).bind(id.as_str()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(rows::spend_key).transpose()?.map(|l| l.key))
    }

    async fn spend_key_by_hash(&self, hash: &KeyHash) -> Result<Option<SpendKey>, StoreError> {
        let sql = format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE key_hash = ?");
        let row = sqlx::query(&sql).bind(&hash.0[..]).fetch_optional(&self.pool).await?;
        let key = row.as_ref().map(rows::spend_key).transpose()?.map(|l| l.key);
        Ok(key.filter(|k| k.key_hash.ct_eq(hash)))
    }

    async fn key_history(&self, key: &SpendKeyId, since_day: i64) -> Result<KeyHistory, StoreError> {
        let days = sqlx::query(
            "SELECT key_id, day, spend_nanos, requests FROM key_usage_daily WHERE key_id = ? AND day >= ? ORDER BY day",
        )
        .bind(key.as_str())
        .bind(since_day)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query(
            "SELECT key_id, SUM(spend_nanos) AS spend, SUM(requests) AS requests, MAX(last_used_at) AS last_used_at \
             FROM key_usage_daily WHERE key_id = ? GROUP BY key_id",
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
        let mut tx = self.records.begin().await?;
        // The batch's records, each once, that the store does not have yet. A fresh batch
        // never has stored ones, so the common case is one statement per 1,000 records;
        // only a retried batch pays for looking them up. (`RETURNING` would tell, but the
        // driver hands each returned row across threads on its own.)
        let mut seen = HashSet::new();
        let mut fresh: Vec<bool> = records.iter().map(|r| seen.insert(r.id.as_str())).collect();
        let mut stored = 0;
        for chunk in rows::chunks(records) {
            let mut q = QueryBuilder::new(format!("INSERT INTO request_records ({RECORD_COLUMNS}) "));
            rows::push_records(&mut q, chunk);
            q.push(" ON CONFLICT (id) DO NOTHING");
            stored += q.build().execute(&mut *tx).await?.rows_affected();
        }
        if stored != fresh.iter().filter(|f| **f).count() as u64 {
            // Some were there already: start over, asking which.
            tx.rollback().await?;
            tx = self.records.begin().await?;
            let mut known = HashSet::new();
            for chunk in rows::chunks(records) {
                let mut q = QueryBuilder::new("SELECT id FROM request_records WHERE id IN (");
                let mut ids = q.separated(", ");
                for r in chunk {
                    ids.push_bind(r.id.as_str());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *tx).await? {
                    known.insert(row.try_get::<String, _>("id")?);
                }
            }
            for (f, r) in fresh.iter_mut().zip(records) {
                *f = *f && !known.contains(&r.id);
            }
            let new: Vec<RequestRecord> =
                records.iter().zip(&fresh).filter(|(_, f)| **f).map(|(r, _)| r.clone()).collect();
            for chunk in rows::chunks(&new) {
                let mut q = QueryBuilder::new(format!("INSERT INTO request_records ({RECORD_COLUMNS}) "));
                rows::push_records(&mut q, chunk);
                q.build().execute(&mut *tx).await?;
            }
        }
        let new = records.iter().zip(&fresh).filter(|(_, f)| **f).map(|(r, _)| r);
        for chunk in rows::chunks(&rows::daily_deltas(new)) {
            let mut q = QueryBuilder::new(
                "INSERT INTO key_usage_daily (key_id, day, requests, spend_nanos, tokens, last_used_at) ",
            );
            rows::push_deltas(&mut q, chunk);
            q.push(
                " ON CONFLICT (key_id, day) DO UPDATE SET requests = requests + excluded.requests, \
                 spend_nanos = spend_nanos + excluded.spend_nanos, tokens = tokens + excluded.tokens, \
                 last_used_at = MAX(last_used_at, excluded.last_used_at)",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Committed { fresh, epoch: String::new(), earlier: Vec::new() })
    }

    async fn list_requests(
        &self,
        wallet: &WalletId,
        key: Option<&SpendKeyId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, RequestRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM request_records WHERE wallet_id = ? AND (? IS NULL OR key_id = ?) AND seq < ? \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(wallet.as_str())
        .bind(key.map(SpendKeyId::as_str))
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
            "SELECT u.day AS day, SUM(u.requests) AS requests, SUM(u.tokens) AS tokens, SUM(u.spend_nanos) AS spend \
             FROM key_usage_daily u JOIN spend_keys k ON k.id = u.key_id \
             WHERE k.wallet_id = ? AND (? IS NULL OR u.key_id = ?) AND u.day BETWEEN ? AND ? \
             GROUP BY u.day ORDER BY u.day",
        )
        .bind(wallet.as_str())
        .bind(key.map(SpendKeyId::as_str))
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
                    SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens) AS tokens, \
                    SUM(cost_nanos) AS spend \
             FROM request_records WHERE wallet_id = ? AND (? IS NULL OR key_id = ?) AND created_at >= ? AND created_at < ? \
             GROUP BY model, provider ORDER BY spend DESC, model",
        )
        .bind(wallet.as_str())
        .bind(key.map(SpendKeyId::as_str))
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
             VALUES (?, ?, ?, ?, ?, ?)",
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
             WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND k.revoked_at IS NULL",
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
            sqlx::query("UPDATE dashboard_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL")
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
            "SELECT * FROM audit_log WHERE wallet_id = ? AND (? IS NULL OR target_id = ?) AND seq < ? \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(wallet.as_str())
        .bind(target)
        .bind(target)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::audit_entry).collect()
    }

    async fn insert_webhook(&self, w: &Webhook, audit: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        rows::insert_webhook::<sqlx::Sqlite>(w).build().execute(&mut *tx).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn webhooks(&self, wallet: Option<&WalletId>) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM webhooks WHERE deleted_at IS NULL AND (? IS NULL OR wallet_id = ?) ORDER BY seq",
        )
        .bind(wallet.map(WalletId::as_str))
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
            sqlx::query("UPDATE webhooks SET deleted_at = ? WHERE id = ? AND wallet_id = ? AND deleted_at IS NULL")
                .bind(at.unix_millis())
                .bind(id.as_str())
                .bind(wallet.as_str());
        self.audited_change(change, audit).await
    }

    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool, StoreError> {
        let done = rows::enqueue_delivery::<sqlx::Sqlite>(d).build().execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (\
               SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.deleted_at IS NULL \
               ORDER BY d.seq LIMIT ?) RETURNING *",
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
        rows::update_delivery::<sqlx::Sqlite>(d).build().execute(&self.pool).await?;
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
            "SELECT * FROM webhook_deliveries WHERE wallet_id = ? AND webhook_id = ? AND seq < ? \
             ORDER BY seq DESC LIMIT ?",
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
            "SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE revoked_at IS NULL AND expires_at > ? AND expires_at <= ? \
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
            "SELECT COALESCE(SUM(CASE WHEN day >= ? THEN spend_nanos END), 0) AS current_spend, \
                    COALESCE(SUM(spend_nanos), 0) AS total_spend, \
                    COALESCE(SUM(CASE WHEN day >= ? THEN requests END), 0) AS current_requests, \
                    COALESCE(SUM(requests), 0) AS total_requests, \
                    MAX(last_used_at) AS last_used_at \
             FROM key_usage_daily WHERE key_id = ?",
        )
        .bind(spend_since.unix_day())
        .bind(requests_since.unix_day())
        .bind(key.as_str())
        .fetch_one(&self.pool)
        .await?;
        rows::key_usage(&row)
    }
}

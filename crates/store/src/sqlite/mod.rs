//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so an
//! acknowledged write survives `kill -9` and power loss alike.

mod migrate;

use crate::{DayTotal, Listed, ModelTotal, RequestRecord, Session, Store, StoreError, UsageDay, UsageTotal};
use async_trait::async_trait;
use spendgate_core::{
    Cycle, KeyHash, KeyStatus, KeyUsage, RateLimit, RequestLimit, SpendKey, SpendKeyId, SpendLimit, Timestamp,
    TokenUsage, Usd, Wallet, WalletId, WalletKey, WalletKeyId, WireFormat,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
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
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        migrate::run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

const SPEND_KEY_COLUMNS: &str = "seq, id, wallet_id, name, status, request_shape, allowed_models, allowed_providers, \
    spend_limit_nanos, spend_limit_cycle, request_limit_count, request_limit_cycle, rate_limit_rpm, \
    rate_limit_burst, expires_at, key_hash, key_preview, created_at, updated_at, revoked_at, version";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

fn hash_of(row: &SqliteRow) -> Result<KeyHash, StoreError> {
    let bytes: Vec<u8> = row.try_get("key_hash")?;
    KeyHash::from_slice(&bytes).ok_or_else(|| corrupt("key_hash is not 32 bytes"))
}

fn names_to_json(names: &Option<Vec<String>>) -> Option<String> {
    names.as_ref().map(|n| serde_json::Value::from(n.clone()).to_string())
}

fn names_from_json(text: Option<String>) -> Result<Option<Vec<String>>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(format!("name list: {e}")))).transpose()
}

fn cycle(text: Option<String>) -> Result<Option<Cycle>, StoreError> {
    text.map(|c| Cycle::from_str(&c).map_err(corrupt)).transpose()
}

fn spend_key_from_row(row: &SqliteRow) -> Result<Listed, StoreError> {
    let status: String = row.try_get("status")?;
    let shape: String = row.try_get("request_shape")?;
    let spend_limit =
        match (row.try_get::<Option<i64>, _>("spend_limit_nanos")?, cycle(row.try_get("spend_limit_cycle")?)?) {
            (Some(nanos), Some(cycle)) => Some(SpendLimit { amount: Usd::from_nanos(nanos), cycle }),
            _ => None,
        };
    let request_limit =
        match (row.try_get::<Option<i64>, _>("request_limit_count")?, cycle(row.try_get("request_limit_cycle")?)?) {
            (Some(count), Some(cycle)) => Some(RequestLimit { count: count as u64, cycle }),
            _ => None,
        };
    let rate_limit = row.try_get::<Option<i64>, _>("rate_limit_rpm")?.map(|rpm| RateLimit {
        rpm: rpm as u32,
        burst: row.try_get::<Option<i64>, _>("rate_limit_burst").ok().flatten().map(|b| b as u32),
    });
    let key = SpendKey {
        id: SpendKeyId::new(row.try_get::<String, _>("id")?),
        wallet_id: WalletId::new(row.try_get::<String, _>("wallet_id")?),
        name: row.try_get("name")?,
        status: KeyStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?,
        request_shape: match shape.as_str() {
            "anthropic" => WireFormat::Anthropic,
            "openai" => WireFormat::OpenAi,
            other => return Err(corrupt(format!("request_shape {other:?}"))),
        },
        allowed_models: names_from_json(row.try_get("allowed_models")?)?,
        allowed_providers: names_from_json(row.try_get("allowed_providers")?)?,
        spend_limit,
        request_limit,
        rate_limit,
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(ts),
        key_hash: hash_of(row)?,
        key_preview: row.try_get("key_preview")?,
        created_at: ts(row.try_get("created_at")?),
        updated_at: ts(row.try_get("updated_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(ts),
        version: row.try_get("version")?,
    };
    Ok(Listed { seq: row.try_get("seq")?, key })
}

fn wallet_key_from_row(row: &SqliteRow) -> Result<WalletKey, StoreError> {
    Ok(WalletKey {
        id: WalletKeyId::new(row.try_get::<String, _>("id")?),
        wallet_id: WalletId::new(row.try_get::<String, _>("wallet_id")?),
        name: row.try_get("name")?,
        key_hash: hash_of(row)?,
        key_preview: row.try_get("key_preview")?,
        created_at: ts(row.try_get("created_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(ts),
    })
}

fn wallet_from_row(row: &SqliteRow) -> Result<Wallet, StoreError> {
    Ok(Wallet {
        id: WalletId::new(row.try_get::<String, _>("id")?),
        name: row.try_get("name")?,
        created_at: ts(row.try_get("created_at")?),
    })
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

/// Binds every column of a spend key but `seq`, in `SPEND_KEY_COLUMNS` order.
fn bind_spend_key<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    k: &'q SpendKey,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(k.id.as_str())
        .bind(k.wallet_id.as_str())
        .bind(&k.name)
        .bind(k.status.as_str())
        .bind(k.request_shape.as_str())
        .bind(names_to_json(&k.allowed_models))
        .bind(names_to_json(&k.allowed_providers))
        .bind(k.spend_limit.map(|l| l.amount.nanos()))
        .bind(k.spend_limit.map(|l| l.cycle.as_str()))
        .bind(k.request_limit.map(|l| l.count as i64))
        .bind(k.request_limit.map(|l| l.cycle.as_str()))
        .bind(k.rate_limit.map(|l| i64::from(l.rpm)))
        .bind(k.rate_limit.and_then(|l| l.burst).map(i64::from))
        .bind(k.expires_at.map(Timestamp::unix_millis))
        .bind(&k.key_hash.0[..])
        .bind(&k.key_preview)
        .bind(k.created_at.unix_millis())
        .bind(k.updated_at.unix_millis())
        .bind(k.revoked_at.map(Timestamp::unix_millis))
        .bind(k.version)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_wallet(&self, wallet: &Wallet, first_key: &WalletKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO wallets (id, name, created_at) VALUES (?, ?, ?)")
            .bind(wallet.id.as_str())
            .bind(&wallet.name)
            .bind(wallet.created_at.unix_millis())
            .execute(&mut *tx)
            .await?;
        insert_wallet_key(&mut *tx, first_key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_wallets(&self) -> Result<Vec<Wallet>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM wallets ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(wallet_from_row).collect()
    }

    async fn wallet(&self, id: &WalletId) -> Result<Option<Wallet>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM wallets WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(wallet_from_row).transpose()
    }

    async fn insert_wallet_key(&self, key: &WalletKey) -> Result<(), StoreError> {
        insert_wallet_key(&self.pool, key).await
    }

    async fn list_wallet_keys(&self, wallet: &WalletId) -> Result<Vec<WalletKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM wallet_keys WHERE wallet_id = ? ORDER BY created_at, id")
            .bind(wallet.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(wallet_key_from_row).collect()
    }

    async fn revoke_wallet_key(&self, wallet: &WalletId, id: &WalletKeyId, at: Timestamp) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE wallet_keys SET revoked_at = ? WHERE id = ? AND wallet_id = ? AND revoked_at IS NULL")
                .bind(at.unix_millis())
                .bind(id.as_str())
                .bind(wallet.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn wallet_key_by_hash(&self, hash: &KeyHash) -> Result<Option<WalletKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM wallet_keys WHERE key_hash = ? AND revoked_at IS NULL")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await?;
        let key = row.as_ref().map(wallet_key_from_row).transpose()?;
        Ok(key.filter(|k| k.key_hash.ct_eq(hash)))
    }

    async fn insert_spend_key(&self, key: &SpendKey) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO spend_keys ({}) VALUES ({})",
            SPEND_KEY_COLUMNS.trim_start_matches("seq, "),
            ["?"; 20].join(", ")
        );
        bind_spend_key(sqlx::query(&sql), key).execute(&self.pool).await?;
        Ok(())
    }

    async fn spend_key(&self, wallet: &WalletId, id: &SpendKeyId) -> Result<Option<SpendKey>, StoreError> {
        let sql =
            format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys WHERE id = ? AND wallet_id = ? AND revoked_at IS NULL");
        let row = sqlx::query(&sql).bind(id.as_str()).bind(wallet.as_str()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(spend_key_from_row).transpose()?.map(|l| l.key))
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
        rows.iter().map(spend_key_from_row).collect()
    }

    async fn update_spend_key(&self, key: &SpendKey, expected_version: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE spend_keys SET name = ?, status = ?, request_shape = ?, allowed_models = ?, \
             allowed_providers = ?, spend_limit_nanos = ?, spend_limit_cycle = ?, request_limit_count = ?, \
             request_limit_cycle = ?, rate_limit_rpm = ?, rate_limit_burst = ?, expires_at = ?, key_hash = ?, \
             key_preview = ?, updated_at = ?, revoked_at = ?, version = ? \
             WHERE id = ? AND wallet_id = ? AND version = ? AND revoked_at IS NULL",
        )
        .bind(&key.name)
        .bind(key.status.as_str())
        .bind(key.request_shape.as_str())
        .bind(names_to_json(&key.allowed_models))
        .bind(names_to_json(&key.allowed_providers))
        .bind(key.spend_limit.map(|l| l.amount.nanos()))
        .bind(key.spend_limit.map(|l| l.cycle.as_str()))
        .bind(key.request_limit.map(|l| l.count as i64))
        .bind(key.request_limit.map(|l| l.cycle.as_str()))
        .bind(key.rate_limit.map(|l| i64::from(l.rpm)))
        .bind(key.rate_limit.and_then(|l| l.burst).map(i64::from))
        .bind(key.expires_at.map(Timestamp::unix_millis))
        .bind(&key.key_hash.0[..])
        .bind(&key.key_preview)
        .bind(key.updated_at.unix_millis())
        .bind(key.revoked_at.map(Timestamp::unix_millis))
        .bind(key.version)
        .bind(key.id.as_str())
        .bind(key.wallet_id.as_str())
        .bind(expected_version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn all_spend_keys(&self) -> Result<Vec<SpendKey>, StoreError> {
        let sql = format!("SELECT {SPEND_KEY_COLUMNS} FROM spend_keys ORDER BY seq");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(|r| spend_key_from_row(r).map(|l| l.key)).collect()
    }

    async fn usage_days(&self, since_day: i64) -> Result<Vec<UsageDay>, StoreError> {
        let rows = sqlx::query("SELECT key_id, day, spend_nanos, requests FROM key_usage_daily WHERE day >= ?")
            .bind(since_day)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageDay {
                    key_id: SpendKeyId::new(r.try_get::<String, _>("key_id")?),
                    day: r.try_get("day")?,
                    spend: Usd::from_nanos(r.try_get("spend_nanos")?),
                    requests: r.try_get::<i64, _>("requests")? as u64,
                })
            })
            .collect()
    }

    async fn usage_totals(&self) -> Result<Vec<UsageTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, SUM(spend_nanos) AS spend, SUM(requests) AS requests, MAX(last_used_at) AS last_used_at \
             FROM key_usage_daily GROUP BY key_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageTotal {
                    key_id: SpendKeyId::new(r.try_get::<String, _>("key_id")?),
                    spend: Usd::from_nanos(r.try_get("spend")?),
                    requests: r.try_get::<i64, _>("requests")? as u64,
                    last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(ts),
                })
            })
            .collect()
    }

    async fn record_requests(&self, records: &[RequestRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // SQLite allows 32766 bound parameters; 14 per record.
        for chunk in records.chunks(1000) {
            let mut q = QueryBuilder::new(
                "INSERT INTO request_records (id, key_id, wallet_id, model, provider, endpoint, status, input_tokens, \
                 cached_input_tokens, cache_write_tokens, output_tokens, cost_nanos, latency_ms, created_at) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.id)
                    .push_bind(r.key_id.as_str())
                    .push_bind(r.wallet_id.as_str())
                    .push_bind(&r.model)
                    .push_bind(&r.provider)
                    .push_bind(&r.endpoint)
                    .push_bind(i64::from(r.status))
                    .push_bind(r.usage.input as i64)
                    .push_bind(r.usage.cached_input as i64)
                    .push_bind(r.usage.cache_write as i64)
                    .push_bind(r.usage.output as i64)
                    .push_bind(r.cost.nanos())
                    .push_bind(r.latency_ms as i64)
                    .push_bind(r.created_at.unix_millis());
            });
            q.build().execute(&mut *tx).await?;
        }
        for r in records {
            let u = &r.usage;
            let tokens = (u.input + u.cached_input + u.cache_write + u.output) as i64;
            sqlx::query(
                "INSERT INTO key_usage_daily (key_id, day, requests, spend_nanos, tokens, last_used_at) \
                 VALUES (?, ?, 1, ?, ?, ?) \
                 ON CONFLICT (key_id, day) DO UPDATE SET requests = requests + 1, \
                 spend_nanos = spend_nanos + excluded.spend_nanos, tokens = tokens + excluded.tokens, \
                 last_used_at = MAX(last_used_at, excluded.last_used_at)",
            )
            .bind(r.key_id.as_str())
            .bind(r.created_at.unix_day())
            .bind(r.cost.nanos())
            .bind(tokens)
            .bind(r.created_at.unix_millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
        rows.iter()
            .map(|r| {
                let record = RequestRecord {
                    id: r.try_get("id")?,
                    key_id: SpendKeyId::new(r.try_get::<String, _>("key_id")?),
                    wallet_id: WalletId::new(r.try_get::<String, _>("wallet_id")?),
                    model: r.try_get("model")?,
                    provider: r.try_get("provider")?,
                    endpoint: r.try_get("endpoint")?,
                    status: r.try_get::<i64, _>("status")? as u16,
                    usage: TokenUsage {
                        input: r.try_get::<i64, _>("input_tokens")? as u64,
                        cached_input: r.try_get::<i64, _>("cached_input_tokens")? as u64,
                        cache_write: r.try_get::<i64, _>("cache_write_tokens")? as u64,
                        output: r.try_get::<i64, _>("output_tokens")? as u64,
                    },
                    cost: Usd::from_nanos(r.try_get("cost_nanos")?),
                    latency_ms: r.try_get::<i64, _>("latency_ms")? as u64,
                    created_at: ts(r.try_get("created_at")?),
                };
                Ok((r.try_get("seq")?, record))
            })
            .collect()
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
        rows.iter()
            .map(|r| {
                Ok(DayTotal {
                    day: r.try_get("day")?,
                    requests: r.try_get::<i64, _>("requests")? as u64,
                    tokens: r.try_get::<i64, _>("tokens")? as u64,
                    spend: Usd::from_nanos(r.try_get("spend")?),
                })
            })
            .collect()
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
        rows.iter()
            .map(|r| {
                Ok(ModelTotal {
                    model: r.try_get("model")?,
                    provider: r.try_get("provider")?,
                    requests: r.try_get::<i64, _>("requests")? as u64,
                    tokens: r.try_get::<i64, _>("tokens")? as u64,
                    spend: Usd::from_nanos(r.try_get("spend")?),
                })
            })
            .collect()
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
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
        .execute(&self.pool)
        .await?;
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
        let Some(r) = row else { return Ok(None) };
        let bytes: Vec<u8> = r.try_get("token_hash")?;
        let stored = KeyHash::from_slice(&bytes).ok_or_else(|| corrupt("session token_hash is not 32 bytes"))?;
        if !stored.ct_eq(token_hash) {
            return Ok(None);
        }
        Ok(Some(Session {
            token_hash: stored,
            wallet_id: WalletId::new(r.try_get::<String, _>("wallet_id")?),
            wallet_key_id: WalletKeyId::new(r.try_get::<String, _>("wallet_key_id")?),
            csrf_token: r.try_get("csrf_token")?,
            created_at: ts(r.try_get("created_at")?),
            expires_at: ts(r.try_get("expires_at")?),
        }))
    }

    async fn revoke_session(&self, token_hash: &KeyHash, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE dashboard_sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL")
            .bind(at.unix_millis())
            .bind(&token_hash.0[..])
            .execute(&self.pool)
            .await?;
        Ok(())
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
        Ok(KeyUsage {
            current_spend: Usd::from_nanos(row.try_get("current_spend")?),
            total_spend: Usd::from_nanos(row.try_get("total_spend")?),
            current_requests: row.try_get::<i64, _>("current_requests")? as u64,
            total_requests: row.try_get::<i64, _>("total_requests")? as u64,
            last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(ts),
        })
    }
}

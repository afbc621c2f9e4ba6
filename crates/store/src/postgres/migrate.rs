//! PostgreSQL schema migrations, embedded and applied at start. Each runs once, in its
//! own transaction; an advisory lock serializes instances that start together.

use crate::StoreError;
use sqlx::{Connection, PgPool, Row};

/// (version, name, SQL). Append only: never edit a released migration.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../migrations/postgres/0001_initial.sql")),
    (2, "audit_log", include_str!("../../migrations/postgres/0002_audit_log.sql")),
    (3, "record_epoch", include_str!("../../migrations/postgres/0003_record_epoch.sql")),
    (4, "webhooks", include_str!("../../migrations/postgres/0004_webhooks.sql")),
];

/// ASCII "sgmigrat".
const MIGRATION_LOCK: i64 = 0x7367_6d69_6772_6174;

pub(crate) async fn run(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    for &(version, name, sql) in MIGRATIONS {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(MIGRATION_LOCK).execute(&mut *tx).await?;
        let exists: bool = sqlx::query("SELECT to_regclass('schema_migrations') IS NOT NULL AS e")
            .fetch_one(&mut *tx)
            .await?
            .try_get("e")?;
        if !exists {
            sqlx::query(
                "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .execute(&mut *tx)
            .await?;
        }
        let found: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?
            .try_get("v")?;
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        if found >= version {
            tx.rollback().await?;
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}

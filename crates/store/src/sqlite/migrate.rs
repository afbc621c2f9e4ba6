//! Schema migrations, embedded in the binary and applied at start. Each runs once,
//! in its own transaction, under SQLite's write lock so that two processes starting
//! together cannot both apply it.

use crate::StoreError;
use sqlx::{Connection, Row, SqlitePool};

/// (version, name, SQL). Append only: never edit a released migration.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../migrations/sqlite/0001_initial.sql")),
    (2, "dashboard", include_str!("../../migrations/sqlite/0002_dashboard.sql")),
    (3, "audit_log", include_str!("../../migrations/sqlite/0003_audit_log.sql")),
    (4, "webhooks", include_str!("../../migrations/sqlite/0004_webhooks.sql")),
];

pub(crate) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
         applied_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)))",
    )
    .execute(&mut *conn)
    .await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    for &(version, name, sql) in MIGRATIONS {
        // BEGIN IMMEDIATE takes the write lock before we read the applied versions.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
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
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
            .bind(version)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}

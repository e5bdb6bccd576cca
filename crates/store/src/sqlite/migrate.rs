//! The SQLite migration runner. It keeps the bookkeeping of sqlx's migrator, which earlier
//! Latchkey versions used: the table `_sqlx_migrations` with the same columns, one row per
//! applied migration, and the same checksum (SHA-384 of the migration's SQL text). A database
//! created by an earlier version is therefore recognised as migrated, and one whose recorded
//! migrations differ from the embedded ones is refused as sqlx refused it.

use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Result, SqliteMigrationError};

/// sqlx's table, column for column (`ensure_migrations_table` of sqlx-sqlite).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);";

/// The checksum sqlx records for a migration: SHA-384 of its SQL text.
pub(crate) fn checksum(sql: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA384, sql.as_bytes())
        .as_ref()
        .to_vec()
}

/// Applies the migrations (version, description, SQL) not yet recorded, in order, each in one
/// IMMEDIATE transaction together with its bookkeeping row. Refuses a database with a failed
/// migration, a recorded migration this program does not have, or one whose SQL changed.
pub(super) fn run(conn: &mut Connection, migrations: &[(i64, &str, &str)]) -> Result<()> {
    conn.execute_batch(CREATE_TABLE)?;
    let dirty: Option<i64> = conn
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(version) = dirty {
        return Err(SqliteMigrationError::Dirty(version).into());
    }
    let applied: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (version, _) in &applied {
        if !migrations.iter().any(|(v, _, _)| v == version) {
            return Err(SqliteMigrationError::Unknown(*version).into());
        }
    }
    for &(version, description, sql) in migrations {
        let sum = checksum(sql);
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == version) {
            if *recorded != sum {
                return Err(SqliteMigrationError::Modified(version).into());
            }
            continue;
        }
        let start = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have applied it between the listing and the write lock.
        let recorded: Option<Vec<u8>> = tx
            .query_row(
                "SELECT checksum FROM _sqlx_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(recorded) = recorded {
            if recorded != sum {
                return Err(SqliteMigrationError::Modified(version).into());
            }
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|source| SqliteMigrationError::Execute { version, source })?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, -1)",
            rusqlite::params![version, description, sum],
        )?;
        tx.commit()?;
        // As sqlx: the duration is known only after the commit, so it is recorded afterwards.
        let nanos = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        conn.execute(
            "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
            [nanos, version],
        )?;
        tracing::info!(version, description, "applied SQLite migration");
    }
    Ok(())
}

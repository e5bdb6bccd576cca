//! SQLite only: the migration bookkeeping stays the one sqlx's migrator wrote (databases of
//! earlier versions open unchanged), and atomic operations hold across connections of one file.

use std::sync::Arc;

use latchkey_store::prelude::*;
use latchkey_store::{
    DatabaseError, Limit, SqliteMigrationError, SqliteOptions, SqliteStore, Store, StoreError,
    ThrottleKey,
};

use crate::support::{TempDir, cipher, t0, user};

/// The embedded migrations, as files (what sqlx's migrator checksummed).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "audit_search",
        include_str!("../migrations/sqlite/0002_audit_search.sql"),
    ),
    (
        3,
        "gateway",
        include_str!("../migrations/sqlite/0003_gateway.sql"),
    ),
    (
        4,
        "gateway_allowed_kinds",
        include_str!("../migrations/sqlite/0004_gateway_allowed_kinds.sql"),
    ),
    (
        5,
        "gateway_job_after_change",
        include_str!("../migrations/sqlite/0005_gateway_job_after_change.sql"),
    ),
];

fn sha384(sql: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA384, sql.as_bytes())
        .as_ref()
        .to_vec()
}

/// A database as sqlx 0.9's SQLite migrator left it: its table (sqlx-sqlite
/// `ensure_migrations_table`), each migration run and recorded with `success = TRUE`, the
/// SHA-384 checksum and `execution_time = -1`, then the time filled in. `tamper` may change a
/// row afterwards.
fn database_migrated_by_sqlx(path: &std::path::Path, tamper: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL,
             execution_time BIGINT NOT NULL
         );",
    )
    .unwrap();
    for &(version, description, sql) in MIGRATIONS {
        conn.execute_batch("BEGIN").unwrap();
        conn.execute_batch(sql).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time ) \
             VALUES ( ?1, ?2, TRUE, ?3, -1 )",
            rusqlite::params![version, description, sha384(sql)],
        )
        .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        conn.execute(
            "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
            [123_456 + version, version],
        )
        .unwrap();
    }
    conn.execute_batch(tamper).unwrap();
}

fn migration_rows(path: &std::path::Path) -> Vec<(i64, String, bool, Vec<u8>, i64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.prepare(
        "SELECT version, description, success, checksum, execution_time FROM _sqlx_migrations \
         ORDER BY version",
    )
    .unwrap()
    .query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

async fn open_err(path: &std::path::Path) -> StoreError {
    SqliteStore::open(&SqliteOptions::file(path), cipher())
        .await
        .expect_err("the database is refused")
}

#[tokio::test]
async fn a_database_migrated_by_sqlx_opens_without_reapplying() {
    let dir = TempDir::new("sqlx-compat");
    let path = dir.path().join("old.db");
    database_migrated_by_sqlx(&path, "");
    let before = migration_rows(&path);

    // Re-running any migration would fail (its CREATE TABLEs exist) or add rows.
    let store = SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap();
    let who = user();
    let key = ThrottleKey::new("send:email", who);
    assert!(
        store
            .hit(&key, &[Limit::new(1, crate::support::mins(10))], t0())
            .await
            .unwrap()
            .is_allowed()
    );
    store.close().await;
    // The rows sqlx wrote stay as they were; only migrations newer than that database (the
    // notice outbox, 6; passkeys, 7; audit forwarding, 8; directory mirror, 9) are added after
    // them.
    let after = migration_rows(&path);
    assert_eq!(after[..before.len()], before, "bookkeeping untouched");
    assert_eq!(
        after[before.len()..]
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        [6, 7, 8, 9]
    );

    // And the rows this runner writes for a fresh database are the rows sqlx wrote.
    let fresh = dir.path().join("fresh.db");
    SqliteStore::open(&SqliteOptions::file(&fresh), cipher())
        .await
        .unwrap()
        .close()
        .await;
    let ours = migration_rows(&fresh);
    assert_eq!(
        ours.len(),
        before.len() + 4,
        "the sqlx-era migrations, the outbox, passkeys, audit forwarding and the directory mirror"
    );
    for (a, b) in ours.iter().zip(&before) {
        assert_eq!((a.0, &a.1, a.2, &a.3), (b.0, &b.1, b.2, &b.3));
        assert!(a.4 >= 0, "execution time recorded");
    }
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let dir = TempDir::new("sqlx-modified");
    let path = dir.path().join("db.sqlite");
    database_migrated_by_sqlx(
        &path,
        "UPDATE _sqlx_migrations SET checksum = zeroblob(48) WHERE version = 2",
    );
    let err = open_err(&path).await;
    assert!(
        matches!(
            err,
            StoreError::SqliteMigration(SqliteMigrationError::Modified(2))
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("migration 2 was previously applied but has been modified"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_or_unknown_migration_is_refused() {
    let dir = TempDir::new("sqlx-dirty");
    let path = dir.path().join("dirty.db");
    database_migrated_by_sqlx(
        &path,
        "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 3",
    );
    let err = open_err(&path).await;
    assert!(
        matches!(
            err,
            StoreError::SqliteMigration(SqliteMigrationError::Dirty(3))
        ),
        "{err}"
    );

    // A database a newer Latchkey migrated further is not opened by this one.
    let path = dir.path().join("newer.db");
    database_migrated_by_sqlx(
        &path,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'future', TRUE, zeroblob(48), 1)",
    );
    let err = open_err(&path).await;
    assert!(
        matches!(
            err,
            StoreError::SqliteMigration(SqliteMigrationError::Unknown(99))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_partial_database_gets_the_missing_migrations() {
    let dir = TempDir::new("sqlx-partial");
    let path = dir.path().join("db.sqlite");
    // An older Latchkey that had only the first two migrations.
    database_migrated_by_sqlx(&path, "");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE gateway_jobs; DROP TABLE gateways; \
         DELETE FROM _sqlx_migrations WHERE version >= 3;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap();
    store.gateways().await.unwrap();
    store.close().await;
    let rows = migration_rows(&path);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "3 to 9 applied"
    );
    assert_eq!(rows[3].3, sha384(MIGRATIONS[3].2));
}

/// Two stores on one file are two writers (as the portal and `latchkey gateway register`
/// are): the throttle's single INSERT ... SELECT stays atomic across them, on 4 threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_concurrent_hits_through_two_stores_on_one_file_allow_exactly_five() {
    let dir = TempDir::new("sqlite-two-writers");
    let path = dir.path().join("db.sqlite");
    let a: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&SqliteOptions::file(&path), cipher())
            .await
            .unwrap(),
    );
    let b: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&SqliteOptions::file(&path), cipher())
            .await
            .unwrap(),
    );
    let key = ThrottleKey::new("send:email", user());
    let limits = [
        Limit::new(5, std::time::Duration::from_secs(3600)),
        Limit::new(8, std::time::Duration::from_secs(86_400)),
    ];
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store
                .hit(&key, &limits, t0() + std::time::Duration::from_millis(i))
                .await
                .unwrap()
                .is_allowed()
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 5);
    for s in [&a, &b] {
        assert!(
            !s.hit(&key, &limits, t0() + crate::support::mins(1))
                .await
                .unwrap()
                .is_allowed()
        );
    }
}

#[tokio::test]
async fn a_closed_store_refuses_further_calls() {
    let dir = TempDir::new("sqlite-closed");
    let store = SqliteStore::open(&SqliteOptions::file(dir.path().join("db.sqlite")), cipher())
        .await
        .unwrap();
    store.close().await;
    let err = store.gateways().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Database(DatabaseError::Closed)),
        "{err}"
    );
}

/// Checkpoints run on the store's own thread: committed pages reach the database file although
/// no request's commit comes near the writer's auto-checkpoint bound (10,000 pages; these
/// writes log a few thousand).
#[tokio::test]
async fn committed_pages_reach_the_database_file_without_a_request_checkpointing() {
    let dir = TempDir::new("sqlite-checkpoint");
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    // Let the migrations' pages settle into the file first.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let before = size();
    let limits = [Limit::new(1_000_000, std::time::Duration::from_secs(3600))];
    for i in 0..1000u32 {
        let key = ThrottleKey::new("start:address", format!("10.0.{}.{}", i / 256, i % 256));
        assert!(store.hit(&key, &limits, t0()).await.unwrap().is_allowed());
    }
    // Checkpoints may already run while the hits are written (every 100 ms): wait for the
    // growth the whole batch brings, not for the first checkpoint.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size() <= before + 16 * 4096 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        size() > before + 16 * 4096,
        "database file {before} -> {} bytes: the logged pages were not checkpointed",
        size()
    );
    store.close().await;
}

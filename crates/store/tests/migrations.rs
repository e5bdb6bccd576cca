use latchkey_store::{Cipher, EncryptionKey, SqliteOptions, SqliteStore, StoreError};

use crate::support::{TempDir, cipher};

#[tokio::test]
async fn migrations_create_the_schema_and_pragmas_are_set() {
    let dir = TempDir::new("migrate");
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap();
    store.close().await;

    // Reopening applies nothing new and does not fail (migrations are recorded).
    let store = SqliteStore::open(&SqliteOptions::file(&path), cipher())
        .await
        .unwrap();
    store.close().await;

    let raw = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = raw
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>("name"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "audit_events",
            "audit_forwarding",
            "codes",
            "enrollments",
            "flows",
            "gateway_jobs",
            "gateways",
            "mirror_groups",
            "mirror_lease",
            "mirror_members",
            "mirror_profiles",
            "mirror_registrations",
            "mirror_sync",
            "mirror_user_keys",
            "mirror_users",
            "notice_outbox",
            "passkeys",
            "throttle_hits"
        ]
    );

    let applied: i64 = raw
        .query_row(
            "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = 1",
            [],
            |r| r.get("n"),
        )
        .unwrap();
    assert_eq!(applied, 9);

    // WAL is a property of the file: it persists after the store closed.
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn store_connections_enforce_foreign_keys() {
    // A code for a flow that does not exist must be refused by the database itself.
    let store = crate::support::memory_store().await;
    let err = latchkey_store::CodeStore::issue_code(
        &store,
        latchkey_store::NewCode {
            flow: latchkey_store::FlowId::new_random(),
            subject: crate::support::user(),
            method: "email".into(),
            code_hash: vec![1; 32],
            binding: vec![2; 32],
            lifetime: crate::support::mins(10),
            tries: 5,
        },
        crate::support::t0(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
}

#[tokio::test]
async fn open_picks_the_backend_from_the_url() {
    let dir = TempDir::new("url");
    let key = EncryptionKey::generate().unwrap();
    latchkey_store::open("sqlite::memory:", Cipher::new(&key))
        .await
        .unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    latchkey_store::open(&url, Cipher::new(&key)).await.unwrap();
    assert!(dir.path().join("x.db").exists());
    // A scheme no backend serves is named in the error; the password in the URL is not.
    let err = latchkey_store::open("mysql://u:hunter2@db/latchkey", Cipher::new(&key))
        .await
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("mysql") && !msg.contains("hunter2"), "{msg}");
    // postgres:// is the PostgreSQL backend (tests in postgres.rs); here only: a server that
    // cannot be reached fails the open, and the error does not echo the password either.
    let err = latchkey_store::open(
        "postgres://u:hunter2@127.0.0.1:1/latchkey",
        Cipher::new(&key),
    )
    .await
    .err()
    .unwrap();
    let msg = err.to_string();
    // It names the server (never the password) and the cause.
    assert!(
        matches!(err, StoreError::Unreachable { .. }) && !msg.contains("hunter2"),
        "{msg}"
    );
    assert!(msg.contains("u@127.0.0.1:1/latchkey"), "{msg}");
}

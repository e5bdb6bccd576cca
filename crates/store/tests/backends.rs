//! Runs each behavioural test on every backend: SQLite in memory, SQLite on disk (WAL, several
//! connections) and PostgreSQL. A test is an `async fn name(store: Arc<dyn Store>)`; listing it
//! in [`backend_tests!`] generates `sqlite_memory::name`, `sqlite_file::name` and
//! `postgres::name`, so a failure names its backend and `cargo test -p latchkey-store postgres`
//! runs one backend.
//!
//! PostgreSQL comes from `LATCHKEY_TEST_POSTGRES_URL` (tests/run starts a throwaway cluster and
//! sets it; by hand: `bash tests/postgres/pg.sh install up` then
//! `eval "$(bash tests/postgres/pg.sh env)"`). Without it the PostgreSQL tests fail, like the
//! Samba ones: a missing server is never a skip. Each test gets its own schema in that database
//! (dropped when the test passes), so tests run in parallel without seeing each other's rows.

use std::future::Future;
use std::sync::Arc;

use latchkey_store::{Cipher, PostgresOptions, PostgresStore, Store};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::support::{TempDir, cipher, file_store, memory_store};

/// The backends a behavioural test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    SqliteMemory,
    SqliteFile,
    Postgres,
}

/// The base URL of the test cluster; panics with what to do when it is not set.
pub fn postgres_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "LATCHKEY_TEST_POSTGRES_URL is not set: run tests/run (starts PostgreSQL), or \
             `bash tests/postgres/pg.sh install up` and `eval \"$(bash tests/postgres/pg.sh env)\"`"
        )
    })
}

/// A fresh, empty schema in the test database; `url` selects it (through `search_path`) for
/// every connection opened with it. [`PgSchema::drop_now`] removes it.
pub struct PgSchema {
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn create(tag: &str) -> PgSchema {
        let base = postgres_url();
        let name = format!(
            "t_{}_{}",
            tag.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(24)
                .collect::<String>()
                .to_ascii_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut conn = PgConnection::connect(&base)
            .await
            .expect("connect to LATCHKEY_TEST_POSTGRES_URL");
        // The name is built above from [a-z0-9_] only; identifiers cannot be bound.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        PgSchema { name, url }
    }

    /// A store on this schema: each call is another pool, i.e. another portal instance.
    pub async fn store(&self, cipher: Cipher) -> PostgresStore {
        PostgresStore::open(&PostgresOptions::new(&self.url), cipher)
            .await
            .expect("open the PostgreSQL store")
    }

    /// A plain connection on this schema, for looking under the store.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    pub async fn drop_now(self) {
        let mut conn = PgConnection::connect(&postgres_url()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
}

/// Opens a store on `backend`, runs `test` on it, and cleans up (the temp folder, the schema).
pub async fn run<F, Fut>(backend: Backend, tag: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    match backend {
        Backend::SqliteMemory => test(Arc::new(memory_store().await)).await,
        Backend::SqliteFile => {
            let (dir, store): (TempDir, _) = file_store(tag).await;
            test(Arc::new(store.clone())).await;
            store.close().await;
            drop(dir);
        }
        Backend::Postgres => {
            let schema = PgSchema::create(tag).await;
            let store = schema.store(cipher()).await;
            test(Arc::new(store.clone())).await;
            store.close().await;
            schema.drop_now().await;
        }
    }
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(Arc<dyn Store>)`.
/// Multi-threaded runtime for all: the race tests need it and the others do not mind.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::backends::run(
                        $crate::backends::Backend::SqliteMemory,
                        stringify!($name),
                        super::$name,
                    )
                    .await
                }
            )*
        }
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::backends::run(
                        $crate::backends::Backend::SqliteFile,
                        stringify!($name),
                        super::$name,
                    )
                    .await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::backends::run(
                        $crate::backends::Backend::Postgres,
                        stringify!($name),
                        super::$name,
                    )
                    .await
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

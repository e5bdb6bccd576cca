//! The PostgreSQL backend: for several portal instances behind a load balancer, which must share
//! every security-relevant counter (flows, codes, throttles, audit) and so enforce one limit.
//!
//! # How the atomic operations stay atomic across instances
//! The [`Store`] contract asks for check-and-record in one step. PostgreSQL runs each statement at
//! READ COMMITTED here, and the operations are written so that this level is enough:
//! - **Single conditional statements** (`take_code_attempt`, `consume_code`,
//!   `record_verification`, `mark_used`, `flow`, `update_flow`, `finish_job`): an
//!   `UPDATE ... WHERE <condition> RETURNING`. Two concurrent updates of one row queue on its row
//!   lock; the second re-evaluates its WHERE clause against the row the first committed
//!   (PostgreSQL's "EvalPlanQual" recheck), so a rotated token, a consumed code, a spent try or an
//!   accepted TOTP step no longer matches.
//! - **Decisions over several rows** (`hit`, `issue_code`, `activate_enrollment`): first a lock
//!   naming exactly what is decided about (a transaction-scoped advisory lock on the throttle key
//!   or on (subject, method), or `SELECT ... FOR UPDATE` on the pending row), then the reads and
//!   writes. Under READ COMMITTED each later statement takes a fresh snapshot, so it sees
//!   everything the previous lock holder committed. `hit` does this inside the `throttle_hit`
//!   function of the migration, so it costs one round trip. The lock goes with the transaction
//!   (commit, rollback or a dropped connection), so a crashed instance never leaves a key locked.
//! - **Queues** (`claim_job`): `FOR UPDATE SKIP LOCKED`, so concurrent claimants take different
//!   jobs and each job is handed out once.
//!
//! SERIALIZABLE would also be correct but makes callers retry on serialization failures under
//! exactly the load (many guesses at one key) where the store must stay fast.
//!
//! Only transaction-scoped advisory locks are used, which work through PgBouncer in transaction
//! mode (sqlx prepares its statements: that needs PgBouncer 1.21 or newer with
//! `max_prepared_statements` set).

mod audit;
mod codes;
mod enrollments;
mod flows;
mod forward;
mod gateway;
mod mirror;
mod outbox;
mod passkeys;
mod roles;
mod throttle;
mod transport;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use latchkey_types::Secret;
use sqlx::Connection as _;
use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use time::OffsetDateTime;
use transport::{check_transport, target};

use crate::crypto::Cipher;
use crate::error::{Result, StoreError};
// The value conversions (Unix milliseconds, object ids, JSON text) are the SQLite backend's: one
// definition, so both backends store the same values.
use crate::sqlite::ms;
use crate::store::PurgeReport;

/// The embedded PostgreSQL migrations: the same versions and meaning as the SQLite set.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "audit_search",
        include_str!("../../migrations/postgres/0002_audit_search.sql"),
    ),
    (
        3,
        "gateway",
        include_str!("../../migrations/postgres/0003_gateway.sql"),
    ),
    (
        4,
        "gateway_allowed_kinds",
        include_str!("../../migrations/postgres/0004_gateway_allowed_kinds.sql"),
    ),
    (
        5,
        "gateway_job_after_change",
        include_str!("../../migrations/postgres/0005_gateway_job_after_change.sql"),
    ),
    (
        6,
        "notice_outbox",
        include_str!("../../migrations/postgres/0006_notice_outbox.sql"),
    ),
    (
        7,
        "passkeys",
        include_str!("../../migrations/postgres/0007_passkeys.sql"),
    ),
    (
        8,
        "audit_forwarding",
        include_str!("../../migrations/postgres/0008_audit_forwarding.sql"),
    ),
    (
        9,
        "directory_mirror",
        include_str!("../../migrations/postgres/0009_directory_mirror.sql"),
    ),
];

fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    // Static text compiled into the binary, not built from input.
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    );
    // Several instances may start at once: sqlx takes an advisory lock around the migration run
    // so only one applies it (the others wait, then find it applied).
    migrator.set_locking(true);
    migrator
}

/// Connection settings for [`PostgresStore::open`].
#[derive(Clone)]
pub struct PostgresOptions {
    /// `postgres://user@host:port/database?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`.
    /// libpq's parameters apply (`sslmode`, `sslrootcert`, `application_name`, `options`, a
    /// `host=/run/postgresql` socket folder); `PG*` variables fill what the URL leaves out.
    pub url: String,
    /// The password when it is not in the URL (from a file or the environment). Wins over a
    /// password in the URL or in `PGPASSWORD`.
    pub password: Option<Secret<String>>,
    /// Connections per instance. The throttle and code operations hold one for a few
    /// milliseconds; the default suits one portal process.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for PostgresOptions {
    // The URL may carry a password: show only where it points.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// Sets the password (replacing any in the URL).
    pub fn password(mut self, password: Option<Secret<String>>) -> Self {
        self.password = password;
        self
    }
}

/// The URL without its password, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            // A URL that cannot take the placeholder is not shown at all: never its password.
            if u.password().is_some() && u.set_password(Some("redacted")).is_err() {
                return "(URL with a password)".into();
            }
            u.query_pairs()
                .any(|(k, _)| k == "password")
                .then(|| u.set_query(Some("[query redacted]")));
            u.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// [`Store`] on PostgreSQL through sqlx.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    cipher: Cipher,
    observer: crate::audit::ObserverSlot,
}

impl PostgresStore {
    /// Connects (failing at once when the server cannot be reached or refuses the login) and
    /// applies pending migrations.
    pub async fn open(options: &PostgresOptions, cipher: Cipher) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(&options.url)?;
        if let Some(password) = &options.password {
            connect = connect.password(password.expose());
        }
        check_transport(&connect)?;
        // One connection first, for an error that names the server and the cause (the pool's
        // own only says it timed out waiting for a connection).
        let target = target(&connect);
        let wait = options.acquire_timeout;
        match tokio::time::timeout(wait, PgConnection::connect_with(&connect)).await {
            Err(_) => {
                let cause = format!("no answer within {} s", wait.as_secs());
                return Err(StoreError::Unreachable { target, cause });
            }
            Ok(Err(e)) => {
                let cause = e.to_string();
                return Err(StoreError::Unreachable { target, cause });
            }
            Ok(Ok(first)) => {
                if let Err(e) = first.close().await {
                    tracing::debug!(error = %e, "closing the first PostgreSQL connection");
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        migrator().run(&pool).await?;
        Ok(Self {
            pool,
            cipher,
            observer: Default::default(),
        })
    }

    /// Closes every connection (waits for running queries).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---- the trait, delegating to the inherent async fns in the submodules -------------------------

impl PostgresStore {
    async fn purge_expired_impl(&self, now: OffsetDateTime) -> Result<PurgeReport> {
        let jobs = self.purge_old_jobs(now).await?;
        let now = ms(now);
        let flows = sqlx::query(
            "DELETE FROM flows WHERE expires_at_ms <= $1 OR last_seen_at_ms + idle_ms <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let codes = sqlx::query("DELETE FROM codes WHERE expires_at_ms <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let throttle_hits = sqlx::query("DELETE FROM throttle_hits WHERE expires_at_ms <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(PurgeReport {
            flows,
            codes,
            throttle_hits,
            jobs,
        })
    }
}

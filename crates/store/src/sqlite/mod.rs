//! The SQLite backend: one file in WAL mode (or an in-memory database for tests and demos).

mod audit;
mod codes;
mod enrollments;
mod flows;
mod gateway;
mod throttle;

pub(crate) use audit::day_from_number;

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use latchkey_types::ObjectId;
use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord};
use crate::code::{CodeAttempt, CodeId, IssuedCode, NewCode};
use crate::crypto::Cipher;
use crate::enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
use crate::error::{Result, StoreError};
use crate::flow::{Flow, FlowId, FlowToken, FlowUpdate, NewFlow};
use crate::gateway::{ClaimedJob, FinishOutcome, Gateway, Job, NewJob};
use crate::store::{PurgeReport, Store, StoreFuture};
use crate::throttle::{Limit, ThrottleDecision, ThrottleKey};

/// The embedded SQLite migrations, in order. Add a file under `migrations/sqlite/` and a line
/// here (and the matching PostgreSQL file once that backend exists).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "audit_search",
        include_str!("../../migrations/sqlite/0002_audit_search.sql"),
    ),
    (
        3,
        "gateway",
        include_str!("../../migrations/sqlite/0003_gateway.sql"),
    ),
    (
        4,
        "gateway_allowed_kinds",
        include_str!("../../migrations/sqlite/0004_gateway_allowed_kinds.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
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
    )
}

/// Write connections of a file database. Writes are single statements (or short IMMEDIATE
/// transactions), so the lock is held only while one runs; a connection, though, stays taken
/// until its caller's task has been polled again, which under load takes longer than the
/// statement. A second connection writes meanwhile; more would mostly collide in the busy
/// handler.
pub const WRITERS: u32 = 2;

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A file, created if missing (its folder must exist).
    File(PathBuf),
    /// A private in-memory database that lives as long as the store (tests, demo).
    Memory,
}

/// Connection settings for [`SqliteStore::open`].
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub location: SqliteLocation,
    /// Read connections of a file database (readers run in parallel under WAL). Writes go
    /// through a small pool of their own ([`WRITERS`]): SQLite allows one writer at a time, and
    /// queueing writers in the pool (fair, async) is much cheaper than letting many connections
    /// fight for the lock in SQLite's busy handler, which sleeps. Ignored for memory, which
    /// always uses one connection.
    pub max_connections: u32,
    /// How long a writer waits for the lock before failing with "database is locked".
    pub busy_timeout: Duration,
}

impl SqliteOptions {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            location: SqliteLocation::File(path.into()),
            // Reads are short point lookups; a few connections keep two cores busy, and each
            // keeps its own page cache (memory).
            max_connections: 2,
            busy_timeout: Duration::from_secs(5),
        }
    }
    pub fn memory() -> Self {
        Self {
            location: SqliteLocation::Memory,
            max_connections: 1,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// [`Store`] on SQLite through sqlx.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// The one connection that writes (every statement that changes something, and reads that
    /// must see the state a write is about to change, run here).
    pool: SqlitePool,
    /// Read-only connections for plain lookups (a file database; for memory the same pool).
    read: SqlitePool,
    cipher: Cipher,
}

impl SqliteStore {
    /// Opens (creating if needed) the database, sets WAL, `synchronous=NORMAL`, the busy timeout
    /// and foreign keys on every connection, and applies pending migrations.
    pub async fn open(options: &SqliteOptions, cipher: Cipher) -> Result<Self> {
        let (pool, read) = match &options.location {
            SqliteLocation::File(path) => {
                let connect = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(options.busy_timeout)
                    .foreign_keys(true);
                let writer = SqlitePoolOptions::new()
                    .max_connections(WRITERS)
                    .connect_with(connect.clone())
                    .await?;
                // Migrations first: the readers open a database that has its tables.
                migrator().run(&writer).await?;
                let readers = SqlitePoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .connect_with(connect.create_if_missing(false).read_only(true))
                    .await?;
                (writer, readers)
            }
            SqliteLocation::Memory => {
                // "sqlite::memory:" gives every pool a uniquely named shared-cache database.
                // One connection that never idles out: shared-cache locking reports
                // SQLITE_LOCKED (which the busy timeout does not cover), and closing the last
                // connection would drop the database.
                let connect = SqliteConnectOptions::from_str("sqlite::memory:")?
                    .busy_timeout(options.busy_timeout)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(connect)
                    .await?;
                migrator().run(&pool).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Self { pool, read, cipher })
    }

    /// Closes every connection (waits for running queries).
    pub async fn close(&self) {
        self.read.close().await;
        self.pool.close().await;
    }
}

// ---- value conversions shared by the submodules ------------------------------------------------

/// Unix milliseconds, the unit of every `_ms` column.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(v: i64, table: &'static str, column: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|_| StoreError::Corrupt { table, column })
}

pub(crate) fn opt_from_ms(
    v: Option<i64>,
    table: &'static str,
    column: &'static str,
) -> Result<Option<OffsetDateTime>> {
    v.map(|v| from_ms(v, table, column)).transpose()
}

pub(crate) fn object_id(s: &str, table: &'static str, column: &'static str) -> Result<ObjectId> {
    s.parse().map_err(|_| StoreError::Corrupt { table, column })
}

pub(crate) fn json(
    s: &str,
    table: &'static str,
    column: &'static str,
) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|_| StoreError::Corrupt { table, column })
}

// ---- the trait, delegating to the inherent async fns in the submodules -------------------------

impl Store for SqliteStore {
    fn create_flow(&self, new: NewFlow, now: OffsetDateTime) -> StoreFuture<'_, (FlowToken, Flow)> {
        Box::pin(self.create_flow_impl(new, now))
    }
    fn flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(self.flow_impl(token, now))
    }
    fn update_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        update: FlowUpdate,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(self.update_flow_impl(token, update, now))
    }
    fn record_verification<'a>(
        &'a self,
        token: &'a FlowToken,
        method: &'a str,
        next_step: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<(FlowToken, Flow)>> {
        Box::pin(self.record_verification_impl(token, method, next_step, now))
    }
    fn end_flow<'a>(&'a self, token: &'a FlowToken) -> StoreFuture<'a, bool> {
        Box::pin(self.end_flow_impl(token))
    }
    fn end_flows_of<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, u64> {
        Box::pin(self.end_flows_of_impl(subject))
    }

    fn issue_code(&self, new: NewCode, now: OffsetDateTime) -> StoreFuture<'_, IssuedCode> {
        Box::pin(self.issue_code_impl(new, now))
    }
    fn take_code_attempt<'a>(
        &'a self,
        flow: &'a FlowId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<CodeAttempt>> {
        Box::pin(self.take_code_attempt_impl(flow, method, now))
    }
    fn consume_code(&self, id: CodeId, now: OffsetDateTime) -> StoreFuture<'_, bool> {
        Box::pin(self.consume_code_impl(id, now))
    }
    fn void_codes_of<'a>(
        &'a self,
        subject: &'a ObjectId,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.void_codes_of_impl(subject, now))
    }

    fn hit<'a>(
        &'a self,
        key: &'a ThrottleKey,
        limits: &'a [Limit],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ThrottleDecision> {
        Box::pin(self.hit_impl(key, limits, now))
    }
    fn reset<'a>(&'a self, key: &'a ThrottleKey) -> StoreFuture<'a, ()> {
        Box::pin(self.reset_impl(key))
    }

    fn stage_enrollment(&self, new: NewEnrollment, now: OffsetDateTime) -> StoreFuture<'_, ()> {
        Box::pin(self.stage_enrollment_impl(new, now))
    }
    fn activate_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.activate_enrollment_impl(subject, method, now))
    }
    fn reconfirm_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.reconfirm_enrollment_impl(subject, method, now))
    }
    fn enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        state: EnrollmentState,
    ) -> StoreFuture<'a, Option<Enrollment>> {
        Box::pin(self.enrollment_impl(subject, method, state))
    }
    fn enrollments<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Enrollment>> {
        Box::pin(self.enrollments_impl(subject))
    }
    fn enrolled_methods<'a>(
        &'a self,
        subjects: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<EnrolledMethod>> {
        Box::pin(self.enrolled_methods_impl(subjects))
    }
    fn remove_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.remove_enrollment_impl(subject, method))
    }
    fn mark_used<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        step: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.mark_used_impl(subject, method, step, now))
    }

    fn append_audit<'a>(&'a self, event: &'a AuditEvent) -> StoreFuture<'a, AuditId> {
        Box::pin(self.append_audit_impl(event))
    }
    fn audit_events<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>> {
        Box::pin(self.audit_events_impl(query))
    }
    fn audit_daily_counts<'a>(
        &'a self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        event_types: &'a [&'a str],
    ) -> StoreFuture<'a, Vec<AuditDayCount>> {
        Box::pin(self.audit_daily_counts_impl(since, until, event_types))
    }

    fn register_gateway<'a>(
        &'a self,
        name: &'a str,
        credential_hash: &'a [u8],
        allowed_kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Gateway> {
        Box::pin(self.register_gateway_impl(name, credential_hash, allowed_kinds, now))
    }
    fn authenticate_gateway<'a>(
        &'a self,
        id: &'a str,
        credential_hash: &'a [u8],
    ) -> StoreFuture<'a, Option<Gateway>> {
        Box::pin(self.authenticate_gateway_impl(id, credential_hash))
    }
    fn gateways(&self) -> StoreFuture<'_, Vec<Gateway>> {
        Box::pin(self.gateways_impl())
    }
    fn revoke_gateway<'a>(&'a self, name: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool> {
        Box::pin(self.revoke_gateway_impl(name, now))
    }
    fn gateway_seen<'a>(
        &'a self,
        id: &'a str,
        capabilities: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.gateway_seen_impl(id, capabilities, now))
    }
    fn enqueue_job(&self, new: NewJob, now: OffsetDateTime) -> StoreFuture<'_, Job> {
        Box::pin(self.enqueue_job_impl(new, now))
    }
    fn claim_job<'a>(
        &'a self,
        gateway_id: &'a str,
        kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<ClaimedJob>> {
        Box::pin(self.claim_job_impl(gateway_id, kinds, now))
    }
    fn finish_job<'a>(
        &'a self,
        id: &'a str,
        gateway_id: &'a str,
        succeeded: bool,
        result: &'a serde_json::Value,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, FinishOutcome> {
        Box::pin(self.finish_job_impl(id, gateway_id, succeeded, result, now))
    }
    fn job<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, Option<Job>> {
        Box::pin(self.job_impl(id, now))
    }
    fn expire_jobs(&self, now: OffsetDateTime) -> StoreFuture<'_, u64> {
        Box::pin(self.expire_jobs_impl(now))
    }

    fn purge_expired(&self, now: OffsetDateTime) -> StoreFuture<'_, PurgeReport> {
        Box::pin(self.purge_expired_impl(now))
    }
}

impl SqliteStore {
    async fn purge_expired_impl(&self, now: OffsetDateTime) -> Result<PurgeReport> {
        let now = ms(now);
        let flows = sqlx::query(
            "DELETE FROM flows WHERE expires_at_ms <= ?1 OR last_seen_at_ms + idle_ms <= ?1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let codes = sqlx::query("DELETE FROM codes WHERE expires_at_ms <= ?1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let throttle_hits = sqlx::query("DELETE FROM throttle_hits WHERE expires_at_ms <= ?1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(PurgeReport {
            flows,
            codes,
            throttle_hits,
        })
    }
}

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
mod outbox;
mod passkeys;
mod throttle;
mod transport;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use latchkey_types::{ObjectId, Secret};
use sqlx::Connection as _;
use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use time::OffsetDateTime;
use transport::{check_transport, target};

use crate::audit::{AuditDayCount, AuditEvent, AuditId, AuditQuery, AuditRecord};
use crate::code::{CodeAttempt, CodeId, IssuedCode, NewCode};
use crate::crypto::Cipher;
use crate::enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
use crate::error::{Result, StoreError};
use crate::flow::{Flow, FlowId, FlowStep, FlowToken, FlowUpdate, NewFlow, Verification};
use crate::gateway::{ClaimedJob, FinishOutcome, Gateway, Job, NewJob};
use crate::outbox::{NewNotice, NoticeOutcome, QueuedNotice};
// The value conversions (Unix milliseconds, object ids, JSON text) are the SQLite backend's: one
// definition, so both backends store the same values.
use crate::sqlite::ms;
use crate::store::{
    AuditStore, CodeStore, EnrollmentStore, FlowStore, GatewayStore, NoticeStore, PurgeReport,
    Store, StoreFuture, ThrottleStore,
};
use crate::throttle::{Limit, ThrottleDecision, ThrottleKey};

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

impl Store for PostgresStore {
    fn purge_expired(&self, now: OffsetDateTime) -> StoreFuture<'_, PurgeReport> {
        Box::pin(
            self.observer
                .timed("purge_expired", self.purge_expired_impl(now)),
        )
    }

    fn observe_calls(&self, observer: std::sync::Arc<dyn crate::audit::CallObserver>) -> bool {
        self.observer.set_calls(observer)
    }
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.observer.timed("ping", async move {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        }))
    }
}

impl FlowStore for PostgresStore {
    fn create_flow(&self, new: NewFlow, now: OffsetDateTime) -> StoreFuture<'_, (FlowToken, Flow)> {
        Box::pin(
            self.observer
                .timed("create_flow", self.create_flow_impl(new, now)),
        )
    }
    fn flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(self.observer.timed("flow", self.flow_impl(token, now)))
    }
    fn update_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        update: FlowUpdate,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(
            self.observer
                .timed("update_flow", self.update_flow_impl(token, update, now)),
        )
    }
    fn record_verification<'a>(
        &'a self,
        token: &'a FlowToken,
        proof: Verification,
        next_step: FlowStep,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<(FlowToken, Flow)>> {
        Box::pin(self.observer.timed(
            "record_verification",
            self.record_verification_impl(token, proof, next_step, now),
        ))
    }
    fn claim_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(
            self.observer
                .timed("claim_flow", self.claim_flow_impl(token, now)),
        )
    }
    fn release_flow<'a>(
        &'a self,
        token: &'a FlowToken,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("release_flow", self.release_flow_impl(token, now)),
        )
    }
    fn end_flow<'a>(&'a self, token: &'a FlowToken) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed("end_flow", self.end_flow_impl(token)))
    }
    fn end_flows_of<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, u64> {
        Box::pin(
            self.observer
                .timed("end_flows_of", self.end_flows_of_impl(subject)),
        )
    }
}

impl CodeStore for PostgresStore {
    fn issue_code(&self, new: NewCode, now: OffsetDateTime) -> StoreFuture<'_, IssuedCode> {
        Box::pin(
            self.observer
                .timed("issue_code", self.issue_code_impl(new, now)),
        )
    }
    fn take_code_attempt<'a>(
        &'a self,
        flow: &'a FlowId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<CodeAttempt>> {
        Box::pin(self.observer.timed(
            "take_code_attempt",
            self.take_code_attempt_impl(flow, method, now),
        ))
    }
    fn consume_code(&self, id: CodeId, now: OffsetDateTime) -> StoreFuture<'_, bool> {
        Box::pin(
            self.observer
                .timed("consume_code", self.consume_code_impl(id, now)),
        )
    }
    fn void_codes_of<'a>(
        &'a self,
        subject: &'a ObjectId,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, u64> {
        Box::pin(
            self.observer
                .timed("void_codes_of", self.void_codes_of_impl(subject, now)),
        )
    }
}

impl ThrottleStore for PostgresStore {
    fn hit<'a>(
        &'a self,
        key: &'a ThrottleKey,
        limits: &'a [Limit],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ThrottleDecision> {
        Box::pin(self.observer.timed("hit", self.hit_impl(key, limits, now)))
    }
    fn reset<'a>(&'a self, key: &'a ThrottleKey) -> StoreFuture<'a, ()> {
        Box::pin(self.observer.timed("reset", self.reset_impl(key)))
    }
}

impl EnrollmentStore for PostgresStore {
    fn stage_enrollment(&self, new: NewEnrollment, now: OffsetDateTime) -> StoreFuture<'_, ()> {
        Box::pin(
            self.observer
                .timed("stage_enrollment", self.stage_enrollment_impl(new, now)),
        )
    }
    fn activate_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed(
            "activate_enrollment",
            self.activate_enrollment_impl(subject, method, now),
        ))
    }
    fn reconfirm_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed(
            "reconfirm_enrollment",
            self.reconfirm_enrollment_impl(subject, method, now),
        ))
    }
    fn enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        state: EnrollmentState,
    ) -> StoreFuture<'a, Option<Enrollment>> {
        Box::pin(
            self.observer
                .timed("enrollment", self.enrollment_impl(subject, method, state)),
        )
    }
    fn enrollments<'a>(&'a self, subject: &'a ObjectId) -> StoreFuture<'a, Vec<Enrollment>> {
        Box::pin(
            self.observer
                .timed("enrollments", self.enrollments_impl(subject)),
        )
    }
    fn enrolled_methods<'a>(
        &'a self,
        subjects: &'a [ObjectId],
    ) -> StoreFuture<'a, Vec<EnrolledMethod>> {
        Box::pin(
            self.observer
                .timed("enrolled_methods", self.enrolled_methods_impl(subjects)),
        )
    }
    fn remove_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.observer.timed(
            "remove_enrollment",
            self.remove_enrollment_impl(subject, method),
        ))
    }
    fn remove_pending_enrollment<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
    ) -> StoreFuture<'a, u64> {
        Box::pin(self.observer.timed(
            "remove_pending_enrollment",
            self.remove_pending_enrollment_impl(subject, method),
        ))
    }
    fn mark_used<'a>(
        &'a self,
        subject: &'a ObjectId,
        method: &'a str,
        step: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("mark_used", self.mark_used_impl(subject, method, step, now)),
        )
    }
}

impl AuditStore for PostgresStore {
    fn append_audit<'a>(&'a self, event: &'a AuditEvent) -> StoreFuture<'a, AuditId> {
        Box::pin(self.observer.timed("append_audit", async move {
            let id = self.append_audit_impl(event).await?;
            self.observer.appended(event);
            Ok(id)
        }))
    }
    fn observe_audit(&self, observer: std::sync::Arc<dyn crate::audit::AuditObserver>) -> bool {
        self.observer.set(observer)
    }
    fn audit_events<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>> {
        Box::pin(
            self.observer
                .timed("audit_events", self.audit_events_impl(query)),
        )
    }
    fn audit_daily_counts<'a>(
        &'a self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        event_types: &'a [&'a str],
    ) -> StoreFuture<'a, Vec<AuditDayCount>> {
        Box::pin(self.observer.timed(
            "audit_daily_counts",
            self.audit_daily_counts_impl(since, until, event_types),
        ))
    }
}

impl GatewayStore for PostgresStore {
    fn register_gateway<'a>(
        &'a self,
        name: &'a str,
        credential_hash: &'a [u8],
        allowed_kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Gateway> {
        Box::pin(self.observer.timed(
            "register_gateway",
            self.register_gateway_impl(name, credential_hash, allowed_kinds, now),
        ))
    }
    fn authenticate_gateway<'a>(
        &'a self,
        id: &'a str,
        credential_hash: &'a [u8],
    ) -> StoreFuture<'a, Option<Gateway>> {
        Box::pin(self.observer.timed(
            "authenticate_gateway",
            self.authenticate_gateway_impl(id, credential_hash),
        ))
    }
    fn gateways(&self) -> StoreFuture<'_, Vec<Gateway>> {
        Box::pin(self.observer.timed("gateways", self.gateways_impl()))
    }
    fn revoke_gateway<'a>(&'a self, name: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("revoke_gateway", self.revoke_gateway_impl(name, now)),
        )
    }
    fn gateway_seen<'a>(
        &'a self,
        id: &'a str,
        capabilities: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.observer.timed(
            "gateway_seen",
            self.gateway_seen_impl(id, capabilities, now),
        ))
    }
    fn enqueue_job(&self, new: NewJob, now: OffsetDateTime) -> StoreFuture<'_, Job> {
        Box::pin(
            self.observer
                .timed("enqueue_job", self.enqueue_job_impl(new, now)),
        )
    }
    fn claim_job<'a>(
        &'a self,
        gateway_id: &'a str,
        kinds: &'a [String],
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<ClaimedJob>> {
        Box::pin(
            self.observer
                .timed("claim_job", self.claim_job_impl(gateway_id, kinds, now)),
        )
    }
    fn finish_job<'a>(
        &'a self,
        id: &'a str,
        gateway_id: &'a str,
        succeeded: bool,
        result: &'a serde_json::Value,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, FinishOutcome> {
        Box::pin(self.observer.timed(
            "finish_job",
            self.finish_job_impl(id, gateway_id, succeeded, result, now),
        ))
    }
    fn job<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, Option<Job>> {
        Box::pin(self.observer.timed("job", self.job_impl(id, now)))
    }
    fn job_counts(&self) -> StoreFuture<'_, Vec<crate::gateway::JobCount>> {
        Box::pin(self.observer.timed("job_counts", self.job_counts_impl()))
    }
    fn expire_jobs(&self, now: OffsetDateTime) -> StoreFuture<'_, u64> {
        Box::pin(
            self.observer
                .timed("expire_jobs", self.expire_jobs_impl(now)),
        )
    }
    fn claim_after_change<'a>(&'a self, id: &'a str, now: OffsetDateTime) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("claim_after_change", self.claim_after_change_impl(id, now)),
        )
    }
    fn set_gateway_kinds<'a>(
        &'a self,
        name: &'a str,
        allowed_kinds: &'a [String],
    ) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(self.observer.timed(
            "set_gateway_kinds",
            self.set_gateway_kinds_impl(name, allowed_kinds),
        ))
    }
}

impl NoticeStore for PostgresStore {
    fn enqueue_notice(&self, new: NewNotice, now: OffsetDateTime) -> StoreFuture<'_, String> {
        Box::pin(
            self.observer
                .timed("enqueue_notice", self.enqueue_notice_impl(new, now)),
        )
    }
    fn claim_notices(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        max: u32,
    ) -> StoreFuture<'_, Vec<QueuedNotice>> {
        Box::pin(
            self.observer
                .timed("claim_notices", self.claim_notices_impl(now, lease, max)),
        )
    }
    fn finish_notice<'a>(&'a self, id: &'a str, outcome: NoticeOutcome) -> StoreFuture<'a, bool> {
        Box::pin(
            self.observer
                .timed("finish_notice", self.finish_notice_impl(id, outcome)),
        )
    }
}

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

//! Reading rows, once for both backends. The SQL differs between SQLite and PostgreSQL; what a
//! row means does not: each table's typed value is built here from a row through [`Columns`],
//! which both backends' rows implement. A value a row cannot hold (an unknown step, a subject
//! that is no object id, JSON that does not parse) is [`StoreError::Corrupt`], naming the table
//! and column.

use latchkey_types::ObjectId;
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditId, AuditRecord, Outcome};
use crate::crypto::{Cipher, aad};
use crate::enrollment::{Enrollment, EnrollmentState};
use crate::error::{Result, StoreError};
use crate::flow::{Flow, FlowId, FlowPurpose, FlowStep, Verification};
use crate::gateway::{Gateway, Job, JobKind, JobState};
use crate::outbox::NoticeRow;
use crate::passkey::{Passkey, parse_aaguid};

/// The column reads the decoders need, by column name.
pub(crate) trait Columns {
    fn text(&self, col: &'static str) -> Result<String>;
    fn opt_text(&self, col: &'static str) -> Result<Option<String>>;
    fn int(&self, col: &'static str) -> Result<i64>;
    fn opt_int(&self, col: &'static str) -> Result<Option<i64>>;
    /// A small counter (PostgreSQL `INTEGER`, SQLite `INTEGER`).
    fn count(&self, col: &'static str) -> Result<i64>;
    fn blob(&self, col: &'static str) -> Result<Vec<u8>>;
    fn opt_blob(&self, col: &'static str) -> Result<Option<Vec<u8>>>;
    /// A yes/no column (PostgreSQL `BOOLEAN`, SQLite `INTEGER` 0/1).
    fn flag(&self, col: &'static str) -> Result<bool>;
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, col: &'static str) -> Result<String> {
        Ok(self.get(col)?)
    }
    fn opt_text(&self, col: &'static str) -> Result<Option<String>> {
        Ok(self.get(col)?)
    }
    fn int(&self, col: &'static str) -> Result<i64> {
        Ok(self.get(col)?)
    }
    fn opt_int(&self, col: &'static str) -> Result<Option<i64>> {
        Ok(self.get(col)?)
    }
    fn count(&self, col: &'static str) -> Result<i64> {
        Ok(self.get(col)?)
    }
    fn blob(&self, col: &'static str) -> Result<Vec<u8>> {
        Ok(self.get(col)?)
    }
    fn opt_blob(&self, col: &'static str) -> Result<Option<Vec<u8>>> {
        Ok(self.get(col)?)
    }
    fn flag(&self, col: &'static str) -> Result<bool> {
        Ok(self.get(col)?)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn text(&self, col: &'static str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &'static str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &'static str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &'static str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn count(&self, col: &'static str) -> Result<i64> {
        Ok(i64::from(self.try_get::<i32, _>(col)?))
    }
    fn blob(&self, col: &'static str) -> Result<Vec<u8>> {
        Ok(self.try_get(col)?)
    }
    fn opt_blob(&self, col: &'static str) -> Result<Option<Vec<u8>>> {
        Ok(self.try_get(col)?)
    }
    fn flag(&self, col: &'static str) -> Result<bool> {
        Ok(self.try_get(col)?)
    }
}

// ---- value conversions ------------------------------------------------------------------------

/// Unix milliseconds, the unit of every `_ms` column.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn dur_ms(d: std::time::Duration) -> i64 {
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

/// A JSON column as any type it holds.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    s: &str,
    table: &'static str,
    column: &'static str,
) -> Result<T> {
    serde_json::from_str(s).map_err(|_| StoreError::Corrupt { table, column })
}

/// A column holding one of a type's stored names.
fn named<T>(
    s: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    table: &'static str,
    column: &'static str,
) -> Result<T> {
    parse(s).ok_or(StoreError::Corrupt { table, column })
}

// ---- the tables -------------------------------------------------------------------------------

pub(crate) fn flow(row: &impl Columns) -> Result<Flow> {
    const T: &str = "flows";
    let verified: Vec<String> = json(&row.text("verified")?, T, "verified")?;
    let idle_ms = u64::try_from(row.int("idle_ms")?).map_err(|_| StoreError::Corrupt {
        table: T,
        column: "idle_ms",
    })?;
    Ok(Flow {
        id: FlowId::from(uuid::Uuid::parse_str(&row.text("id")?).map_err(|_| {
            StoreError::Corrupt {
                table: T,
                column: "id",
            }
        })?),
        subject: object_id(&row.text("subject")?, T, "subject")?,
        purpose: named(&row.text("purpose")?, FlowPurpose::parse, T, "purpose")?,
        step: named(&row.text("step")?, FlowStep::parse, T, "step")?,
        verified: verified
            .iter()
            .map(|v| named(v, Verification::parse, T, "verified"))
            .collect::<Result<_>>()?,
        data: json(&row.text("data")?, T, "data")?,
        created_at: from_ms(row.int("created_at_ms")?, T, "created_at_ms")?,
        last_seen_at: from_ms(row.int("last_seen_at_ms")?, T, "last_seen_at_ms")?,
        expires_at: from_ms(row.int("expires_at_ms")?, T, "expires_at_ms")?,
        idle_timeout: std::time::Duration::from_millis(idle_ms),
    })
}

pub(crate) fn gateway(row: &impl Columns) -> Result<Gateway> {
    const T: &str = "gateways";
    Ok(Gateway {
        id: row.text("id")?,
        name: row.text("name")?,
        created_at: from_ms(row.int("created_at_ms")?, T, "created_at_ms")?,
        last_seen_at: opt_from_ms(row.opt_int("last_seen_at_ms")?, T, "last_seen_at_ms")?,
        capabilities: json(&row.text("capabilities")?, T, "capabilities")?,
        allowed_kinds: json(&row.text("allowed_kinds")?, T, "allowed_kinds")?,
        revoked_at: opt_from_ms(row.opt_int("revoked_at_ms")?, T, "revoked_at_ms")?,
    })
}

/// A job as of `now`: a queued job past its deadline reads as expired.
pub(crate) fn job(row: &impl Columns, now: OffsetDateTime) -> Result<Job> {
    const T: &str = "gateway_jobs";
    let mut state = named(&row.text("state")?, JobState::parse, T, "state")?;
    let expires_at = from_ms(row.int("expires_at_ms")?, T, "expires_at_ms")?;
    if state == JobState::Queued && expires_at <= now {
        state = JobState::Expired;
    }
    Ok(Job {
        id: row.text("id")?,
        kind: named(&row.text("kind")?, JobKind::parse, T, "kind")?,
        subject: object_id(&row.text("subject")?, T, "subject")?,
        target: json(&row.text("target")?, T, "target")?,
        correlation_id: row.text("correlation_id")?,
        state,
        gateway_id: row.opt_text("gateway_id")?,
        created_at: from_ms(row.int("created_at_ms")?, T, "created_at_ms")?,
        expires_at,
        claimed_at: opt_from_ms(row.opt_int("claimed_at_ms")?, T, "claimed_at_ms")?,
        finished_at: opt_from_ms(row.opt_int("finished_at_ms")?, T, "finished_at_ms")?,
        result: row
            .opt_text("result")?
            .map(|s| json(&s, T, "result"))
            .transpose()?,
    })
}

pub(crate) fn audit_record(row: &impl Columns) -> Result<AuditRecord> {
    const T: &str = "audit_events";
    Ok(AuditRecord {
        id: AuditId(row.int("id")?),
        event: AuditEvent {
            at: from_ms(row.int("at_ms")?, T, "at_ms")?,
            correlation_id: row.text("correlation_id")?,
            actor: row.text("actor")?,
            subject: row
                .opt_text("subject")?
                .map(|s| object_id(&s, T, "subject"))
                .transpose()?,
            event_type: row.text("event_type")?,
            method: row.opt_text("method")?,
            outcome: named(&row.text("outcome")?, Outcome::parse, T, "outcome")?,
            reason: row.opt_text("reason")?,
            details: json(&row.text("details")?, T, "details")?,
        },
    })
}

pub(crate) fn notice(row: &impl Columns) -> Result<NoticeRow> {
    Ok(NoticeRow {
        id: row.text("id")?,
        subject: row.opt_text("subject")?,
        correlation_id: row.text("correlation_id")?,
        kind: row.text("kind")?,
        payload: row.blob("payload")?,
        attempts: row.count("attempts")?,
        created_at_ms: row.int("created_at_ms")?,
    })
}

/// An enrollment, its secret opened with `cipher` (sealed bound to the subject and method).
pub(crate) fn enrollment(row: &impl Columns, cipher: &Cipher) -> Result<Enrollment> {
    const T: &str = "enrollments";
    const WHAT: &str = "enrollment secret";
    let subject = object_id(&row.text("subject")?, T, "subject")?;
    let method = row.text("method")?;
    let state = named(&row.text("state")?, EnrollmentState::parse, T, "state")?;
    let secret = row
        .opt_blob("secret")?
        .map(|blob| cipher.open(&blob, &aad(T, &subject, &method), WHAT))
        .transpose()?;
    Ok(Enrollment {
        data: json(&row.text("data")?, T, "data")?,
        created_at: from_ms(row.int("created_at_ms")?, T, "created_at_ms")?,
        updated_at: from_ms(row.int("updated_at_ms")?, T, "updated_at_ms")?,
        confirmed_at: opt_from_ms(row.opt_int("confirmed_at_ms")?, T, "confirmed_at_ms")?,
        last_used_at: opt_from_ms(row.opt_int("last_used_at_ms")?, T, "last_used_at_ms")?,
        last_used_step: row.opt_int("last_used_step")?,
        subject,
        method,
        state,
        secret,
    })
}

/// A registered passkey.
pub(crate) fn passkey(row: &impl Columns) -> Result<Passkey> {
    const T: &str = crate::passkey::TABLE;
    Ok(Passkey {
        subject: object_id(&row.text("subject")?, T, "subject")?,
        credential_id: row.blob("credential_id")?,
        user_handle: row.blob("user_handle")?,
        name: row.text("name")?,
        public_key: row.blob("public_key")?,
        sign_count: u32::try_from(row.int("sign_count")?).map_err(|_| StoreError::Corrupt {
            table: T,
            column: "sign_count",
        })?,
        aaguid: named(&row.text("aaguid")?, parse_aaguid, T, "aaguid")?,
        backup_eligible: row.flag("backup_eligible")?,
        backed_up: row.flag("backed_up")?,
        created_at: from_ms(row.int("created_at_ms")?, T, "created_at_ms")?,
        last_used_at: opt_from_ms(row.opt_int("last_used_at_ms")?, T, "last_used_at_ms")?,
    })
}

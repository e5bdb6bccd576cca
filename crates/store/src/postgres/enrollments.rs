//! Enrollments on PostgreSQL. Secrets are sealed before the INSERT and opened after the SELECT,
//! with associated data naming (table, subject, method): see [`crate::crypto::aad`].

use latchkey_types::ObjectId;
use sqlx::Row;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::crypto::aad;
use crate::enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
use crate::error::{Result, StoreError};
use crate::sqlite::{ms, object_id, opt_from_ms};

const T: &str = "enrollments";
/// Subjects per query of [`PostgresStore::enrolled_methods_impl`].
const SUBJECTS_PER_QUERY: usize = 1000;
const WHAT: &str = "enrollment secret";

macro_rules! enrollment_cols {
    () => {
        "subject, method, state, data::text AS data, secret, created_at_ms, updated_at_ms, \
         confirmed_at_ms, last_used_at_ms, last_used_step"
    };
}

impl PostgresStore {
    pub(super) async fn stage_enrollment_impl(
        &self,
        new: NewEnrollment,
        now: OffsetDateTime,
    ) -> Result<()> {
        let secret = new
            .secret
            .as_ref()
            .map(|s| {
                self.cipher
                    .seal(s.expose(), &aad(T, &new.subject, &new.method), WHAT)
            })
            .transpose()?;
        // INSERT ... ON CONFLICT is atomic: two concurrent stagings leave exactly one pending row.
        sqlx::query(
            "INSERT INTO enrollments (subject, method, state, data, secret, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'pending', $3::jsonb, $4, $5, $5) \
             ON CONFLICT (subject, method, state) DO UPDATE SET data = excluded.data, \
             secret = excluded.secret, created_at_ms = excluded.created_at_ms, \
             updated_at_ms = excluded.updated_at_ms, confirmed_at_ms = NULL, \
             last_used_at_ms = NULL, last_used_step = NULL",
        )
        .bind(new.subject.to_string())
        .bind(&new.method)
        .bind(new.data.to_string())
        .bind(secret)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn activate_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let subject = subject.to_string();
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE locks the pending row: a concurrent activation waits, then re-checks
        // `state = 'pending'` on the committed row (now active) and finds nothing to do.
        let pending = sqlx::query(
            "SELECT 1 FROM enrollments WHERE subject = $1 AND method = $2 AND state = 'pending' \
             FOR UPDATE",
        )
        .bind(&subject)
        .bind(method)
        .fetch_optional(&mut *tx)
        .await?;
        if pending.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM enrollments WHERE subject = $1 AND method = $2 AND state = 'active'",
        )
        .bind(&subject)
        .bind(method)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE enrollments SET state = 'active', confirmed_at_ms = $3, updated_at_ms = $3 \
             WHERE subject = $1 AND method = $2 AND state = 'pending'",
        )
        .bind(&subject)
        .bind(method)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn reconfirm_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE enrollments SET confirmed_at_ms = $3, updated_at_ms = $3 \
             WHERE subject = $1 AND method = $2 AND state = 'active'",
        )
        .bind(subject.to_string())
        .bind(method)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        state: EnrollmentState,
    ) -> Result<Option<Enrollment>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            enrollment_cols!(),
            " FROM enrollments WHERE subject = $1 AND method = $2 AND state = $3"
        ))
        .bind(subject.to_string())
        .bind(method)
        .bind(state.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| crate::rows::enrollment(r, &self.cipher))
            .transpose()
    }

    pub(super) async fn enrollments_impl(&self, subject: &ObjectId) -> Result<Vec<Enrollment>> {
        // COLLATE "C": byte order, as SQLite sorts, whatever the database's collation.
        let rows = sqlx::query(concat!(
            "SELECT ",
            enrollment_cols!(),
            " FROM enrollments WHERE subject = $1 ORDER BY method COLLATE \"C\", state COLLATE \"C\""
        ))
        .bind(subject.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| crate::rows::enrollment(r, &self.cipher))
            .collect()
    }

    pub(super) async fn enrolled_methods_impl(
        &self,
        subjects: &[ObjectId],
    ) -> Result<Vec<EnrolledMethod>> {
        let mut out = Vec::new();
        // One array parameter per query; chunks keep each statement small.
        for chunk in subjects.chunks(SUBJECTS_PER_QUERY) {
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            // Passkeys count as one active method, confirmed when the first was registered.
            let rows = sqlx::query(
                "SELECT subject, method, state, confirmed_at_ms FROM enrollments \
                 WHERE subject = ANY($1) \
                 UNION ALL SELECT subject, 'passkey' AS method, 'active' AS state, \
                 MIN(created_at_ms) AS confirmed_at_ms FROM passkeys \
                 WHERE subject = ANY($1) GROUP BY subject",
            )
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
            for row in &rows {
                out.push(EnrolledMethod {
                    subject: object_id(&row.try_get::<String, _>("subject")?, T, "subject")?,
                    method: row.try_get("method")?,
                    state: EnrollmentState::parse(&row.try_get::<String, _>("state")?).ok_or(
                        StoreError::Corrupt {
                            table: T,
                            column: "state",
                        },
                    )?,
                    confirmed_at: opt_from_ms(
                        row.try_get("confirmed_at_ms")?,
                        T,
                        "confirmed_at_ms",
                    )?,
                });
            }
        }
        // Byte order, as SQLite sorts (see enrollments_impl).
        out.sort_by(|a, b| {
            (a.subject, &a.method, a.state.as_str()).cmp(&(b.subject, &b.method, b.state.as_str()))
        });
        Ok(out)
    }

    pub(super) async fn remove_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
    ) -> Result<u64> {
        let done = sqlx::query("DELETE FROM enrollments WHERE subject = $1 AND method = $2")
            .bind(subject.to_string())
            .bind(method)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn remove_pending_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
    ) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM enrollments WHERE subject = $1 AND method = $2 AND state = 'pending'",
        )
        .bind(subject.to_string())
        .bind(method)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(super) async fn mark_used_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        step: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<bool> {
        // With a step: one conditional UPDATE. A concurrent use of the same TOTP step waits for
        // the row lock and re-checks `last_used_step < $4` against the committed step: replay.
        let done = sqlx::query(
            "UPDATE enrollments SET last_used_at_ms = $3, \
             last_used_step = COALESCE($4, last_used_step) \
             WHERE subject = $1 AND method = $2 AND state = 'active' \
             AND ($4::bigint IS NULL OR last_used_step IS NULL OR last_used_step < $4)",
        )
        .bind(subject.to_string())
        .bind(method)
        .bind(ms(now))
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

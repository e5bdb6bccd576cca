//! Enrollments on SQLite. Secrets are sealed before the INSERT and opened after the SELECT, with
//! associated data naming (table, subject, method): see [`crate::crypto::aad`].

use latchkey_types::ObjectId;
use rusqlite::types::Value;
use rusqlite::{TransactionBehavior, params};
use time::OffsetDateTime;

use super::{SqliteStore, ms, object_id, opt_from_ms};
use crate::crypto::aad;
use crate::enrollment::{EnrolledMethod, Enrollment, EnrollmentState, NewEnrollment};
use crate::error::{Result, StoreError};

const T: &str = "enrollments";
const WHAT: &str = "enrollment secret";
/// Subjects per query of [`SqliteStore::enrolled_methods_impl`].
const SUBJECTS_PER_QUERY: usize = 500;

macro_rules! enrollment_cols {
    () => {
        "subject, method, state, data, secret, created_at_ms, updated_at_ms, confirmed_at_ms, \
         last_used_at_ms, last_used_step"
    };
}

impl SqliteStore {
    pub(super) async fn stage_enrollment_impl(
        &self,
        new: NewEnrollment,
        now: OffsetDateTime,
    ) -> Result<()> {
        let secret = new
            .secret
            .as_ref()
            .map(|s| {
                self.cipher()
                    .seal(s.expose(), &aad(T, &new.subject, &new.method), WHAT)
            })
            .transpose()?;
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO enrollments (subject, method, state, data, secret, created_at_ms, updated_at_ms) \
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?5) \
                 ON CONFLICT (subject, method, state) DO UPDATE SET data = excluded.data, \
                 secret = excluded.secret, created_at_ms = excluded.created_at_ms, \
                 updated_at_ms = excluded.updated_at_ms, confirmed_at_ms = NULL, \
                 last_used_at_ms = NULL, last_used_step = NULL",
            )?
            .execute(params![
                new.subject.to_string(),
                new.method,
                new.data.to_string(),
                secret,
                ms(now),
            ])?;
            Ok(())
        })
    }

    pub(super) async fn activate_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let subject = subject.to_string();
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let pending = tx
                .prepare_cached(
                    "SELECT 1 FROM enrollments WHERE subject = ?1 AND method = ?2 AND state = 'pending'",
                )?
                .exists(params![subject, method])?;
            if !pending {
                tx.rollback()?;
                return Ok(false);
            }
            tx.prepare_cached(
                "DELETE FROM enrollments WHERE subject = ?1 AND method = ?2 AND state = 'active'",
            )?
            .execute(params![subject, method])?;
            tx.prepare_cached(
                "UPDATE enrollments SET state = 'active', confirmed_at_ms = ?3, updated_at_ms = ?3 \
                 WHERE subject = ?1 AND method = ?2 AND state = 'pending'",
            )?
            .execute(params![subject, method, ms(now)])?;
            tx.commit()?;
            Ok(true)
        })
    }

    pub(super) async fn reconfirm_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE enrollments SET confirmed_at_ms = ?3, updated_at_ms = ?3 \
                     WHERE subject = ?1 AND method = ?2 AND state = 'active'",
                )?
                .execute(params![subject.to_string(), method, ms(now)])?)
        })?;
        Ok(done == 1)
    }

    pub(super) async fn enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        state: EnrollmentState,
    ) -> Result<Option<Enrollment>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "SELECT ",
                enrollment_cols!(),
                " FROM enrollments WHERE subject = ?1 AND method = ?2 AND state = ?3"
            ))?;
            let mut rows = stmt.query(params![subject.to_string(), method, state.as_str()])?;
            rows.next()?
                .map(|r| crate::rows::enrollment(r, self.cipher()))
                .transpose()
        })
    }

    pub(super) async fn enrollments_impl(&self, subject: &ObjectId) -> Result<Vec<Enrollment>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "SELECT ",
                enrollment_cols!(),
                " FROM enrollments WHERE subject = ?1 ORDER BY method, state"
            ))?;
            let mut rows = stmt.query([subject.to_string()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::rows::enrollment(row, self.cipher())?);
            }
            Ok(out)
        })
    }

    pub(super) async fn enrolled_methods_impl(
        &self,
        subjects: &[ObjectId],
    ) -> Result<Vec<EnrolledMethod>> {
        let mut out = Vec::new();
        // Well under SQLite's limit of bound variables per statement.
        for chunk in subjects.chunks(SUBJECTS_PER_QUERY) {
            // Only placeholders are generated; every subject is bound. Passkeys count as one
            // active method (several keys are one way to prove who you are), confirmed when the
            // first was registered.
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let list = list.join(", ");
            let sql = format!(
                "SELECT subject, method, state, confirmed_at_ms FROM enrollments \
                 WHERE subject IN ({list}) \
                 UNION ALL SELECT subject, 'passkey' AS method, 'active' AS state, \
                 MIN(created_at_ms) AS confirmed_at_ms FROM passkeys \
                 WHERE subject IN ({list}) GROUP BY subject"
            );
            let values: Vec<Value> = chunk.iter().map(|s| Value::Text(s.to_string())).collect();
            self.read(|conn| {
                let mut stmt = conn.prepare_cached(&sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                while let Some(row) = rows.next()? {
                    out.push(EnrolledMethod {
                        subject: object_id(&row.get::<_, String>("subject")?, T, "subject")?,
                        method: row.get("method")?,
                        state: EnrollmentState::parse(&row.get::<_, String>("state")?).ok_or(
                            StoreError::Corrupt {
                                table: T,
                                column: "state",
                            },
                        )?,
                        confirmed_at: opt_from_ms(
                            row.get("confirmed_at_ms")?,
                            T,
                            "confirmed_at_ms",
                        )?,
                    });
                }
                Ok(())
            })?;
        }
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
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached("DELETE FROM enrollments WHERE subject = ?1 AND method = ?2")?
                .execute(params![subject.to_string(), method])?)
        })?;
        Ok(done as u64)
    }

    pub(super) async fn remove_pending_enrollment_impl(
        &self,
        subject: &ObjectId,
        method: &str,
    ) -> Result<u64> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "DELETE FROM enrollments WHERE subject = ?1 AND method = ?2 AND state = 'pending'",
                )?
                .execute(params![subject.to_string(), method])?)
        })?;
        Ok(done as u64)
    }

    pub(super) async fn mark_used_impl(
        &self,
        subject: &ObjectId,
        method: &str,
        step: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<bool> {
        // With a step: one conditional UPDATE, so two concurrent uses of the same TOTP code
        // cannot both pass the replay guard.
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE enrollments SET last_used_at_ms = ?3, \
                     last_used_step = COALESCE(?4, last_used_step) \
                     WHERE subject = ?1 AND method = ?2 AND state = 'active' \
                     AND (?4 IS NULL OR last_used_step IS NULL OR last_used_step < ?4)",
                )?
                .execute(params![subject.to_string(), method, ms(now), step])?)
        })?;
        Ok(done == 1)
    }
}

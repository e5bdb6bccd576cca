//! Issued codes on SQLite.

use latchkey_types::ObjectId;
use rusqlite::{TransactionBehavior, params};
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, from_ms, ms, returning};
use crate::code::{CodeAttempt, CodeId, IssuedCode, NewCode};
use crate::error::{Result, StoreError};
use crate::flow::FlowId;

const T: &str = "codes";

impl SqliteStore {
    pub(super) async fn issue_code_impl(
        &self,
        new: NewCode,
        now: OffsetDateTime,
    ) -> Result<IssuedCode> {
        if new.tries == 0 || new.lifetime.is_zero() {
            return Err(StoreError::Invalid(
                "a code needs at least one try and a positive lifetime",
            ));
        }
        let now_ms = ms(now);
        let expires_ms = now_ms.saturating_add(dur_ms(new.lifetime));
        let subject = new.subject.to_string();
        let (id, seq) = self.write(|conn| {
            // IMMEDIATE takes the write lock up front: voiding the older codes and numbering the
            // new one cannot interleave with another issue for the same user (from another
            // process; in this one the writer lock already serialises).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "UPDATE codes SET voided_at_ms = ?1 WHERE subject = ?2 AND method = ?3 \
                 AND consumed_at_ms IS NULL AND voided_at_ms IS NULL",
            )?
            .execute(params![now_ms, subject, new.method])?;
            let ids = {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO codes (flow_id, subject, method, seq, code_hash, binding, issued_at_ms, \
                     expires_at_ms, tries_left) VALUES (?1, ?2, ?3, \
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM codes WHERE subject = ?2 AND method = ?3), \
                     ?4, ?5, ?6, ?7, ?8) RETURNING id, seq",
                )?;
                let mut rows = stmt.query(params![
                    new.flow.to_string(),
                    subject,
                    new.method,
                    new.code_hash,
                    new.binding,
                    now_ms,
                    expires_ms,
                    i64::from(new.tries),
                ])?;
                let row = rows.next()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                (row.get::<_, i64>("id")?, row.get::<_, i64>("seq")?)
            };
            tx.commit()?;
            Ok(ids)
        })?;
        Ok(IssuedCode {
            id: CodeId(id),
            seq,
            expires_at: from_ms(expires_ms, T, "expires_at_ms")?,
        })
    }

    pub(super) async fn take_code_attempt_impl(
        &self,
        flow: &FlowId,
        method: &str,
        now: OffsetDateTime,
    ) -> Result<Option<CodeAttempt>> {
        // Only the newest code of this flow and method is a candidate; if it is dead, so is the
        // attempt (older codes never come back).
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE codes SET tries_left = tries_left - 1 \
                 WHERE id = (SELECT id FROM codes WHERE flow_id = ?1 AND method = ?2 \
                             ORDER BY seq DESC LIMIT 1) \
                 AND consumed_at_ms IS NULL AND voided_at_ms IS NULL \
                 AND expires_at_ms > ?3 AND tries_left > 0 \
                 RETURNING id, seq, code_hash, binding, tries_left, expires_at_ms",
            )?;
            let rows = stmt.query(params![flow.to_string(), method, ms(now)])?;
            returning(rows, |row| {
                let tries: i64 = row.get("tries_left")?;
                Ok(CodeAttempt {
                    id: CodeId(row.get("id")?),
                    seq: row.get("seq")?,
                    code_hash: row.get("code_hash")?,
                    binding: row.get("binding")?,
                    tries_left: u32::try_from(tries).map_err(|_| StoreError::Corrupt {
                        table: T,
                        column: "tries_left",
                    })?,
                    expires_at: from_ms(row.get("expires_at_ms")?, T, "expires_at_ms")?,
                })
            })
        })
    }

    pub(super) async fn consume_code_impl(&self, id: CodeId, now: OffsetDateTime) -> Result<bool> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE codes SET consumed_at_ms = ?2 WHERE id = ?1 AND consumed_at_ms IS NULL \
                     AND voided_at_ms IS NULL AND expires_at_ms > ?2",
                )?
                .execute(params![id.0, ms(now)])?)
        })?;
        Ok(done == 1)
    }

    pub(super) async fn void_codes_of_impl(
        &self,
        subject: &ObjectId,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE codes SET voided_at_ms = ?2 WHERE subject = ?1 \
                     AND consumed_at_ms IS NULL AND voided_at_ms IS NULL",
                )?
                .execute(params![subject.to_string(), ms(now)])?)
        })?;
        Ok(done as u64)
    }
}

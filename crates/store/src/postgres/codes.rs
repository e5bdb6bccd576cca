//! Issued codes on PostgreSQL.

use latchkey_types::ObjectId;
use sqlx::Row;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::code::{CodeAttempt, CodeId, IssuedCode, NewCode};
use crate::error::{Result, StoreError};
use crate::flow::FlowId;
use crate::sqlite::{dur_ms, from_ms, ms};

const T: &str = "codes";

impl PostgresStore {
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
        let mut tx = self.pool.begin().await?;
        // Two issues for one (subject, method), on any instance, run one after the other: the
        // advisory lock names exactly that pair (a hash collision with another pair only makes
        // them wait for each other). Without it both could void the same older codes and number
        // the new one alike (MAX(seq) + 1 read from the same snapshot).
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('code:' || $1 || ':' || $2, 0))",
        )
        .bind(&subject)
        .bind(&new.method)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE codes SET voided_at_ms = $1 WHERE subject = $2 AND method = $3 \
             AND consumed_at_ms IS NULL AND voided_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(&subject)
        .bind(&new.method)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO codes (flow_id, subject, method, seq, code_hash, binding, issued_at_ms, \
             expires_at_ms, tries_left) VALUES ($1, $2, $3, \
             (SELECT COALESCE(MAX(seq), 0) + 1 FROM codes WHERE subject = $2 AND method = $3), \
             $4, $5, $6, $7, $8) RETURNING id, seq",
        )
        .bind(new.flow.to_string())
        .bind(&subject)
        .bind(&new.method)
        .bind(&new.code_hash)
        .bind(&new.binding)
        .bind(now_ms)
        .bind(expires_ms)
        .bind(i64::from(new.tries))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IssuedCode {
            id: CodeId(row.try_get("id")?),
            seq: row.try_get("seq")?,
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
        // attempt (older codes never come back). Concurrent guesses queue on the row lock and
        // each re-checks `tries_left > 0` (and consumed/voided) on the row the previous one
        // committed, so the tries are never exceeded; the CHECK (tries_left >= 0) backs it up.
        let row = sqlx::query(
            "UPDATE codes SET tries_left = tries_left - 1 \
             WHERE id = (SELECT id FROM codes WHERE flow_id = $1 AND method = $2 \
                         ORDER BY seq DESC LIMIT 1) \
             AND consumed_at_ms IS NULL AND voided_at_ms IS NULL \
             AND expires_at_ms > $3 AND tries_left > 0 \
             RETURNING id, seq, code_hash, binding, tries_left, expires_at_ms",
        )
        .bind(flow.to_string())
        .bind(method)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let tries: i64 = row.try_get("tries_left")?;
        Ok(Some(CodeAttempt {
            id: CodeId(row.try_get("id")?),
            seq: row.try_get("seq")?,
            code_hash: row.try_get("code_hash")?,
            binding: row.try_get("binding")?,
            tries_left: u32::try_from(tries).map_err(|_| StoreError::Corrupt {
                table: T,
                column: "tries_left",
            })?,
            expires_at: from_ms(row.try_get("expires_at_ms")?, T, "expires_at_ms")?,
        }))
    }

    pub(super) async fn consume_code_impl(&self, id: CodeId, now: OffsetDateTime) -> Result<bool> {
        // A concurrent second consumer waits for the first one's row lock, re-checks
        // `consumed_at_ms IS NULL` on the committed row and updates nothing: one success.
        let done = sqlx::query(
            "UPDATE codes SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL \
             AND voided_at_ms IS NULL AND expires_at_ms > $2",
        )
        .bind(id.0)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn void_codes_of_impl(
        &self,
        subject: &ObjectId,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE codes SET voided_at_ms = $2 WHERE subject = $1 \
             AND consumed_at_ms IS NULL AND voided_at_ms IS NULL",
        )
        .bind(subject.to_string())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

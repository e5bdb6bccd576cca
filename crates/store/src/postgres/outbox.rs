//! The notice outbox on PostgreSQL ([`crate::outbox`]). Claims take due rows `FOR UPDATE SKIP
//! LOCKED`, so concurrent instances take different notices.

use std::time::Duration;

use time::OffsetDateTime;

use super::PostgresStore;
use crate::error::Result;
use crate::outbox::{COLUMNS, NewNotice, NoticeOutcome, QueuedNotice, open_claimed, seal};
use crate::sqlite::{dur_ms, ms};

impl PostgresStore {
    pub(super) async fn enqueue_notice_impl(
        &self,
        new: NewNotice,
        now: OffsetDateTime,
    ) -> Result<String> {
        let (id, blob) = seal(&self.cipher, &new)?;
        sqlx::query(
            "INSERT INTO notice_outbox (id, subject, correlation_id, kind, payload, \
             created_at_ms, next_attempt_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(new.subject.map(|s| s.to_string()))
        .bind(&new.correlation_id)
        .bind(&new.kind)
        .bind(blob)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    pub(super) async fn claim_notices_impl(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        max: u32,
    ) -> Result<Vec<QueuedNotice>> {
        let sql = format!(
            "WITH pick AS (SELECT id FROM notice_outbox WHERE next_attempt_at_ms <= $1 \
               AND (lease_until_ms IS NULL OR lease_until_ms <= $1) \
               ORDER BY created_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE notice_outbox o SET lease_until_ms = $1 + $2, attempts = o.attempts + 1 \
             FROM pick WHERE o.id = pick.id RETURNING {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("o.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now))
            .bind(dur_ms(lease))
            .bind(i64::from(max))
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .iter()
            .map(crate::rows::notice)
            .collect::<Result<Vec<_>>>()?;
        let (good, bad) = open_claimed(&self.cipher, rows);
        for id in bad {
            self.finish_notice_impl(&id, NoticeOutcome::Done).await?;
        }
        Ok(good)
    }

    pub(super) async fn finish_notice_impl(
        &self,
        id: &str,
        outcome: NoticeOutcome,
    ) -> Result<bool> {
        let done = match outcome {
            NoticeOutcome::Done => {
                sqlx::query("DELETE FROM notice_outbox WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
            NoticeOutcome::RetryAt(at) => {
                sqlx::query(
                    "UPDATE notice_outbox SET lease_until_ms = NULL, next_attempt_at_ms = $2 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(ms(at))
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }
}

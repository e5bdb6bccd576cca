//! The notice outbox on SQLite ([`crate::outbox`]). A claim is one statement: SQLite takes the
//! write lock before evaluating it, so two claimants never take the same row.

use std::time::Duration;

use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, ms};
use crate::error::Result;
use crate::outbox::{COLUMNS, NewNotice, NoticeOutcome, QueuedNotice, open_claimed, seal};

impl SqliteStore {
    pub(super) async fn enqueue_notice_impl(
        &self,
        new: NewNotice,
        now: OffsetDateTime,
    ) -> Result<String> {
        let (id, blob) = seal(self.cipher(), &new)?;
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO notice_outbox (id, subject, correlation_id, kind, payload, \
                 created_at_ms, next_attempt_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![
                id,
                new.subject.map(|s| s.to_string()),
                new.correlation_id,
                new.kind,
                blob,
                ms(now),
            ])?;
            Ok(())
        })?;
        Ok(id)
    }

    pub(super) async fn claim_notices_impl(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        max: u32,
    ) -> Result<Vec<QueuedNotice>> {
        let rows = self.write(|conn| {
            let sql = format!(
                "UPDATE notice_outbox SET lease_until_ms = ?1 + ?2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM notice_outbox WHERE next_attempt_at_ms <= ?1 \
                   AND (lease_until_ms IS NULL OR lease_until_ms <= ?1) \
                   ORDER BY created_at_ms, id LIMIT ?3) RETURNING {COLUMNS}"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![ms(now), dur_ms(lease), i64::from(max)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(crate::rows::notice(r)?);
            }
            Ok(out)
        })?;
        let (good, bad) = open_claimed(self.cipher(), rows);
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
        let changed = self.write(|conn| {
            Ok(match outcome {
                NoticeOutcome::Done => conn
                    .prepare_cached("DELETE FROM notice_outbox WHERE id = ?1")?
                    .execute([id])?,
                NoticeOutcome::RetryAt(at) => conn
                    .prepare_cached(
                        "UPDATE notice_outbox SET lease_until_ms = NULL, next_attempt_at_ms = ?2 \
                         WHERE id = ?1",
                    )?
                    .execute(params![id, ms(at)])?,
            })
        })?;
        Ok(changed > 0)
    }
}

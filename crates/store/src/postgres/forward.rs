//! Audit forwarding bookkeeping on PostgreSQL ([`crate::forward`]): positions are (writing
//! transaction, id) and only events of transactions older than every running one are final.

use sqlx::Row;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::error::{Result, StoreError};
use crate::forward::{AuditPosition, ForwardItem, ForwardStart, check_output};
use crate::sqlite::{dur_ms, ms};
use crate::store::{ForwardStore, StoreFuture};

/// The oldest transaction still running: events of older transactions are final.
const XMIN: &str = "pg_snapshot_xmin(pg_current_snapshot())";

fn position(
    row: &sqlx::postgres::PgRow,
    tx: &'static str,
    id: &'static str,
) -> Result<AuditPosition> {
    let text: String = row.try_get(tx)?;
    let tx = text.parse::<i64>().map_err(|_| StoreError::Corrupt {
        table: "audit_events",
        column: "tx",
    })?;
    Ok(AuditPosition {
        tx,
        id: row.try_get(id)?,
    })
}

impl PostgresStore {
    async fn lease_forwarding_impl(
        &self,
        output: &str,
        holder: &str,
        start: ForwardStart,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<Option<AuditPosition>> {
        check_output(output)?;
        // Positions from another server (a logical restore) would sort every new event before
        // the cursor: refuse loudly instead of skipping them.
        let ahead: bool = sqlx::query_scalar(
            "SELECT COALESCE((SELECT cursor_tx FROM audit_forwarding WHERE output = $1) \
               >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint, false) \
             OR COALESCE((SELECT max(tx) FROM audit_events) \
               >= pg_snapshot_xmax(pg_current_snapshot()), false)",
        )
        .bind(output)
        .fetch_one(&self.pool)
        .await?;
        if ahead {
            return Err(StoreError::RestoredPositions);
        }
        // "Now" is just below the oldest running transaction: every event already final is
        // skipped, the events of transactions still running (or newer) are delivered.
        let (start_tx, start_id) = match start {
            ForwardStart::Beginning => ("0".to_string(), "0"),
            ForwardStart::Now => (format!("({XMIN}::text::bigint - 1)"), "9223372036854775807"),
        };
        let sql = format!(
            "INSERT INTO audit_forwarding (output, cursor_tx, cursor_id, holder, lease_until_ms, \
             updated_at_ms) VALUES ($1, {start_tx}, {start_id}, $2, $3 + $4, $3) \
             ON CONFLICT (output) DO UPDATE SET holder = EXCLUDED.holder, \
               lease_until_ms = EXCLUDED.lease_until_ms \
             WHERE audit_forwarding.holder = EXCLUDED.holder \
               OR audit_forwarding.lease_until_ms <= $3 \
             RETURNING cursor_tx::text AS cursor_tx, cursor_id"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(output)
            .bind(holder)
            .bind(ms(now))
            .bind(dur_ms(ttl))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| position(&r, "cursor_tx", "cursor_id"))
            .transpose()
    }

    async fn audit_after_impl(&self, after: AuditPosition, max: u32) -> Result<Vec<ForwardItem>> {
        // The text form of `tx` has its own name: `ORDER BY tx` would sort by an output column
        // of that name, as text ("1000" before "999"), and the cursor would jump past events.
        let sql = format!(
            "SELECT tx::text AS tx_text, id, at_ms, correlation_id, actor, subject, event_type, method, \
             outcome, reason, details::text AS details FROM audit_events \
             WHERE (tx, id) > ($1::text::xid8, $2) AND tx < {XMIN} \
             ORDER BY audit_events.tx, audit_events.id LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.tx.to_string())
            .bind(after.id)
            .bind(i64::from(max))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ForwardItem {
                    position: position(r, "tx_text", "id")?,
                    record: crate::rows::audit_record(r)?,
                })
            })
            .collect()
    }

    async fn advance_forwarding_impl(
        &self,
        output: &str,
        holder: &str,
        to: AuditPosition,
        delivered: u64,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE audit_forwarding SET cursor_tx = $3, cursor_id = $4, \
             delivered = delivered + $5, updated_at_ms = $6 \
             WHERE output = $1 AND holder = $2 AND (cursor_tx, cursor_id) <= ($3, $4)",
        )
        .bind(output)
        .bind(holder)
        .bind(to.tx)
        .bind(to.id)
        .bind(i64::try_from(delivered).unwrap_or(i64::MAX))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_forwarding_impl(&self, output: &str, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE audit_forwarding SET lease_until_ms = 0 WHERE output = $1 AND holder = $2",
        )
        .bind(output)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn forward_backlog_impl(&self, output: &str, cap: u64) -> Result<Option<u64>> {
        let row = sqlx::query(
            "SELECT cursor_tx::text AS cursor_tx, cursor_id FROM audit_forwarding WHERE output = $1",
        )
        .bind(output)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let cursor = position(&row, "cursor_tx", "cursor_id")?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM audit_events \
             WHERE (tx, id) > ($1::text::xid8, $2) LIMIT $3) AS pending",
        )
        .bind(cursor.tx.to_string())
        .bind(cursor.id)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }
}

impl ForwardStore for PostgresStore {
    fn lease_forwarding<'a>(
        &'a self,
        output: &'a str,
        holder: &'a str,
        start: ForwardStart,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> StoreFuture<'a, Option<AuditPosition>> {
        Box::pin(self.observer.timed(
            "lease_forwarding",
            self.lease_forwarding_impl(output, holder, start, now, ttl),
        ))
    }
    fn audit_after(&self, after: AuditPosition, max: u32) -> StoreFuture<'_, Vec<ForwardItem>> {
        Box::pin(
            self.observer
                .timed("audit_after", self.audit_after_impl(after, max)),
        )
    }
    fn advance_forwarding<'a>(
        &'a self,
        output: &'a str,
        holder: &'a str,
        to: AuditPosition,
        delivered: u64,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.observer.timed(
            "advance_forwarding",
            self.advance_forwarding_impl(output, holder, to, delivered, now),
        ))
    }
    fn release_forwarding<'a>(&'a self, output: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.observer.timed(
            "release_forwarding",
            self.release_forwarding_impl(output, holder),
        ))
    }
    fn forward_backlog<'a>(&'a self, output: &'a str, cap: u64) -> StoreFuture<'a, Option<u64>> {
        Box::pin(
            self.observer
                .timed("forward_backlog", self.forward_backlog_impl(output, cap)),
        )
    }
}

//! Audit forwarding bookkeeping on SQLite ([`crate::forward`]). One writer commits at a time, so
//! an event's id is its position (`tx` stays 0) and every committed event is final.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, ms};
use crate::error::Result;
use crate::forward::{AuditPosition, ForwardItem, ForwardStart, check_output};
use crate::store::{ForwardStore, StoreFuture};

impl SqliteStore {
    async fn lease_forwarding_impl(
        &self,
        output: &str,
        holder: &str,
        start: ForwardStart,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> Result<Option<AuditPosition>> {
        check_output(output)?;
        // One statement: create the row at `start` or take/renew the lease when it is ours or
        // ran out; no row back means another instance holds it.
        let start_id = match start {
            ForwardStart::Beginning => "0",
            ForwardStart::Now => "(SELECT COALESCE(MAX(id), 0) FROM audit_events)",
        };
        let sql = format!(
            "INSERT INTO audit_forwarding (output, cursor_tx, cursor_id, holder, lease_until_ms, \
             updated_at_ms) VALUES (?1, 0, {start_id}, ?2, ?3 + ?4, ?3) \
             ON CONFLICT (output) DO UPDATE SET holder = excluded.holder, \
               lease_until_ms = excluded.lease_until_ms \
             WHERE audit_forwarding.holder = excluded.holder \
               OR audit_forwarding.lease_until_ms <= ?3 \
             RETURNING cursor_tx, cursor_id"
        );
        self.write(|conn| {
            Ok(conn
                .prepare_cached(&sql)?
                .query_row(params![output, holder, ms(now), dur_ms(ttl)], |r| {
                    Ok(AuditPosition {
                        tx: r.get(0)?,
                        id: r.get(1)?,
                    })
                })
                .optional()?)
        })
    }

    async fn audit_after_impl(&self, after: AuditPosition, max: u32) -> Result<Vec<ForwardItem>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, at_ms, correlation_id, actor, subject, event_type, method, outcome, \
                 reason, details FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after.id, i64::from(max)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let record = crate::rows::audit_record(r)?;
                out.push(ForwardItem {
                    position: AuditPosition {
                        tx: 0,
                        id: record.id.0,
                    },
                    record,
                });
            }
            Ok(out)
        })
    }

    async fn advance_forwarding_impl(
        &self,
        output: &str,
        holder: &str,
        to: AuditPosition,
        delivered: u64,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let delivered = i64::try_from(delivered).unwrap_or(i64::MAX);
        let changed = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE audit_forwarding SET cursor_tx = ?3, cursor_id = ?4, \
                     delivered = delivered + ?5, updated_at_ms = ?6 \
                     WHERE output = ?1 AND holder = ?2 AND (cursor_tx, cursor_id) <= (?3, ?4)",
                )?
                .execute(params![output, holder, to.tx, to.id, delivered, ms(now)])?)
        })?;
        Ok(changed > 0)
    }

    async fn release_forwarding_impl(&self, output: &str, holder: &str) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached(
                "UPDATE audit_forwarding SET lease_until_ms = 0 WHERE output = ?1 AND holder = ?2",
            )?
            .execute(params![output, holder])?;
            Ok(())
        })
    }

    async fn forward_backlog_impl(&self, output: &str, cap: u64) -> Result<Option<u64>> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.read(|conn| {
            let cursor: Option<i64> = conn
                .prepare_cached("SELECT cursor_id FROM audit_forwarding WHERE output = ?1")?
                .query_row([output], |r| r.get(0))
                .optional()?;
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM audit_events WHERE id > ?1 LIMIT ?2)",
                )?
                .query_row(params![cursor, cap], |r| r.get(0))?;
            Ok(Some(u64::try_from(n).unwrap_or(0)))
        })
    }
}

impl ForwardStore for SqliteStore {
    fn lease_forwarding<'a>(
        &'a self,
        output: &'a str,
        holder: &'a str,
        start: ForwardStart,
        now: OffsetDateTime,
        ttl: std::time::Duration,
    ) -> StoreFuture<'a, Option<AuditPosition>> {
        Box::pin(self.inner.observer.timed(
            "lease_forwarding",
            self.lease_forwarding_impl(output, holder, start, now, ttl),
        ))
    }
    fn audit_after(&self, after: AuditPosition, max: u32) -> StoreFuture<'_, Vec<ForwardItem>> {
        Box::pin(
            self.inner
                .observer
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
        Box::pin(self.inner.observer.timed(
            "advance_forwarding",
            self.advance_forwarding_impl(output, holder, to, delivered, now),
        ))
    }
    fn release_forwarding<'a>(&'a self, output: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.inner.observer.timed(
            "release_forwarding",
            self.release_forwarding_impl(output, holder),
        ))
    }
    fn forward_backlog<'a>(&'a self, output: &'a str, cap: u64) -> StoreFuture<'a, Option<u64>> {
        Box::pin(
            self.inner
                .observer
                .timed("forward_backlog", self.forward_backlog_impl(output, cap)),
        )
    }
}

//! Throttles on PostgreSQL: a sliding log of allowed attempts, like SQLite's, checked and appended
//! inside one transaction that first takes a transaction-scoped advisory lock on the (scope, key).
//!
//! Why the lock: two instances counting the same key at READ COMMITTED would both see 4 of 5 and
//! both insert. With the lock, `hit`s on one key run one after another across every instance and
//! connection; each later statement takes a fresh snapshot, so the second sees the first's row.
//! Hits on different keys do not wait for each other (except on a 64-bit hash collision, which
//! only costs a wait). The lock is released at commit or rollback, or when the connection drops.

use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::error::{Result, StoreError};
use crate::sqlite::{dur_ms, ms};
use crate::throttle::{Limit, ThrottleDecision, ThrottleKey};

impl PostgresStore {
    pub(super) async fn hit_impl(
        &self,
        key: &ThrottleKey,
        limits: &[Limit],
        now: OffsetDateTime,
    ) -> Result<ThrottleDecision> {
        if limits.is_empty() || limits.iter().any(|l| l.max == 0 || l.window.is_zero()) {
            return Err(StoreError::Invalid(
                "throttle limits must be non-empty, with max >= 1 and a positive window",
            ));
        }
        let now_ms = ms(now);
        let longest = limits.iter().map(|l| dur_ms(l.window)).max().unwrap_or(0);
        let maxes: Vec<i64> = limits.iter().map(|l| i64::from(l.max)).collect();
        let windows: Vec<i64> = limits.iter().map(|l| dur_ms(l.window)).collect();

        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('hit:' || $1 || ':' || $2, 0))")
            .bind(&key.scope)
            .bind(&key.key)
            .execute(&mut *tx)
            .await?;
        // Keep this key's log short; other keys are left to purge_expired.
        sqlx::query(
            "DELETE FROM throttle_hits WHERE scope = $1 AND key = $2 AND expires_at_ms <= $3",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;

        // Every limit in one query, on a snapshot taken after the lock: how many attempts are in
        // its window, and, when full, the max-th newest one (it must leave the window before one
        // more fits).
        let rows = sqlx::query(
            "SELECT l.max, l.window_ms, \
               (SELECT COUNT(*) FROM throttle_hits h WHERE h.scope = $1 AND h.key = $2 \
                  AND h.at_ms > $3 - l.window_ms) AS n, \
               (SELECT h.at_ms FROM throttle_hits h WHERE h.scope = $1 AND h.key = $2 \
                  AND h.at_ms > $3 - l.window_ms ORDER BY h.at_ms DESC \
                  LIMIT 1 OFFSET l.max - 1) AS boundary \
             FROM unnest($4::bigint[], $5::bigint[]) AS l(max, window_ms)",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(now_ms)
        .bind(&maxes)
        .bind(&windows)
        .fetch_all(&mut *tx)
        .await?;

        let mut remaining = u32::MAX;
        let mut retry_after_ms: i64 = 0;
        for row in &rows {
            let max: i64 = row.try_get("max")?;
            let window: i64 = row.try_get("window_ms")?;
            let count: i64 = row.try_get("n")?;
            if count >= max {
                let boundary: i64 =
                    row.try_get::<Option<i64>, _>("boundary")?
                        .ok_or(StoreError::Corrupt {
                            table: "throttle_hits",
                            column: "at_ms",
                        })?;
                retry_after_ms = retry_after_ms.max(boundary.saturating_add(window) - now_ms);
            } else {
                remaining = remaining.min(u32::try_from(max - count - 1).unwrap_or(0));
            }
        }

        if retry_after_ms > 0 {
            tx.rollback().await?;
            return Ok(ThrottleDecision::Denied {
                retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0)),
            });
        }
        sqlx::query(
            "INSERT INTO throttle_hits (scope, key, at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(now_ms)
        .bind(now_ms.saturating_add(longest))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ThrottleDecision::Allowed { remaining })
    }

    pub(super) async fn reset_impl(&self, key: &ThrottleKey) -> Result<()> {
        sqlx::query("DELETE FROM throttle_hits WHERE scope = $1 AND key = $2")
            .bind(&key.scope)
            .bind(&key.key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

//! Throttles on SQLite: a sliding log of allowed attempts, checked and appended inside one
//! `BEGIN IMMEDIATE` transaction. IMMEDIATE takes the database's write lock before the first
//! read, so concurrent `hit`s on any key run one after another (waiting up to the busy timeout)
//! and none can count a snapshot another is about to change.

use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, ms};
use crate::error::{Result, StoreError};
use crate::throttle::{Limit, ThrottleDecision, ThrottleKey};

impl SqliteStore {
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

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // Keep this key's log short; other keys are left to purge_expired.
        sqlx::query(
            "DELETE FROM throttle_hits WHERE scope = ?1 AND key = ?2 AND expires_at_ms <= ?3",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;

        let mut remaining = u32::MAX;
        let mut retry_after_ms: i64 = 0;
        for limit in limits {
            let window = dur_ms(limit.window);
            let since = now_ms.saturating_sub(window);
            let count: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM throttle_hits WHERE scope = ?1 AND key = ?2 AND at_ms > ?3",
            )
            .bind(&key.scope)
            .bind(&key.key)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            let max = i64::from(limit.max);
            if count >= max {
                // The attempt that must leave the window before one more fits: the max-th newest.
                let boundary: i64 = sqlx::query(
                    "SELECT at_ms FROM throttle_hits WHERE scope = ?1 AND key = ?2 AND at_ms > ?3 \
                     ORDER BY at_ms DESC LIMIT 1 OFFSET ?4",
                )
                .bind(&key.scope)
                .bind(&key.key)
                .bind(since)
                .bind(max - 1)
                .fetch_one(&mut *tx)
                .await?
                .try_get("at_ms")?;
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
            "INSERT INTO throttle_hits (scope, key, at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
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
        sqlx::query("DELETE FROM throttle_hits WHERE scope = ?1 AND key = ?2")
            .bind(&key.scope)
            .bind(&key.key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

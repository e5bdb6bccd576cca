//! Throttles on PostgreSQL: a sliding log of allowed attempts, like SQLite's. The check and the
//! record happen in the `throttle_hit` function of the migration (0001_init.sql), called by one
//! statement, so a hit is one round trip.
//!
//! Why it is atomic across instances: the function first takes a transaction-scoped advisory lock
//! on the (scope, key), so hits on one key run one after another on every connection of every
//! instance; being VOLATILE, each of its statements takes a fresh snapshot after the lock is held
//! and sees every attempt the previous holder committed. Two instances counting the same key
//! without the lock would both see 4 of 5 at READ COMMITTED and both insert. The lock ends with
//! the statement's transaction, or when the connection drops, so a crashed instance never leaves a
//! key locked.

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
        let maxes: Vec<i64> = limits.iter().map(|l| i64::from(l.max)).collect();
        let windows: Vec<i64> = limits.iter().map(|l| dur_ms(l.window)).collect();
        let row = sqlx::query(
            "SELECT allowed, remaining, retry_after_ms FROM throttle_hit($1, $2, $3, $4, $5)",
        )
        .bind(&key.scope)
        .bind(&key.key)
        .bind(ms(now))
        .bind(&maxes)
        .bind(&windows)
        .fetch_one(&self.pool)
        .await?;
        let corrupt = |column| StoreError::Corrupt {
            table: "throttle_hits",
            column,
        };
        if row.try_get::<bool, _>("allowed")? {
            let remaining: i64 = row.try_get("remaining")?;
            Ok(ThrottleDecision::Allowed {
                remaining: u32::try_from(remaining).map_err(|_| corrupt("remaining"))?,
            })
        } else {
            let wait: i64 = row.try_get("retry_after_ms")?;
            Ok(ThrottleDecision::Denied {
                retry_after: Duration::from_millis(
                    u64::try_from(wait).map_err(|_| corrupt("retry_after_ms"))?,
                ),
            })
        }
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

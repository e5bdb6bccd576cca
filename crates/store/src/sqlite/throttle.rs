//! Throttles on SQLite: a sliding log of allowed attempts. Checking every limit and recording the
//! attempt is one `INSERT ... SELECT ... WHERE <every count below its max>` statement: SQLite
//! runs a statement atomically under the database's write lock (a connection whose snapshot
//! went stale meanwhile gets SQLITE_BUSY instead of writing), so two concurrent `hit`s can never
//! both pass a check only one of them should pass. One statement also means one round trip
//! on the write connection instead of five.

use std::time::Duration;

use rusqlite::params;
use rusqlite::types::Value;
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, ms, returning};
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

        // ?1 scope, ?2 key, ?3 now, ?4 expiry; limit i has its window start at ?(5+2i) and its
        // max at ?(6+2i). Only these fixed fragments vary with the number of limits.
        let count = |i: usize| {
            format!(
                "(SELECT COUNT(*) FROM throttle_hits WHERE scope = ?1 AND key = ?2 AND at_ms > ?{})",
                5 + 2 * i
            )
        };
        let mut sql = String::from(
            "INSERT INTO throttle_hits (scope, key, at_ms, expires_at_ms) SELECT ?1, ?2, ?3, ?4 WHERE ",
        );
        for i in 0..limits.len() {
            if i > 0 {
                sql.push_str(" AND ");
            }
            sql.push_str(&format!("{} < ?{}", count(i), 6 + 2 * i));
        }
        // The counts after the insert (they include this attempt).
        sql.push_str(" RETURNING ");
        for i in 0..limits.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&count(i));
        }
        let mut values = vec![
            Value::Text(key.scope.clone()),
            Value::Text(key.key.clone()),
            Value::Integer(now_ms),
            Value::Integer(now_ms.saturating_add(longest)),
        ];
        for limit in limits {
            values.push(Value::Integer(now_ms.saturating_sub(dur_ms(limit.window))));
            values.push(Value::Integer(i64::from(limit.max)));
        }
        self.write(|conn| {
            let mut insert = conn.prepare_cached(&sql)?;
            let rows = insert.query(rusqlite::params_from_iter(values.iter()))?;
            let allowed = returning(rows, |row| {
                let mut remaining = u32::MAX;
                for (i, limit) in limits.iter().enumerate() {
                    let after: i64 = row.get(i)?;
                    remaining =
                        remaining.min(u32::try_from(i64::from(limit.max) - after).unwrap_or(0));
                }
                Ok(remaining)
            })?;
            if let Some(remaining) = allowed {
                return Ok(ThrottleDecision::Allowed { remaining });
            }

            // Denied (nothing was recorded): how long until every full window has room again.
            let mut boundary_of = conn.prepare_cached(
                "SELECT at_ms FROM throttle_hits WHERE scope = ?1 AND key = ?2 AND at_ms > ?3 \
                 ORDER BY at_ms DESC LIMIT 1 OFFSET ?4",
            )?;
            let mut retry_after_ms: i64 = 0;
            for limit in limits {
                let window = dur_ms(limit.window);
                let since = now_ms.saturating_sub(window);
                let max = i64::from(limit.max);
                // The attempt that must leave the window before one more fits: the max-th newest.
                let mut rows = boundary_of.query(params![key.scope, key.key, since, max - 1])?;
                if let Some(row) = rows.next()? {
                    let boundary: i64 = row.get("at_ms")?;
                    retry_after_ms = retry_after_ms.max(boundary.saturating_add(window) - now_ms);
                }
            }
            Ok(ThrottleDecision::Denied {
                retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0)),
            })
        })
    }

    pub(super) async fn reset_impl(&self, key: &ThrottleKey) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached("DELETE FROM throttle_hits WHERE scope = ?1 AND key = ?2")?
                .execute(params![key.scope, key.key])?;
            Ok(())
        })
    }
}

//! Flows on SQLite. Liveness (absolute and idle deadline) is part of every WHERE clause, so an
//! expired row is as good as absent even before `purge_expired` removes it.

use latchkey_types::ObjectId;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, from_ms, json, ms, object_id};
use crate::error::{Result, StoreError};
use crate::flow::{Flow, FlowId, FlowToken, FlowUpdate, NewFlow};

/// The columns every flow query returns, in `flow_from_row` order.
macro_rules! flow_cols {
    () => {
        "id, subject, purpose, step, verified, data, created_at_ms, last_seen_at_ms, expires_at_ms, idle_ms"
    };
}

/// `?{n}` is `now` in ms: the flow has not passed its absolute or idle deadline.
macro_rules! live {
    ($n:literal) => {
        concat!(
            "expires_at_ms > ?",
            $n,
            " AND last_seen_at_ms + idle_ms > ?",
            $n
        )
    };
}

const T: &str = "flows";

/// A flow seen less than this long ago is not rewritten by [`Store::flow`]: its idle deadline may
/// come this much early, never late.
///
/// [`Store::flow`]: crate::Store::flow
const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

fn flow_from_row(row: &SqliteRow) -> Result<Flow> {
    let id: String = row.try_get("id")?;
    let subject: String = row.try_get("subject")?;
    let verified: String = row.try_get("verified")?;
    let data: String = row.try_get("data")?;
    let idle_ms: i64 = row.try_get("idle_ms")?;
    Ok(Flow {
        id: FlowId::from(uuid::Uuid::parse_str(&id).map_err(|_| StoreError::Corrupt {
            table: T,
            column: "id",
        })?),
        subject: object_id(&subject, T, "subject")?,
        purpose: row.try_get("purpose")?,
        step: row.try_get("step")?,
        verified: serde_json::from_str(&verified).map_err(|_| StoreError::Corrupt {
            table: T,
            column: "verified",
        })?,
        data: json(&data, T, "data")?,
        created_at: from_ms(row.try_get("created_at_ms")?, T, "created_at_ms")?,
        last_seen_at: from_ms(row.try_get("last_seen_at_ms")?, T, "last_seen_at_ms")?,
        expires_at: from_ms(row.try_get("expires_at_ms")?, T, "expires_at_ms")?,
        idle_timeout: std::time::Duration::from_millis(u64::try_from(idle_ms).map_err(|_| {
            StoreError::Corrupt {
                table: T,
                column: "idle_ms",
            }
        })?),
    })
}

impl SqliteStore {
    pub(super) async fn create_flow_impl(
        &self,
        new: NewFlow,
        now: OffsetDateTime,
    ) -> Result<(FlowToken, Flow)> {
        if new.lifetime.absolute.is_zero() || new.lifetime.idle.is_zero() {
            return Err(StoreError::Invalid("flow lifetimes must be positive"));
        }
        let token = FlowToken::generate()?;
        let id = FlowId::new_random();
        let now_ms = ms(now);
        let row = sqlx::query(concat!(
            "INSERT INTO flows (id, token_hash, subject, purpose, step, verified, data, \
             created_at_ms, last_seen_at_ms, expires_at_ms, idle_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, '[]', ?6, ?7, ?7, ?8, ?9) RETURNING ",
            flow_cols!()
        ))
        .bind(id.to_string())
        .bind(token.hash())
        .bind(new.subject.to_string())
        .bind(&new.purpose)
        .bind(&new.step)
        .bind(new.data.to_string())
        .bind(now_ms)
        .bind(now_ms.saturating_add(dur_ms(new.lifetime.absolute)))
        .bind(dur_ms(new.lifetime.idle))
        .fetch_one(&self.pool)
        .await?;
        Ok((token, flow_from_row(&row)?))
    }

    pub(super) async fn flow_impl(
        &self,
        token: &FlowToken,
        now: OffsetDateTime,
    ) -> Result<Option<Flow>> {
        let now_ms = ms(now);
        // A lookup on a read connection; the idle deadline is written only when it moved by
        // more than TOUCH_AFTER, so the pages of a flow (a few requests a second apart) do not
        // each queue for the one write connection.
        let row = sqlx::query(concat!(
            "SELECT ",
            flow_cols!(),
            " FROM flows WHERE token_hash = ?2 AND ",
            live!(1)
        ))
        .bind(now_ms)
        .bind(token.hash())
        .fetch_optional(&self.read)
        .await?;
        let Some(mut flow) = row.as_ref().map(flow_from_row).transpose()? else {
            return Ok(None);
        };
        if now > flow.last_seen_at + TOUCH_AFTER {
            let touched = sqlx::query(concat!(
                "UPDATE flows SET last_seen_at_ms = MAX(last_seen_at_ms, ?1) \
                 WHERE id = ?2 AND ",
                live!(1)
            ))
            .bind(now_ms)
            .bind(flow.id.to_string())
            .execute(&self.pool)
            .await?;
            if touched.rows_affected() == 0 {
                // Ended (or rotated and ended) between the lookup and now.
                return Ok(None);
            }
            flow.last_seen_at = flow
                .last_seen_at
                .max(from_ms(now_ms, T, "last_seen_at_ms")?);
        }
        Ok(Some(flow))
    }

    pub(super) async fn update_flow_impl(
        &self,
        token: &FlowToken,
        update: FlowUpdate,
        now: OffsetDateTime,
    ) -> Result<Option<Flow>> {
        let row = sqlx::query(concat!(
            "UPDATE flows SET last_seen_at_ms = MAX(last_seen_at_ms, ?1), \
             step = COALESCE(?3, step), data = COALESCE(?4, data) \
             WHERE token_hash = ?2 AND ",
            live!(1),
            " RETURNING ",
            flow_cols!()
        ))
        .bind(ms(now))
        .bind(token.hash())
        .bind(update.step)
        .bind(update.data.map(|d| d.to_string()))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(flow_from_row).transpose()
    }

    pub(super) async fn record_verification_impl(
        &self,
        token: &FlowToken,
        method: &str,
        next_step: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(FlowToken, Flow)>> {
        let new_token = FlowToken::generate()?;
        // One statement: SQLite takes the write lock before evaluating it, so two requests with
        // the same token cannot both match `token_hash = ?2`.
        let row = sqlx::query(concat!(
            "UPDATE flows SET token_hash = ?3, step = ?4, \
             verified = CASE WHEN EXISTS (SELECT 1 FROM json_each(flows.verified) WHERE value = ?5) \
                        THEN verified ELSE json_insert(verified, '$[#]', ?5) END, \
             last_seen_at_ms = MAX(last_seen_at_ms, ?1) \
             WHERE token_hash = ?2 AND ",
            live!(1),
            " RETURNING ",
            flow_cols!()
        ))
        .bind(ms(now))
        .bind(token.hash())
        .bind(new_token.hash())
        .bind(next_step)
        .bind(method)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((new_token, flow_from_row(&row)?))),
            None => Ok(None),
        }
    }

    pub(super) async fn end_flow_impl(&self, token: &FlowToken) -> Result<bool> {
        let done = sqlx::query("DELETE FROM flows WHERE token_hash = ?1")
            .bind(token.hash())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn end_flows_of_impl(&self, subject: &ObjectId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM flows WHERE subject = ?1")
            .bind(subject.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

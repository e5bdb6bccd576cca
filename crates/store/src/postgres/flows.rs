//! Flows on PostgreSQL. Liveness (absolute and idle deadline) is part of every WHERE clause, so an
//! expired row is as good as absent even before `purge_expired` removes it. Every change is one
//! `UPDATE ... RETURNING`: concurrent requests on one flow queue on its row lock and the later one
//! re-checks the WHERE clause (token, liveness) against what the earlier one committed.

use latchkey_types::ObjectId;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::error::{Result, StoreError};
use crate::flow::{
    Flow, FlowId, FlowStep, FlowToken, FlowUpdate, NewFlow, Verification, not_acting,
};
use crate::sqlite::{dur_ms, ms};

/// The columns every flow query returns, in `crate::rows::flow` order. JSONB comes back as text and
/// is parsed here (no sqlx `json` feature needed).
macro_rules! flow_cols {
    () => {
        "id, subject, purpose, step, verified::text AS verified, data::text AS data, \
         created_at_ms, last_seen_at_ms, expires_at_ms, idle_ms"
    };
}

/// `$1` is `now` in ms: the flow has not passed its absolute or idle deadline.
macro_rules! live {
    () => {
        "expires_at_ms > $1 AND last_seen_at_ms + idle_ms > $1"
    };
}

/// A flow seen less than this long ago is not rewritten by [`crate::Store::flow`]: its idle
/// deadline may come this much early, never late (as on SQLite).
const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

impl PostgresStore {
    pub(super) async fn create_flow_impl(
        &self,
        new: NewFlow,
        now: OffsetDateTime,
    ) -> Result<(FlowToken, Flow)> {
        if new.lifetime.absolute.is_zero() || new.lifetime.idle.is_zero() {
            return Err(StoreError::Invalid("flow lifetimes must be positive"));
        }
        let step = not_acting(new.step)?;
        let token = FlowToken::generate()?;
        let id = FlowId::random()?;
        let now_ms = ms(now);
        let row = sqlx::query(concat!(
            "INSERT INTO flows (id, token_hash, subject, purpose, step, verified, data, \
             created_at_ms, last_seen_at_ms, expires_at_ms, idle_ms) \
             VALUES ($1, $2, $3, $4, $5, '[]', $6::jsonb, $7, $7, $8, $9) RETURNING ",
            flow_cols!()
        ))
        .bind(id.to_string())
        .bind(token.hash())
        .bind(new.subject.to_string())
        .bind(new.purpose.as_str())
        .bind(step.as_str())
        .bind(new.data.to_string())
        .bind(now_ms)
        .bind(now_ms.saturating_add(dur_ms(new.lifetime.absolute)))
        .bind(dur_ms(new.lifetime.idle))
        .fetch_one(&self.pool)
        .await?;
        Ok((token, crate::rows::flow(&row)?))
    }

    pub(super) async fn flow_impl(
        &self,
        token: &FlowToken,
        now: OffsetDateTime,
    ) -> Result<Option<Flow>> {
        // One statement that writes only when the idle deadline moved by more than TOUCH_AFTER:
        // the pages of one flow (a few requests a second apart) are then plain reads, and a
        // transaction that changed nothing commits without waiting for a WAL flush (an fsync on
        // a durable server: milliseconds, against a fraction of one for the read).
        let row = sqlx::query(concat!(
            "WITH touched AS (UPDATE flows SET last_seen_at_ms = GREATEST(last_seen_at_ms, $1) \
             WHERE token_hash = $2 AND last_seen_at_ms + $3 < $1 AND ",
            live!(),
            " RETURNING ",
            flow_cols!(),
            ") SELECT * FROM touched UNION ALL SELECT ",
            flow_cols!(),
            " FROM flows WHERE token_hash = $2 AND ",
            live!(),
            " AND NOT EXISTS (SELECT 1 FROM touched)"
        ))
        .bind(ms(now))
        .bind(token.hash())
        .bind(dur_ms(TOUCH_AFTER))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::flow).transpose()
    }

    pub(super) async fn update_flow_impl(
        &self,
        token: &FlowToken,
        update: FlowUpdate,
        now: OffsetDateTime,
    ) -> Result<Option<Flow>> {
        let step = update.step.map(not_acting).transpose()?;
        // An acting flow keeps its step: only its claim's outcome moves it on.
        let row = sqlx::query(concat!(
            "UPDATE flows SET last_seen_at_ms = GREATEST(last_seen_at_ms, $1), \
             step = CASE WHEN step = 'acting' THEN step ELSE COALESCE($3, step) END, \
             data = COALESCE($4::jsonb, data) \
             WHERE token_hash = $2 AND ",
            live!(),
            " RETURNING ",
            flow_cols!()
        ))
        .bind(ms(now))
        .bind(token.hash())
        .bind(step.map(FlowStep::as_str))
        .bind(update.data.map(|d| d.to_string()))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::flow).transpose()
    }

    pub(super) async fn record_verification_impl(
        &self,
        token: &FlowToken,
        proof: Verification,
        next_step: FlowStep,
        now: OffsetDateTime,
    ) -> Result<Option<(FlowToken, Flow)>> {
        let next_step = not_acting(next_step)?;
        let new_token = FlowToken::generate()?;
        // One statement. A second request with the same token waits for the first one's row
        // lock, then re-checks `token_hash = $2` on the committed row: the token has rotated, so
        // it updates nothing. `verified ? $5` is JSONB's "array contains this string".
        let row = sqlx::query(concat!(
            "UPDATE flows SET token_hash = $3, step = $4, \
             verified = CASE WHEN verified ? $5 THEN verified \
                        ELSE verified || jsonb_build_array($5::text) END, \
             last_seen_at_ms = GREATEST(last_seen_at_ms, $1) \
             WHERE token_hash = $2 AND step <> 'acting' AND ",
            live!(),
            " RETURNING ",
            flow_cols!()
        ))
        .bind(ms(now))
        .bind(token.hash())
        .bind(new_token.hash())
        .bind(next_step.as_str())
        .bind(proof.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((new_token, crate::rows::flow(&row)?))),
            None => Ok(None),
        }
    }

    pub(super) async fn claim_flow_impl(
        &self,
        token: &FlowToken,
        now: OffsetDateTime,
    ) -> Result<Option<Flow>> {
        // One statement: a second claim waits for the first one's row lock, then re-checks the
        // step on the committed row (no longer one that may act) and updates nothing.
        let row = sqlx::query(concat!(
            "UPDATE flows SET step = 'acting', last_seen_at_ms = GREATEST(last_seen_at_ms, $1) \
             WHERE token_hash = $2 AND step IN ('verified', 'retry') AND ",
            live!(),
            " RETURNING ",
            flow_cols!()
        ))
        .bind(ms(now))
        .bind(token.hash())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::flow).transpose()
    }

    pub(super) async fn release_flow_impl(
        &self,
        token: &FlowToken,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(concat!(
            "UPDATE flows SET step = 'retry', last_seen_at_ms = GREATEST(last_seen_at_ms, $1) \
             WHERE token_hash = $2 AND step = 'acting' AND ",
            live!()
        ))
        .bind(ms(now))
        .bind(token.hash())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn end_flow_impl(&self, token: &FlowToken) -> Result<bool> {
        let done = sqlx::query("DELETE FROM flows WHERE token_hash = $1")
            .bind(token.hash())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn end_flows_of_impl(&self, subject: &ObjectId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM flows WHERE subject = $1")
            .bind(subject.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

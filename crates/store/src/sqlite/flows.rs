//! Flows on SQLite. Liveness (absolute and idle deadline) is part of every WHERE clause, so an
//! expired row is as good as absent even before `purge_expired` removes it.

use latchkey_types::ObjectId;
use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, dur_ms, from_ms, ms, returning};
use crate::error::{Result, StoreError};
use crate::flow::{
    Flow, FlowId, FlowStep, FlowToken, FlowUpdate, NewFlow, Verification, not_acting,
};

/// The columns every flow query returns, in `crate::rows::flow` order.
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

impl SqliteStore {
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
        let flow = self.write(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "INSERT INTO flows (id, token_hash, subject, purpose, step, verified, data, \
                 created_at_ms, last_seen_at_ms, expires_at_ms, idle_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, '[]', ?6, ?7, ?7, ?8, ?9) RETURNING ",
                flow_cols!()
            ))?;
            let rows = stmt.query(params![
                id.to_string(),
                token.hash(),
                new.subject.to_string(),
                new.purpose.as_str(),
                step.as_str(),
                new.data.to_string(),
                now_ms,
                now_ms.saturating_add(dur_ms(new.lifetime.absolute)),
                dur_ms(new.lifetime.idle),
            ])?;
            Ok(returning(rows, |r| crate::rows::flow(r))?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?)
        })?;
        Ok((token, flow))
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
        let found = self.read(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "SELECT ",
                flow_cols!(),
                " FROM flows WHERE token_hash = ?2 AND ",
                live!(1)
            ))?;
            let mut rows = stmt.query(params![now_ms, token.hash()])?;
            rows.next()?.map(crate::rows::flow).transpose()
        })?;
        let Some(mut flow) = found else {
            return Ok(None);
        };
        if now > flow.last_seen_at + TOUCH_AFTER {
            let touched = self.write(|conn| {
                Ok(conn
                    .prepare_cached(concat!(
                        "UPDATE flows SET last_seen_at_ms = MAX(last_seen_at_ms, ?1) \
                         WHERE id = ?2 AND ",
                        live!(1)
                    ))?
                    .execute(params![now_ms, flow.id.to_string()])?)
            })?;
            if touched == 0 {
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
        let step = update.step.map(not_acting).transpose()?;
        self.write(|conn| {
            // An acting flow keeps its step: only its claim's outcome moves it on.
            let mut stmt = conn.prepare_cached(concat!(
                "UPDATE flows SET last_seen_at_ms = MAX(last_seen_at_ms, ?1), \
                 step = CASE WHEN step = 'acting' THEN step ELSE COALESCE(?3, step) END, \
                 data = COALESCE(?4, data) \
                 WHERE token_hash = ?2 AND ",
                live!(1),
                " RETURNING ",
                flow_cols!()
            ))?;
            let rows = stmt.query(params![
                ms(now),
                token.hash(),
                step.map(FlowStep::as_str),
                update.data.map(|d| d.to_string()),
            ])?;
            returning(rows, |r| crate::rows::flow(r))
        })
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
        // One statement: SQLite takes the write lock before evaluating it, so two requests with
        // the same token cannot both match `token_hash = ?2`.
        let flow = self.write(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "UPDATE flows SET token_hash = ?3, step = ?4, \
                 verified = CASE WHEN EXISTS (SELECT 1 FROM json_each(flows.verified) WHERE value = ?5) \
                            THEN verified ELSE json_insert(verified, '$[#]', ?5) END, \
                 last_seen_at_ms = MAX(last_seen_at_ms, ?1) \
                 WHERE token_hash = ?2 AND step <> 'acting' AND ",
                live!(1),
                " RETURNING ",
                flow_cols!()
            ))?;
            let rows = stmt.query(params![
                ms(now),
                token.hash(),
                new_token.hash(),
                next_step.as_str(),
                proof.as_str(),
            ])?;
            returning(rows, |r| crate::rows::flow(r))
        })?;
        Ok(flow.map(|flow| (new_token, flow)))
    }

    pub(super) async fn claim_flow_impl(
        &self,
        token: &FlowToken,
        now: OffsetDateTime,
    ) -> Result<Option<Flow>> {
        // One statement: SQLite takes the write lock before evaluating it, so of two claims of
        // one flow only the first still finds it in a step that may act.
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "UPDATE flows SET step = 'acting', last_seen_at_ms = MAX(last_seen_at_ms, ?1) \
                 WHERE token_hash = ?2 AND step IN ('verified', 'retry') AND ",
                live!(1),
                " RETURNING ",
                flow_cols!()
            ))?;
            let rows = stmt.query(params![ms(now), token.hash()])?;
            returning(rows, |r| crate::rows::flow(r))
        })
    }

    pub(super) async fn release_flow_impl(
        &self,
        token: &FlowToken,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached(concat!(
                    "UPDATE flows SET step = 'retry', last_seen_at_ms = MAX(last_seen_at_ms, ?1) \
                     WHERE token_hash = ?2 AND step = 'acting' AND ",
                    live!(1)
                ))?
                .execute(params![ms(now), token.hash()])?)
        })?;
        Ok(done > 0)
    }

    pub(super) async fn end_flow_impl(&self, token: &FlowToken) -> Result<bool> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached("DELETE FROM flows WHERE token_hash = ?1")?
                .execute([token.hash()])?)
        })?;
        Ok(done > 0)
    }

    pub(super) async fn end_flows_of_impl(&self, subject: &ObjectId) -> Result<u64> {
        let done = self.write(|conn| {
            Ok(conn
                .prepare_cached("DELETE FROM flows WHERE subject = ?1")?
                .execute([subject.to_string()])?)
        })?;
        Ok(done as u64)
    }
}

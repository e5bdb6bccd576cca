//! Gateways and their job queue on PostgreSQL. A job is claimed by one statement that picks the
//! oldest queued row with `FOR UPDATE SKIP LOCKED`: concurrent claimants (several portal
//! instances, several gateways) each lock a different job instead of queueing on the same one,
//! and a job is handed out once. The same statement clears the sealed secret and returns it.

use latchkey_types::Secret;
use sqlx::Row;
use time::OffsetDateTime;

use super::PostgresStore;
use crate::crypto::aad;
use crate::error::{Result, StoreError};
use crate::gateway::{
    ClaimedJob, FinishOutcome, Gateway, JOB_RETENTION, Job, JobState, NewJob, checked_kinds,
};
use crate::sqlite::ms;

const G: &str = "gateways";
const J: &str = "gateway_jobs";
const WHAT: &str = "gateway job secret";
/// A claimed job whose gateway never reports is given up this long after its deadline (as on
/// SQLite).
const CLAIM_GRACE_MS: i64 = 10 * 60 * 1000;

macro_rules! gateway_cols {
    () => {
        "id, name, credential_hash, created_at_ms, last_seen_at_ms, \
         capabilities::text AS capabilities, allowed_kinds::text AS allowed_kinds, revoked_at_ms"
    };
}

macro_rules! job_cols {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "kind, ",
            $p,
            "subject, ",
            $p,
            "target::text AS target, ",
            $p,
            "correlation_id, ",
            $p,
            "state, ",
            $p,
            "gateway_id, ",
            $p,
            "created_at_ms, ",
            $p,
            "expires_at_ms, ",
            $p,
            "claimed_at_ms, ",
            $p,
            "finished_at_ms, ",
            $p,
            "result::text AS result"
        )
    };
}

/// Equality of two byte strings in time independent of where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl PostgresStore {
    pub(super) async fn register_gateway_impl(
        &self,
        name: &str,
        credential_hash: &[u8],
        allowed_kinds: &[String],
        now: OffsetDateTime,
    ) -> Result<Gateway> {
        let allowed = checked_kinds(allowed_kinds)?;
        let allowed_json =
            serde_json::to_string(&allowed).map_err(|_| StoreError::Invalid("job kinds"))?;
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(StoreError::Invalid(
                "gateway name must be 1 to 64 characters",
            ));
        }
        if credential_hash.len() != 32 {
            return Err(StoreError::Invalid("credential hash must be 32 bytes"));
        }
        let id = latchkey_types::random::uuid()?.simple().to_string();
        // The partial unique index decides between concurrent registrations of one name.
        let inserted = sqlx::query(
            "INSERT INTO gateways (id, name, credential_hash, created_at_ms, allowed_kinds) \
             VALUES ($1, $2, $3, $4, $5::jsonb) \
             ON CONFLICT (name) WHERE revoked_at_ms IS NULL DO NOTHING",
        )
        .bind(&id)
        .bind(name)
        .bind(credential_hash)
        .bind(ms(now))
        .bind(allowed_json)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Invalid(
                "a gateway with this name is registered (revoke it first)",
            ));
        }
        Ok(Gateway {
            id,
            name: name.to_string(),
            created_at: now,
            last_seen_at: None,
            capabilities: vec![],
            allowed_kinds: allowed,
            revoked_at: None,
        })
    }

    pub(super) async fn authenticate_gateway_impl(
        &self,
        id: &str,
        credential_hash: &[u8],
    ) -> Result<Option<Gateway>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            gateway_cols!(),
            " FROM gateways WHERE id = $1 AND revoked_at_ms IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("credential_hash")?;
        if !same_bytes(&stored, credential_hash) {
            return Ok(None);
        }
        crate::rows::gateway(&row).map(Some)
    }

    pub(super) async fn gateways_impl(&self) -> Result<Vec<Gateway>> {
        sqlx::query(concat!(
            "SELECT ",
            gateway_cols!(),
            " FROM gateways ORDER BY name COLLATE \"C\", created_at_ms"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(crate::rows::gateway)
        .collect()
    }

    pub(super) async fn revoke_gateway_impl(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE gateways SET revoked_at_ms = $2 WHERE name = $1 AND revoked_at_ms IS NULL",
        )
        .bind(name.trim())
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    pub(super) async fn gateway_seen_impl(
        &self,
        id: &str,
        capabilities: &[String],
        now: OffsetDateTime,
    ) -> Result<()> {
        let caps =
            serde_json::to_string(capabilities).map_err(|_| StoreError::Invalid("capabilities"))?;
        sqlx::query(
            "UPDATE gateways SET last_seen_at_ms = $2, capabilities = $3::jsonb \
             WHERE id = $1 AND revoked_at_ms IS NULL",
        )
        .bind(id)
        .bind(ms(now))
        .bind(caps)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn enqueue_job_impl(&self, new: NewJob, now: OffsetDateTime) -> Result<Job> {
        if new.expires_at <= now {
            return Err(StoreError::Invalid("a job must expire in the future"));
        }
        let id = latchkey_types::random::uuid()?.simple().to_string();
        let secret = new
            .secret
            .as_ref()
            .map(|s| {
                self.cipher
                    .seal(s.expose().as_bytes(), &aad(J, &new.subject, &id), WHAT)
            })
            .transpose()?;
        let target_json =
            serde_json::to_string(&new.target).map_err(|_| StoreError::Invalid("job target"))?;
        sqlx::query(
            "INSERT INTO gateway_jobs (id, kind, subject, target, secret, correlation_id, state, \
             created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4::jsonb, $5, $6, 'queued', $7, $8)",
        )
        .bind(&id)
        .bind(new.kind.as_str())
        .bind(new.subject.to_string())
        .bind(target_json)
        .bind(secret)
        .bind(&new.correlation_id)
        .bind(ms(now))
        .bind(ms(new.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(Job {
            id,
            kind: new.kind,
            subject: new.subject,
            target: new.target,
            correlation_id: new.correlation_id,
            state: JobState::Queued,
            gateway_id: None,
            created_at: now,
            expires_at: new.expires_at,
            claimed_at: None,
            finished_at: None,
            result: None,
        })
    }

    pub(super) async fn claim_job_impl(
        &self,
        gateway_id: &str,
        kinds: &[String],
        now: OffsetDateTime,
    ) -> Result<Option<ClaimedJob>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let token = latchkey_types::random::uuid()?.simple().to_string();
        // `pick` locks one queued job no other transaction holds (SKIP LOCKED), the UPDATE claims
        // it and clears its secret; RETURNING hands back the sealed secret as it was before.
        let row = sqlx::query(concat!(
            "WITH pick AS (SELECT id, secret FROM gateway_jobs \
                 WHERE state = 'queued' AND expires_at_ms > $3 AND kind = ANY($4) \
                   AND kind IN (SELECT jsonb_array_elements_text(allowed_kinds) \
                                FROM gateways WHERE id = $1) \
                 ORDER BY created_at_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE gateway_jobs j SET state = 'claimed', gateway_id = $1, claim_token = $2, \
                 claimed_at_ms = $3, secret = NULL \
             FROM pick WHERE j.id = pick.id \
               AND EXISTS (SELECT 1 FROM gateways WHERE id = $1 AND revoked_at_ms IS NULL) \
             RETURNING ",
            job_cols!("j."),
            ", pick.secret AS secret"
        ))
        .bind(gateway_id)
        .bind(&token)
        .bind(ms(now))
        .bind(kinds)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let job = crate::rows::job(&row, now)?;
        let secret = row
            .try_get::<Option<Vec<u8>>, _>("secret")?
            .map(|blob| {
                self.cipher
                    .open(&blob, &aad(J, &job.subject, &job.id), WHAT)
            })
            .transpose()?
            .map(|bytes| {
                String::from_utf8(bytes.expose().clone())
                    .map(Secret::new)
                    .map_err(|_| StoreError::Corrupt {
                        table: J,
                        column: "secret",
                    })
            })
            .transpose()?;
        Ok(Some(ClaimedJob { job, secret }))
    }

    pub(super) async fn finish_job_impl(
        &self,
        id: &str,
        gateway_id: &str,
        succeeded: bool,
        result: &serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome> {
        let state = if succeeded { "succeeded" } else { "failed" };
        // A late report of a claimed job that was given up is still the truth about AD: recorded.
        // Two concurrent reports queue on the row lock; the second re-checks
        // `finished_at_ms IS NULL` and falls through to the comparison below.
        let n = sqlx::query(
            "UPDATE gateway_jobs SET state = $3, result = $4::jsonb, finished_at_ms = $5, \
             secret = NULL \
             WHERE id = $1 AND gateway_id = $2 AND state IN ('claimed', 'expired') \
               AND finished_at_ms IS NULL",
        )
        .bind(id)
        .bind(gateway_id)
        .bind(state)
        .bind(result.to_string())
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n > 0 {
            return Ok(FinishOutcome::Recorded);
        }
        let row = sqlx::query(
            "SELECT state, result::text AS result FROM gateway_jobs WHERE id = $1 AND gateway_id = $2",
        )
        .bind(id)
        .bind(gateway_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(FinishOutcome::NotFound);
        };
        let old_state: String = row.try_get("state")?;
        let old_result: Option<String> = row.try_get("result")?;
        let same = old_state == state
            && old_result
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
                .is_some_and(|r| &r == result);
        Ok(if same {
            FinishOutcome::AlreadyRecorded
        } else {
            FinishOutcome::Conflict
        })
    }

    pub(super) async fn job_impl(&self, id: &str, now: OffsetDateTime) -> Result<Option<Job>> {
        sqlx::query(concat!(
            "SELECT ",
            job_cols!(""),
            " FROM gateway_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| crate::rows::job(&r, now))
        .transpose()
    }

    pub(super) async fn job_counts_impl(&self) -> Result<Vec<crate::gateway::JobCount>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT kind, state, COUNT(*) FROM gateway_jobs GROUP BY kind, state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|(k, s, n)| crate::gateway::job_count(k, s, *n))
            .collect()
    }

    pub(super) async fn expire_jobs_impl(&self, now: OffsetDateTime) -> Result<u64> {
        let now = ms(now);
        let n = sqlx::query(
            "UPDATE gateway_jobs SET state = 'expired', secret = NULL \
             WHERE (state = 'queued' AND expires_at_ms <= $1) \
                OR (state = 'claimed' AND expires_at_ms + $2 <= $1)",
        )
        .bind(now)
        .bind(CLAIM_GRACE_MS)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // Belt and braces: no secret outlives its job's queue time.
        sqlx::query(
            "UPDATE gateway_jobs SET secret = NULL WHERE secret IS NOT NULL AND state <> 'queued'",
        )
        .execute(&self.pool)
        .await?;
        Ok(n)
    }

    pub(super) async fn claim_after_change_impl(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        // One statement decides: concurrent claimants queue on the row lock and the second
        // re-checks `after_change_at_ms IS NULL`, so only one updates the row.
        let n = sqlx::query(
            "UPDATE gateway_jobs SET after_change_at_ms = $2 \
             WHERE id = $1 AND state = 'succeeded' AND after_change_at_ms IS NULL",
        )
        .bind(id)
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Deletes jobs that ended (finished, or past their deadline unfinished) before
    /// `now - JOB_RETENTION`; part of `purge_expired`.
    pub(super) async fn purge_old_jobs(&self, now: OffsetDateTime) -> Result<u64> {
        let cutoff = ms(now - JOB_RETENTION);
        Ok(sqlx::query(
            "DELETE FROM gateway_jobs WHERE COALESCE(finished_at_ms, expires_at_ms) <= $1",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    pub(super) async fn set_gateway_kinds_impl(
        &self,
        name: &str,
        allowed_kinds: &[String],
    ) -> Result<Option<Vec<String>>> {
        let allowed = checked_kinds(allowed_kinds)?;
        if allowed.is_empty() {
            return Err(StoreError::Invalid("a gateway needs at least one job kind"));
        }
        let allowed_json =
            serde_json::to_string(&allowed).map_err(|_| StoreError::Invalid("job kinds"))?;
        // One statement: the locked row's old kinds are returned with the update, so "before"
        // is exactly what was replaced even with concurrent changes.
        let row = sqlx::query(
            "UPDATE gateways g SET allowed_kinds = $2::jsonb \
             FROM (SELECT id, allowed_kinds::text AS before FROM gateways \
                   WHERE name = $1 AND revoked_at_ms IS NULL FOR UPDATE) old \
             WHERE g.id = old.id RETURNING old.before",
        )
        .bind(name.trim())
        .bind(allowed_json)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let before: String = row.try_get("before")?;
        serde_json::from_str(&before)
            .map(Some)
            .map_err(|_| StoreError::Corrupt {
                table: G,
                column: "allowed_kinds",
            })
    }
}

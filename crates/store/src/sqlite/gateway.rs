//! Gateways and their job queue on SQLite. A job is claimed by one atomic `UPDATE ... WHERE
//! state = 'queued'` that stamps a fresh claim token; the claimant then reads its row by that
//! token and deletes the sealed secret.

use latchkey_types::Secret;
use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, ms};
use crate::crypto::aad;
use crate::error::{Result, StoreError};
use crate::gateway::{
    ClaimedJob, FinishOutcome, Gateway, JOB_RETENTION, Job, JobState, NewJob, checked_kinds,
};

const G: &str = "gateways";
const J: &str = "gateway_jobs";
const WHAT: &str = "gateway job secret";
/// A claimed job whose gateway never reports is given up this long after its deadline (the
/// gateway's LDAP operations are bounded far below it).
const CLAIM_GRACE_MS: i64 = 10 * 60 * 1000;

macro_rules! job_cols {
    () => {
        "id, kind, subject, target, correlation_id, state, gateway_id, created_at_ms, \
         expires_at_ms, claimed_at_ms, finished_at_ms, result"
    };
}

/// Equality of two byte strings in time independent of where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SqliteStore {
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
        let inserted = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "INSERT INTO gateways (id, name, credential_hash, created_at_ms, allowed_kinds) \
                     SELECT ?1, ?2, ?3, ?4, ?5 \
                     WHERE NOT EXISTS (SELECT 1 FROM gateways WHERE name = ?2 AND revoked_at_ms IS NULL)",
                )?
                .execute(params![id, name, credential_hash, ms(now), allowed_json])?)
        })?;
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
        self.write(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT * FROM gateways WHERE id = ?1 AND revoked_at_ms IS NULL")?;
            let mut rows = stmt.query([id])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            let stored: Vec<u8> = row.get("credential_hash")?;
            // Constant-time comparison of the hashes.
            if !same_bytes(&stored, credential_hash) {
                return Ok(None);
            }
            crate::rows::gateway(row).map(Some)
        })
    }

    pub(super) async fn gateways_impl(&self) -> Result<Vec<Gateway>> {
        self.write(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT * FROM gateways ORDER BY name, created_at_ms")?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(crate::rows::gateway(row)?);
            }
            Ok(out)
        })
    }

    pub(super) async fn revoke_gateway_impl(
        &self,
        name: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let n = self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE gateways SET revoked_at_ms = ?2 WHERE name = ?1 AND revoked_at_ms IS NULL",
                )?
                .execute(params![name.trim(), ms(now)])?)
        })?;
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
        self.write(|conn| {
            conn.prepare_cached(
                "UPDATE gateways SET last_seen_at_ms = ?2, capabilities = ?3 \
                 WHERE id = ?1 AND revoked_at_ms IS NULL",
            )?
            .execute(params![id, ms(now), caps])?;
            Ok(())
        })
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
                self.cipher()
                    .seal(s.expose().as_bytes(), &aad(J, &new.subject, &id), WHAT)
            })
            .transpose()?;
        let target =
            serde_json::to_string(&new.target).map_err(|_| StoreError::Invalid("job target"))?;
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO gateway_jobs (id, kind, subject, target, secret, correlation_id, state, \
                 created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8)",
            )?
            .execute(params![
                id,
                new.kind.as_str(),
                new.subject.to_string(),
                target,
                secret,
                new.correlation_id,
                ms(now),
                ms(new.expires_at),
            ])?;
            Ok(())
        })?;
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
        let kinds_json =
            serde_json::to_string(kinds).map_err(|_| StoreError::Invalid("job kinds"))?;
        let token = latchkey_types::random::uuid()?.simple().to_string();
        self.write(|conn| {
            // One statement decides: of two concurrent claimants only one matches
            // state = 'queued'.
            let claimed = conn
                .prepare_cached(
                    "UPDATE gateway_jobs SET state = 'claimed', gateway_id = ?1, claim_token = ?2, \
                     claimed_at_ms = ?3 \
                     WHERE id = (SELECT id FROM gateway_jobs WHERE state = 'queued' AND expires_at_ms > ?3 \
                                 AND kind IN (SELECT value FROM json_each(?4)) \
                                 AND kind IN (SELECT value FROM gateways, json_each(gateways.allowed_kinds) \
                                              WHERE gateways.id = ?1) \
                                 ORDER BY created_at_ms, id LIMIT 1) \
                       AND state = 'queued' \
                       AND EXISTS (SELECT 1 FROM gateways WHERE id = ?1 AND revoked_at_ms IS NULL)",
                )?
                .execute(params![gateway_id, token, ms(now), kinds_json])?;
            if claimed == 0 {
                return Ok(None);
            }
            let (job, secret) = {
                let mut stmt = conn.prepare_cached(concat!(
                    "SELECT ",
                    job_cols!(),
                    ", secret FROM gateway_jobs WHERE claim_token = ?1"
                ))?;
                let mut rows = stmt.query([&token])?;
                let row = rows.next()?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                let job = crate::rows::job(row, now)?;
                let secret: Option<Vec<u8>> = row.get("secret")?;
                (job, secret)
            };
            let secret = secret
                .map(|blob| {
                    self.cipher()
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
            // Taken: the sealed copy goes now (an expired-jobs sweep removes it too if this
            // fails).
            conn.prepare_cached("UPDATE gateway_jobs SET secret = NULL WHERE id = ?1")?
                .execute([&job.id])?;
            Ok(Some(ClaimedJob { job, secret }))
        })
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
        let text = result.to_string();
        self.write(|conn| {
            // A late report of a claimed job that was given up is still the truth about AD:
            // recorded.
            let n = conn
                .prepare_cached(
                    "UPDATE gateway_jobs SET state = ?3, result = ?4, finished_at_ms = ?5, secret = NULL \
                     WHERE id = ?1 AND gateway_id = ?2 AND state IN ('claimed', 'expired') \
                       AND finished_at_ms IS NULL",
                )?
                .execute(params![id, gateway_id, state, text, ms(now)])?;
            if n > 0 {
                return Ok(FinishOutcome::Recorded);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT state, result FROM gateway_jobs WHERE id = ?1 AND gateway_id = ?2",
            )?;
            let mut rows = stmt.query([id, gateway_id])?;
            let Some(row) = rows.next()? else {
                return Ok(FinishOutcome::NotFound);
            };
            let old_state: String = row.get("state")?;
            let old_result: Option<String> = row.get("result")?;
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
        })
    }

    pub(super) async fn job_impl(&self, id: &str, now: OffsetDateTime) -> Result<Option<Job>> {
        self.write(|conn| {
            let mut stmt = conn.prepare_cached(concat!(
                "SELECT ",
                job_cols!(),
                " FROM gateway_jobs WHERE id = ?1"
            ))?;
            let mut rows = stmt.query([id])?;
            rows.next()?.map(|r| crate::rows::job(r, now)).transpose()
        })
    }

    pub(super) async fn job_counts_impl(&self) -> Result<Vec<crate::gateway::JobCount>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT kind, state, COUNT(*) FROM gateway_jobs GROUP BY kind, state",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let (kind, state, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                out.push(crate::gateway::job_count(&kind, &state, n)?);
            }
            Ok(out)
        })
    }

    pub(super) async fn expire_jobs_impl(&self, now: OffsetDateTime) -> Result<u64> {
        let now = ms(now);
        self.write(|conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE gateway_jobs SET state = 'expired', secret = NULL \
                     WHERE (state = 'queued' AND expires_at_ms <= ?1) \
                        OR (state = 'claimed' AND expires_at_ms + ?2 <= ?1)",
                )?
                .execute([now, CLAIM_GRACE_MS])?;
            // Belt and braces: no secret outlives its job's queue time.
            conn.prepare_cached(
                "UPDATE gateway_jobs SET secret = NULL WHERE secret IS NOT NULL AND state <> 'queued'",
            )?
            .execute([])?;
            Ok(n as u64)
        })
    }

    pub(super) async fn claim_after_change_impl(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        self.write(|conn| {
            // One statement decides: of concurrent claimants only one finds the column NULL.
            let n = conn
                .prepare_cached(
                    "UPDATE gateway_jobs SET after_change_at_ms = ?2 \
                     WHERE id = ?1 AND state = 'succeeded' AND after_change_at_ms IS NULL",
                )?
                .execute(params![id, ms(now)])?;
            Ok(n > 0)
        })
    }

    /// Deletes jobs that ended (finished, or past their deadline unfinished) before
    /// `now - JOB_RETENTION`; part of `purge_expired`.
    pub(super) fn purge_old_jobs(conn: &rusqlite::Connection, now: OffsetDateTime) -> Result<u64> {
        let cutoff = ms(now - JOB_RETENTION);
        let n = conn
            .prepare_cached(
                "DELETE FROM gateway_jobs WHERE COALESCE(finished_at_ms, expires_at_ms) <= ?1",
            )?
            .execute([cutoff])?;
        Ok(n as u64)
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
        let name = name.trim().to_string();
        self.write(move |conn| {
            // IMMEDIATE: the kinds read as "before" are the ones replaced, also against another
            // process (the CLI) writing the same file.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let before: Option<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT allowed_kinds FROM gateways WHERE name = ?1 AND revoked_at_ms IS NULL",
                )?;
                let mut rows = stmt.query([&name])?;
                match rows.next()? {
                    Some(row) => Some(row.get(0)?),
                    None => None,
                }
            };
            let Some(before) = before else {
                return Ok(None);
            };
            let before: Vec<String> =
                serde_json::from_str(&before).map_err(|_| StoreError::Corrupt {
                    table: G,
                    column: "allowed_kinds",
                })?;
            tx.prepare_cached(
                "UPDATE gateways SET allowed_kinds = ?2 WHERE name = ?1 AND revoked_at_ms IS NULL",
            )?
            .execute(params![name, allowed_json])?;
            tx.commit()?;
            Ok(Some(before))
        })
    }
}

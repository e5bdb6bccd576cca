//! What the self-service flows ask of the gateway: is one connected that can do this, and "do
//! this, and tell me within a bounded time what happened".

use latchkey_jobs::{FailureReason, JobKind, JobOutcome, JobReport, Target};
use latchkey_store::{JobState, NewJob, StoreError};
use latchkey_types::{ObjectId, Secret};

use super::{CONNECTED_WINDOW, JOB_TTL, RESULT_WAIT};
use crate::app::Portal;

/// How the wait for a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Succeeded,
    Failed {
        reason: FailureReason,
        detail: String,
    },
    /// Not finished within [`RESULT_WAIT`]: it may still happen (claimed, or claimable until its
    /// deadline). The page says so.
    InProgress,
    /// No gateway took it before its deadline: it will not happen.
    Expired,
}

/// How often a waiting page re-reads its job. A result recorded while a page waits is seen by
/// that page within one period (plus one store read).
pub const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(150);

/// Whether a gateway that declared `kind` polled recently.
pub async fn connected(portal: &Portal, kind: JobKind) -> Result<bool, StoreError> {
    let now = portal.services.clock.now();
    Ok(portal.services.store.gateways().await?.iter().any(|g| {
        // Allowed by the operator and declared at the last poll: what the gateway says of
        // itself alone never routes a job to it.
        g.is_connected(now, CONNECTED_WINDOW) && g.serves(kind.as_str())
    }))
}

/// A job to run.
pub struct Request {
    pub kind: JobKind,
    pub subject: ObjectId,
    pub target: Target,
    pub new_password: Option<Secret<String>>,
    pub must_change: bool,
    pub correlation_id: String,
}

/// Queues the job and waits up to [`RESULT_WAIT`] for its result. Returns the job id too (for
/// the audit trail).
pub async fn run(portal: &Portal, request: Request) -> Result<(String, Waited), StoreError> {
    run_with(portal, request, serde_json::Map::new()).await
}

/// [`run`], with `extra` (non-secret) fields stored in the job target beside the account, for
/// the portal's own use when the result arrives after the page stopped waiting.
pub async fn run_with(
    portal: &Portal,
    request: Request,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<(String, Waited), StoreError> {
    let s = &portal.services;
    let now = s.clock.now();
    let mut target =
        serde_json::to_value(&request.target).map_err(|_| StoreError::Invalid("job target"))?;
    target["must_change"] = serde_json::Value::Bool(request.must_change);
    for (k, v) in extra {
        target[k] = v;
    }
    let job = s
        .store
        .enqueue_job(
            NewJob {
                kind: request.kind.as_str().to_string(),
                subject: request.subject,
                target,
                secret: request.new_password,
                correlation_id: request.correlation_id,
                expires_at: now + JOB_TTL,
            },
            now,
        )
        .await?;
    let deadline = tokio::time::Instant::now() + RESULT_WAIT;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let current = s.store.job(&job.id, s.clock.now()).await?;
        let Some(current) = current else {
            return Ok((job.id, Waited::Expired));
        };
        match current.state {
            JobState::Succeeded => return Ok((job.id, Waited::Succeeded)),
            JobState::Failed => {
                let report: Option<JobReport> =
                    current.result.and_then(|r| serde_json::from_value(r).ok());
                let (reason, detail) = match report.map(|r| r.outcome) {
                    Some(JobOutcome::Failed { reason, detail }) => (reason, detail),
                    _ => (FailureReason::Other, String::new()),
                };
                return Ok((job.id, Waited::Failed { reason, detail }));
            }
            JobState::Expired => return Ok((job.id, Waited::Expired)),
            JobState::Queued | JobState::Claimed => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((job.id, Waited::InProgress));
        }
    }
}

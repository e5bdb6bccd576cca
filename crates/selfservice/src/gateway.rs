//! What the self-service flows ask of the on-premises gateway: is one connected that can do
//! this, "do this, and tell me within a bounded time what happened", a synced user's reset
//! through it, and finishing a reset whose result arrived after the page stopped waiting.
//!
//! The password of a reset job lives in the store only sealed, until the gateway takes it; it is
//! never logged or audited. Who runs the steps after a gateway's change is decided by one job
//! state transition (the store's `claim_after_change`): the waiting page and the result handler
//! of any portal instance never both run them.

use std::time::Duration;

use latchkey_jobs::{FailureReason, JobKind, JobOutcome, JobReport};
use latchkey_notify::{ContactAction, Recipient};
use latchkey_store::{AfterChange, Channel, Job, JobState, JobTarget, NewJob, Outcome, StoreError};
use latchkey_types::{ObjectId, Secret};

use crate::SelfService;
use crate::after_change::after_change_of;
use crate::flow::FlowData;
use crate::security_contacts::{self, Told};

/// A gateway that polled within this window counts as connected (it polls at least every
/// [`latchkey_jobs::MAX_WAIT_SECONDS`] seconds).
pub const CONNECTED_WINDOW: Duration = Duration::from_secs(90);
/// A job not claimed within this time is not handed out any more.
pub const JOB_TTL: Duration = Duration::from_secs(120);
/// How long the user's page waits for the gateway's result before saying it is in progress (the
/// default of [`SelfService::gateway_wait`]).
pub const RESULT_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting page re-reads its job. A result recorded while a page waits is seen by
/// that page within one period (plus one store read).
pub const POLL_EVERY: Duration = Duration::from_millis(150);
/// Audit event of a reset whose gateway job outlived the page's wait.
pub const PENDING_EVENT: &str = "reset.pending";

/// How the wait for a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Succeeded,
    Failed {
        reason: FailureReason,
        detail: String,
    },
    /// Not finished within the wait: it may still happen (claimed, or claimable until its
    /// deadline).
    InProgress,
    /// No gateway took it before its deadline: it will not happen.
    Expired,
}

/// Whether a gateway that declared `kind` polled recently.
pub async fn connected(s: &SelfService, kind: JobKind) -> Result<bool, StoreError> {
    let now = s.clock.now();
    Ok(s.store.gateways().await?.iter().any(|g| {
        // Allowed by the operator and declared at the last poll: what the gateway says of
        // itself alone never routes a job to it.
        g.is_connected(now, CONNECTED_WINDOW) && g.serves(kind.as_str())
    }))
}

/// A job to run.
pub struct Request {
    pub kind: JobKind,
    pub subject: ObjectId,
    pub target: JobTarget,
    pub new_password: Option<Secret<String>>,
    pub correlation_id: String,
}

/// The channel a notice goes to, as a job keeps it.
pub(crate) fn channel(r: &Recipient) -> Channel {
    match r {
        Recipient::Email(e) => Channel::Email(e.clone()),
        Recipient::Sms(p) => Channel::Sms(p.clone()),
    }
}

fn recipient(c: Channel) -> Recipient {
    match c {
        Channel::Email(e) => Recipient::Email(e),
        Channel::Sms(p) => Recipient::Sms(p),
    }
}

/// Queues the job and waits up to [`SelfService::gateway_wait`] for its result. Returns the job
/// id too (for the audit trail).
pub async fn run(s: &SelfService, request: Request) -> Result<(String, Waited), StoreError> {
    let now = s.clock.now();
    let job = s
        .store
        .enqueue_job(
            NewJob {
                kind: request.kind,
                subject: request.subject,
                target: request.target,
                secret: request.new_password,
                correlation_id: request.correlation_id,
                expires_at: now + JOB_TTL,
            },
            now,
        )
        .await?;
    let deadline = tokio::time::Instant::now() + s.gateway_wait;
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

/// Whether the policy that matched this flow allows privileged accounts; the gateway refuses an
/// `adminCount=1` account otherwise. A policy gone from the set: not allowed.
pub fn allow_privileged(s: &SelfService, data: &FlowData) -> bool {
    data.policy
        .as_deref()
        .and_then(|n| s.policies().get(n).map(|p| p.allow_privileged))
        .unwrap_or(false)
}

/// Whether this caller is the one to run the steps after the change of `job`: the store's
/// one conditional update that marks the job ([`latchkey_store::Store::claim_after_change`]),
/// so the waiting page and the result handler (of any portal instance) never both run them. On
/// a store error: nobody runs them twice, so `false`.
pub(crate) async fn claim_after_change(s: &SelfService, job: &str) -> bool {
    match s.store.claim_after_change(job, s.clock.now()).await {
        Ok(won) => won,
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot claim the after-change steps of a job");
            false
        }
    }
}

/// How long the result handler leaves the steps after the change to a page that may still be
/// waiting: that page sees the recorded result within one poll, and only the side that runs the
/// steps knows how the sign-out went, so the page can then say it to the user itself. Three
/// polls: one full period, the page's store read, and slack for a busy machine. This only
/// decides who is *likely* to win; the claim alone decides who runs the steps.
const PAGE_GRACE: Duration = POLL_EVERY.saturating_mul(3);

/// Called when a reset job's success is recorded: unless the waiting page already did, void
/// codes and flows, notify the channels known before the change, sign out per policy, tell the
/// policy's security contacts, and write the reset's audit event.
pub async fn reported(s: &SelfService, job: &Job) {
    if job.kind != JobKind::Reset {
        return;
    }
    // A page still waiting on this job (its wait, `gateway_wait` from the queueing, is not over)
    // sees the result within one poll and, if it claims first, tells the user the whole
    // outcome, sign-out included. A page that already said "in progress" is not waiting: no
    // pause then.
    if s.clock.now() < job.created_at + s.gateway_wait + POLL_EVERY {
        tokio::time::sleep(PAGE_GRACE).await;
    }
    if !claim_after_change(s, &job.id).await {
        return;
    }
    // A job without the record (queued by an older portal): the safe defaults.
    let after = job.target.after_change.clone().unwrap_or(AfterChange {
        revoke_sessions: true,
        lang: None,
        notify: Vec::new(),
        policy: None,
        user: None,
    });
    let reason = format!(
        "on-premises gateway job {}: password set in AD (finished on the gateway's report, not by the page)",
        job.id
    );
    let audited = crate::flow::audit(
        s,
        &job.correlation_id,
        Some(job.subject),
        "reset",
        None,
        Outcome::Success,
        Some(&reason),
    )
    .await;
    if audited.is_err() {
        tracing::error!("reset: password changed but the audit event could not be written");
    }
    let channels = after.notify.into_iter().map(recipient).collect();
    after_change_of(
        s,
        &job.subject,
        &job.correlation_id,
        after.lang,
        channels,
        after.revoke_sessions,
    )
    .await;
    // The policy's security contacts hear of it as after any reset (the policy as it is now: a
    // contact added or removed since the job was queued is honoured).
    let Some(name) = after.policy else { return };
    let set = s.policies();
    let Some(policy) = set.get(&name) else {
        tracing::warn!(
            policy = %name,
            "reset: the policy of a late gateway reset is gone; its security contacts are not told"
        );
        return;
    };
    let user = after
        .user
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| job.subject.to_string());
    let told = Told {
        action: ContactAction::PasswordReset,
        subject: &job.subject,
        user: &user,
        correlation_id: &job.correlation_id,
        by: None,
    };
    security_contacts::tell_about(s, policy, told).await;
}

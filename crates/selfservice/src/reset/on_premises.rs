//! A synced user's reset through the on-premises gateway, for portals without the delegated
//! writeback credential (`latchkey delegate`): when a gateway that may reset (`[jobs] reset =
//! true`) is connected, the password the user chose (already checked against the policy) goes
//! to it in a reset job, and the flow reports what AD said. The password lives in the store only
//! sealed, until the gateway takes it; it is never logged or audited.

use latchkey_jobs::{FailureReason, JobKind, Target};
use latchkey_notify::Recipient;
use latchkey_store::{AfterChange, JobTarget, Outcome};
use latchkey_types::Secret;

use super::changed;
use super::outcome::{ResetOutcome, WritePath};
use crate::SelfService;
use crate::act::Acting;
use crate::after_change::known_channels;
use crate::gateway::{
    PENDING_EVENT, Request, Waited, allow_privileged, channel, claim_after_change, connected, run,
};

/// A synced user's reset without the delegated writeback credential: through a connected
/// gateway that may reset, or [`ResetOutcome::NoPath`] when none is connected. Settles the
/// claim: given back when nothing reached AD, ended otherwise.
pub(super) async fn reset(
    s: &SelfService,
    acting: Acting,
    password: Secret<String>,
) -> ResetOutcome {
    match connected(s, JobKind::Reset).await {
        Ok(true) => {}
        Ok(false) => {
            let reason = "synced user: no writeback path configured";
            let recorded = acting.audit(s, Outcome::Denied, reason).await;
            acting.finish(s).await;
            return ResetOutcome::NoPath(recorded);
        }
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot read the gateways");
            return ResetOutcome::TryAgain(acting.try_again(s, Err(e)).await);
        }
    }
    // The on-premises account as Entra Connect synced it, as the claim read it just now.
    let user = acting.account.clone();
    let Some(sam) = user.on_premises_sam_account_name.filter(|n| !n.is_empty()) else {
        let reason = "synced user without onPremisesSamAccountName";
        let recorded = acting.audit(s, Outcome::Error, reason).await;
        acting.finish(s).await;
        return ResetOutcome::OnPremisesFailed(recorded);
    };
    let target = Target {
        sam_account_name: sam,
        domain: user.on_premises_domain_name,
        allow_privileged: allow_privileged(s, &acting.current.data),
    };
    queue_and_wait(s, acting, target, password).await
}

/// Queues the reset job (its intent audited first) and settles the claim by what the wait came
/// to.
async fn queue_and_wait(
    s: &SelfService,
    acting: Acting,
    account: Target,
    password: Secret<String>,
) -> ResetOutcome {
    let data = &acting.current.data;
    // Channels known before the change, to tell the user afterwards.
    let channels = known_channels(s, &acting.subject(), acting.mail().as_ref()).await;
    let request = Request {
        kind: JobKind::Reset,
        subject: acting.subject(),
        target: JobTarget {
            account,
            must_change: false,
            after_change: Some(AfterChange {
                revoke_sessions: acting.policy.revoke_sessions,
                lang: data.message_language(),
                notify: channels.iter().map(channel).collect(),
                policy: data.policy.clone(),
                user: Some(data.user_name()),
            }),
        },
        new_password: Some(password),
        correlation_id: data.correlation_id.clone(),
    };
    let label = WritePath::Gateway.label();
    let started = acting.audit(s, Outcome::Started, label).await;
    if started.is_err() {
        return ResetOutcome::TryAgain(acting.try_again(s, started).await);
    }
    let (job, waited) = match run(s, request).await {
        Ok(r) => r,
        Err(e) => {
            // The job may be queued: this verification is spent.
            tracing::error!(error = %e, "reset: cannot queue the gateway job");
            acting.finish(s).await;
            return ResetOutcome::Failed(Ok(()));
        }
    };
    match waited {
        Waited::Succeeded => {
            // The steps after the change (sign-out above all) get a Graph budget of their own:
            // the wait for the gateway may have used up the request's.
            let steps = succeeded(s, acting, &job, channels);
            latchkey_graph::deadline::fresh(s.graph_budget, steps).await
        }
        Waited::Failed { reason, detail } => {
            let outcome = if reason == FailureReason::DirectoryUnavailable {
                Outcome::Error
            } else {
                Outcome::Failure
            };
            let why = format!("{label} {job}: {}: {detail}", reason.as_str());
            let recorded = acting.audit(s, outcome, &why).await;
            if reason == FailureReason::PasswordPolicy && recorded.is_ok() {
                // AD refused this password and changed nothing: another one may be tried.
                acting.release(s).await;
                return ResetOutcome::OnPremisesPolicy;
            }
            acting.finish(s).await;
            ResetOutcome::OnPremisesFailed(recorded)
        }
        Waited::InProgress => {
            // Not the reset's own event: that is written once, when the result arrives
            // ([`reported`]), with the steps after the change.
            let why = format!("{label} {job}: queued, no result within the wait");
            let recorded = acting
                .audit_as(s, PENDING_EVENT, None, Outcome::Success, &why)
                .await;
            if let Err(e) = recorded {
                // The `started` event names the attempt; the job's own record names the rest.
                tracing::error!(error = %e, "reset: cannot audit a pending gateway reset");
            }
            acting.finish(s).await;
            ResetOutcome::Pending
        }
        Waited::Expired => {
            // Past its deadline: most likely never taken, but a job claimed and then expired may
            // still be reported, so this verification is spent.
            let why = format!("{label} {job}: no gateway took it in time");
            let recorded = acting.audit(s, Outcome::Error, &why).await;
            acting.finish(s).await;
            ResetOutcome::OnPremisesFailed(recorded)
        }
    }
}

/// The gateway reported success while the page waited: the steps after the change run here
/// unless the result handler claimed them first (then it wrote the reset's audit event and told
/// everyone; the page only shows the result).
async fn succeeded(
    s: &SelfService,
    acting: Acting,
    job: &str,
    channels: Vec<Recipient>,
) -> ResetOutcome {
    if claim_after_change(s, job).await {
        let why = format!("on-premises gateway job {job}: password set in AD");
        return changed::succeeded(s, acting, channels, WritePath::Gateway, &why).await;
    }
    let notified = !channels.is_empty();
    acting.finish(s).await;
    ResetOutcome::Changed {
        path: WritePath::Gateway,
        sign_out: None,
        notified,
        risk_cleared: false,
    }
}

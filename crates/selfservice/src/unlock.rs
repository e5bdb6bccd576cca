//! Unlock for a fully verified, claimed flow. A synced user's account is unlocked in on-premises
//! AD through a connected gateway ([`crate::gateway`]); for every user a risk flag of Identity
//! Protection is dismissed. A cloud account's smart lockout clears by itself.

use latchkey_jobs::{FailureReason, JobKind, Target};
use latchkey_notify::ContactAction;
use latchkey_store::{JobTarget, Outcome};

use crate::SelfService;
use crate::act::{Acting, Recorded};
use crate::gateway::{self, Waited};

/// What the user is told about the unlock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockResult {
    /// A cloud account: smart lockout clears by itself.
    Cloud,
    /// Unlocked in on-premises AD.
    OnPremisesDone,
    /// The gateway job outlived the wait: it may still happen.
    OnPremisesPending,
    /// No gateway that may unlock is connected, or none took the job in time.
    OnPremisesUnavailable,
    /// AD (through the gateway) did not unlock it.
    OnPremisesFailed,
    /// The gateway may not unlock this account (rights, a privileged account).
    OnPremisesNotPermitted,
}

/// What became of an unlock.
#[derive(Debug)]
pub enum UnlockOutcome {
    /// The flow ended with this result; `risk_cleared` when a risk flag was dismissed.
    /// `recorded` is the audit record's fate.
    Done {
        result: UnlockResult,
        risk_cleared: bool,
        recorded: Recorded,
    },
    /// Released: nothing was queued or changed (a fault, or the intent could not be recorded).
    TryAgain(Recorded),
    /// Ended: a gateway job may exist but its state is unknown.
    Unknown,
}

/// Unlocks the account of a claimed flow; settles the claim.
pub async fn unlock(s: &SelfService, acting: Acting) -> UnlockOutcome {
    // Once claimed, the change and the steps after it get a Graph budget of their own: they
    // must not be cut short by what the checks before them spent.
    latchkey_graph::deadline::fresh(s.graph_budget, unlock_claimed(s, acting)).await
}

async fn unlock_claimed(s: &SelfService, acting: Acting) -> UnlockOutcome {
    let subject = acting.subject();
    let started = acting.audit(s, Outcome::Started, "unlock requested").await;
    if started.is_err() {
        return UnlockOutcome::TryAgain(acting.try_again(s, started).await);
    }
    // On-premises first: when nothing could be queued, nothing has changed yet (not even the
    // risk flag below), so the verification may be used again.
    let on_premises = if acting.current.data.synced {
        match on_premises(s, &acting).await {
            OnPremises::Answer(result, outcome, reason) => Some((result, outcome, reason)),
            OnPremises::NotQueued => {
                let reason = "gateway: nothing queued";
                let recorded = acting.audit(s, Outcome::Error, reason).await;
                return UnlockOutcome::TryAgain(acting.try_again(s, recorded).await);
            }
            // A job may exist: this verification is spent.
            OnPremises::Unknown => {
                let reason = "gateway job: state unknown";
                if let Err(e) = acting.audit(s, Outcome::Error, reason).await {
                    tracing::error!(error = %e, "unlock: cannot audit an unknown job state");
                }
                acting.finish(s).await;
                return UnlockOutcome::Unknown;
            }
        }
    } else {
        None
    };
    let dir = &s.directory;
    // A budget of its own: the gateway's wait above may have taken most of the claim's.
    let dismissal = async {
        match dir.is_at_risk(&subject).await {
            Ok(true) => dir.dismiss_risk(&subject).await.is_ok(),
            // Identity Protection needs Entra ID P2 and is throttled hard; not knowing is not
            // fatal.
            Ok(false) | Err(_) => false,
        }
    };
    let risk_cleared = latchkey_graph::deadline::fresh(s.graph_budget, dismissal).await;
    let (result, outcome, reason) = match on_premises {
        Some(answer) => answer,
        None if risk_cleared => (
            UnlockResult::Cloud,
            Outcome::Success,
            "risk dismissed".to_string(),
        ),
        None => (
            UnlockResult::Cloud,
            Outcome::Success,
            "cloud lockout clears by itself".to_string(),
        ),
    };
    let recorded = acting.audit(s, outcome, &reason).await;
    if outcome == Outcome::Success {
        crate::security_contacts::tell(
            s,
            &acting.policy,
            ContactAction::AccountUnlock,
            &subject,
            &acting.current.data,
        )
        .await;
    }
    // One verification, one change: the flow ends whatever the outcome.
    acting.finish(s).await;
    UnlockOutcome::Done {
        result,
        risk_cleared,
        recorded,
    }
}

/// What the on-premises unlock came to.
enum OnPremises {
    /// (result, audit outcome, audit reason).
    Answer(UnlockResult, Outcome, String),
    /// A fault before any job was queued: nothing happened.
    NotQueued,
    /// A fault after the job may have been queued.
    Unknown,
}

/// Unlock in on-premises AD through the gateway.
async fn on_premises(s: &SelfService, acting: &Acting) -> OnPremises {
    match gateway::connected(s, JobKind::Unlock).await {
        Ok(true) => {}
        Ok(false) => {
            return OnPremises::Answer(
                UnlockResult::OnPremisesUnavailable,
                Outcome::Denied,
                "on-premises unlock needs the gateway: none connected".into(),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "unlock: cannot read the gateways");
            return OnPremises::NotQueued;
        }
    }
    // The on-premises account as Entra Connect synced it, read now (not from the flow), so a
    // rename since identification is followed.
    let user = match s.directory.user(&acting.subject()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "unlock: cannot read the user");
            return OnPremises::NotQueued;
        }
    };
    let Some(sam) = user.on_premises_sam_account_name.filter(|n| !n.is_empty()) else {
        return OnPremises::Answer(
            UnlockResult::OnPremisesFailed,
            Outcome::Error,
            "synced user without onPremisesSamAccountName".into(),
        );
    };
    let request = gateway::Request {
        kind: JobKind::Unlock,
        subject: acting.subject(),
        target: JobTarget {
            account: Target {
                sam_account_name: sam,
                domain: user.on_premises_domain_name,
                allow_privileged: gateway::allow_privileged(s, &acting.current.data),
            },
            must_change: false,
            after_change: None,
        },
        new_password: None,
        correlation_id: acting.current.data.correlation_id.clone(),
    };
    let (job, waited) = match gateway::run(s, request).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "unlock: cannot queue the gateway job");
            return OnPremises::Unknown;
        }
    };
    let (result, outcome, reason) = match waited {
        Waited::Succeeded => (
            UnlockResult::OnPremisesDone,
            Outcome::Success,
            format!("gateway job {job}: unlocked on-premises"),
        ),
        Waited::Failed { reason, detail } => (
            match reason {
                FailureReason::InsufficientRights | FailureReason::NotAllowed => {
                    UnlockResult::OnPremisesNotPermitted
                }
                _ => UnlockResult::OnPremisesFailed,
            },
            if reason == FailureReason::DirectoryUnavailable {
                Outcome::Error
            } else {
                Outcome::Failure
            },
            format!("gateway job {job}: {}: {detail}", reason.as_str()),
        ),
        Waited::InProgress => (
            UnlockResult::OnPremisesPending,
            Outcome::Success,
            format!("gateway job {job}: queued, no result within the wait"),
        ),
        Waited::Expired => (
            UnlockResult::OnPremisesUnavailable,
            Outcome::Error,
            format!("gateway job {job}: no gateway took it in time"),
        ),
    };
    OnPremises::Answer(result, outcome, reason)
}

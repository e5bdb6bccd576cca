//! Unlock for a fully verified, claimed flow. A synced user's account is unlocked in on-premises
//! AD through a connected gateway ([`crate::gateway`]). A cloud account has no unlock operation in
//! Graph: Entra's smart lockout ends by itself after the tenant's lockout duration, and a new
//! password ends it at once — so the claim is given back ([`UnlockOutcome::NothingToUnlock`]) and
//! the user may still choose a new password with the same verification. Where the policy says so
//! (`dismiss_risk`), an Identity Protection risk flag is dismissed: that is a change, and it
//! spends the verification.

use latchkey_jobs::{FailureReason, JobKind, Target};
use latchkey_notify::ContactAction;
use latchkey_store::{JobTarget, Outcome};

use crate::SelfService;
use crate::act::{Acting, Recorded};
use crate::gateway::{self, Waited};

/// The tenant's smart lockout, as Entra applies it to cloud accounts ("Password Rule Settings";
/// Entra's defaults, 10 failures and 60 seconds, when the tenant set none or it cannot be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudLockout {
    pub threshold: u32,
    pub duration_seconds: u32,
}

/// What the user is told about the unlock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockResult {
    /// A cloud account whose risk flag was dismissed; smart lockout clears by itself.
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
    /// A cloud account with nothing the portal can change: the claim was given back, so the same
    /// verification may still set a new password (which ends a lockout at once).
    NothingToUnlock {
        lockout: CloudLockout,
        recorded: Recorded,
    },
    /// Released: nothing was queued or changed (a fault, or the intent could not be recorded).
    TryAgain(Recorded),
    /// Released: too many unlock requests on this flow (or they could not be counted).
    Throttled(crate::flow::Refusal),
    /// Ended: a gateway job may exist but its state is unknown.
    Unknown,
}

/// Unlocks the account of a claimed flow; settles the claim.
pub async fn unlock(s: &SelfService, acting: Acting) -> UnlockOutcome {
    let flow_id = acting.current.flow.id.to_string();
    let attempts = s.limits.unlock_attempts();
    if let Err(refusal) = crate::flow::hit(s, "unlock:flow", &flow_id, &attempts).await {
        acting.release(s).await;
        return UnlockOutcome::Throttled(refusal);
    }
    // Once claimed, the change and the steps after it get a Graph budget of their own: they
    // must not be cut short by what the checks before them spent.
    latchkey_graph::deadline::fresh(s.graph_budget, unlock_claimed(s, acting)).await
}

/// Dismisses the user's risk flag when Identity Protection has one; whether it did.
async fn dismiss_if_risky(s: &SelfService, subject: &latchkey_types::ObjectId) -> bool {
    let dir = &s.directory;
    // A budget of its own: a gateway's wait before it may have taken most of the claim's.
    let dismissal = async {
        match dir.is_at_risk(subject).await {
            Ok(true) => dir.dismiss_risk(subject).await.is_ok(),
            // Identity Protection needs Entra ID P2 and is throttled hard; not knowing is not
            // fatal.
            Ok(false) | Err(_) => false,
        }
    };
    latchkey_graph::deadline::fresh(s.graph_budget, dismissal).await
}

/// Dismisses a risk flag after a password change, when the policy says so; audited. Whether a
/// flag was dismissed.
pub async fn dismiss_after_change(s: &SelfService, acting: &Acting) -> bool {
    if !acting.policy.dismiss_risk {
        return false;
    }
    let cleared = dismiss_if_risky(s, &acting.subject()).await;
    if cleared
        && let Err(e) = acting
            .audit_as(
                s,
                "risk.dismiss",
                None,
                Outcome::Success,
                "after the password change",
            )
            .await
    {
        tracing::error!(error = %e, "risk dismissed but not audited");
    }
    cleared
}

/// A cloud account: there is no unlock in Graph. A risk flag is dismissed when the policy says
/// so (a change: recorded as started first, and the flow ends whatever came of it); otherwise
/// nothing changes and the claim is given back.
async fn cloud(s: &SelfService, acting: Acting) -> UnlockOutcome {
    let subject = acting.subject();
    let tenant = crate::password::tenant_rules(s).await;
    let lockout = CloudLockout {
        threshold: tenant.settings.lockout_threshold,
        duration_seconds: tenant.settings.lockout_duration_seconds,
    };
    let at_risk = acting.policy.dismiss_risk
        && latchkey_graph::deadline::fresh(s.graph_budget, s.directory.is_at_risk(&subject))
            .await
            // Identity Protection needs Entra ID P2 and is throttled hard: not knowing is no risk.
            .unwrap_or(false);
    if at_risk {
        let event = "risk.dismiss";
        let started = acting
            .audit_as(
                s,
                event,
                None,
                Outcome::Started,
                "at the user's unlock request",
            )
            .await;
        if started.is_err() {
            return UnlockOutcome::TryAgain(acting.try_again(s, started).await);
        }
        let dismissal = s.directory.dismiss_risk(&subject);
        let dismissed = latchkey_graph::deadline::fresh(s.graph_budget, dismissal).await;
        // An error after the request went out may still have dismissed it: the verification
        // is spent either way.
        let (outcome, reason) = match &dismissed {
            Ok(()) => (Outcome::Success, "cloud account: risk flag dismissed"),
            Err(_) => (Outcome::Error, "risk dismissal: outcome unknown"),
        };
        let recorded = acting.audit_as(s, event, None, outcome, reason).await;
        if dismissed.is_ok() {
            acting.tell_contacts(s, ContactAction::AccountUnlock).await;
        }
        acting.finish(s).await;
        return match dismissed {
            Ok(()) => UnlockOutcome::Done {
                result: UnlockResult::Cloud,
                risk_cleared: true,
                recorded,
            },
            Err(_) => UnlockOutcome::Unknown,
        };
    }
    // Not an unlock (reports count only real ones): recorded as refused, with why.
    let reason = "cloud account: smart lockout ends by itself; nothing changed";
    let recorded = acting.audit(s, Outcome::Denied, reason).await;
    acting.release(s).await;
    UnlockOutcome::NothingToUnlock { lockout, recorded }
}

async fn unlock_claimed(s: &SelfService, acting: Acting) -> UnlockOutcome {
    if !acting.synced() {
        return cloud(s, acting).await;
    }
    let subject = acting.subject();
    let started = acting.audit(s, Outcome::Started, "unlock requested").await;
    if started.is_err() {
        return UnlockOutcome::TryAgain(acting.try_again(s, started).await);
    }
    // On-premises first: when nothing could be queued, nothing has changed yet (not even the
    // risk flag below), so the verification may be used again.
    let (result, outcome, reason) = match on_premises(s, &acting).await {
        OnPremises::Answer(result, outcome, reason) => (result, outcome, reason),
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
    };
    let risk_cleared = acting.policy.dismiss_risk && dismiss_if_risky(s, &subject).await;
    let recorded = acting.audit(s, outcome, &reason).await;
    if outcome == Outcome::Success {
        acting.tell_contacts(s, ContactAction::AccountUnlock).await;
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
pub enum OnPremises {
    /// (result, audit outcome, audit reason).
    Answer(UnlockResult, Outcome, String),
    /// A fault before any job was queued: nothing happened.
    NotQueued,
    /// A fault after the job may have been queued.
    Unknown,
}

/// Unlock in on-premises AD through the gateway, for a claimed self-service flow.
async fn on_premises(s: &SelfService, acting: &Acting) -> OnPremises {
    let allow_privileged = gateway::allow_privileged(s, &acting.current.data);
    let correlation_id = acting.current.data.correlation_id.clone();
    unlock_on_premises(s, &acting.account, allow_privileged, correlation_id).await
}

/// Unlocks `user`'s on-premises account through a connected gateway that may unlock, waiting
/// the bounded time for its answer (the helpdesk's unlock of a verified caller uses it too).
/// `user` is the account as Entra Connect synced it, read by the caller in this request (not
/// from the flow), so a rename since identification is followed. `allow_privileged`: the job
/// may unlock an account with `adminCount=1` (the policy allows privileged accounts).
pub async fn unlock_on_premises(
    s: &SelfService,
    user: &latchkey_graph::User,
    allow_privileged: bool,
    correlation_id: String,
) -> OnPremises {
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
    let subject = user.id;
    let Some(sam) = user
        .on_premises_sam_account_name
        .clone()
        .filter(|n| !n.is_empty())
    else {
        return OnPremises::Answer(
            UnlockResult::OnPremisesFailed,
            Outcome::Error,
            "synced user without onPremisesSamAccountName".into(),
        );
    };
    let request = gateway::Request {
        kind: JobKind::Unlock,
        subject,
        target: JobTarget {
            account: Target {
                sam_account_name: sam,
                domain: user.on_premises_domain_name.clone(),
                allow_privileged,
            },
            must_change: false,
            after_change: None,
        },
        new_password: None,
        correlation_id,
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

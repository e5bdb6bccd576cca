//! The one change a verification authorizes (docs/architecture.md, "The flow state machine").
//!
//! A fully verified flow acts once. [`claim`] moves it from `Verified` (or `Retry`) to `Acting`
//! with one conditional update in the store *before* anything changes, so of concurrent requests
//! on one flow (any portal instance) exactly one goes on; the others get
//! [`ClaimError::AlreadyUsed`] and change nothing. An [`Acting`] flow leaves that step one way
//! only, and only this crate settles it (the actions in `reset`, `unlock`, `tap` consume it):
//! - [`Acting::finish`]: the change happened, may have happened (outcome unknown), or was refused
//!   for good: the flow ends and can never act again;
//! - [`Acting::release`]: the change certainly did not happen (a refused password, a transient
//!   fault before the write): back to `Retry`, claimable once more while the flow lives, so the
//!   user need not verify again.
//!
//! Both consume the [`Acting`], so a claim cannot be settled twice. A process that dies while
//! acting leaves the flow in `Acting` until it expires: it fails closed.

use std::collections::HashSet;

use latchkey_graph::{GraphError, Memberships, User};
use latchkey_policy::{Action, Policy, Subject, evaluate};
use latchkey_store::{Outcome, StoreError};
use latchkey_types::{EmailAddress, MethodKind, ObjectId};

use crate::SelfService;
use crate::flow::{Current, Unrecorded as _};

/// Whether the audit record of a refusal or failure was written. When it was not, the user is
/// told of a store outage rather than of the refusal itself.
pub type Recorded = Result<(), StoreError>;

/// A claimed flow: its one change is under way, allowed by `policy` (evaluated with fresh
/// membership right after the claim). Settled by the action that consumes it.
#[must_use = "a claim is settled by an action (reset, unlock, tap)"]
pub struct Acting {
    pub current: Current,
    pub policy: Policy,
    pub(crate) action: Action,
    /// The account as the claim read it, right before the change (on-premises paths take its
    /// account name from here: a rename since identification is followed).
    pub account: User,
}

/// Why a flow may not act.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Not verified enough yet: back to the methods.
    #[error("not verified")]
    NotVerified,
    /// Another request already acts on (or acted on) this verification (audited as denied).
    #[error("verification already used")]
    AlreadyUsed,
    /// The policy no longer allows the action (audited as denied); the flow ended.
    #[error("policy no longer allows it")]
    NotAllowed(Recorded),
    /// The directory could not be asked whether the policy still allows it (audited as an
    /// error): nothing changed, the verification still holds.
    #[error("directory unavailable")]
    TryAgain(Recorded),
    /// The store could not claim the flow: nothing changed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The policy that applies *now*, with fresh membership: `Ok(None)` when no policy allows
/// `action` any more, `Err` when the directory could not be asked (that is not a refusal).
pub async fn current_policy(
    s: &SelfService,
    user: &ObjectId,
    action: Action,
) -> Result<Option<Policy>, GraphError> {
    Ok(current_scope(s, user, action).await?.map(|(p, _)| p))
}

/// [`current_policy`], with whether the account is privileged now (directory roles).
pub async fn current_scope(
    s: &SelfService,
    user: &ObjectId,
    action: Action,
) -> Result<Option<(Policy, bool)>, GraphError> {
    Ok(scope_of(s, &s.directory.memberships(user).await?, action))
}

/// The policy `memberships` put the account under for `action`, and whether it is privileged.
fn scope_of(s: &SelfService, memberships: &Memberships, action: Action) -> Option<(Policy, bool)> {
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let privileged = !memberships.roles.is_empty();
    let set = s.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged,
        },
    );
    evaluation
        .policy
        .filter(|p| p.allows(action))
        .map(|p| (p.clone(), privileged))
}

/// Claims a fully verified flow for one `action`, then checks that the account is still enabled
/// and the policy still allows it with fresh membership (one Graph `$batch`; more only for
/// memberships past one page). Every refusal after the claim is audited and settles the claim
/// (ended on a refusal, given back on a transient fault).
pub async fn claim(
    s: &SelfService,
    current: Current,
    action: Action,
) -> Result<Acting, ClaimError> {
    if !current.is_complete() {
        return Err(ClaimError::NotVerified);
    }
    let event = action.as_str();
    if s.store
        .claim_flow(&current.token, s.clock.now())
        .await?
        .is_none()
    {
        // Recorded, so a replayed or duplicated request shows in the audit trail; it changes
        // nothing.
        let reason = Some("verification already used");
        current
            .audit(s, event, None, Outcome::Denied, reason)
            .await
            .or_log();
        return Err(ClaimError::AlreadyUsed);
    }
    let subject = current.flow.subject;
    // The account as it is now, with its groups (one request): an account disabled or deleted
    // since the flow started (by an administrator who just found it compromised, or after
    // identification read an older copy in the directory mirror) may change nothing.
    let standing = s.directory.user_with_memberships(&subject).await;
    // Only the account's own answer says it is gone; a membership read that failed is a fault.
    let gone = match &standing {
        Ok(now) if now.user.account_enabled == Some(false) => Some("account is disabled"),
        Err(e) if e.is_not_found() => Some("account no longer exists"),
        _ => None,
    };
    if let Some(reason) = gone {
        let recorded = current
            .audit(s, event, None, Outcome::Denied, Some(reason))
            .await;
        end(s, &current).await;
        return Err(ClaimError::NotAllowed(recorded));
    }
    let scope = standing.and_then(|now| {
        let memberships = now.memberships?;
        Ok((scope_of(s, &memberships, action), now.user))
    });
    match scope {
        // The methods proven must still be enough under the policy as it is now: a policy that
        // since dropped a method, requires more, or stopped letting a passkey stand alone (or
        // an account that became privileged) is not satisfied by an older verification.
        Ok((Some((policy, privileged)), _))
            if !crate::flow::still_enough(&policy, privileged, &current.verified()) =>
        {
            let reason = Some("verification no longer enough for the policy");
            let recorded = current.audit(s, event, None, Outcome::Denied, reason).await;
            end(s, &current).await;
            Err(ClaimError::NotAllowed(recorded))
        }
        Ok((Some((policy, _)), account)) => Ok(Acting {
            current,
            policy,
            action,
            account,
        }),
        Ok((None, _)) => {
            let reason = Some("policy no longer allows it");
            let recorded = current.audit(s, event, None, Outcome::Denied, reason).await;
            end(s, &current).await;
            Err(ClaimError::NotAllowed(recorded))
        }
        Err(e) => {
            // A fault, not a refusal: nothing changed, the verification still holds.
            tracing::warn!(error = %e, "the policy could not be re-checked before a change");
            let reason = format!(
                "policy re-check: directory unavailable ({})",
                e.code().unwrap_or("no answer")
            );
            let recorded = current
                .audit(s, event, None, Outcome::Error, Some(&reason))
                .await;
            release(s, &current).await;
            Err(ClaimError::TryAgain(recorded))
        }
    }
}

async fn end(s: &SelfService, current: &Current) {
    if let Err(e) = s.store.end_flow(&current.token).await {
        tracing::error!(error = %e, "cannot end a flow after its change; it expires acting");
    }
}

async fn release(s: &SelfService, current: &Current) {
    match s.store.release_flow(&current.token, s.clock.now()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!("a claimed flow was gone before it could be released"),
        Err(e) => tracing::error!(error = %e, "cannot release a claimed flow"),
    }
}

impl Acting {
    /// Whether the account is mastered on-premises, as the claim read it right before the
    /// change (not as identification found it, possibly in the mirror): it chooses the write
    /// path, and Graph refuses a cloud password write to a synced account.
    pub fn synced(&self) -> bool {
        self.account.is_synced()
    }

    /// The user the change is for.
    pub fn subject(&self) -> ObjectId {
        self.current.flow.subject
    }

    /// Audits an event of this change under the action's name. Callers act on the result: a
    /// change whose audit event cannot be written does not happen.
    pub async fn audit(&self, s: &SelfService, outcome: Outcome, reason: &str) -> Recorded {
        self.audit_as(s, self.action.as_str(), None, outcome, reason)
            .await
    }

    /// [`Acting::audit`] under another event name, naming a method.
    pub async fn audit_as(
        &self,
        s: &SelfService,
        event: &str,
        method: Option<MethodKind>,
        outcome: Outcome,
        reason: &str,
    ) -> Recorded {
        self.current
            .audit(s, event, method, outcome, Some(reason))
            .await
    }

    /// The directory mail address the flow holds, parsed.
    pub fn mail(&self) -> Option<EmailAddress> {
        self.current
            .data
            .mail
            .as_deref()
            .and_then(|m| m.parse().ok())
    }

    /// The change happened, may have happened, or is refused for good: the flow ends, so it can
    /// never act again. If the store cannot end it, it stays `Acting` (still unable to act)
    /// until it expires.
    /// The policy's security contacts hear of the change this flow made (never a secret).
    pub async fn tell_contacts(&self, s: &SelfService, action: latchkey_notify::ContactAction) {
        crate::security_contacts::tell(
            s,
            &self.policy,
            action,
            &self.subject(),
            &self.current.data,
        )
        .await;
    }

    pub async fn finish(self, s: &SelfService) {
        end(s, &self.current).await;
    }

    /// The change certainly did not happen: the flow may act once more (`Retry`). If the store
    /// cannot release it, it stays `Acting` and the user starts again (fail closed).
    pub async fn release(self, s: &SelfService) {
        release(s, &self.current).await;
    }

    /// Gives the claim back after a transient fault, with what the record of it came to.
    pub(crate) async fn try_again(self, s: &SelfService, recorded: Recorded) -> Recorded {
        self.release(s).await;
        recorded
    }
}

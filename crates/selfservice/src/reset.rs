//! A new password for a fully verified, claimed flow (docs/architecture.md, "The flow state
//! machine"). The password is checked first (the user learns *why* it is refused); then the
//! write goes the one way the user's account allows: app-only `passwordProfile` for cloud users,
//! the delegated `resetPassword` (written back to AD) for synced users when the portal holds that
//! credential, else a connected gateway ([`crate::gateway`]). The intent is on record before the
//! write, the write is never repeated blindly, and an answer that never came is resolved by
//! reading the user back. After the change the one after-change step runs ([`crate::after_change`]).

use std::sync::Arc;

use latchkey_graph::GraphError;
use latchkey_notify::{ContactAction, Recipient};
use latchkey_store::Outcome;
use latchkey_types::Secret;

use crate::SelfService;
use crate::act::{Acting, Recorded};
use crate::after_change::{after_change, known_channels};
use crate::directory::Directory;
use crate::password::{self, Rejection};
use crate::signout::SignOut;

/// How a password change is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePath {
    /// `PATCH /users/{id}` passwordProfile with the app's own permission.
    AppOnly,
    /// The delegated `resetPassword`, which Entra writes back to on-premises AD.
    Writeback,
    /// A reset job carried out by the on-premises gateway.
    Gateway,
}

impl WritePath {
    pub fn label(self) -> &'static str {
        match self {
            WritePath::AppOnly => "app-only passwordProfile",
            WritePath::Writeback => "delegated resetPassword (writeback)",
            WritePath::Gateway => "on-premises gateway job",
        }
    }
}

/// What became of a reset. "Released" outcomes gave the claim back (nothing changed; the user
/// may try again without verifying again); all others ended the flow.
#[derive(Debug)]
pub enum ResetOutcome {
    /// The password is changed; the after-change step ran (its sign-out result is `None` when
    /// the gateway's result handler ran it instead).
    Changed {
        path: WritePath,
        sign_out: Option<SignOut>,
        /// Some channel known before the change was told.
        notified: bool,
    },
    /// Released: the password does not meet the rules (shown on the form).
    Rejected(Rejection),
    /// Released: the directory refused the password (its own complexity or history rules).
    DirectoryRejected,
    /// Released: the directory refused the writeback (writeback off, on-premises policy).
    WritebackFailed,
    /// Released: on-premises AD refused the password (its policy); another may be tried.
    OnPremisesPolicy,
    /// Released: a transient fault before anything changed, or the intent could not be recorded
    /// (then the record's error).
    TryAgain(Recorded),
    /// Ended: the write may or may not have been applied and a read could not tell. The
    /// correlation id is the user's reference.
    Unknown { reference: String },
    /// Ended: the gateway job outlived the wait; a later success is finished by the result
    /// handler.
    Pending,
    /// Ended: a synced user, and neither the writeback credential nor a gateway that may reset.
    NoPath(Recorded),
    /// Ended: on-premises AD (through the gateway) did not set the password.
    OnPremisesFailed(Recorded),
    /// Ended: the directory refused the change for good, or a job's state is unknown.
    Failed(Recorded),
}

/// Sets the password the user chose (and confirmed) on a claimed flow; settles the claim.
pub async fn reset(
    s: &SelfService,
    acting: Acting,
    password: Secret<String>,
    confirm: &str,
) -> ResetOutcome {
    let names: Vec<&str> = acting
        .current
        .data
        .names
        .iter()
        .map(String::as_str)
        .collect();
    if let Err(why) = password::check(password.expose(), confirm, &acting.policy.password, &names) {
        let recorded = acting.audit(s, Outcome::Failure, why.message_key()).await;
        if recorded.is_err() {
            return ResetOutcome::TryAgain(acting.try_again(s, recorded).await);
        }
        acting.release(s).await;
        return ResetOutcome::Rejected(why);
    }
    // Once the password passed every check, the write, reading back its outcome and the steps
    // after it get a Graph budget of their own: what the checks spent must not cut them short.
    latchkey_graph::deadline::fresh(s.graph_budget, write(s, acting, password)).await
}

async fn write(s: &SelfService, acting: Acting, password: Secret<String>) -> ResetOutcome {
    // Graph refuses passwordProfile for on-premises-mastered users: they go through the
    // delegated resetPassword (written back to AD) when the portal holds that credential, else
    // through a connected gateway that may reset.
    let (path, client): (WritePath, Arc<dyn Directory>) = if !acting.current.data.synced {
        (WritePath::AppOnly, Arc::clone(&s.directory))
    } else if let Some(w) = s.writeback() {
        (WritePath::Writeback, w)
    } else {
        return crate::gateway::reset(s, acting, password).await;
    };
    let subject = acting.subject();
    // Channels known before the change, to tell the user afterwards.
    let channels = known_channels(s, &subject, acting.mail().as_ref()).await;
    let started = acting.audit(s, Outcome::Started, path.label()).await;
    if started.is_err() {
        return ResetOutcome::TryAgain(acting.try_again(s, started).await);
    }
    let result = match path {
        WritePath::Writeback => client.reset_password_writeback(&subject, &password).await,
        _ => client.set_password(&subject, &password).await,
    };
    drop(password);
    let reason = match result {
        Ok(()) => path.label().to_string(),
        Err(e) if e.outcome_unknown() => match applied_after_all(s, &acting).await {
            Some(true) => format!("{}: confirmed by a read after no answer", path.label()),
            _ => return unknown_outcome(s, acting, path, &e).await,
        },
        Err(e) => return write_failed(s, acting, path, &e).await,
    };
    succeeded(s, acting, channels, path, &reason).await
}

/// After a write whose answer never came: whether the user's `lastPasswordChangeDateTime` moved
/// past the value seen when the flow started. `None` when that cannot be told.
async fn applied_after_all(s: &SelfService, acting: &Acting) -> Option<bool> {
    let before = acting.current.data.password_changed_at?;
    let user = s.directory.user(&acting.subject()).await.ok()?;
    Some(user.last_password_change_date_time? > before)
}

/// The write may or may not have been applied, and a read could not confirm it: recorded as
/// unknown, and the flow ends (a second write could be a second change).
async fn unknown_outcome(
    s: &SelfService,
    acting: Acting,
    path: WritePath,
    e: &GraphError,
) -> ResetOutcome {
    tracing::error!(error = %e, "reset: no answer to the password write; outcome unknown");
    let reason = format!(
        "{}: outcome unknown (no answer from the directory)",
        path.label()
    );
    // The `started` event already records the attempt if this one cannot be written.
    if let Err(audit_error) = acting.audit(s, Outcome::Error, &reason).await {
        tracing::error!(error = %audit_error, "reset: cannot audit an unknown outcome");
    }
    let reference = acting.current.data.correlation_id.clone();
    acting.finish(s).await;
    ResetOutcome::Unknown { reference }
}

/// The directory answered with an error: nothing was changed.
async fn write_failed(
    s: &SelfService,
    acting: Acting,
    path: WritePath,
    e: &GraphError,
) -> ResetOutcome {
    if let GraphError::ResetFailed { status_detail, .. } = e.root() {
        // The directory refused the writeback (e.g. writeback off, or the on-premises password
        // policy): the detail goes to the audit trail, the user gets a clear page.
        let detail: String = status_detail
            .as_deref()
            .unwrap_or("no detail")
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        let reason = format!("{}: operation failed: {detail}", path.label());
        let recorded = acting.audit(s, Outcome::Failure, &reason).await;
        tracing::warn!("reset: resetPassword operation failed");
        if recorded.is_err() {
            return ResetOutcome::TryAgain(acting.try_again(s, recorded).await);
        }
        acting.release(s).await;
        return ResetOutcome::WritebackFailed;
    }
    let reason = format!("{}: {}", path.label(), e.code().unwrap_or("graph error"));
    let recorded = acting.audit(s, Outcome::Error, &reason).await;
    if recorded.is_err() || e.is_transient() {
        tracing::warn!(error = %e, "reset: the directory could not take the password now");
        return ResetOutcome::TryAgain(acting.try_again(s, recorded).await);
    }
    if e.status() == Some(400) {
        acting.release(s).await;
        return ResetOutcome::DirectoryRejected;
    }
    tracing::error!(error = %e, "reset: Graph refused the password change");
    acting.finish(s).await;
    ResetOutcome::Failed(Ok(()))
}

/// The password is changed: audited, then the one after-change step.
pub(crate) async fn succeeded(
    s: &SelfService,
    acting: Acting,
    channels: Vec<Recipient>,
    path: WritePath,
    reason: &str,
) -> ResetOutcome {
    if let Err(e) = acting.audit(s, Outcome::Success, reason).await {
        // The `started` event is on record; the change cannot be undone, so go on.
        tracing::error!(error = %e, "reset: password changed but the success event could not be written");
    }
    let notified = !channels.is_empty();
    // Every notice is stored before the sign-out's Graph call, so none waits on it.
    crate::security_contacts::tell(
        s,
        &acting.policy,
        ContactAction::PasswordReset,
        &acting.subject(),
        &acting.current.data,
    )
    .await;
    let sign_out = after_change(
        s,
        &acting.current.flow,
        &acting.current.data,
        channels,
        acting.policy.revoke_sessions,
    )
    .await;
    // after_change ended every flow of the user, this one included.
    acting.finish(s).await;
    ResetOutcome::Changed {
        path,
        sign_out: Some(sign_out),
        notified,
    }
}

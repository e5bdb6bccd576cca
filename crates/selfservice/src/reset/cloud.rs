//! The write through Graph (app-only or delegated writeback), and what its answer — or its
//! missing answer — means.

use std::sync::Arc;

use latchkey_graph::GraphError;
use latchkey_store::Outcome;
use latchkey_types::Secret;

use super::changed;
use super::outcome::{ResetOutcome, WritePath};
use crate::SelfService;
use crate::act::Acting;
use crate::after_change::known_channels;
use crate::directory::Directory;

/// Writes the password through Graph: `passwordProfile` with the app's permission, or the
/// delegated `resetPassword` through `writeback` (the client that holds that credential).
pub(super) async fn write(
    s: &SelfService,
    acting: Acting,
    path: WritePath,
    writeback: Option<Arc<dyn Directory>>,
    password: Secret<String>,
) -> ResetOutcome {
    let client = writeback.unwrap_or_else(|| Arc::clone(&s.directory));
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
    changed::succeeded(s, acting, channels, path, &reason).await
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

//! A password that is changed, whichever way: audited, the policy's security contacts told, the
//! one after-change step run, the flow ended.

use latchkey_notify::{ContactAction, Recipient};
use latchkey_store::Outcome;

use super::outcome::{ResetOutcome, WritePath};
use crate::SelfService;
use crate::act::Acting;
use crate::after_change::after_change;

/// The password is changed: audited, then the one after-change step.
pub(super) async fn succeeded(
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
    acting.tell_contacts(s, ContactAction::PasswordReset).await;
    let sign_out = after_change(
        s,
        &acting.current.flow,
        &acting.current.data,
        channels,
        acting.policy.revoke_sessions,
    )
    .await;
    // The user proved who they are and chose a new password: a risk flag may go too.
    let risk_cleared = crate::unlock::dismiss_after_change(s, &acting).await;
    // after_change ended every flow of the user, this one included.
    acting.finish(s).await;
    ResetOutcome::Changed {
        path,
        sign_out: Some(sign_out),
        notified,
        risk_cleared,
    }
}

//! After a password change: sign the user out of every app and browser (Graph
//! `revokeSignInSessions`) when the policy says so (docs/security.md, principle 8, on by default).
//!
//! A failure here never undoes the reset: the password is already changed. It is audited as its
//! own event (`sessions.revoke`, outcome failure with the reason), logged, and the result page
//! tells the user that other sessions could not be signed out.

use latchkey_store::Outcome;
use latchkey_types::ObjectId;

use crate::SelfService;
use crate::flow;

/// Audit event type of the revocation.
pub const EVENT: &str = "sessions.revoke";

/// What became of the user's other sign-in sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOut {
    /// Entra ID accepted the revocation.
    Revoked,
    /// The policy turned it off.
    Skipped,
    /// The policy asked for it and Graph refused or could not be reached.
    Failed,
}

/// Revokes the subject's sign-in sessions when `wanted` (the policy's setting); audits the
/// outcome either way it ran.
pub async fn revoke(
    s: &SelfService,
    subject: &ObjectId,
    correlation_id: &str,
    wanted: bool,
) -> SignOut {
    if !wanted {
        return SignOut::Skipped;
    }
    let result = s.directory.revoke_sign_in_sessions(subject).await;
    let (outcome, reason, sign_out) = match &result {
        Ok(()) => (
            Outcome::Success,
            "revokeSignInSessions".to_string(),
            SignOut::Revoked,
        ),
        Err(e) => {
            // Status and Graph's error code only: never the message body (it may echo input).
            let status = e
                .status()
                .map_or("no answer".to_string(), |s| s.to_string());
            let code = e.code().unwrap_or("graph error");
            tracing::warn!(
                status = %status,
                code = %code,
                "reset: password changed but the sign-in sessions could not be revoked"
            );
            (
                Outcome::Failure,
                format!("revokeSignInSessions: {status} {code}"),
                SignOut::Failed,
            )
        }
    };
    if flow::audit(
        s,
        correlation_id,
        Some(*subject),
        EVENT,
        None,
        outcome,
        Some(&reason),
    )
    .await
    .is_err()
    {
        tracing::error!("reset: the sessions.revoke audit event could not be written");
    }
    sign_out
}

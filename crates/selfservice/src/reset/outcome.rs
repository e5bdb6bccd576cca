//! What a reset came to, and which way its write went.

use latchkey_store::StoreError;

use crate::password::Rejection;
use crate::signout::SignOut;

/// Whether the audit record of a refusal or failure was written ([`crate::act::Recorded`]).
type Recorded = Result<(), StoreError>;

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
        /// An Identity Protection risk flag was dismissed after the change (policy `dismiss_risk`).
        risk_cleared: bool,
    },
    /// Released: the password does not meet the rules (shown on the form).
    Rejected(Rejection),
    /// Released: too many submissions on this flow (or they could not be counted).
    Throttled(crate::flow::Refusal),
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

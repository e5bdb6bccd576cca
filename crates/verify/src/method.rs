//! The [`Method`] trait and the vocabulary shared by all methods.
//!
//! A method is a type implementing [`Method`]: [`Email`](crate::Email),
//! [`Sms`](crate::Sms), [`AuthenticatorApp`](crate::AuthenticatorApp),
//! [`Questions`](crate::Questions), [`Attribute`](crate::Attribute).
//! A new one (passkeys) adds a [`MethodKind`] variant and an implementation; the flows handle it
//! through the trait.
//!
//! Enrollment is deliberately not part of the trait: each method enrolls differently (a code to a
//! new address, a seed shown as a QR code, a set of answers, nothing at all for directory
//! attributes), so each type offers its own enrollment functions.
//!
//! ## The "two methods" rule
//! `docs/security.md`: a reset needs 2 methods from different channels by default (a policy may say 1),
//! and security questions are never one of the required methods. [`requirement_met`] is that rule;
//! the flow calls it with the kinds verified so far in this flow.

use std::collections::BTreeSet;
use std::future::Future;

use latchkey_types::{FlowId, ObjectId};
use time::OffsetDateTime;

pub use latchkey_types::{Channel, MethodKind};

/// Who is being verified, in which flow. Both come from server-side flow state fixed at
/// identification, never from the request (`docs/security.md`, principle 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    /// The flow's stable id (not the rotating session id).
    pub flow: FlowId,
    /// The user's directory object id.
    pub user: ObjectId,
}

/// The result of one verification attempt, as the flow and the audit log see it.
pub trait Outcome {
    /// Whether the method is now verified for this flow.
    fn is_accepted(&self) -> bool;
    /// A short, stable, secret-free label for the audit log (`ok`, `wrong`, `expired`, ...).
    fn reason(&self) -> &'static str;
}

/// A verification method.
///
/// `verify` checks an [`Answer`](Method::Answer) (what the user submitted) against the
/// [`Stored`](Method::Stored) data (enrollment, issued code, directory values) and may update the
/// stored data: a code loses a try or is consumed, a TOTP enrollment remembers its last step.
/// The store must persist `stored` after every call, atomically with respect to other attempts
/// (compare-and-set on the values it read; see each method's docs), and only act on an accepted
/// outcome once that write has succeeded.
///
/// Throttling is not done here: the flow charges an attempt against the store's throttles *before*
/// calling `verify`.
pub trait Method: Send + Sync {
    /// The server-side data the answer is checked against.
    type Stored: Send;
    /// What the user submitted.
    type Answer: Send;
    /// The detailed result.
    type Outcome: Outcome + Send;
    /// Why verification could not run (not "wrong answer": that is an outcome).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Which method this is.
    fn kind(&self) -> MethodKind;

    /// The channel ([`MethodKind::channel`]). Not meant to be overridden: the rule lives in
    /// [`MethodKind`] so that [`requirement_met`] sees the same answer.
    fn channel(&self) -> Channel {
        self.kind().channel()
    }

    /// Whether it may count toward the required number ([`MethodKind::counts_toward_required`]).
    /// Not meant to be overridden either.
    fn counts_toward_required(&self) -> bool {
        self.kind().counts_toward_required()
    }

    /// Checks `answer` for `subject` against `stored` at time `now`, updating `stored`.
    fn verify(
        &self,
        subject: &Subject,
        stored: &mut Self::Stored,
        answer: Self::Answer,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Self::Outcome, Self::Error>> + Send;
}

/// Whether the methods verified so far satisfy a requirement of `required` methods: at least
/// `required` distinct channels among the verified methods that may count. `required == 0` is
/// never satisfied, so a misconfigured policy fails closed.
pub fn requirement_met(required: usize, verified: &[MethodKind]) -> bool {
    let channels: BTreeSet<Channel> = verified
        .iter()
        .filter(|k| k.counts_toward_required())
        .map(|k| k.channel())
        .collect();
    required > 0 && channels.len() >= required
}

#[cfg(test)]
mod tests {
    use super::*;
    use MethodKind::*;

    #[test]
    fn names_round_trip() {
        for k in MethodKind::ALL {
            assert_eq!(k.as_str().parse::<MethodKind>().unwrap(), k);
            // The serde name (what stores and policy files hold) is the same stable name.
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert!("password".parse::<MethodKind>().is_err());
        assert_eq!(
            serde_json::to_string(&Channel::AuthenticatorApp).unwrap(),
            "\"authenticator_app\""
        );
    }

    #[test]
    fn security_questions_never_count() {
        assert!(!Questions.counts_toward_required());
        assert!(!requirement_met(1, &[Questions]));
        assert!(!requirement_met(2, &[Email, Questions]));
        assert!(requirement_met(1, &[Email, Questions]));
    }

    #[test]
    fn two_methods_must_use_two_channels() {
        assert!(requirement_met(2, &[Email, Totp]));
        assert!(requirement_met(2, &[Sms, Attribute]));
        assert!(!requirement_met(2, &[Email, Email]));
        assert!(!requirement_met(2, &[Email]));
        assert!(!requirement_met(0, &[Email, Totp]));
        assert!(requirement_met(3, &[Email, Sms, Totp]));
        // Distinct kinds, same channel: directory facts and answers are both "knowledge".
        assert_eq!(Attribute.channel(), Questions.channel());
    }
}

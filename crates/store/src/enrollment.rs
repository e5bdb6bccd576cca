//! Enrolled verification methods, per user and method.

use latchkey_types::{ObjectId, Secret};
use time::OffsetDateTime;

/// A new phone or email counts only once its code is confirmed: it is staged as `Pending` and
/// becomes `Active` (replacing the previous active one) on confirmation. The previous active
/// enrollment keeps working meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnrollmentState {
    Pending,
    Active,
}

impl EnrollmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            _ => None,
        }
    }
}

/// What [`crate::Store::stage_enrollment`] needs.
#[derive(Clone, Debug)]
pub struct NewEnrollment {
    pub subject: ObjectId,
    /// The method kind: `"email"`, `"sms"`, `"totp"`, `"questions"`, ...
    pub method: String,
    /// Non-secret, method-defined JSON (destination, question ids, ...). Stored in clear.
    pub data: serde_json::Value,
    /// Method secret (TOTP seed, answer hashes, ...). Encrypted at rest, bound to
    /// (table, subject, method).
    pub secret: Option<Secret<Vec<u8>>>,
}

/// An enrollment as stored, secret decrypted.
#[derive(Clone, Debug)]
pub struct Enrollment {
    pub subject: ObjectId,
    pub method: String,
    pub state: EnrollmentState,
    pub data: serde_json::Value,
    pub secret: Option<Secret<Vec<u8>>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// When the user last confirmed it (activation or re-confirmation). `None` while pending.
    pub confirmed_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    /// TOTP replay guard: the highest time step ever accepted.
    pub last_used_step: Option<i64>,
}

/// One enrolled method without its data or secret: what reports count
/// ([`crate::Store::enrolled_methods`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolledMethod {
    pub subject: ObjectId,
    pub method: String,
    pub state: EnrollmentState,
    pub confirmed_at: Option<OffsetDateTime>,
}

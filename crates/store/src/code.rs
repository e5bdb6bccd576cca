//! Issued one-time codes (email, SMS). The store keeps them opaque: the verify crate computes
//! `code_hash` (a keyed hash of the code) and `binding` (e.g. a hash of the destination) and
//! compares them; the store guarantees expiry, tries, newest-only and single use atomically.

use std::time::Duration;

use latchkey_types::ObjectId;
use time::OffsetDateTime;

use crate::flow::FlowId;

/// Row id of an issued code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodeId(pub i64);

/// What [`crate::Store::issue_code`] needs.
#[derive(Clone, Debug)]
pub struct NewCode {
    pub flow: FlowId,
    pub subject: ObjectId,
    /// E.g. `"email"`, `"sms"`.
    pub method: String,
    pub code_hash: Vec<u8>,
    pub binding: Vec<u8>,
    /// At most 10 minutes by the security bar; the store does not impose it.
    pub lifetime: Duration,
    /// Wrong tries allowed (5 by the security bar). Must be at least 1.
    pub tries: u32,
}

/// The result of issuing: `seq` grows per (subject, method); older open codes were voided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    pub id: CodeId,
    pub seq: i64,
    pub expires_at: OffsetDateTime,
}

/// One charged attempt at the newest open code of a flow and method (see
/// [`crate::Store::take_code_attempt`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeAttempt {
    pub id: CodeId,
    pub seq: i64,
    pub code_hash: Vec<u8>,
    pub binding: Vec<u8>,
    /// Tries left after this one.
    pub tries_left: u32,
    pub expires_at: OffsetDateTime,
}

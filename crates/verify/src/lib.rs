//! Latchkey's verification methods: how a person proves who they are before a reset or unlock.
//!
//! Pure, storage-agnostic logic. Nothing here does I/O except [`Hasher`], which runs argon2 on
//! tokio's blocking pool. The flows (`web/`) and the database (`crates/store`) are built on top:
//! the store persists the plain records defined here and applies the state changes these
//! functions make; the flows decide which method to offer and what to show.
//!
//! | module | what |
//! |---|---|
//! | [`method`] | the [`Method`] trait every method implements, [`MethodKind`], [`Channel`], and the "two methods from different channels" rule ([`requirement_met`]) |
//! | [`code`] | one-time codes sent by email or SMS: generation, keyed hash, lifetime, tries, single use, newest only |
//! | [`totp`] | authenticator apps (RFC 6238): enrollment URI + QR code, verification with replay guard |
//! | [`questions`] | security questions: normalisation, enrollment rules, argon2id verification |
//! | [`attribute`] | directory-attribute check (e.g. employeeId + hire date) in constant time |
//! | [`hasher`] | argon2id on a bounded blocking pool that answers [`HashError::Busy`] when saturated |
//! | [`clock`] | the [`Clock`] trait: time is always a parameter, never read inside the logic |
//!
//! Security rules implemented here come from `docs/security.md`; each module says which.
//!
//! ## Using a method in a flow
//! For each attempt: charge the throttles first (the store's atomic `hit`, per account and method and
//! per client address, in the portal), call [`Method::verify`] with the server-side [`Subject`],
//! persist the updated stored data with a compare-and-set. The flow is done when
//! [`requirement_met`] says so. `tests/main.rs` drives methods this way.
//!
//! ## No enumeration
//! Before the first successful verification, an unknown, unenrolled or out-of-scope user must
//! look the same as a real one (`docs/security.md`, principle 1). Every method has a decoy path that
//! does the same work and answers "wrong":
//! - codes: issue a code bound to the flow's placeholder user and do not send it;
//! - TOTP: verify against [`AuthenticatorApp::decoy_enrollment`];
//! - security questions: pass `None` as the enrollment (argon2 runs against a dummy hash);
//! - directory attributes: pass an empty map of directory values.
//!
//! No error or `Debug` output in this crate contains a code, an answer, a seed or a key.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod attribute;
pub mod clock;
pub mod code;
pub mod hasher;
pub mod method;
pub mod questions;
pub mod totp;

mod ct;
mod rng;

pub use attribute::{
    AttributeError, AttributeKind, AttributeOutcome, AttributeSpec, AttributeValue,
    DirectoryAttributes,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use code::{
    CodeBinding, CodeConfig, CodeError, CodeHash, CodeIssuer, CodeKey, CodeOutcome, CodePurpose,
    Destination, EmailCode, IssuedCode, SentCode, SmsCode, normalize_typed_code,
};
pub use hasher::{HashError, Hasher, HasherConfig, PhcHash, Reservation};
pub use method::{Channel, Method, MethodKind, Outcome, Subject, requirement_met};
pub use questions::{
    EnrolledAnswer, QuestionError, QuestionId, QuestionOutcome, QuestionsConfig, SecurityQuestions,
    normalize_answer,
};
pub use rng::RngError;
pub use totp::{
    AuthenticatorApp, TotpConfig, TotpEnrollment, TotpError, TotpOutcome, TotpSeed, TotpSetup,
};

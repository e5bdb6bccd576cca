//! Whether a new password may be written (docs/passwords.md): Entra's own rules, Microsoft's
//! documented banned-password evaluation against a global list and the tenant's, the user's
//! names, a shipped list of the most common passwords, a guessability estimate, and optionally a
//! k-anonymity lookup in a breached-password service. Nothing here logs a password or its hash.

pub mod banned;
pub mod breached;
pub mod common;
pub mod rules;

pub use banned::BannedTerms;
pub use breached::{BreachedLookup, LookupError, WhenUnavailable};
pub use rules::{Candidate, Rejection, Weakness, check};

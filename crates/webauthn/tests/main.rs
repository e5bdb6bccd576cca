//! The crate as the portal and the provisioning CLI use it: whole ceremonies against the
//! software authenticator and hand-built EdDSA/RS256/x5c vectors, every refusal, and no panics
//! on arbitrary input. One binary; each area is a module in its own folder.
// Test code: a failing test stops right there (unwrap, expect, panic), and what a test drops
// (parsing arbitrary bytes only to see it does not panic) it does not need.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::let_underscore_must_use
)]

mod support;

mod assertion;
mod attestation;
mod inputs;
mod registration;

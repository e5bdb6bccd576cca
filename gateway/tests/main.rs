//! Integration tests of `latchkey-gateway check` against a real Samba AD DC, started by
//! `tests/run` (tests/samba/lab.sh), which exports the connection details as LATCHKEY_TEST_*.
//! Without them every test fails: a missing directory is a failure, never a skip.
//!
//! The tests share one domain and run in parallel, so each builds its own OU and its own
//! connector account (unique names) and checks only its OU (`base_dn`).
#![allow(clippy::disallowed_methods)]
// tests read the system clock and randomness directly
// Test code: a failing test stops right there (unwrap, expect, panic), and what a test drops it
// does not need.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use,
    clippy::let_underscore_future
)]

mod adfs;
mod check;
mod entra;
mod support;

//! Integration tests of latchkey-ad's security model: every captured Samba sample parses and
//! renders exactly as Samba renders it, and no input makes a parser panic.
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

mod no_panic;
mod samples;

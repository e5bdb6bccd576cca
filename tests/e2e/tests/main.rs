//! Latchkey's end-to-end tests: one test binary (one link), a module per area.
//! The harness (browser, axe, SMTP sink, in-process portal) is `latchkey_e2e`, in src/.
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

mod admin;
mod admin_reports;
mod day_one;
mod harness;
mod helpdesk;
mod kiosk;
mod passkeys;
mod portal;
mod selfservice;
mod smtp;

//! latchkey-notify's integration tests, in one binary. Mail goes to a real SMTP server process
//! (Python's aiosmtpd running `smtp_sink.py`); SMS providers talk to a real local HTTP server.
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

mod queue;
mod sms;
mod smtp;
mod support;
mod templates;

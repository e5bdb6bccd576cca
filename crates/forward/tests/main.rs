//! Audit forwarding against real receivers, in one binary: rsyslog (Debian's, TLS and UDP on
//! loopback, started and killed by the tests), an HTTPS webhook receiver, SQLite and PostgreSQL
//! (`LATCHKEY_TEST_POSTGRES_URL`, started by tests/run). A missing rsyslogd or PostgreSQL is a
//! failure, never a skip.
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

mod support;
mod syslog;

mod webhook;

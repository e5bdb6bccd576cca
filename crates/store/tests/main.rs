//! The store's integration tests, in one binary (each extra test binary is another link of the
//! whole dependency graph). Everything runs against real databases: SQLite in memory and in temp
//! files, and PostgreSQL (`LATCHKEY_TEST_POSTGRES_URL`, see backends.rs).
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

mod audit;
mod backends;
mod codes;
mod crypto;
mod enrollments;
mod flows;
mod forward;
mod gateway;
mod gateway_jobs;
mod gateway_kinds;
mod migrations;
mod mirror;
mod outbox;
mod passkeys;
mod postgres;
mod sqlite;
mod support;
mod throttle;

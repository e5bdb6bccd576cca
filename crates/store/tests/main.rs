//! The store's integration tests, in one binary (each extra test binary is another link of the
//! whole dependency graph). Everything runs against real databases: SQLite in memory and in temp
//! files, and PostgreSQL (`LATCHKEY_TEST_POSTGRES_URL`, see backends.rs).
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly

mod audit;
mod backends;
mod codes;
mod crypto;
mod enrollments;
mod flows;
mod gateway;
mod gateway_jobs;
mod gateway_kinds;
mod migrations;
mod outbox;
mod postgres;
mod sqlite;
mod support;
mod throttle;

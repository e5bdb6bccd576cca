//! Whole self-service flows without HTTP: identify → verify → reset, unlock, Temporary Access
//! Pass, a gateway's result reported late, and every refusal, against the simulated tenant and
//! an in-memory SQLite store. The portal's HTTP tests (web/tests) test the edge on top.
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

mod lab;

mod act;
mod gateway;
mod identify;
mod reset;
mod verify;

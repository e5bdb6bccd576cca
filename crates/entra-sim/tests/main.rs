//! Integration tests of the simulated Entra tenant, over real HTTP with reqwest.
//! One binary; each area is a module in its own folder.
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

mod contract;
mod delta;
mod faults;
mod graph_batch;
mod graph_groups;
mod graph_methods;
mod graph_misc;
mod graph_passkeys;
mod graph_reset;
mod graph_users;
mod oauth;

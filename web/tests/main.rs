//! End-to-end tests of the `latchkey` binary against the in-process Entra simulator.
//! One test binary for the crate (each extra file in tests/ would be another full link).
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
mod admin_console;
mod admin_gateways;
mod admin_policy_versions;
mod admin_reports;
mod attribute;
mod burst;
mod check;
mod config;
mod enroll;
mod forwarding;
mod gateway;
mod gateway_pending;
mod gateway_windows;
mod health;
mod helpdesk;
mod helpdesk_review;
mod helpers;
mod kiosk;
mod language;
mod login_screen;
mod mirror;
mod passkey_cli;
mod passkeys;
mod passwords;
mod policy;
mod portal;
mod postgres;
mod questions;
mod security;
mod security_contacts;
mod serve;
mod signin_at_rest;
mod signout;
mod tap;
mod tls;
mod unlock;
mod user_show;
mod writeback;

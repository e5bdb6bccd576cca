//! The Latchkey portal as a library: the binary (`main.rs`) parses the command line and calls in
//! here; end-to-end tests and benchmarks start the same app in-process.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

pub mod act;
pub mod admin;
pub mod app;
pub mod attribute;
pub mod check;
mod cli_store;
pub mod config;
pub mod console;
pub mod delegate;
pub mod demo;
pub mod enroll;
pub mod entra;
pub mod error;
pub mod extract;
pub mod flow;
pub mod flow_cookie;
pub mod gateway;
pub mod guard;
pub mod health;
pub mod helpdesk;
pub mod housekeeping;
pub mod i18n;
pub mod identify;
pub mod kiosk;
pub mod language;
pub mod login_screen;
pub mod metrics;
pub mod outbox;
pub mod passkey;
pub mod passkey_cli;
pub mod policy_cli;
pub mod portal;
pub mod reload;
pub mod render;
pub mod request_id;
pub mod reset;
pub mod security;
pub mod serve;
pub mod services;
pub mod signin;
pub mod tap;
pub mod tls;
pub mod unlock;
pub mod user_show;
pub mod verification;

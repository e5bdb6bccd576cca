//! Whole self-service flows without HTTP: identify → verify → reset, unlock, Temporary Access
//! Pass, a gateway's result reported late, and every refusal, against the simulated tenant and
//! an in-memory SQLite store. The portal's HTTP tests (web/tests) test the edge on top.
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lab;

mod act;
mod gateway;
mod identify;
mod reset;
mod verify;

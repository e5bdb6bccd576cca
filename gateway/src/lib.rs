//! The Latchkey gateway: `check` (writeback preflight against on-premises AD) as a library, so
//! the binary stays thin and the integration tests can drive it; `run` (the job agent, [`agent`])
//! likewise.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

pub mod agent;
pub mod apply;
pub mod checks;
pub mod config;
pub mod fixscript;
pub mod report;
#[cfg(windows)]
pub mod service;

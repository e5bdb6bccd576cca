//! Contract tests: the Graph client against the in-process Entra simulator.
//!
//! One binary; each concern is a module under `contract/`.
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly

mod contract;

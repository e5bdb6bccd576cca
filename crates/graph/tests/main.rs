//! Contract tests: the Graph client against the in-process Entra simulator.
//!
//! One binary; each concern is a module under `contract/`.

mod contract;

//! Integration tests of the simulated Entra tenant, over real HTTP with reqwest.
//! One binary; each area is a module in its own folder.
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly

mod support;

mod contract;
mod faults;
mod graph_groups;
mod graph_methods;
mod graph_misc;
mod graph_reset;
mod graph_users;
mod oauth;

//! The store's integration tests, in one binary (each extra test binary is another link of the
//! whole dependency graph). Everything runs against real SQLite: in memory and in temp files.

mod audit;
mod codes;
mod crypto;
mod enrollments;
mod flows;
mod gateway;
mod migrations;
mod support;
mod throttle;

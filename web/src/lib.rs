//! The Latchkey portal as a library: the binary (`main.rs`) parses the command line and calls in
//! here; end-to-end tests and benchmarks start the same app in-process.

pub mod app;
pub mod check;
pub mod config;
pub mod demo;
pub mod entra;
pub mod guard;
pub mod i18n;
pub mod render;
pub mod security;
pub mod user_show;

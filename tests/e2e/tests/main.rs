//! Latchkey's end-to-end tests: one test binary (one link), a module per area.
//! The harness (browser, axe, SMTP sink, in-process portal) is `latchkey_e2e`, in src/.
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly

mod admin;
mod admin_reports;
mod harness;
mod helpdesk;
mod portal;
mod selfservice;
mod smtp;

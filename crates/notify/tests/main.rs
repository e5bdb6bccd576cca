//! latchkey-notify's integration tests, in one binary. Mail goes to a real SMTP server process
//! (Python's aiosmtpd running `smtp_sink.py`); SMS providers talk to a real local HTTP server.
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly

mod queue;
mod sms;
mod smtp;
mod support;
mod templates;

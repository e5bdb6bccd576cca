//! Integration tests of latchkey-ad's security model: every captured Samba sample parses and
//! renders exactly as Samba renders it, and no input makes a parser panic.
#![allow(clippy::disallowed_methods)] // tests read the system clock and randomness directly

mod no_panic;
mod samples;

//! Integration tests of latchkey-ad's security model: every captured Samba sample parses and
//! renders exactly as Samba renders it, and no input makes a parser panic.

mod no_panic;
mod samples;

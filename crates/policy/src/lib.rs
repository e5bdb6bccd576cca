//! Latchkey's access policies: who may use which self-service action, with which methods.
//!
//! - [`model`]: the policy as the rest of the program sees it (validated, typed).
//! - [`load`]: TOML files → a [`PolicySet`], with errors that name file, line, column and field.
//!   A set is either wholly valid or rejected: callers keep their last good set on error.
//! - [`evaluate`]: the first enabled policy, by priority, whose groups contain the user and whose
//!   excludes do not; privileged accounts need a policy that names them. The result carries the
//!   reasons, so admins and helpdesk can see *why*.
//!
//! No I/O beyond reading the files it is asked to load; no clock; no network.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

pub mod evaluate;
pub mod load;
pub mod model;

pub use evaluate::{Evaluation, Skip, Subject, evaluate};
pub use load::{PolicyError, load_dir, parse_sources};
pub use model::{
    Action, Enrollment, GroupRef, MethodSource, PasskeySatisfies, PasswordRules, Policy, PolicySet,
};

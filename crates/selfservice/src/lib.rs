//! The self-service flows of Latchkey without HTTP: what a user does to prove who they are and
//! make one change, as plain async functions over the seams in [`SelfService`] (directory,
//! store, notifications, clock; randomness through `latchkey_types::random`). The portal's
//! `web/` crate is the HTTP edge: it parses requests, calls in here, and renders the typed
//! outcomes. docs/architecture.md draws the flow state machine these modules implement.
//!
//! A flow, in order:
//! - [`identify`]: the typed account becomes a stored flow (a decoy for anyone who may not use
//!   self-service, indistinguishable from outside);
//! - [`verify`]: codes by email or text, authenticator codes, security questions, directory
//!   attributes; each success rotates the flow's token;
//! - [`act`]: a fully verified flow is claimed for exactly one change;
//! - [`reset`] (cloud, writeback, or through the on-premises [`gateway`]), [`unlock`], [`tap`]:
//!   the change, settled as done, failed, unknown, or given back to try again;
//! - [`after_change`]: the one step after any password change (void codes and flows, notify,
//!   sign out, security contacts), also for a result the gateway reports late.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

pub mod act;
pub mod after_change;
pub mod attribute;
pub mod channels;
pub mod codes;
pub mod directory;
pub mod flow;
pub mod gateway;
pub mod identify;
pub mod notices;
pub mod passkey;
pub mod password;
pub mod reset;
pub mod security_contacts;
mod service;
pub mod signout;
pub mod tap;
pub mod unlock;
pub mod verify;

pub use service::{DecoyKey, QUESTION_IDS, SelfService};

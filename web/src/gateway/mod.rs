//! The portal's side of the on-premises gateway channel (`latchkey-gateway run`).
//!
//! - [`api`]: the bearer-authenticated JSON API the gateway long-polls (`/gateway/v1/...`, shapes
//!   in the `latchkey-jobs` crate). Not a browser surface: no cookies, no forms, so no CSRF; a
//!   per-gateway credential instead, throttled per client address.
//! - [`jobs`]: what the self-service flows use: whether a gateway is connected, queueing a job
//!   and waiting a bounded time for its result.
//! - [`credential`]: issuing and checking gateway credentials (`lkgw_<id>.<secret>`; the store
//!   keeps SHA-256 of the secret only).
//! - [`reset`]: a synced user's reset through a gateway, when the portal has no delegated
//!   writeback credential.
//! - [`cli`]: `latchkey gateway register|list|allow|revoke`, run on the portal host; the admin
//!   console's Gateways page (`crate::admin::gateways`) does the same through
//!   [`credential::register`] and [`kinds::set`].
//! - [`kinds`]: changing a live gateway's allowed job kinds (unlock always, reset on request).

pub mod api;
pub mod cli;
pub mod credential;
pub mod jobs;
pub mod kinds;
pub mod reset;

use std::time::Duration;

pub use api::configure;

/// A gateway that polled within this window counts as connected (it polls at least every
/// [`latchkey_jobs::MAX_WAIT_SECONDS`] seconds).
pub const CONNECTED_WINDOW: Duration = Duration::from_secs(90);
/// A job not claimed within this time is not handed out any more.
pub const JOB_TTL: Duration = Duration::from_secs(120);
/// How long the user's page waits for the gateway's result before saying it is in progress.
pub const RESULT_WAIT: Duration = Duration::from_secs(20);

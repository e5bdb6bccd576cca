//! The portal's side of the on-premises gateway channel (`latchkey-gateway run`).
//!
//! - [`api`]: the bearer-authenticated JSON API the gateway long-polls (`/gateway/v1/...`, shapes
//!   in the `latchkey-jobs` crate). Not a browser surface: no cookies, no forms, so no CSRF; a
//!   per-gateway credential instead, throttled per client address.
//! - [`credential`]: issuing and checking gateway credentials (`lkgw_<id>.<secret>`; the store
//!   keeps SHA-256 of the secret only).
//! - [`cli`]: `latchkey gateway register|list|allow|revoke`, run on the portal host; the admin
//!   console's Gateways page (`crate::admin::gateways`) does the same through
//!   [`credential::register`] and [`kinds::set`].
//! - [`kinds`]: changing a live gateway's allowed job kinds (unlock always, reset on request).

pub mod api;
pub mod cli;
pub mod credential;
pub mod kinds;

pub use api::configure;
/// The self-service flows' side of jobs (connected gateways, queueing and waiting, a reset
/// through a gateway, finishing a late result) is `latchkey_selfservice::gateway`; its rules
/// are used here too.
pub use latchkey_selfservice::gateway::CONNECTED_WINDOW;

//! A simulated Microsoft Entra tenant for Latchkey's tests and demo mode: the identity
//! platform's token, authorize and OpenID Connect endpoints, and the Microsoft Graph v1.0
//! endpoints Latchkey uses, behaving as Microsoft documents them (URLs, status codes, headers,
//! JSON shapes, error codes, permission checks). The contract is
//! `/work/shared/reference/graph.md`; choices where Microsoft documents nothing are written
//! down next to the code that makes them.
//!
//! Start one with [`Sim::start`]`(`[`Fixture::test`]`())`; point the authority host at
//! [`Sim::base_url`] and the Graph base at [`Sim::graph_base_url`].
//!
//! Layout: [`fixture`] (TOML tenant description, `[generate]` for large tenants) → [`state`]
//! (live directory, change log for delta queries, generator, churn, sign-in, smart lockout) ;
//! [`tokens`] (JWT sign/verify) ; [`oauth`] (token, authorize, OIDC) ; [`graph`] (users, groups,
//! delta queries, membership writes, methods, passkeys, reset, risk, tenant, `$batch`) ;
//! [`odata`] (filter parser, paging) ; [`faults`] and [`recording`] (test hooks) ; [`control`]
//! (`/_sim/` endpoints, including delta token reset and churn). `examples/delta_bench.rs`
//! measures a generated 500,000-user tenant: build time, memory, full delta walks over HTTP.
//!
//! JSON batching ([`graph::batch`]): `POST /v1.0/$batch` takes up to 20 requests (`id`, `method`,
//! `url` relative to `/v1.0`, `headers`, `body`, `dependsOn`) and answers 200 with one response
//! per part, in reverse request order (Graph promises no order). Each part is sent back to the
//! simulator as its own HTTP request with the batch's token, so permissions, 404s, faults and
//! throttling apply per part: a 429 keeps its `Retry-After` in the part's headers, a dropped
//! connection is the part's 504. A part whose dependency did not succeed is 424 and never runs;
//! a malformed batch (over 20 parts, duplicate ids in any case, an absolute url, a `dependsOn`
//! on a later or unknown id) is 400 and runs nothing. The record lists the outer request, then
//! each part run with `batch_part: true`: count the `batch_part == false` entries for the
//! requests a client sent.
#![allow(clippy::disallowed_methods)]
// the simulator is Microsoft's side: it mints its own ids and keeps its own clock (crate::clock)
// Test infrastructure: a broken built-in fixture, a missing registration or no system randomness
// stops the test at once; a dropped connection's shutdown result is of no interest.
#![allow(clippy::expect_used, clippy::let_underscore_must_use)]

mod app;
pub mod clock;
pub mod control;
pub mod faults;
pub mod fixture;
pub mod graph;
mod middleware;
pub mod oauth;
pub mod odata;
pub mod password;
pub mod recording;
pub mod roles;
mod sim;
pub mod state;
pub mod tokens;

pub use faults::{Fault, FaultKind, Method};
pub use fixture::{Fixture, FixtureError};
pub use recording::RecordedRequest;
pub use sim::Sim;
pub use state::handle::{TenantHandle, UserSnapshot};
pub use state::methods::{
    ALTERNATE_MOBILE_PHONE_ID, EMAIL_METHOD_ID, MOBILE_PHONE_ID, OFFICE_PHONE_ID,
    PASSWORD_METHOD_ID,
};
pub use state::signin::SignInOutcome;

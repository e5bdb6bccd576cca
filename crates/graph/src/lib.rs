//! Microsoft Graph and identity platform client for Latchkey.
//!
//! - [`GraphClient`]: every directory operation the portal needs, typed in and out, with the
//!   token cache (single flight), retries within a budget, paging, typed errors, a request
//!   counter and an optional redacted HTTP debug log (target `latchkey_graph::http`).
//! - [`GraphConfig`] / [`Credential`]: tenant, app, hosts, client secret or certificate.
//! - [`delegated`]: authorization code + PKCE for the admin sign-in that yields the refresh
//!   token used by [`GraphClient::with_delegated`] (needed for `resetPassword`), and for the
//!   portal's user sign-in (enrollment).
//! - [`oidc`]: ID token validation (RS256 against the tenant's JWKS, issuer, audience, nonce,
//!   tenant, lifetime) and a caching [`oidc::OidcProvider`].
//!
//! - Passkeys: [`GraphClient::fido2_creation_options`] → (authenticator) →
//!   [`GraphClient::add_fido2_method`], with the tenant's FIDO2 policy from
//!   [`GraphClient::fido2_configuration`].
//!
//! Nothing here logs or returns a secret: passwords, tokens, codes and TAPs are
//! [`latchkey_types::Secret`]s and the debug log goes through [`redact`].
//!
//! The process must have a rustls crypto provider installed before a client is built
//! (`rustls::crypto::ring::default_provider().install_default()`).
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

mod assertion;
mod batch;
mod client;
mod config;
pub mod deadline;
pub mod delegated;
mod error;
mod http;
mod model;
pub mod observe;
pub mod oidc;
mod ops;
mod passkey_model;
mod passkey_policy;
pub mod redact;
mod token;

pub use assertion::{ASSERTION_LIFETIME_SECS, AssertionAlgorithm, ClientCertificate};
pub use client::GraphClient;
pub use config::{
    Clock, Credential, DEFAULT_AUTHORITY_HOST, DEFAULT_GRAPH_BASE_URL, GraphConfig, RetryPolicy,
    Timeouts, is_loopback,
};
pub use error::{ApiError, GraphError, TokenError, TransportKind};
pub use http::{HTTP_LOG_TARGET, backoff, parse_retry_after};
pub use model::*;
pub use ops::{
    DeltaCollection, DeltaCursor, DeltaGroup, DeltaItem, DeltaLink, DeltaNext, DeltaPage,
    InternalDomainFederation, MAX_PAGE_SIZE, MemberChange, MemberKind, NextPage,
    PASSWORD_RULE_SETTINGS_TEMPLATE, Page, PasswordRuleSettings, RegistrationDetails, Removal,
    UserWithMemberships, accounts_in_domain, odata_string,
};
pub use passkey_model::{Fido2CreationOptions, Fido2Registration, decode_base64_lenient};
pub use passkey_policy::{Fido2Configuration, Fido2KeyRestrictions, KeyEnforcement};
pub use token::{MAX_EXPIRY_MARGIN, RotateHook, expiry_margin};

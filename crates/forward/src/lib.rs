//! Audit forwarding: every audit event, once written, also goes to the configured SIEM outputs.
//!
//! - [`syslog::SyslogOutput`]: RFC 5424 over RELP (acknowledged; [`relp`]) or TLS (RFC 5425),
//!   or TCP/UDP to a relay on this host.
//! - [`webhook::WebhookOutput`]: JSON batches over HTTPS with a bearer token.
//! - [`worker::Forwarder`]: one loop per output, reading the audit table from a durable cursor
//!   (`latchkey_store`'s forwarding lease and cursor), so an outage only delays delivery and
//!   several instances on one PostgreSQL database forward each event through one of them.
//!
//! Delivery is **at least once**, in audit order: a batch cut off by a failure is sent again
//! whole. Every event carries its audit `id` and the deployment's `source`: together, the
//! idempotency key a SIEM deduplicates on.

mod error;
pub mod event;
pub mod relp;
pub mod rfc5424;
pub mod syslog;
mod tls;
pub mod webhook;
pub mod worker;

use std::future::Future;
use std::pin::Pin;

pub use error::ForwardError;
pub use tls::TlsMaterial;
pub use worker::{ForwardObserver, Forwarder, Round, Settings};

use latchkey_store::AuditRecord;

/// A boxed `Send` future (the [`Output`] trait is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Somewhere audit events go.
pub trait Output: Send + Sync + 'static {
    /// `syslog` or `webhook`: the cursor's name in the store and the metrics label.
    fn name(&self) -> &'static str;
    /// Delivers a batch (oldest first); `Ok` only when the receiver has it (see each output).
    fn deliver<'a>(
        &'a self,
        batch: &'a [AuditRecord],
        source: &'a str,
    ) -> BoxFuture<'a, Result<(), ForwardError>>;
    /// Reaches the receiver without sending an event (`latchkey check`): what was confirmed.
    fn probe<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<&'static str, ForwardError>>;
}

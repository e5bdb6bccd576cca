//! Latchkey's outbound notifications.
//!
//! - [`Renderer`]: email (subject, text, HTML) and SMS text for each [`Notice`] from the
//!   templates in `templates/{lang}/` (tera 2, HTML autoescaped), in the user's language with
//!   English as the fallback.
//! - [`SmtpMailer`] ([`EmailTransport`]): lettre over SMTP with STARTTLS or implicit TLS
//!   (rustls + ring); plain SMTP only to a loopback relay, refused for any other host. Our own
//!   pool of reused connections, opened with `TCP_NODELAY` (see `smtp_pool.rs` for why).
//! - [`SmsProvider`]: [`TwilioProvider`] (Twilio-compatible REST) and [`WebhookProvider`]
//!   (JSON to an HTTPS endpoint with a header secret).
//! - [`Notifier`]: the queue. `enqueue` returns at once; a background task delivers with
//!   retries and reports each outcome to a [`DeliveryObserver`]; [`NotifierHandle::shutdown`]
//!   drains it.
//!
//! Message bodies carry codes and are never logged; recipients appear in logs and reports only
//! masked. lettre is built without its `tracing` feature because it logs every byte it writes
//! (bodies and AUTH credentials) at debug level.
#![cfg_attr(test, allow(clippy::disallowed_methods))] // unit tests read the system clock and randomness directly

mod email;
mod error;
mod net;
mod queue;
mod sms;
mod smtp_pool;
mod templates;

pub use email::{EmailTransport, MAX_CONNECTIONS, SmtpConfig, SmtpMailer, SmtpSecurity};
pub use error::{DeliveryError, NotifyError};
pub use latchkey_types::PhoneNumber;
pub use net::{is_loopback_host, secret_from_env, secret_from_file};
pub use queue::{
    BoxFuture, Channel, Channels, DeliveryObserver, DeliveryOutcome, DeliveryReport, MessageId,
    Notification, Notifier, NotifierHandle, QueueConfig, Recipient, RetryPolicy,
};
pub use sms::{
    SmsProvider, TwilioConfig, TwilioProvider, TwilioSender, WebhookAuth, WebhookConfig,
    WebhookProvider,
};
pub use templates::{
    Branding, ChangeKind, ContactAction, LANGUAGES, MethodChange, Notice, RenderedEmail, Renderer,
};

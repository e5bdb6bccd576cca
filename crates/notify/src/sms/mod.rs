//! SMS through a provider: a Twilio-compatible REST API or a generic HTTPS webhook.
//!
//! Both speak HTTPS through reqwest (rustls with the process-wide ring provider; install it at
//! start-up with `rustls::crypto::ring::default_provider().install_default()`). Plain `http` is
//! accepted only for loopback hosts. Redirects are never followed (they would carry credentials
//! elsewhere). Bodies hold codes: they are never logged, and error reasons never quote the
//! provider's answer (which can echo the number).

mod twilio;
mod webhook;

use std::time::Duration;

use latchkey_types::Secret;

pub use twilio::{TwilioConfig, TwilioProvider, TwilioSender};
pub use webhook::{WebhookAuth, WebhookConfig, WebhookProvider};

use crate::error::{DeliveryError, NotifyError};
use crate::queue::BoxFuture;
use latchkey_types::PhoneNumber;

/// Something that sends a text message.
pub trait SmsProvider: Send + Sync + 'static {
    /// Short name for logs and delivery reports (`"twilio"`, `"webhook"`).
    fn name(&self) -> &'static str;
    fn send<'a>(
        &'a self,
        to: &'a PhoneNumber,
        body: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(NotifyError::Config(
            "no rustls crypto provider installed: call \
             rustls::crypto::ring::default_provider().install_default() at start-up"
                .into(),
        ));
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Transport-level failures are worth retrying; the URL is stripped from the reason (a webhook
/// URL may carry a token in its query).
pub(crate) fn transport_error(provider: &str, e: reqwest::Error) -> DeliveryError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    DeliveryError::transient(format!("{provider}: {kind}"))
}

/// 408, 425, 429 and 5xx are temporary; other 4xx mean the request itself is wrong.
pub(crate) fn status_is_retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429)
}

//! A generic HTTPS webhook: `POST {url}` with JSON `{"to": "+4144...", "body": "..."}` and a
//! shared secret in a header. Any 2xx is success. Fits in-house SMS gateways and most
//! providers' "send" endpoints behind a small adapter.

use std::fmt;
use std::time::Duration;

use latchkey_types::Secret;
use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use super::{SmsProvider, http_client, status_is_retryable, transport_error};
use crate::error::{DeliveryError, NotifyError};
use crate::net::check_url;
use crate::queue::BoxFuture;
use latchkey_types::PhoneNumber;

/// How the webhook authenticates us.
#[derive(Clone)]
pub enum WebhookAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret<String>),
    /// Any header, e.g. `X-Api-Key: <value>`.
    Header { name: String, value: Secret<String> },
}

#[derive(Clone)]
pub struct WebhookConfig {
    pub url: Url,
    pub auth: WebhookAuth,
    pub timeout: Duration,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            WebhookAuth::Bearer(_) => "Bearer [redacted]".to_string(),
            WebhookAuth::Header { name, .. } => format!("{name}: [redacted]"),
        };
        f.debug_struct("WebhookConfig")
            .field(
                "url",
                &format!(
                    "{}://{}{}",
                    self.url.scheme(),
                    self.url.host_str().unwrap_or(""),
                    self.url.path()
                ),
            )
            .field("auth", &auth)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub struct WebhookProvider {
    client: reqwest::Client,
    url: Url,
    header: HeaderName,
    value: HeaderValue,
}

impl fmt::Debug for WebhookProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookProvider")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl WebhookProvider {
    pub fn new(config: WebhookConfig) -> Result<Self, NotifyError> {
        check_url("sms.webhook.url", &config.url)?;
        let bad_secret =
            || NotifyError::Config("sms.webhook: the secret is not a valid header value".into());
        let (header, raw) = match &config.auth {
            WebhookAuth::Bearer(token) => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", token.expose()),
            ),
            WebhookAuth::Header { name, value } => (
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    NotifyError::Config(format!("sms.webhook: {name:?} is not a header name"))
                })?,
                value.expose().clone(),
            ),
        };
        let mut value = HeaderValue::from_str(&raw).map_err(|_| bad_secret())?;
        value.set_sensitive(true);
        Ok(Self {
            client: http_client(config.timeout)?,
            url: config.url,
            header,
            value,
        })
    }

    async fn send_now(&self, to: &PhoneNumber, body: &Secret<String>) -> Result<(), DeliveryError> {
        let payload = serde_json::json!({ "to": to.as_str(), "body": body.expose() });
        let response = self
            .client
            .post(self.url.clone())
            .header(self.header.clone(), self.value.clone())
            .json(&payload)
            .send()
            .await
            .map_err(|e| transport_error("webhook", e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(DeliveryError {
            retryable: status_is_retryable(status),
            reason: format!("webhook: HTTP {}", status.as_u16()),
        })
    }
}

impl SmsProvider for WebhookProvider {
    fn name(&self) -> &'static str {
        "webhook"
    }
    fn send<'a>(
        &'a self,
        to: &'a PhoneNumber,
        body: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.send_now(to, body))
    }
}

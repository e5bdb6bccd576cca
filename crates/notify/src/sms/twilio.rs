//! Twilio's Programmable Messaging API, or anything that speaks it:
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form fields `To`, `Body` and
//! `From` or `MessagingServiceSid`, HTTP Basic authentication (Account SID or API key SID, and
//! the auth token or API key secret). Success is 201 with the message resource.

use std::fmt;
use std::time::Duration;

use latchkey_types::Secret;
use url::Url;

use super::{SmsProvider, http_client, status_is_retryable, transport_error};
use crate::error::{DeliveryError, NotifyError};
use crate::net::check_url;
use crate::queue::BoxFuture;
use latchkey_types::PhoneNumber;

/// Who the message comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioSender {
    /// A Twilio number (E.164) or an alphanumeric sender id.
    From(String),
    /// A Messaging Service (`MG...`), which picks the sender itself.
    MessagingService(String),
}

#[derive(Clone)]
pub struct TwilioConfig {
    /// `https://api.twilio.com` for Twilio itself; compatible providers and tests use their own.
    pub base_url: Url,
    pub account_sid: String,
    /// Basic-auth user: the Account SID, or an API key SID (`SK...`).
    pub username: String,
    /// Basic-auth password: the auth token or API key secret.
    pub secret: Secret<String>,
    pub sender: TwilioSender,
    pub timeout: Duration,
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url.as_str())
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("secret", &"[redacted]")
            .field("sender", &self.sender)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TwilioConfig {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.twilio.com";
}

#[derive(Debug)]
pub struct TwilioProvider {
    client: reqwest::Client,
    endpoint: Url,
    username: String,
    secret: Secret<String>,
    sender: TwilioSender,
}

impl TwilioProvider {
    pub fn new(config: TwilioConfig) -> Result<Self, NotifyError> {
        check_url("sms.twilio.base_url", &config.base_url)?;
        let sid_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
        if !sid_ok(&config.account_sid) {
            return Err(NotifyError::Config(
                "sms.twilio.account_sid must be letters and digits (AC...)".into(),
            ));
        }
        let mut endpoint = config.base_url.clone();
        endpoint
            .path_segments_mut()
            .map_err(|_| NotifyError::Config("sms.twilio.base_url cannot be a base".into()))?
            .pop_if_empty()
            .extend([
                "2010-04-01",
                "Accounts",
                &config.account_sid,
                "Messages.json",
            ]);
        Ok(Self {
            client: http_client(config.timeout)?,
            endpoint,
            username: config.username,
            secret: config.secret,
            sender: config.sender,
        })
    }

    async fn send_now(&self, to: &PhoneNumber, body: &Secret<String>) -> Result<(), DeliveryError> {
        let (sender_field, sender) = match &self.sender {
            TwilioSender::From(s) => ("From", s.as_str()),
            TwilioSender::MessagingService(s) => ("MessagingServiceSid", s.as_str()),
        };
        let form = [
            ("To", to.as_str()),
            (sender_field, sender),
            ("Body", body.expose().as_str()),
        ];
        let response = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.username, Some(self.secret.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error("twilio", e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Twilio's error document carries a numeric `code` (e.g. 21211 invalid number); its
        // `message` may quote the number, so only the code is kept.
        let code = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("code").and_then(serde_json::Value::as_i64));
        let reason = match code {
            Some(c) => format!("twilio: HTTP {} (error {c})", status.as_u16()),
            None => format!("twilio: HTTP {}", status.as_u16()),
        };
        Err(DeliveryError {
            retryable: status_is_retryable(status),
            reason,
        })
    }
}

impl SmsProvider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }
    fn send<'a>(
        &'a self,
        to: &'a PhoneNumber,
        body: &'a Secret<String>,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.send_now(to, body))
    }
}

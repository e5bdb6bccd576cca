//! The webhook output: batches of events POSTed as JSON over HTTPS (plain HTTP only to a
//! receiver on this host), with a bearer token.
//!
//! `POST <url>` with `Content-Type: application/json`, `Authorization: Bearer <token>` and
//! `{"source": "<deployment>", "events": [<event>, ...]}` (oldest first, see
//! [`crate::event::event_json`]). Any 2xx takes the batch; anything else, or no answer, and the
//! same events are sent again later (with more behind them, when more were written): delivery
//! is at least once, and each event's `id` (with `source`) is its idempotency key. Redirects are
//! not followed: they would carry the token elsewhere.

use std::time::Duration;

use latchkey_store::AuditRecord;
use latchkey_types::Secret;
use serde_json::json;

use crate::error::ForwardError;
use crate::event::event_json;
use crate::tls::TlsMaterial;
use crate::{BoxFuture, Output};

const NAME: &str = "webhook";

/// The webhook output's settings.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub url: String,
    /// Sent as `Authorization: Bearer ...`; from a file or the environment, never the repository.
    pub bearer_token: Option<Secret<String>>,
    pub tls: TlsMaterial,
    /// The whole request.
    pub timeout: Duration,
}

/// Delivers batches to one HTTPS endpoint.
pub struct WebhookOutput {
    url: url::Url,
    token: Option<Secret<String>>,
    client: reqwest::Client,
}

impl WebhookOutput {
    pub fn new(config: &WebhookConfig) -> Result<Self, ForwardError> {
        // The URL without its query in messages: a query string may carry a key.
        let shown = config
            .url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string();
        let bad = |m: &str| ForwardError::Config(format!("webhook url {shown:?}: {m}"));
        let url = url::Url::parse(&config.url).map_err(|e| bad(&e.to_string()))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(bad("no host")),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(bad(
                    "http:// sends audit events and the token unencrypted: only to a receiver on \
                     this host; use https://",
                ));
            }
            _ => return Err(bad("use https://")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("no credentials in the URL: use bearer_token_file"));
        }
        if let Some(token) = &config.bearer_token {
            let ok = !token.expose().is_empty()
                && reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .is_ok();
            if !ok {
                return Err(ForwardError::Config(
                    "webhook: the bearer token is empty or holds characters a header cannot carry \
                     (a line break?)"
                        .into(),
                ));
            }
        }
        let mut builder = reqwest::Client::builder();
        if loopback {
            // A receiver on this host is reached directly: an `http_proxy` in the environment
            // would otherwise carry plain-HTTP events and the token to the proxy.
            builder = builder.no_proxy();
        }
        let client = builder
            .tls_backend_preconfigured(config.tls.client_config()?)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey-forward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ForwardError::Config(format!("webhook: HTTP client: {e}")))?;
        Ok(Self {
            url,
            token: config.bearer_token.clone(),
            client,
        })
    }

    fn target(&self) -> String {
        // Scheme, host, port and path only: a query string may carry a key.
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default(),
            self.url.path()
        )
    }
}

/// What went wrong, down the error chain (reqwest's own message is only "error sending
/// request"); without the URL, which reqwest's messages repeat with its query string.
fn cause(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs; treated as absent), at most
/// ten minutes.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs.min(600)))
}

impl Output for WebhookOutput {
    fn name(&self) -> &'static str {
        NAME
    }

    /// An empty batch, with the token: a 2xx confirms the address, TLS and the token.
    fn probe<'a>(&'a self, source: &'a str) -> BoxFuture<'a, Result<&'static str, ForwardError>> {
        Box::pin(async move {
            self.deliver(&[], source).await?;
            Ok("an empty batch accepted (address, TLS and token)")
        })
    }

    fn deliver<'a>(
        &'a self,
        batch: &'a [AuditRecord],
        source: &'a str,
    ) -> BoxFuture<'a, Result<(), ForwardError>> {
        Box::pin(async move {
            let events: Vec<_> = batch.iter().map(|r| event_json(r, source)).collect();
            let mut request = self
                .client
                .post(self.url.clone())
                .json(&json!({ "source": source, "events": events }));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            let response = request.send().await.map_err(|e| ForwardError::Transport {
                output: NAME,
                target: self.target(),
                cause: cause(e),
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            Err(ForwardError::Refused {
                output: NAME,
                target: self.target(),
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            })
        })
    }
}

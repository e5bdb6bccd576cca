//! `[passwords]`: the optional breached-password lookup (docs/passwords.md). The other password
//! rules are per policy (`[password]` in a policy file) or the tenant's own (read from Entra).

use std::time::Duration;

use anyhow::{Context, bail};
use latchkey_password::{BreachedLookup, WhenUnavailable};
use serde::Deserialize;

/// Bounds of `breached_timeout_ms`: long enough for a distant service, short enough that a
/// user waiting on the reset page is not left hanging.
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 200..=10_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// A Pwned-Passwords-compatible range service (`https://api.pwnedpasswords.com`, or a
    /// mirror inside the network); empty: no breached-password lookup.
    pub breached_url: String,
    pub breached_timeout_ms: u64,
    /// `"allow"` (default, logged as a warning) or `"refuse"` when the service cannot answer.
    pub breached_unavailable: String,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            breached_url: String::new(),
            breached_timeout_ms: 2_000,
            breached_unavailable: "allow".into(),
        }
    }
}

impl PasswordSettings {
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        self.when_unavailable()?;
        if !self.breached_url.is_empty() {
            self.base_url()?;
        }
        if !TIMEOUT_MS.contains(&self.breached_timeout_ms) {
            bail!(
                "key `passwords.breached_timeout_ms` must be between {} and {}",
                TIMEOUT_MS.start(),
                TIMEOUT_MS.end()
            );
        }
        Ok(())
    }

    fn when_unavailable(&self) -> anyhow::Result<WhenUnavailable> {
        match self.breached_unavailable.as_str() {
            "allow" => Ok(WhenUnavailable::Allow),
            "refuse" => Ok(WhenUnavailable::Refuse),
            other => bail!(
                "key `passwords.breached_unavailable`: \"{other}\" is neither \"allow\" nor \"refuse\""
            ),
        }
    }

    fn base_url(&self) -> anyhow::Result<url::Url> {
        let mut url = url::Url::parse(&self.breached_url)
            .context("key `passwords.breached_url` is not a URL")?;
        let loopback = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
                || h == "[::1]"
        });
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            bail!("key `passwords.breached_url` must be https:// (http:// only on loopback)");
        }
        // `range/…` is joined onto the base: without a trailing slash the last segment would go.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// The lookup, when configured.
    pub fn lookup(&self) -> anyhow::Result<Option<BreachedLookup>> {
        if self.breached_url.is_empty() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(self.breached_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for the breached-password lookup")?;
        Ok(Some(BreachedLookup::new(
            http,
            self.base_url()?,
            Duration::from_millis(self.breached_timeout_ms),
            self.when_unavailable()?,
        )))
    }
}

//! The breached-password lookup: a k-anonymity range query to a Pwned-Passwords-compatible
//! service (docs/passwords.md). Only the first five hex characters of the password's SHA-1 leave
//! the portal (`GET {base}/range/{PREFIX}`); the service answers every suffix it knows under that
//! prefix (`SUFFIX:COUNT` per line), padded with zero-count decoys (`Add-Padding: true`) so the
//! answer's size tells an observer nothing either. The comparison happens here.
//!
//! The lookup is bounded by a timeout; when the service cannot answer, the configuration says
//! whether the password is let through (the default, logged as a warning) or refused.

use std::time::Duration;

use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};

use crate::rules::Rejection;

/// What to do when the service cannot answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnavailable {
    /// Let the password through (logged as a warning): the other checks still ran.
    Allow,
    /// Refuse it with "try again later".
    Refuse,
}

/// Why a lookup had no answer (logged; never with the password or its hash).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the service answered {0}")]
    Status(u16),
    #[error("{0}")]
    Transport(String),
    #[error("the answer is not a range list")]
    Malformed,
}

/// A configured range service.
#[derive(Clone)]
pub struct BreachedLookup {
    http: reqwest::Client,
    base: url::Url,
    timeout: Duration,
    when_unavailable: WhenUnavailable,
}

impl BreachedLookup {
    /// `base` is the service's root (`https://api.pwnedpasswords.com`); the client is the
    /// caller's (one TLS stack, its proxy settings).
    pub fn new(
        http: reqwest::Client,
        base: url::Url,
        timeout: Duration,
        when_unavailable: WhenUnavailable,
    ) -> Self {
        Self {
            http,
            base,
            timeout,
            when_unavailable,
        }
    }

    /// How often the password was seen in breaches (`0`: never).
    pub async fn times_seen(&self, password: &str) -> Result<u64, LookupError> {
        let hash = hex_upper(digest(&SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes()).as_ref());
        let (prefix, suffix) = hash.split_at(5);
        let url = self
            .base
            .join(&format!("range/{prefix}"))
            .map_err(|_| LookupError::Malformed)?;
        let request = async {
            let response = self
                .http
                .get(url)
                .header("Add-Padding", "true")
                .send()
                .await
                .map_err(|e| LookupError::Transport(transport_reason(&e)))?;
            if !response.status().is_success() {
                return Err(LookupError::Status(response.status().as_u16()));
            }
            response
                .text()
                .await
                .map_err(|e| LookupError::Transport(transport_reason(&e)))
        };
        let body = tokio_timeout(self.timeout, request).await??;
        parse_count(&body, suffix)
    }

    /// The check as the flow applies it: `Ok` when never seen (or the service is down and the
    /// configuration allows that), else the rejection.
    pub async fn check(&self, password: &str) -> Result<(), Rejection> {
        match self.times_seen(password).await {
            Ok(0) => Ok(()),
            Ok(_) => Err(Rejection::Breached),
            Err(e) => match self.when_unavailable {
                WhenUnavailable::Allow => {
                    tracing::warn!(error = %e, "breached-password lookup unavailable; password allowed (passwords.breached_unavailable = \"allow\")");
                    Ok(())
                }
                WhenUnavailable::Refuse => {
                    tracing::warn!(error = %e, "breached-password lookup unavailable; password refused (passwords.breached_unavailable = \"refuse\")");
                    Err(Rejection::BreachCheckUnavailable)
                }
            },
        }
    }
}

/// reqwest has no timeout of its own here: the caller's client is shared, so the bound is the
/// lookup's.
async fn tokio_timeout<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, LookupError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| LookupError::Timeout(limit))
}

/// The count on the line whose suffix equals ours; padding lines (count 0) count as unseen.
fn parse_count(body: &str, suffix: &str) -> Result<u64, LookupError> {
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (s, count) = line.split_once(':').ok_or(LookupError::Malformed)?;
        if s.eq_ignore_ascii_case(suffix) {
            return count.trim().parse().map_err(|_| LookupError::Malformed);
        }
    }
    Ok(0)
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The kind of failure, never the URL (it carries the hash prefix).
fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_prefix_and_suffix() {
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8
        let h = hex_upper(digest(&SHA1_FOR_LEGACY_USE_ONLY, b"password").as_ref());
        assert_eq!(h, "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8");
    }

    #[test]
    fn counts_are_read_and_padding_is_unseen() {
        let body = "003D68EB55068C33ACE09247EE4C639306B:3\r\n1E4C9B93F3F0682250B6CF8331B7EE68FD8:52256179\r\nAAAA:0\r\n";
        assert_eq!(
            parse_count(body, "1E4C9B93F3F0682250B6CF8331B7EE68FD8").ok(),
            Some(52256179)
        );
        assert_eq!(parse_count(body, "AAAA").ok(), Some(0));
        assert_eq!(parse_count(body, "FFFF").ok(), Some(0));
        assert!(parse_count("garbage", "FFFF").is_err());
    }
}

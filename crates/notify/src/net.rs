//! Small helpers shared by the transports: loopback detection and secrets from files or the
//! environment.

use std::net::IpAddr;
use std::path::Path;

use latchkey_types::Secret;

use crate::error::NotifyError;

/// True for `localhost`, `127.0.0.0/8` and `::1` (bracketed or not, also IPv4-mapped): the only
/// hosts that may be reached without TLS.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Checks a provider URL: `https`, or `http` to a loopback host (tests, a local relay).
pub(crate) fn check_url(name: &str, url: &url::Url) -> Result<(), NotifyError> {
    match url.scheme() {
        "https" => {}
        "http" if url.host_str().is_some_and(is_loopback_host) => {}
        "http" => {
            return Err(NotifyError::Config(format!(
                "{name}: plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https"
            )));
        }
        other => {
            return Err(NotifyError::Config(format!(
                "{name}: unsupported scheme {other:?}"
            )));
        }
    }
    if url.host_str().is_none() {
        return Err(NotifyError::Config(format!("{name} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(NotifyError::Config(format!(
            "{name}: put credentials in the credential settings, not in the URL"
        )));
    }
    Ok(())
}

/// Reads a secret from a file (trailing newline and spaces ignored).
pub fn secret_from_file(path: &Path) -> Result<Secret<String>, NotifyError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        NotifyError::Config(format!("cannot read secret file {}: {e}", path.display()))
    })?;
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return Err(NotifyError::Config(format!(
            "secret file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(trimmed.to_string()))
}

/// Reads a secret from an environment variable.
pub fn secret_from_env(var: &str) -> Result<Secret<String>, NotifyError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
        .ok_or_else(|| NotifyError::Config(format!("environment variable {var} is not set")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "smtp.contoso.com",
            "10.0.0.1",
            "192.168.1.1",
            "localhost.evil.com",
            "::2",
            "",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn urls_need_tls_except_on_loopback() {
        let ok = [
            "https://api.twilio.com",
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
        ];
        for u in ok {
            assert!(check_url("t", &u.parse().unwrap()).is_ok(), "{u}");
        }
        for u in [
            "http://sms.contoso.com/hook",
            "ftp://x.com",
            "https://user:pw@x.com/",
        ] {
            assert!(check_url("t", &u.parse().unwrap()).is_err(), "{u}");
        }
    }
}

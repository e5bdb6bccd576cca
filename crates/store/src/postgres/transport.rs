//! Where a PostgreSQL store connects, and whether that connection may be used: a server on
//! another host only with TLS that authenticates it (`sslmode=verify-full`).

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::error::{Result, StoreError};

/// `user@host:port/database` (or the socket folder) for messages: where the store points, never
/// a password.
pub(super) fn target(o: &PgConnectOptions) -> String {
    let place = match o.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    };
    format!(
        "{}@{place}/{}",
        o.get_username(),
        o.get_database().unwrap_or_default()
    )
}

/// Whether the server is on this host: a Unix socket, `localhost` or a loopback address.
fn on_this_host(o: &PgConnectOptions) -> bool {
    if o.get_socket().is_some() || o.get_host().starts_with('/') {
        return true;
    }
    let host = o.get_host().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A server on another host is reached only encrypted and authenticated: `sslmode=verify-full`
/// (a trusted CA issued the certificate *and* it names the host). Anything less lets the password
/// and every user's data cross the network readable, or lets an active attacker stand in for the
/// database: `verify-ca` checks no name, and this build's TLS trusts the system's roots besides
/// `sslrootcert`, so any public certificate for any name would do. There is no opt-out: a
/// network that needs none is this host.
pub(super) fn check_transport(o: &PgConnectOptions) -> Result<()> {
    let mode = o.get_ssl_mode();
    if on_this_host(o) || matches!(mode, PgSslMode::VerifyFull) {
        return Ok(());
    }
    let mode = match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer (the default)",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca (no host name check)",
        PgSslMode::VerifyFull => "verify-full",
    };
    Err(StoreError::Insecure {
        target: target(o),
        mode: mode.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    fn check(url: &str) -> Result<()> {
        check_transport(&PgConnectOptions::from_str(url).unwrap())
    }

    #[test]
    fn a_server_on_another_host_needs_a_verified_tls_connection() {
        for ok in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db?sslmode=disable",
            "postgres://u@[::1]:5432/db",
            "postgres://u@db.contoso.com/db?host=/run/postgresql",
            "postgres://u@db.contoso.com/db?sslmode=verify-full",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "postgres://u:secret@db.contoso.com/db",
            "postgres://u@db.contoso.com/db?sslmode=disable",
            "postgres://u@10.0.0.5/db?sslmode=require",
            "postgres://u@10.0.0.5/db?sslmode=prefer",
            "postgres://u@10.0.0.5/db?sslmode=verify-ca&sslrootcert=/etc/ssl/ca.pem",
        ] {
            let e = check(bad).unwrap_err().to_string();
            assert!(e.contains("verify-full"), "{bad}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}

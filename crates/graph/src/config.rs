//! Connection settings: tenant, app, hosts, credential, retry budget, timeouts.
//!
//! Hosts are configuration because national clouds use other ones and tests point them at the
//! simulator. Plain `http://` is accepted only for loopback hosts (`127.0.0.0/8`, `::1`,
//! `localhost`): anything else would send tokens and passwords in clear text.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use url::Url;

use crate::assertion::ClientCertificate;
use crate::error::GraphError;
use latchkey_types::Secret;

/// Microsoft's public-cloud authority host.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0 in the public cloud.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.microsoft.com/v1.0";

/// How the app proves who it is to the token endpoint.
#[derive(Clone)]
pub enum Credential {
    /// `client_secret` (form field; never logged).
    ClientSecret(Secret<String>),
    /// Client assertion JWT signed with the app's certificate key.
    Certificate(ClientCertificate),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ClientSecret(_) => f.write_str("ClientSecret([redacted])"),
            Credential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

/// Retry budget for throttled (429), unavailable (503) and timed-out (504) answers, and for
/// transport failures of idempotent requests. Both limits apply: whichever is hit first ends the
/// retries with [`GraphError::RetriesExhausted`].
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first one (1 = no retry).
    pub max_attempts: u32,
    /// Upper bound on the sum of all waits between attempts. A `Retry-After` that would exceed
    /// what is left is not waited for: the call fails at once.
    pub max_total_wait: Duration,
    /// First backoff step when the server sends no `Retry-After`; doubles per attempt, with jitter.
    pub base_delay: Duration,
    /// Cap of one backoff step (without `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_total_wait: Duration::from_secs(60),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Timeouts. `request` applies per attempt (connect + send + full response body).
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
    /// Poll interval of long-running operations when the server sends no `Retry-After`.
    pub lro_poll_interval: Duration,
    /// Overall deadline for a long-running operation (e.g. `resetPassword`) to finish.
    pub lro_deadline: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
            lro_poll_interval: Duration::from_secs(2),
            lro_deadline: Duration::from_secs(120),
        }
    }
}

/// Wall clock used for token expiry and assertion timestamps. Replaceable in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> OffsetDateTime + Send + Sync>);

impl Clock {
    /// The system clock (UTC).
    #[allow(clippy::disallowed_methods)] // the Graph client's clock seam
    pub fn system() -> Self {
        Self(Arc::new(OffsetDateTime::now_utc))
    }
    /// A clock backed by any function, e.g. a test clock that can be moved forward.
    pub fn from_fn(f: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
    pub fn now(&self) -> OffsetDateTime {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Everything needed to talk to one tenant.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Tenant id (GUID) or a verified domain name.
    pub tenant_id: String,
    /// Application (client) id, a GUID.
    pub client_id: String,
    /// Default [`DEFAULT_AUTHORITY_HOST`]. Scheme + host (+ port), no path.
    pub authority_host: String,
    /// Default [`DEFAULT_GRAPH_BASE_URL`]. Scheme + host + version path.
    pub graph_base_url: String,
    pub credential: Credential,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// Log every request and response (target `latchkey_graph::http`, level DEBUG) with bodies;
    /// secrets redacted, personal data (names, mail, phone numbers) visible. Off by default.
    pub http_debug: bool,
    /// Scope for the client-credentials grant. `None` (default): `{graph host}/.default` for
    /// Microsoft's Graph hosts (national clouds included), else `https://graph.microsoft.com/.default`.
    pub app_scope: Option<String>,
    pub clock: Clock,
}

impl GraphConfig {
    /// Public-cloud defaults for everything but tenant, app and credential.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            authority_host: DEFAULT_AUTHORITY_HOST.to_string(),
            graph_base_url: DEFAULT_GRAPH_BASE_URL.to_string(),
            credential,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            http_debug: false,
            app_scope: None,
            clock: Clock::system(),
        }
    }

    /// Checks the settings and parses the URLs once.
    pub(crate) fn validate(&self) -> Result<ValidatedEndpoints, GraphError> {
        let tenant = self.tenant_id.trim();
        if tenant.is_empty()
            || tenant.len() > 255
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(GraphError::Config(
                "tenant_id must be a GUID or a domain name".into(),
            ));
        }
        if uuid::Uuid::try_parse(self.client_id.trim()).is_err() {
            return Err(GraphError::Config("client_id must be a GUID".into()));
        }
        if let Credential::ClientSecret(s) = &self.credential
            && s.expose().is_empty()
        {
            return Err(GraphError::Config("client secret is empty".into()));
        }
        if self.retry.max_attempts == 0 {
            return Err(GraphError::Config(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        let authority = parse_endpoint("authority_host", &self.authority_host)?;
        if authority.path() != "/" || authority.query().is_some() {
            return Err(GraphError::Config(
                "authority_host must be scheme://host[:port] without a path".into(),
            ));
        }
        let mut graph = parse_endpoint("graph_base_url", &self.graph_base_url)?;
        if graph.query().is_some() {
            return Err(GraphError::Config(
                "graph_base_url must not have a query".into(),
            ));
        }
        // Normalise to no trailing slash so that `{base}/users` joins predictably.
        let trimmed = graph.path().trim_end_matches('/').to_string();
        graph.set_path(&trimmed);
        let token_url = Url::parse(&format!(
            "{}{}/oauth2/v2.0/token",
            authority.as_str(),
            tenant
        ))
        .map_err(|_| GraphError::Config("cannot build the token endpoint URL".into()))?;
        let authorize_url = Url::parse(&format!(
            "{}{}/oauth2/v2.0/authorize",
            authority.as_str(),
            tenant
        ))
        .map_err(|_| GraphError::Config("cannot build the authorize endpoint URL".into()))?;
        let scope = match &self.app_scope {
            Some(s) if !s.trim().is_empty() => s.trim().to_string(),
            Some(_) => return Err(GraphError::Config("app_scope is empty".into())),
            None => graph_default_scope(&graph),
        };
        Ok(ValidatedEndpoints {
            token_url,
            authorize_url,
            graph_base: graph,
            app_scope: scope,
        })
    }
}

/// Parsed endpoints derived from [`GraphConfig`].
#[derive(Debug, Clone)]
pub(crate) struct ValidatedEndpoints {
    pub token_url: Url,
    pub authorize_url: Url,
    /// Without trailing slash, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph_base: Url,
    /// `{graph origin}/.default` for the client-credentials grant.
    pub app_scope: String,
}

/// Microsoft Graph hosts of the public and national clouds; each is its own resource.
const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];

/// `{graph origin}/.default` for Microsoft's Graph hosts (national clouds are their own
/// resource); `https://graph.microsoft.com/.default` for anything else (a simulator or a proxy
/// still asks the identity platform for a token for Microsoft Graph).
fn graph_default_scope(graph: &Url) -> String {
    match graph.host_str() {
        Some(h) if GRAPH_HOSTS.iter().any(|g| h.eq_ignore_ascii_case(g)) => {
            format!("https://{}/.default", h.to_ascii_lowercase())
        }
        _ => "https://graph.microsoft.com/.default".to_string(),
    }
}

fn parse_endpoint(name: &str, value: &str) -> Result<Url, GraphError> {
    let url = Url::parse(value.trim())
        .map_err(|e| GraphError::Config(format!("{name} is not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GraphError::Config(format!(
            "{name} must not contain credentials"
        )));
    }
    if url.fragment().is_some() {
        return Err(GraphError::Config(format!(
            "{name} must not have a fragment"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(GraphError::Config(format!(
                "{name}: plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost)"
            )));
        }
        other => {
            return Err(GraphError::Config(format!(
                "{name}: unsupported scheme {other:?}"
            )));
        }
    }
    if url.host().is_none() {
        return Err(GraphError::Config(format!("{name} has no host")));
    }
    Ok(url)
}

/// True for `localhost`, `127.0.0.0/8` and `::1` (also IPv4-mapped `::ffff:127.x.y.z`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(authority: &str, graph: &str) -> GraphConfig {
        let mut c = GraphConfig::new(
            "contoso.onmicrosoft.com",
            "11111111-1111-1111-1111-111111111111",
            Credential::ClientSecret(Secret::new("s".into())),
        );
        c.authority_host = authority.into();
        c.graph_base_url = graph.into();
        c
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1.0"),
            ("http://127.9.9.9", "http://localhost:1/v1.0"),
            ("http://[::1]:9", "http://LOCALHOST/v1.0/"),
            (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com/v1.0",
            ),
        ] {
            assert!(cfg(ok.0, ok.1).validate().is_ok(), "{ok:?}");
        }
        for bad in [
            (
                "http://login.microsoftonline.com",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://login.microsoftonline.com",
                "http://graph.microsoft.com/v1.0",
            ),
            ("http://10.0.0.1", "https://graph.microsoft.com/v1.0"),
            (
                "http://localhost.evil.com",
                "https://graph.microsoft.com/v1.0",
            ),
            ("http://128.0.0.1", "https://graph.microsoft.com/v1.0"),
            ("http://[::2]", "https://graph.microsoft.com/v1.0"),
            ("ftp://127.0.0.1", "https://graph.microsoft.com/v1.0"),
            (
                "https://user:pw@login.microsoftonline.com",
                "https://graph.microsoft.com/v1.0",
            ),
            (
                "https://login.microsoftonline.com/x",
                "https://graph.microsoft.com/v1.0",
            ),
        ] {
            let err = cfg(bad.0, bad.1).validate().unwrap_err();
            assert!(matches!(err, GraphError::Config(_)), "{bad:?}");
        }
    }

    #[test]
    fn endpoints_are_derived() {
        let e = cfg(
            "https://login.microsoftonline.com/",
            "https://graph.microsoft.com/v1.0/",
        )
        .validate()
        .unwrap();
        assert_eq!(
            e.token_url.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(e.graph_base.as_str(), "https://graph.microsoft.com/v1.0");
        assert_eq!(e.app_scope, "https://graph.microsoft.com/.default");
        let e = cfg("http://127.0.0.1:4000", "http://127.0.0.1:4001/v1.0")
            .validate()
            .unwrap();
        assert_eq!(e.app_scope, "https://graph.microsoft.com/.default");
        let e = cfg(
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us/v1.0",
        )
        .validate()
        .unwrap();
        assert_eq!(e.app_scope, "https://graph.microsoft.us/.default");
    }

    #[test]
    fn rejects_bad_ids() {
        let mut c = cfg(
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com/v1.0",
        );
        c.client_id = "not-a-guid".into();
        assert!(c.validate().is_err());
        let mut c = cfg(
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com/v1.0",
        );
        c.tenant_id = "contoso/../x".into();
        assert!(c.validate().is_err());
    }
}

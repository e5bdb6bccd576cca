//! The configuration's tables that are plain settings (no logic beyond defaults): who may use
//! the consoles, the portal, the store, policies, mail and texts, branding, the Entra app, the
//! Graph client, features and the listener. Validation is in `Settings::validate` (mod.rs).

use std::path::PathBuf;

use latchkey_types::Secret;
use serde::Deserialize;

/// Who may use the admin console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Object id of the Entra group whose (transitive) members are admins.
    pub group: String,
    /// Client secret credential: its expiry date (`YYYY-MM-DD`, from the app registration's
    /// "Certificates & secrets"), shown on the connection page. A certificate's expiry is read
    /// from the certificate itself.
    pub secret_expires: Option<String>,
}

/// Who may use the helpdesk console, and whom they may serve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpdeskSettings {
    /// Object id of the Entra group whose (transitive) members are helpdesk staff.
    pub group: String,
    /// Object ids of the groups whose (transitive) members the helpdesk may serve.
    #[serde(default)]
    pub serves: Vec<String>,
    /// How long a helpdesk reset link works, in minutes (default 60, at most 1440).
    #[serde(default)]
    pub link_lifetime_minutes: Option<u64>,
}

/// The delegated credential (`latchkey delegate` writes it). Without this table synced users
/// cannot reset their password here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegatedSettings {
    /// Where the Authentication Administrator's refresh token is kept, encrypted with the
    /// `[store] key_file` key (mode 0600, replaced atomically when the token rotates).
    pub token_file: PathBuf,
}

/// Text messages. Without this table no SMS is sent (SMS codes then cannot work).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    /// `twilio` (Twilio's Messages API or a compatible one) or `webhook` (POST JSON `{to, body}`).
    pub provider: String,
    /// Twilio: API base (default Twilio's); webhook: the URL to POST to. https only, except loopback.
    pub url: Option<String>,
    /// Twilio: the Account SID (also the user name unless `username` is set).
    pub account_sid: Option<String>,
    /// Twilio: API key SID when authenticating with an API key instead of the Account SID.
    pub username: Option<String>,
    /// Twilio: auth token or API key secret; webhook: the bearer token. From a file.
    pub secret_file: Option<PathBuf>,
    /// Twilio: the sending number or alphanumeric id ...
    pub from: Option<String>,
    /// ... or a Messaging Service SID (`MG...`).
    pub messaging_service_sid: Option<String>,
}

/// The portal as users reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSettings {
    /// The URL users open, e.g. `https://reset.contoso.com`. Origin checks and links use it;
    /// `http://` only on loopback.
    pub public_url: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed: addresses or CIDR ranges
    /// (`10.0.0.0/8`, `2001:db8::/32`).
    pub trusted_proxies: Vec<String>,
    /// Where users sign in after a reset.
    pub signin_url: String,
    /// Minimum time of every answer before the first verification (enumeration safety).
    pub response_deadline_ms: u64,
    /// How long an instance may take to deliver a stored notice it claimed before another
    /// instance sends it (after a crash). An instance renews the lease of notices it is still
    /// sending.
    pub notice_lease_seconds: u64,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            signin_url: "https://myaccount.microsoft.com".into(),
            response_deadline_ms: 600,
            notice_lease_seconds: latchkey_selfservice::notices::DEFAULT_LEASE.as_secs(),
        }
    }
}

/// Persistence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite:///var/lib/latchkey/latchkey.db` (one instance), or
    /// `postgres://latchkey@db.contoso.com/latchkey?sslmode=verify-full` (several instances behind
    /// a load balancer share every limit). `url` is accepted as the key's short name.
    #[serde(alias = "url")]
    pub database_url: String,
    /// PostgreSQL: the password, read from this file at start (trailing newline ignored), so it
    /// stays out of the URL. Otherwise the URL's password, `PGPASSWORD` or `~/.pgpass` apply.
    pub password_file: Option<PathBuf>,
    /// 256-bit key (base64) for secrets at rest and the portal's other keys; created with mode
    /// 0600 on first start. Keep it out of the database's backups.
    pub key_file: PathBuf,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://latchkey.db".into(),
            password_file: None,
            key_file: PathBuf::from("latchkey.key"),
        }
    }
}

/// Where the access policies are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    pub dir: PathBuf,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("policies"),
        }
    }
}

/// Outgoing mail. Without this table no email is sent (codes by email then cannot work).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit, port 465) or `plain` (loopback relays only).
    #[serde(default = "starttls")]
    pub security: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. `Contoso IT <it-noreply@contoso.com>`.
    pub from: String,
    /// Connections to the relay at most, which is also how many messages go out at once
    /// (1 to 64; checked when the mailer is built).
    #[serde(default = "smtp_max_connections")]
    pub max_connections: usize,
}

fn starttls() -> String {
    "starttls".into()
}

fn smtp_max_connections() -> usize {
    8
}

/// How the pages look.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingSettings {
    pub name: String,
    pub logo_url: Option<String>,
    /// `#rrggbb`; white text must be readable on it.
    pub colour: String,
    /// Shown in the footer of every page.
    pub helpdesk: Option<String>,
}

impl Default for BrandingSettings {
    fn default() -> Self {
        let b = crate::render::Brand::default();
        Self {
            name: b.name,
            logo_url: b.logo_url,
            colour: b.colour,
            helpdesk: b.helpdesk,
        }
    }
}

/// The tenant connection. Exactly these keys (the issue fixes them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSettings {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<Secret<String>>,
    pub client_secret_file: Option<PathBuf>,
    pub certificate_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    pub authority_host: Option<String>,
    pub graph_base_url: Option<String>,
}

/// How the Graph client behaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphSettings {
    /// Log every Graph/token request and response, redacted, at debug level.
    pub http_debug: bool,
    /// `PS256` (Microsoft's current recommendation) or `RS256` (older tenants' tooling).
    pub assertion_algorithm: AssertionAlgorithm,
    /// Per-request timeout.
    pub timeout_seconds: u64,
    /// Attempts per request when Graph throttles (429) or is unavailable (503/504).
    pub max_attempts: u32,
    /// One budget for all the Graph requests of one self-service page request (token, requests,
    /// retries, waits, writeback polling): the page answers within about this long however slow
    /// Graph is.
    pub request_budget_seconds: u64,
}

impl Default for GraphSettings {
    fn default() -> Self {
        Self {
            http_debug: false,
            assertion_algorithm: AssertionAlgorithm::Ps256,
            timeout_seconds: 30,
            max_attempts: 4,
            request_budget_seconds: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    #[serde(rename = "PS256")]
    Ps256,
    #[serde(rename = "RS256")]
    Rs256,
}

/// Which product features are switched on; `latchkey check` requires the permissions of these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Features {
    /// Self-service reset of cloud users' passwords with the app's own credential (PATCH passwordProfile).
    pub app_only_reset: bool,
    /// Dismiss user risk after a successful reset (Identity Protection, Entra ID P2).
    pub dismiss_risk: bool,
    /// Issue Temporary Access Passes (helpdesk, and self-service where a policy allows).
    pub temporary_access_pass: bool,
    /// Let helpdesk staff delete lost authentication methods.
    pub manage_methods: bool,
    /// Check federated domains (AD FS) and hybrid writeback settings.
    pub hybrid: bool,
    /// `latchkey passkey provision`: passkeys (FIDO2 security keys) provisioned into Entra.
    pub passkey_provisioning: bool,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            app_only_reset: true,
            dismiss_risk: true,
            temporary_access_pass: false,
            manage_methods: false,
            hybrid: true,
            passkey_provisioning: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the portal listens on.
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM, leaf first) and key, re-read when the files
    /// change (crate::tls). Both or neither.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// With TLS: a plain-HTTP listener (e.g. `0.0.0.0:80`) that only redirects to
    /// `portal.public_url` (crate::redirect).
    pub http_redirect_listen: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            tls_cert_file: None,
            tls_key_file: None,
            http_redirect_listen: None,
        }
    }
}

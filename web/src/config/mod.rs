//! Configuration: a TOML file plus `LATCHKEY__SECTION__KEY` environment overrides (the `config`
//! crate). Secrets may be given inline (for quick trials) or, better, as `*_file` paths; relative
//! paths are resolved against the configuration file's folder. Every error names the file and key.

use std::path::Path;

use anyhow::{Context, bail};
use latchkey_types::Secret;
use serde::Deserialize;

mod directory;
mod forwarding;
mod kiosk;
mod limits;
mod log;
mod metrics;
mod passwords;
mod sections;

pub use directory::DirectorySettings;
pub use forwarding::{
    ForwardFrom, ForwardingSettings, SyslogSettings as ForwardSyslogSettings,
    WebhookSettings as ForwardWebhookSettings,
};
pub use kiosk::{KioskSettings, mentions_url};
pub use limits::LimitSettings;
pub use log::{LogFormat, LogSettings};
pub use metrics::MetricsSettings;
pub use passwords::PasswordSettings;
pub use sections::{
    AdminSettings, AssertionAlgorithm, BrandingSettings, DelegatedSettings, EntraSettings,
    Features, GraphSettings, HelpdeskSettings, PolicySettings, PortalSettings, ServerSettings,
    SmsSettings, SmtpSettings, StoreSettings,
};

/// The whole configuration file. Every key is documented in the README ("Configuration").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub entra: EntraSettings,
    #[serde(default)]
    pub graph: GraphSettings,
    #[serde(default)]
    pub features: Features,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub portal: PortalSettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub policies: PolicySettings,
    pub smtp: Option<SmtpSettings>,
    pub sms: Option<SmsSettings>,
    #[serde(default)]
    pub branding: BrandingSettings,
    /// Hybrid tenants: the delegated credential for `resetPassword` with writeback.
    pub delegated: Option<DelegatedSettings>,
    /// The admin console (`/admin`); without this table it is not served.
    pub admin: Option<AdminSettings>,
    /// The helpdesk console (`/helpdesk`); without this table it is not served.
    pub helpdesk: Option<HelpdeskSettings>,
    /// The breached-password lookup (optional).
    #[serde(default)]
    pub passwords: PasswordSettings,
    /// Throttle limits (defaults: docs/security.md).
    #[serde(default)]
    pub limits: LimitSettings,
    /// Kiosk mode for shared PCs and the Windows sign-in screen (off by default).
    #[serde(default)]
    pub kiosk: KioskSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Audit events to SIEM outputs (off unless an output is configured).
    #[serde(default)]
    pub forwarding: ForwardingSettings,
    /// The directory mirror (on by default).
    #[serde(default)]
    pub directory: DirectorySettings,
}

/// The app credential after files have been read.
pub enum Credential {
    Secret(Secret<String>),
    Certificate {
        certificate_pem: Vec<u8>,
        private_key_pem: Secret<Vec<u8>>,
    },
}

impl Settings {
    /// Loads `path`, then applies `LATCHKEY__SECTION__KEY` environment overrides.
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Settings::load`], with the environment passed in (tests).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("LATCHKEY__"))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("LATCHKEY")
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .map_err(|e| anyhow::anyhow!("configuration file {}: {e}", path.display()))?;
        let mut settings: Settings = built.try_deserialize().map_err(|e| {
            anyhow::anyhow!("configuration file {}: {}", path.display(), explain(e))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        settings.resolve_paths(base);
        settings
            .validate()
            .map_err(|e| anyhow::anyhow!("configuration file {}: {e}", path.display()))?;
        Ok(settings)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let smtp_password = self.smtp.as_mut().and_then(|s| s.password_file.as_mut());
        let store_password = self.store.password_file.as_mut();
        let sms_secret = self.sms.as_mut().and_then(|s| s.secret_file.as_mut());
        let delegated = self.delegated.as_mut().map(|d| &mut d.token_file);
        let optional = [
            &mut self.entra.client_secret_file,
            &mut self.entra.certificate_file,
            &mut self.entra.private_key_file,
            &mut self.server.tls_cert_file,
            &mut self.server.tls_key_file,
        ];
        for p in optional
            .into_iter()
            .flatten()
            .chain(smtp_password)
            .chain(store_password)
            .chain(sms_secret)
            .chain(delegated)
            .chain(self.forwarding.paths())
            .chain([&mut self.store.key_file, &mut self.policies.dir])
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(path) = self.store.database_url.strip_prefix("sqlite://")
            && !path.starts_with('/')
            && !path.is_empty()
        {
            self.store.database_url = format!("sqlite://{}", base.join(path).display());
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.server.tls_cert_file.is_some() == self.server.tls_key_file.is_some(),
            "keys `server.tls_cert_file` and `server.tls_key_file` go together"
        );
        anyhow::ensure!(
            self.server.tls_cert_file.is_none() || self.portal.public_url.starts_with("https://"),
            "key `portal.public_url` must be https:// when the portal serves TLS itself"
        );
        anyhow::ensure!(
            self.server.http_redirect_listen.is_none() || self.server.tls_cert_file.is_some(),
            "key `server.http_redirect_listen` needs `server.tls_cert_file` (it redirects to HTTPS)"
        );
        if let Some(listen) = &self.metrics.listen {
            listen.parse::<std::net::SocketAddr>().map_err(|_| {
                anyhow::anyhow!("key `metrics.listen`: {listen:?} is not ADDRESS:PORT")
            })?;
        }
        self.passwords.validate()?;
        self.forwarding.validate()?;
        self.directory.timings().map_err(anyhow::Error::msg)?;
        self.directory
            .full_round_every()
            .map_err(anyhow::Error::msg)?;
        self.limits.limits()?;
        self.kiosk.validate()?;
        for p in &self.portal.trusted_proxies {
            p.parse::<crate::guard::IpNet>()
                .map_err(|e| anyhow::anyhow!("key `portal.trusted_proxies`: {e}"))?;
        }
        // Shown as a link after a reset: an http(s) URL, never `javascript:` or a relative path.
        let signin = url::Url::parse(&self.portal.signin_url)
            .with_context(|| "key `portal.signin_url` is not a URL")?;
        if !matches!(signin.scheme(), "https" | "http") {
            bail!("key `portal.signin_url` must be an https:// (or http://) URL");
        }
        let db = &self.store.database_url;
        let postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
        if self.store.password_file.is_some() && !postgres {
            bail!("key `store.password_file` is only used with a postgres:// `store.database_url`");
        }
        let e = &self.entra;
        if e.tenant_id.trim().is_empty() {
            bail!(
                "key `entra.tenant_id` is empty (the directory id GUID or a verified domain name)"
            );
        }
        if e.client_id.parse::<latchkey_types::ObjectId>().is_err() {
            bail!(
                "key `entra.client_id` is not a GUID (the app registration's Application (client) ID)"
            );
        }
        let secret = e.client_secret.is_some() || e.client_secret_file.is_some();
        let cert = e.certificate_file.is_some() || e.private_key_file.is_some();
        match (secret, cert) {
            (true, true) => bail!(
                "keys `entra.client_secret[_file]` and `entra.certificate_file` are both set: choose one credential"
            ),
            (false, false) => bail!(
                "no credential: set `entra.client_secret_file` (or `entra.client_secret`), or `entra.certificate_file` + `entra.private_key_file`"
            ),
            _ => {}
        }
        if e.client_secret.is_some() && e.client_secret_file.is_some() {
            bail!(
                "keys `entra.client_secret` and `entra.client_secret_file` are both set: choose one"
            );
        }
        if let Some(a) = &self.admin {
            if a.group.trim().parse::<latchkey_types::ObjectId>().is_err() {
                bail!("key `admin.group` is not a group object id (GUID)");
            }
            if let Some(d) = &a.secret_expires
                && parse_date(d).is_none()
            {
                bail!("key `admin.secret_expires` is not a date (YYYY-MM-DD)");
            }
        }
        if let Some(h) = &self.helpdesk {
            if h.group.trim().parse::<latchkey_types::ObjectId>().is_err() {
                bail!("key `helpdesk.group` is not a group object id (GUID)");
            }
            if h.serves
                .iter()
                .any(|g| g.trim().parse::<latchkey_types::ObjectId>().is_err())
            {
                bail!("key `helpdesk.serves`: every entry must be a group object id (GUID)");
            }
            if h.link_lifetime_minutes
                .is_some_and(|m| !(5..=1440).contains(&m))
            {
                bail!("key `helpdesk.link_lifetime_minutes` must be between 5 and 1440 (24 hours)");
            }
        }
        if cert && (e.certificate_file.is_none() || e.private_key_file.is_none()) {
            bail!(
                "key `entra.certificate_file` needs `entra.private_key_file` and the other way round"
            );
        }
        Ok(())
    }

    /// Reads the credential files named in the configuration.
    pub fn credential(&self) -> anyhow::Result<Credential> {
        let e = &self.entra;
        if let Some(secret) = &e.client_secret {
            return Ok(Credential::Secret(secret.clone()));
        }
        if let Some(file) = &e.client_secret_file {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!(
                    "key `entra.client_secret_file`: cannot read {}",
                    file.display()
                )
            })?;
            let secret = text.trim_end_matches(['\r', '\n']).to_string();
            if secret.is_empty() {
                bail!(
                    "key `entra.client_secret_file`: {} is empty",
                    file.display()
                );
            }
            return Ok(Credential::Secret(Secret::new(secret)));
        }
        let (Some(cert), Some(key)) = (&e.certificate_file, &e.private_key_file) else {
            bail!("no credential configured");
        };
        let certificate_pem = std::fs::read(cert).with_context(|| {
            format!(
                "key `entra.certificate_file`: cannot read {}",
                cert.display()
            )
        })?;
        let private_key_pem = std::fs::read(key).with_context(|| {
            format!(
                "key `entra.private_key_file`: cannot read {}",
                key.display()
            )
        })?;
        Ok(Credential::Certificate {
            certificate_pem,
            private_key_pem: Secret::new(private_key_pem),
        })
    }
}

/// serde's "missing field `x`" does not say in which table; name the table for the common cases.
fn explain(e: config::ConfigError) -> String {
    let text = e.to_string();
    if text.starts_with("missing field")
        && !text.contains('.')
        && let Some(field) = text.split('`').nth(1)
    {
        let table = if ["tenant_id", "client_id"].contains(&field) {
            "entra."
        } else {
            ""
        };
        if field == "entra" {
            return "missing table `[entra]` (tenant_id, client_id and a credential)".into();
        }
        return format!("missing key `{table}{field}`");
    }
    text
}

/// Parses `YYYY-MM-DD` (dates in the configuration and in console forms).
pub fn parse_date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("latchkey-config-test-{}", uuid_like()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn uuid_like() -> String {
        latchkey_types::ObjectId::new_random().to_string()
    }

    const GOOD: &str = r#"
[entra]
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-1111-1111-1111-111111111111"
client_secret_file = "secret.txt"
"#;

    #[test]
    fn secret_file_is_resolved_relative_to_the_config_file_and_trimmed() {
        let d = tempdir();
        write(&d, "secret.txt", "s3cret\n");
        let p = write(&d, "latchkey.toml", GOOD);
        let s = Settings::load_with_env(&p, []).unwrap();
        match s.credential().unwrap() {
            Credential::Secret(v) => assert_eq!(v.expose(), "s3cret"),
            Credential::Certificate { .. } => panic!("expected a secret"),
        }
        assert!(s.features.app_only_reset);
    }

    #[test]
    fn environment_overrides_the_file() {
        let d = tempdir();
        let p = write(&d, "latchkey.toml", GOOD);
        let s = Settings::load_with_env(
            &p,
            [(
                "LATCHKEY__ENTRA__AUTHORITY_HOST".to_string(),
                "http://127.0.0.1:9".to_string(),
            )],
        )
        .unwrap();
        assert_eq!(
            s.entra.authority_host.as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let d = tempdir();
        let p = write(
            &d,
            "bad.toml",
            "[entra]\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"x\"\n",
        );
        let e = Settings::load_with_env(&p, []).unwrap_err().to_string();
        assert!(
            e.contains("bad.toml") && e.contains("entra.tenant_id"),
            "{e}"
        );

        let p = write(
            &d,
            "typo.toml",
            &format!("{GOOD}\n[graph]\nhttp_dbug = true\n"),
        );
        let e = Settings::load_with_env(&p, []).unwrap_err().to_string();
        assert!(e.contains("typo.toml") && e.contains("http_dbug"), "{e}");

        let p = write(
            &d,
            "both.toml",
            &format!("{GOOD}certificate_file = \"c.pem\"\nprivate_key_file = \"k.pem\"\n"),
        );
        let e = Settings::load_with_env(&p, []).unwrap_err().to_string();
        assert!(e.contains("both set"), "{e}");

        let p = write(
            &d,
            "guid.toml",
            "[entra]\ntenant_id = \"t\"\nclient_id = \"nope\"\nclient_secret = \"x\"\n",
        );
        let e = Settings::load_with_env(&p, []).unwrap_err().to_string();
        assert!(e.contains("entra.client_id"), "{e}");
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let d = tempdir();
        let p = write(
            &d,
            "inline.toml",
            "[entra]\ntenant_id = \"t\"\nclient_id = \"11111111-1111-1111-1111-111111111111\"\nclient_secret = \"topsecret\"\n",
        );
        let s = Settings::load_with_env(&p, []).unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}

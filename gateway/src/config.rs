//! `latchkey-gateway check` configuration: the `[ad]` table (exactly the keys the README lists),
//! an optional `[entra]` table as in the portal, and command-line overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_ad::ldap::{LdapSettings, TrustSource};
use latchkey_types::Secret;
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub message: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    ad: AdSection,
    /// The portal's `[entra]` table; its presence says the Entra side is configured.
    entra: Option<toml::Table>,
    /// AD FS hosts of federated domains, probed by `check`.
    #[serde(default)]
    federation: FederationSection,
    /// `run` only: where the portal is and the gateway's credential.
    portal: Option<PortalSection>,
    /// `run` only: which jobs this gateway takes.
    #[serde(default)]
    jobs: JobsSection,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FederationSection {
    #[serde(default)]
    adfs: Vec<String>,
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalSection {
    url: String,
    credential_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    poll_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsSection {
    #[serde(default = "yes")]
    unlock: bool,
    #[serde(default)]
    reset: bool,
    #[serde(default)]
    must_change_after_reset: bool,
    #[serde(default)]
    domains: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for JobsSection {
    fn default() -> Self {
        JobsSection {
            unlock: true,
            reset: false,
            must_change_after_reset: false,
            domains: vec![],
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AdSection {
    url: Option<String>,
    bind_dn: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    base_dn: Option<String>,
    connector_account: Option<String>,
}

/// Values given on the command line; each replaces the file's key.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub url: Option<String>,
    pub bind_dn: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub base_dn: Option<String>,
    pub connector_account: Option<String>,
    /// Labs only: do not verify the DC's certificate.
    pub insecure: bool,
}

/// Everything `check` needs, resolved.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub ldap: LdapSettings,
    pub base_dn: Option<String>,
    pub connector_account: Option<String>,
    pub entra_configured: bool,
    /// The `[entra]` table's app credential and hosts (an error when the table is unusable).
    pub entra: Option<Result<crate::checks::entra::EntraSettings, String>>,
    /// AD FS hosts (`[federation] adfs`), probed over HTTPS.
    pub adfs_hosts: Vec<String>,
    /// Trust for the AD FS certificates (`[federation] ca_file`, else the system store).
    pub adfs_trust: TrustSource,
}

/// Environment variable that supplies the bind password (beats the file's keys).
pub const PASSWORD_ENV: &str = "LATCHKEY__AD__PASSWORD";

pub fn load(path: &Path, o: &Overrides) -> Result<CheckConfig, ConfigError> {
    let file = path.display().to_string();
    let err = |message: String| ConfigError {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let cfg: FileConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let rel = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    let ad = cfg.ad;

    let url = o.url.clone().or(ad.url).ok_or_else(|| {
        err("ad.url is required (ldaps://host or ldap://host for StartTLS)".into())
    })?;
    let bind_dn = o
        .bind_dn
        .clone()
        .or(ad.bind_dn)
        .ok_or_else(|| err("ad.bind_dn is required".into()))?;
    let password = if let Ok(p) = std::env::var(PASSWORD_ENV) {
        p
    } else if let Some(f) = o.password_file.clone().or(ad.password_file.map(rel)) {
        let p = std::fs::read_to_string(&f)
            .map_err(|e| err(format!("ad.password_file {}: {e}", f.display())))?;
        p.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = ad.password {
        p
    } else {
        return Err(err(format!(
            "one of ad.password_file, ad.password or {PASSWORD_ENV} is required"
        )));
    };
    let ca_file = o.ca_file.clone().or(ad.ca_file.map(rel));
    let trust = match (o.insecure, ca_file) {
        (true, _) => TrustSource::Insecure,
        (false, Some(f)) => TrustSource::CaFile(f),
        (false, None) => TrustSource::System,
    };
    Ok(CheckConfig {
        ldap: LdapSettings {
            url,
            bind_dn,
            password: Secret::new(password),
            trust,
            timeout: Duration::from_secs(30),
            page_size: 500,
        },
        base_dn: o.base_dn.clone().or(ad.base_dn),
        connector_account: o.connector_account.clone().or(ad.connector_account),
        entra_configured: cfg.entra.is_some(),
        entra: cfg
            .entra
            .as_ref()
            .map(|t| crate::checks::entra::EntraSettings::from_table(t, dir)),
        adfs_hosts: cfg.federation.adfs,
        adfs_trust: cfg
            .federation
            .ca_file
            .map(rel)
            .map_or(TrustSource::System, TrustSource::CaFile),
    })
}

/// Environment variable that supplies the gateway credential (beats `portal.credential_file`).
pub const CREDENTIAL_ENV: &str = "LATCHKEY__PORTAL__CREDENTIAL";

/// Everything `run` needs, resolved.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The service account the jobs run as (least privilege: the writeback rights only).
    pub ldap: LdapSettings,
    /// Where accounts are looked up; default: the rootDSE's defaultNamingContext.
    pub base_dn: Option<String>,
    /// The portal's base URL: https, or http on loopback only.
    pub portal_url: String,
    pub credential: Secret<String>,
    /// Trust for the portal's certificate (default: the system store).
    pub portal_trust: TrustSource,
    /// How long one long-poll waits at the portal (1 to 30 s; default 25).
    pub poll_seconds: u64,
    pub unlock: bool,
    pub reset: bool,
    /// After a reset, make the user change the password at next logon (`pwdLastSet: 0`).
    pub must_change_after_reset: bool,
    /// DNS domain names (Entra's `onPremisesDomainName`) this gateway serves; empty: the domain
    /// of the naming context.
    pub domains: Vec<String>,
}

/// Loads the `run` configuration: `[ad]` as for `check` plus `[portal]` and `[jobs]`.
pub fn load_agent(path: &Path) -> Result<AgentConfig, ConfigError> {
    let base = load(path, &Overrides::default())?;
    let file = path.display().to_string();
    let err = |message: String| ConfigError {
        file: file.clone(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let cfg: FileConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let rel = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    let portal = cfg
        .portal
        .ok_or_else(|| err("a [portal] table with url and credential_file is required".into()))?;
    let url = url_ok(&portal.url).map_err(err)?;
    let credential = if let Ok(c) = std::env::var(CREDENTIAL_ENV) {
        c
    } else if let Some(f) = portal.credential_file.map(rel) {
        std::fs::read_to_string(&f)
            .map_err(|e| err(format!("portal.credential_file {}: {e}", f.display())))?
            .trim()
            .to_string()
    } else {
        return Err(err(format!(
            "portal.credential_file (or {CREDENTIAL_ENV}) is required: the output of \
             `latchkey gateway register NAME` on the portal host"
        )));
    };
    if !credential.starts_with(latchkey_jobs::CREDENTIAL_PREFIX) {
        return Err(err(
            "the gateway credential is not one `latchkey gateway register` printed".into(),
        ));
    }
    if !cfg.jobs.unlock && !cfg.jobs.reset {
        return Err(err("[jobs]: enable unlock, reset or both".into()));
    }
    Ok(AgentConfig {
        ldap: base.ldap,
        base_dn: base.base_dn,
        portal_url: url,
        credential: Secret::new(credential),
        portal_trust: portal
            .ca_file
            .map(rel)
            .map_or(TrustSource::System, TrustSource::CaFile),
        poll_seconds: portal
            .poll_seconds
            .unwrap_or(25)
            .clamp(1, latchkey_jobs::MAX_WAIT_SECONDS),
        unlock: cfg.jobs.unlock,
        reset: cfg.jobs.reset,
        must_change_after_reset: cfg.jobs.must_change_after_reset,
        domains: cfg
            .jobs
            .domains
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .collect(),
    })
}

/// https, or http for a loopback host only (tests, a portal on the same machine).
fn url_ok(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") {
        return Ok(url.to_string());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Ok(url.to_string());
        }
    }
    Err(format!(
        "portal.url {url:?} must be https:// (plain http only on loopback)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            if let Err(e) = std::fs::remove_dir_all(&self.0) {
                eprintln!("cannot remove {}: {e}", self.0.display());
            }
        }
    }

    fn write(text: &str) -> (TempDir, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("latchkey-gw-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("gw.toml");
        std::fs::write(&p, text).unwrap();
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        (TempDir(dir), p)
    }

    #[test]
    fn reads_the_ad_table_and_resolves_relative_paths() {
        let (dir, p) = write(
            "[ad]\nurl = \"ldaps://dc1\"\nbind_dn = \"svc@lab\"\npassword_file = \"pw\"\nca_file = \"ca.pem\"\nbase_dn = \"OU=X\"\nconnector_account = \"MSOL_1\"\n",
        );
        let c = load(&p, &Overrides::default()).unwrap();
        assert_eq!(c.ldap.password.expose(), "s3cret");
        assert_eq!(c.ldap.trust, TrustSource::CaFile(dir.path().join("ca.pem")));
        assert_eq!(c.base_dn.as_deref(), Some("OU=X"));
        assert_eq!(c.connector_account.as_deref(), Some("MSOL_1"));
        assert!(!c.entra_configured);
        let o = Overrides {
            url: Some("ldap://other".into()),
            insecure: true,
            ..Overrides::default()
        };
        let c = load(&p, &o).unwrap();
        assert_eq!(c.ldap.url, "ldap://other");
        assert_eq!(c.ldap.trust, TrustSource::Insecure);
    }

    #[test]
    fn unknown_keys_and_missing_password_are_errors() {
        let (_d, p) = write("[ad]\nurl = \"ldaps://dc1\"\nbind_dn = \"x\"\npasword = \"typo\"\n");
        let e = load(&p, &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("pasword"), "{e}");
        let (_d, p) = write("[ad]\nurl = \"ldaps://dc1\"\nbind_dn = \"x\"\n");
        assert!(load(&p, &Overrides::default()).is_err());
        let (_d, p) = write(
            "[ad]\nurl = \"ldaps://dc1\"\nbind_dn = \"x\"\npassword = \"p\"\n[entra]\ntenant_id = \"t\"\n",
        );
        assert!(load(&p, &Overrides::default()).unwrap().entra_configured);
    }

    #[test]
    fn agent_config_needs_the_portal_and_refuses_plain_http_off_loopback() {
        let base = "[ad]\nurl = \"ldaps://dc1\"\nbind_dn = \"x\"\npassword = \"p\"\n";
        let (_d, p) = write(base);
        assert!(load_agent(&p).unwrap_err().to_string().contains("[portal]"));
        let (d, p) = write(&format!(
            "{base}[portal]\nurl = \"http://portal.example\"\ncredential_file = \"cred\"\n"
        ));
        std::fs::write(d.path().join("cred"), "lkgw_abc.def\n").unwrap();
        assert!(load_agent(&p).unwrap_err().to_string().contains("https"));
        let (d, p) = write(&format!(
            "{base}[portal]\nurl = \"http://127.0.0.1:8080/\"\ncredential_file = \"cred\"\n\
             [jobs]\nreset = true\ndomains = [\"Corp.Contoso.com\"]\n"
        ));
        std::fs::write(d.path().join("cred"), "lkgw_abc.def\n").unwrap();
        let c = load_agent(&p).unwrap();
        assert_eq!(c.portal_url, "http://127.0.0.1:8080");
        assert_eq!(c.credential.expose(), "lkgw_abc.def");
        assert!(c.unlock && c.reset && !c.must_change_after_reset);
        assert_eq!(c.domains, vec!["corp.contoso.com".to_string()]);
        // `check` still reads the same file.
        assert!(load(&p, &Overrides::default()).is_ok());
    }
}

//! The tenant description the simulator starts from, read from TOML.
//!
//! Every key is documented in the comment block at the top of `fixtures/test.toml`. Fields are
//! public so tests can start from [`Fixture::test`] and tweak one thing. [`Fixture::validate`]
//! (run by the constructors and again by `Sim::start`) checks cross references and loads
//! certificate files, naming the offending field in its error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::fmt;
use crate::roles;

mod fido2;
mod generate;
pub use fido2::Fido2PolicyFixture;
pub use generate::{DeltaFixture, GenerateFixture};

/// PEMs compiled into the crate so `Fixture::test()` and `Fixture::demo()` need no files.
pub const EMBEDDED_APP_CERT: &str = include_str!("../keys/app-cert.pem");
pub const EMBEDDED_OTHER_CERT: &str = include_str!("../keys/other-cert.pem");
pub const EMBEDDED_SIGNING_KEY: &str = include_str!("../keys/sim-signing-key.pem");

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture is not valid TOML or has a wrong key/type: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> FixtureError {
    FixtureError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub tenant: TenantFixture,
    #[serde(default)]
    pub domains: Vec<DomainFixture>,
    #[serde(default)]
    pub sync: SyncFixture,
    #[serde(default)]
    pub password_policy: PasswordPolicyFixture,
    #[serde(default)]
    pub smart_lockout: SmartLockoutFixture,
    #[serde(default)]
    pub lro: LroFixture,
    #[serde(default)]
    pub throttling: ThrottlingFixture,
    #[serde(default)]
    pub tap_policy: TapPolicyFixture,
    #[serde(default)]
    pub fido2_policy: Fido2PolicyFixture,
    #[serde(default)]
    pub apps: Vec<AppFixture>,
    #[serde(default)]
    pub users: Vec<UserFixture>,
    #[serde(default)]
    pub groups: Vec<GroupFixture>,
    #[serde(default)]
    pub delta: DeltaFixture,
    /// A generated tenant on top of the listed objects (load and mirror tests).
    #[serde(default)]
    pub generate: Option<GenerateFixture>,
    /// Where relative certificate paths are resolved (the fixture file's folder).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFixture {
    pub id: String,
    pub display_name: String,
    pub initial_domain: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub country_letter_code: Option<String>,
    #[serde(default)]
    pub technical_notification_mails: Vec<String>,
    /// PEM (PKCS#8 RSA) of the token-signing key, or a path; default: the embedded test key.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// Entra ID P1/P2 licensed (the authentication methods reports need it).
    #[serde(default = "yes")]
    pub premium: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainFixture {
    pub name: String,
    /// "Managed" or "Federated".
    #[serde(default = "managed")]
    pub authentication_type: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default = "yes")]
    pub is_verified: bool,
    /// Federated domains: the IdP's passive sign-in URL (AD FS: `https://sts.contoso.com/adfs/ls/`),
    /// served by `/domains/{id}/federationConfiguration`.
    #[serde(default)]
    pub passive_sign_in_uri: Option<String>,
}

fn managed() -> String {
    "Managed".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncFixture {
    #[serde(default)]
    pub on_premises_sync_enabled: bool,
    #[serde(default)]
    pub password_writeback_enabled: bool,
    #[serde(default)]
    pub password_sync_enabled: bool,
    #[serde(default)]
    pub last_sync: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicyFixture {
    pub min_length: usize,
    pub max_length: usize,
    pub required_classes: usize,
    pub banned_words: Vec<String>,
}

impl Default for PasswordPolicyFixture {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
            required_classes: 3,
            banned_words: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartLockoutFixture {
    pub threshold: u32,
    pub duration_seconds: u64,
}

impl Default for SmartLockoutFixture {
    fn default() -> Self {
        Self {
            threshold: 10,
            duration_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LroFixture {
    /// How many polls of a reset operation answer `running` before the terminal status.
    pub running_polls: u32,
    /// `Retry-After` (seconds) sent with the 202 of `resetPassword`.
    pub retry_after_seconds: u32,
}

impl Default for LroFixture {
    fn default() -> Self {
        Self {
            running_polls: 2,
            retry_after_seconds: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlingFixture {
    /// Identity Protection requests allowed per second per tenant (Graph: 1). 0 disables the throttle.
    pub identity_protection_per_second: u32,
}

impl Default for ThrottlingFixture {
    fn default() -> Self {
        Self {
            identity_protection_per_second: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TapPolicyFixture {
    pub enabled: bool,
    pub default_lifetime_minutes: u32,
    pub minimum_lifetime_minutes: u32,
    pub maximum_lifetime_minutes: u32,
    pub default_length: u32,
    /// Policy `isUsableOnce`: when true every TAP is one-time.
    pub is_usable_once: bool,
}

impl Default for TapPolicyFixture {
    fn default() -> Self {
        Self {
            enabled: true,
            default_lifetime_minutes: 60,
            minimum_lifetime_minutes: 60,
            maximum_lifetime_minutes: 480,
            default_length: 8,
            is_usable_once: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFixture {
    pub client_id: String,
    pub display_name: String,
    /// Object id of the app's service principal (the `oid` of app tokens). Derived if absent.
    #[serde(default)]
    pub service_principal_id: Option<String>,
    #[serde(default)]
    pub client_secrets: Vec<String>,
    /// Each entry: `"embedded:app-cert"`, `"embedded:other-cert"`, an inline PEM, or a path
    /// relative to the fixture file.
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default)]
    pub application_permissions: Vec<String>,
    /// Directory roles of the service principal, by display name.
    #[serde(default)]
    pub directory_roles: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Delegated scopes an admin consented to for the whole tenant (`openid`, `User.Read` ...).
    #[serde(default)]
    pub delegated_scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFixture {
    #[serde(default)]
    pub id: Option<String>,
    pub upn: String,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default)]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub office_location: Option<String>,
    #[serde(default)]
    pub employee_id: Option<String>,
    #[serde(default)]
    pub employee_hire_date: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
    #[serde(default)]
    pub on_premises_sam_account_name: Option<String>,
    #[serde(default)]
    pub on_premises_domain_name: Option<String>,
    #[serde(default)]
    pub on_premises_immutable_id: Option<String>,
    #[serde(default)]
    pub preferred_language: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub usage_location: Option<String>,
    #[serde(default)]
    pub password_policies: Option<String>,
    pub password: String,
    #[serde(default)]
    pub last_password_change: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub directory_roles: Vec<String>,
    #[serde(default)]
    pub risk: Option<RiskFixture>,
    /// Starts the user smart-locked (as if the threshold had just been reached).
    #[serde(default)]
    pub locked_out: bool,
    #[serde(default)]
    pub methods: MethodsFixture,
    /// Further Graph user properties returned as given (e.g. `postalCode`, `city`).
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskFixture {
    /// low | medium | high | hidden | none
    pub level: String,
    /// atRisk | confirmedCompromised | remediated | dismissed | confirmedSafe | none
    #[serde(default = "at_risk")]
    pub state: String,
    #[serde(default = "none")]
    pub detail: String,
    #[serde(default)]
    pub last_updated: Option<String>,
}

fn at_risk() -> String {
    "atRisk".into()
}
fn none() -> String {
    "none".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodsFixture {
    #[serde(default)]
    pub password_created: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phones: Vec<PhoneFixture>,
    #[serde(default)]
    pub microsoft_authenticator: Vec<DeviceMethodFixture>,
    #[serde(default)]
    pub fido2: Vec<Fido2Fixture>,
    #[serde(default)]
    pub software_oath: Vec<DeviceMethodFixture>,
    #[serde(default)]
    pub windows_hello_for_business: Vec<DeviceMethodFixture>,
    #[serde(default)]
    pub platform_credential: Vec<DeviceMethodFixture>,
    #[serde(default)]
    pub temporary_access_pass: Option<TapFixture>,
    /// The default sign-in method (`push`, `oath`, `sms`, `voiceMobile`, `voiceAlternateMobile`,
    /// `voiceOffice`): the method it relies on cannot be deleted.
    #[serde(default)]
    pub default_method: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneFixture {
    /// mobile | alternateMobile | office
    #[serde(rename = "type")]
    pub phone_type: String,
    pub number: String,
    #[serde(default)]
    pub sms_sign_in_state: Option<String>,
}

/// Shared by authenticator, software OATH, Windows Hello and platform credential entries; each
/// type uses the fields its Graph resource has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceMethodFixture {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub device_tag: Option<String>,
    #[serde(default)]
    pub phone_app_version: Option<String>,
    #[serde(default)]
    pub key_strength: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fido2Fixture {
    #[serde(default)]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub aaguid: Option<String>,
    #[serde(default)]
    pub attestation_level: Option<String>,
    #[serde(default)]
    pub passkey_type: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    /// The WebAuthn credential id (base64url), so creation options can exclude the key.
    #[serde(default)]
    pub credential_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapFixture {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default = "sixty")]
    pub lifetime_minutes: u32,
    #[serde(default)]
    pub is_usable_once: bool,
    #[serde(default)]
    pub created: Option<String>,
}

fn sixty() -> u32 {
    60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFixture {
    #[serde(default)]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub mail_nickname: Option<String>,
    #[serde(default)]
    pub mail_enabled: bool,
    #[serde(default = "yes")]
    pub security_enabled: bool,
    /// Members: a user by UPN (contains `@`) or a group by display name (nested group).
    #[serde(default)]
    pub members: Vec<String>,
    /// Adds this many generated member users (`gen-user-0001@<initial domain>` ...), so paging
    /// is exercised without a thousand lines of TOML.
    #[serde(default)]
    pub generated_members: u32,
}

impl Fixture {
    /// Parses and validates a fixture. Relative certificate paths resolve against the current
    /// directory; use [`Fixture::from_file`] to resolve them against the file's folder.
    pub fn from_toml(s: &str) -> Result<Fixture, FixtureError> {
        Self::parse(s, None)
    }

    pub fn from_file(path: &Path) -> Result<Fixture, FixtureError> {
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Io {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf);
        Self::parse(&text, dir)
    }

    /// The demo tenant used by `latchkey demo`.
    pub fn demo() -> Fixture {
        Self::from_toml(include_str!("../fixtures/demo.toml")).expect("fixtures/demo.toml is valid")
    }

    /// The small tenant the test suites use (documented at the top of `fixtures/test.toml`).
    pub fn test() -> Fixture {
        Self::from_toml(include_str!("../fixtures/test.toml")).expect("fixtures/test.toml is valid")
    }

    fn parse(s: &str, base_dir: Option<PathBuf>) -> Result<Fixture, FixtureError> {
        let mut f: Fixture = toml::from_str(s)?;
        f.base_dir = base_dir;
        f.validate()?;
        Ok(f)
    }

    /// Checks the fixture and replaces certificate paths by their PEM contents, so the result no
    /// longer depends on the file system.
    pub fn validate(&mut self) -> Result<(), FixtureError> {
        guid("tenant.id", &self.tenant.id)?;
        if !self.tenant.initial_domain.contains('.') {
            return Err(invalid("tenant.initial_domain", "expected a domain name"));
        }
        opt_time("tenant.created", &self.tenant.created)?;
        opt_time("sync.last_sync", &self.sync.last_sync)?;
        if let Some(k) = &self.tenant.signing_key {
            let pem = self.load_pem("tenant.signing_key", k)?;
            self.tenant.signing_key = Some(pem);
        }
        for (i, d) in self.domains.iter().enumerate() {
            if !matches!(d.authentication_type.as_str(), "Managed" | "Federated") {
                return Err(invalid(
                    format!("domains[{i}].authentication_type"),
                    "expected \"Managed\" or \"Federated\"",
                ));
            }
        }
        let p = &self.password_policy;
        if p.min_length == 0 || p.min_length > p.max_length || p.required_classes > 4 {
            return Err(invalid(
                "password_policy",
                "need 0 < min_length <= max_length and required_classes <= 4",
            ));
        }
        let t = &self.tap_policy;
        if t.minimum_lifetime_minutes < 10
            || t.maximum_lifetime_minutes > 43200
            || t.minimum_lifetime_minutes > t.maximum_lifetime_minutes
        {
            return Err(invalid(
                "tap_policy",
                "lifetimes must satisfy 10 <= minimum <= maximum <= 43200",
            ));
        }
        self.fido2_policy.validate()?;
        self.delta.validate()?;
        if let Some(g) = &self.generate {
            g.validate()?;
        }
        for i in 0..self.apps.len() {
            self.validate_app(i)?;
        }
        let mut upns = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let field = |f: &str| format!("users[{i}].{f}");
            if let Some(id) = &u.id {
                guid(&field("id"), id)?;
            }
            if u.upn.parse::<latchkey_types::Upn>().is_err() {
                return Err(invalid(field("upn"), format!("'{}' is not a UPN", u.upn)));
            }
            if !upns.insert(u.upn.to_ascii_lowercase()) {
                return Err(invalid(field("upn"), format!("duplicate UPN '{}'", u.upn)));
            }
            if let Some(d) = &u.methods.default_method
                && !matches!(
                    d.as_str(),
                    "push"
                        | "oath"
                        | "sms"
                        | "voiceMobile"
                        | "voiceAlternateMobile"
                        | "voiceOffice"
                )
            {
                return Err(invalid(
                    field("methods.default_method"),
                    "expected push, oath, sms, voiceMobile, voiceAlternateMobile or voiceOffice",
                ));
            }
            for (name, v) in [
                ("employee_hire_date", &u.employee_hire_date),
                ("last_password_change", &u.last_password_change),
                ("created", &u.created),
                ("methods.password_created", &u.methods.password_created),
            ] {
                opt_time(&field(name), v)?;
            }
            roles_exist(&field("directory_roles"), &u.directory_roles)?;
            if let Some(r) = &u.risk {
                one_of(
                    &field("risk.level"),
                    &r.level,
                    &["low", "medium", "high", "hidden", "none"],
                )?;
                one_of(
                    &field("risk.state"),
                    &r.state,
                    &[
                        "none",
                        "confirmedSafe",
                        "remediated",
                        "dismissed",
                        "atRisk",
                        "confirmedCompromised",
                    ],
                )?;
                opt_time(&field("risk.last_updated"), &r.last_updated)?;
            }
            for (j, k) in u.methods.fido2.iter().enumerate() {
                if let Some(c) = &k.credential_id
                    && crate::state::passkeys::decode_id(c).is_none()
                {
                    return Err(invalid(
                        field(&format!("methods.fido2[{j}].credential_id")),
                        "expected base64url",
                    ));
                }
            }
            for (j, ph) in u.methods.phones.iter().enumerate() {
                one_of(
                    &field(&format!("methods.phones[{j}].type")),
                    &ph.phone_type,
                    &["mobile", "alternateMobile", "office"],
                )?;
                if !crate::state::methods::valid_phone_number(&ph.number) {
                    return Err(invalid(
                        field(&format!("methods.phones[{j}].number")),
                        "expected '+{country code} {number}[x{extension}]'",
                    ));
                }
            }
        }
        let group_names: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.display_name.to_ascii_lowercase())
            .collect();
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(id) = &g.id {
                guid(&format!("groups[{i}].id"), id)?;
            }
            for (j, m) in g.members.iter().enumerate() {
                let known = if m.contains('@') {
                    upns.contains(&m.to_ascii_lowercase())
                } else {
                    group_names.contains(&m.to_ascii_lowercase())
                };
                if !known {
                    return Err(invalid(
                        format!("groups[{i}].members[{j}]"),
                        format!("no user or group '{m}' in the fixture"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_app(&mut self, i: usize) -> Result<(), FixtureError> {
        let field = |f: &str| format!("apps[{i}].{f}");
        guid(&field("client_id"), &self.apps[i].client_id)?;
        if let Some(sp) = &self.apps[i].service_principal_id {
            guid(&field("service_principal_id"), sp)?;
        }
        roles_exist(&field("directory_roles"), &self.apps[i].directory_roles)?;
        for (j, uri) in self.apps[i].redirect_uris.iter().enumerate() {
            if url::Url::parse(uri).is_err() {
                return Err(invalid(
                    field(&format!("redirect_uris[{j}]")),
                    "not an absolute URL",
                ));
            }
        }
        let certs = std::mem::take(&mut self.apps[i].certificates);
        let mut loaded = Vec::new();
        for (j, c) in certs.iter().enumerate() {
            let f = field(&format!("certificates[{j}]"));
            let pem = self.load_pem(&f, c)?;
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let der = CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| invalid(&f, format!("no PEM certificate: {e}")))?;
            webpki::EndEntityCert::try_from(&der)
                .map_err(|e| invalid(&f, format!("not a usable X.509 certificate: {e}")))?;
            loaded.push(pem);
        }
        self.apps[i].certificates = loaded;
        Ok(())
    }

    /// Resolves a key/certificate reference to PEM text.
    fn load_pem(&self, field: &str, reference: &str) -> Result<String, FixtureError> {
        match reference.trim() {
            r if r.starts_with("-----BEGIN") => Ok(r.to_owned()),
            "embedded:app-cert" => Ok(EMBEDDED_APP_CERT.to_owned()),
            "embedded:other-cert" => Ok(EMBEDDED_OTHER_CERT.to_owned()),
            "embedded:sim-signing-key" => Ok(EMBEDDED_SIGNING_KEY.to_owned()),
            r if r.starts_with("embedded:") => Err(invalid(
                field,
                "known embedded names: app-cert, other-cert, sim-signing-key",
            )),
            path => {
                let p = match &self.base_dir {
                    Some(dir) if Path::new(path).is_relative() => dir.join(path),
                    _ => PathBuf::from(path),
                };
                std::fs::read_to_string(&p)
                    .map_err(|e| invalid(field, format!("cannot read '{}': {e}", p.display())))
            }
        }
    }
}

fn guid(field: &str, v: &str) -> Result<(), FixtureError> {
    v.parse::<latchkey_types::ObjectId>()
        .map(|_| ())
        .map_err(|_| invalid(field, format!("'{v}' is not a GUID")))
}

fn opt_time(field: &str, v: &Option<String>) -> Result<(), FixtureError> {
    match v {
        Some(s) if fmt::parse(s).is_none() => Err(invalid(
            field,
            format!("'{s}' is not an RFC 3339 timestamp or YYYY-MM-DD date"),
        )),
        _ => Ok(()),
    }
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<(), FixtureError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, format!("'{v}' is not one of {allowed:?}")))
    }
}

fn roles_exist(field: &str, names: &[String]) -> Result<(), FixtureError> {
    for n in names {
        if roles::by_name(n).is_none() {
            return Err(invalid(field, format!("unknown directory role '{n}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_fixtures_are_valid() {
        let t = Fixture::test();
        assert!(
            t.apps
                .iter()
                .any(|a| a.client_id == "11111111-1111-1111-1111-111111111111")
        );
        let d = Fixture::demo();
        assert!(d.users.len() >= 12);
    }

    #[test]
    fn from_file_resolves_certificates_next_to_the_fixture() {
        let dir = std::env::temp_dir().join(format!("entra-sim-fixture-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.pem"), EMBEDDED_APP_CERT).unwrap();
        let toml = r#"
            [tenant]
            id = "8e1b5a52-0a4f-4a5b-9c40-6d6f1d1e0c11"
            display_name = "T"
            initial_domain = "t.onmicrosoft.com"
            [[apps]]
            client_id = "11111111-1111-1111-1111-111111111111"
            display_name = "x"
            certificates = ["app.pem"]
        "#;
        std::fs::write(dir.join("f.toml"), toml).unwrap();
        let f = Fixture::from_file(&dir.join("f.toml")).unwrap();
        assert!(f.apps[0].certificates[0].starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(matches!(
            Fixture::from_file(&dir.join("missing.toml")),
            Err(FixtureError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let base = r#"
            [tenant]
            id = "8e1b5a52-0a4f-4a5b-9c40-6d6f1d1e0c11"
            display_name = "T"
            initial_domain = "t.onmicrosoft.com"
        "#;
        let e = Fixture::from_toml(&format!(
            "{base}\n[[users]]\nupn = \"a@t.onmicrosoft.com\"\ndisplay_name = \"A\"\npassword = \"x\"\ndirectory_roles = [\"Boss\"]\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "users[0].directory_roles: unknown directory role 'Boss'"
        );
        let e = Fixture::from_toml(&format!(
            "{base}\n[[groups]]\ndisplay_name = \"G\"\nmembers = [\"nobody@t.onmicrosoft.com\"]\n"
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("groups[0].members[0]:"), "{e}");
        let e = Fixture::from_toml(&format!(
            "{base}\n[[apps]]\nclient_id = \"11111111-1111-1111-1111-111111111111\"\ndisplay_name = \"x\"\ncertificates = [\"missing.pem\"]\n"
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("apps[0].certificates[0]: cannot read"),
            "{e}"
        );
        let e = Fixture::from_toml(&format!("{base}\nbogus = 1\n")).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}

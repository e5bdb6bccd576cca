//! Typed Graph resources, in and out. Property names follow the v1.0 schema; only the properties
//! the portal uses are modelled. Enumerations that Microsoft may extend have a catch-all variant.
//! Timestamps that do not parse (Microsoft's own examples contain some) become `None` instead of
//! failing the whole response.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use latchkey_types::{EmailAddress, ObjectId, Secret, Upn};

// ---------------------------------------------------------------------------------------------
// Lenient field helpers

fn lenient_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    Ok(v.and_then(|s| {
        OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()
    }))
}

fn rfc3339_option<S: serde::Serializer>(
    v: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => match t.format(&time::format_description::well_known::Rfc3339) {
            Ok(text) => s.serialize_some(&text),
            Err(e) => Err(serde::ser::Error::custom(e)),
        },
        None => s.serialize_none(),
    }
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// Addresses that do not parse are skipped rather than failing the user.
fn lenient_emails<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EmailAddress>, D::Error> {
    let v = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
    Ok(v.iter().filter_map(|s| s.parse().ok()).collect())
}

fn lenient_email<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EmailAddress>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|s| s.parse().ok()))
}

fn lenient_object_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ObjectId>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|s| s.parse().ok()))
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn insert_opt<T: Serialize>(m: &mut Map<String, Value>, key: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(key.into(), json!(v));
    }
}

// ---------------------------------------------------------------------------------------------
// Users

/// The `$select` used for every user read: exactly the properties of [`User`].
pub const USER_SELECT: &str = "id,userPrincipalName,displayName,givenName,surname,mail,otherMails,\
proxyAddresses,mobilePhone,employeeId,employeeHireDate,accountEnabled,onPremisesSyncEnabled,\
onPremisesSamAccountName,onPremisesDomainName,preferredLanguage,userType,\
lastPasswordChangeDateTime,usageLocation";

/// How to address a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(ObjectId),
    Upn(Upn),
}

impl From<ObjectId> for UserRef {
    fn from(id: ObjectId) -> Self {
        UserRef::Id(id)
    }
}
impl From<Upn> for UserRef {
    fn from(upn: Upn) -> Self {
        UserRef::Upn(upn)
    }
}

/// `Member` or `Guest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum UserType {
    Member,
    Guest,
    #[serde(other)]
    Other,
}

/// A user, with the properties the portal needs ([`USER_SELECT`]). Serializes to Graph's own
/// JSON shape (the directory mirror stores users that way and reads them back through the same
/// lenient deserializers).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: ObjectId,
    pub user_principal_name: Upn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_email",
        skip_serializing_if = "Option::is_none"
    )]
    pub mail: Option<EmailAddress>,
    #[serde(
        default,
        deserialize_with = "lenient_emails",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub other_mails: Vec<EmailAddress>,
    /// As stored, e.g. `SMTP:primary@contoso.com`, `smtp:alias@contoso.com`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub proxy_addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_datetime",
        serialize_with = "rfc3339_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub employee_hire_date: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    /// `Some(true)`: synced from on-premises AD. `None`: never synced (cloud-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_sync_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_sam_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    #[serde(
        default,
        deserialize_with = "lenient_datetime",
        serialize_with = "rfc3339_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_password_change_date_time: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<String>,
}

impl User {
    /// True when the account is mastered in on-premises AD.
    pub fn is_synced(&self) -> bool {
        self.on_premises_sync_enabled == Some(true)
    }
    /// SMTP addresses from `proxyAddresses` (prefix stripped, primary first).
    pub fn smtp_addresses(&self) -> Vec<EmailAddress> {
        let mut primary = Vec::new();
        let mut rest = Vec::new();
        for p in &self.proxy_addresses {
            if let Some((prefix, addr)) = p.split_once(':')
                && prefix.eq_ignore_ascii_case("smtp")
                && let Ok(a) = addr.parse()
            {
                if prefix == "SMTP" {
                    primary.push(a);
                } else {
                    rest.push(a);
                }
            }
        }
        primary.extend(rest);
        primary
    }
}

/// `passwordProfile`. `password` is write-only.
#[derive(Debug, Clone, Default)]
pub struct PasswordProfile {
    pub password: Option<Secret<String>>,
    pub force_change_password_next_sign_in: Option<bool>,
    pub force_change_password_next_sign_in_with_mfa: Option<bool>,
}

impl PasswordProfile {
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(p) = &self.password {
            m.insert("password".into(), Value::String(p.expose().clone()));
        }
        insert_opt(
            &mut m,
            "forceChangePasswordNextSignIn",
            &self.force_change_password_next_sign_in,
        );
        insert_opt(
            &mut m,
            "forceChangePasswordNextSignInWithMfa",
            &self.force_change_password_next_sign_in_with_mfa,
        );
        Value::Object(m)
    }
}

/// `POST /users` body. Required by Graph: account_enabled, display_name, mail_nickname,
/// user_principal_name, password_profile (with a password).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub account_enabled: bool,
    pub display_name: String,
    pub mail_nickname: String,
    pub user_principal_name: Upn,
    pub password_profile: PasswordProfile,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<EmailAddress>,
    pub other_mails: Vec<EmailAddress>,
    pub mobile_phone: Option<String>,
    pub employee_id: Option<String>,
    pub usage_location: Option<String>,
    pub preferred_language: Option<String>,
}

impl NewUser {
    pub fn new(
        user_principal_name: Upn,
        display_name: impl Into<String>,
        mail_nickname: impl Into<String>,
        password: Secret<String>,
    ) -> Self {
        Self {
            account_enabled: true,
            display_name: display_name.into(),
            mail_nickname: mail_nickname.into(),
            user_principal_name,
            password_profile: PasswordProfile {
                password: Some(password),
                force_change_password_next_sign_in: Some(true),
                force_change_password_next_sign_in_with_mfa: None,
            },
            given_name: None,
            surname: None,
            mail: None,
            other_mails: Vec::new(),
            mobile_phone: None,
            employee_id: None,
            usage_location: None,
            preferred_language: None,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("accountEnabled".into(), json!(self.account_enabled));
        m.insert("displayName".into(), json!(self.display_name));
        m.insert("mailNickname".into(), json!(self.mail_nickname));
        m.insert("userPrincipalName".into(), json!(self.user_principal_name));
        m.insert("passwordProfile".into(), self.password_profile.to_json());
        insert_opt(&mut m, "givenName", &self.given_name);
        insert_opt(&mut m, "surname", &self.surname);
        insert_opt(&mut m, "mail", &self.mail);
        if !self.other_mails.is_empty() {
            m.insert("otherMails".into(), json!(self.other_mails));
        }
        insert_opt(&mut m, "mobilePhone", &self.mobile_phone);
        insert_opt(&mut m, "employeeId", &self.employee_id);
        insert_opt(&mut m, "usageLocation", &self.usage_location);
        insert_opt(&mut m, "preferredLanguage", &self.preferred_language);
        Value::Object(m)
    }
}

/// `PATCH /users/{id}` body: only the `Some` fields are sent.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub account_enabled: Option<bool>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mobile_phone: Option<String>,
    pub other_mails: Option<Vec<EmailAddress>>,
    pub employee_id: Option<String>,
    pub usage_location: Option<String>,
    pub preferred_language: Option<String>,
    pub password_profile: Option<PasswordProfile>,
}

impl UserUpdate {
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        insert_opt(&mut m, "accountEnabled", &self.account_enabled);
        insert_opt(&mut m, "displayName", &self.display_name);
        insert_opt(&mut m, "givenName", &self.given_name);
        insert_opt(&mut m, "surname", &self.surname);
        insert_opt(&mut m, "mobilePhone", &self.mobile_phone);
        insert_opt(&mut m, "otherMails", &self.other_mails);
        insert_opt(&mut m, "employeeId", &self.employee_id);
        insert_opt(&mut m, "usageLocation", &self.usage_location);
        insert_opt(&mut m, "preferredLanguage", &self.preferred_language);
        if let Some(p) = &self.password_profile {
            m.insert("passwordProfile".into(), p.to_json());
        }
        Value::Object(m)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.to_json().as_object().is_none_or(|m| m.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// Memberships

/// A group the user is a (transitive) member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: ObjectId,
    pub display_name: Option<String>,
}

/// An activated directory role the user holds (transitively, e.g. through a role-assignable
/// group). `role_template_id` is what the `wids` claim and Microsoft's role tables use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRoleRef {
    pub id: ObjectId,
    pub display_name: Option<String>,
    pub role_template_id: Option<ObjectId>,
}

/// Another directory object (e.g. an administrative unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherDirectoryObject {
    pub id: ObjectId,
    pub odata_type: String,
    pub display_name: Option<String>,
}

/// Result of `transitiveMemberOf`, split by `@odata.type`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    pub groups: Vec<GroupRef>,
    pub roles: Vec<DirectoryRoleRef>,
    pub other: Vec<OtherDirectoryObject>,
}

impl Memberships {
    pub fn is_member_of(&self, group: &ObjectId) -> bool {
        self.groups.iter().any(|g| &g.id == group)
    }
    pub fn has_any_role(&self) -> bool {
        !self.roles.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDirectoryObject {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    pub id: ObjectId,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_object_id")]
    pub role_template_id: Option<ObjectId>,
}

// ---------------------------------------------------------------------------------------------
// Authentication methods

/// Well-known id of the password method (a user has exactly one).
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// `phoneType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PhoneType {
    Mobile,
    AlternateMobile,
    Office,
    #[serde(other)]
    UnknownFutureValue,
}

/// `smsSignInState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SmsSignInState {
    NotSupported,
    NotAllowedByPolicy,
    NotEnabled,
    PhoneNumberNotUnique,
    Ready,
    NotConfigured,
    #[serde(other)]
    UnknownFutureValue,
}

/// `authenticationMethodKeyStrength`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyStrength {
    Normal,
    Weak,
    Unknown,
    #[serde(other)]
    UnknownFutureValue,
}

/// FIDO2 `attestationLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AttestationLevel {
    Attested,
    NotAttested,
    #[serde(other)]
    UnknownFutureValue,
}

/// FIDO2 `passkeyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PasskeyType {
    DeviceBound,
    Synced,
    #[serde(other)]
    UnknownFutureValue,
}

/// TAP `methodUsabilityReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum MethodUsabilityReason {
    EnabledByPolicy,
    DisabledByPolicy,
    Expired,
    NotYetValid,
    OneTimeUsed,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordMethod {
    pub id: String,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneMethod {
    pub id: String,
    /// Masked (`+1 20XXXXXX55`) when read with a role that only sees masked numbers.
    pub phone_number: String,
    pub phone_type: Option<PhoneType>,
    #[serde(default)]
    pub sms_sign_in_state: Option<SmsSignInState>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailMethod {
    pub id: String,
    pub email_address: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MicrosoftAuthenticatorMethod {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub device_tag: Option<String>,
    #[serde(default)]
    pub phone_app_version: Option<String>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Method {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub aa_guid: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub attestation_certificates: Vec<String>,
    #[serde(default)]
    pub attestation_level: Option<AttestationLevel>,
    #[serde(default)]
    pub passkey_type: Option<PasskeyType>,
    /// `createdDateTime` (schema); Microsoft's own example spells it `creationDateTime`.
    #[serde(
        default,
        alias = "creationDateTime",
        deserialize_with = "lenient_datetime"
    )]
    pub created_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPassMethod {
    pub id: String,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_date_time: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub lifetime_in_minutes: Option<u32>,
    #[serde(default)]
    pub is_usable_once: Option<bool>,
    #[serde(default)]
    pub is_usable: Option<bool>,
    #[serde(default)]
    pub method_usability_reason: Option<MethodUsabilityReason>,
}

/// The secret key is never modelled (Graph returns null on read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SoftwareOathMethod {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsHelloForBusinessMethod {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub key_strength: Option<KeyStrength>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCredentialMethod {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub key_strength: Option<KeyStrength>,
    /// `windows`, `macOS`, `iOS`, `android`, `linux`, `unknown`, …
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_date_time: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMethod {
    pub id: String,
    #[serde(default)]
    pub configuration_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// One registered authentication method, by `@odata.type`.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthMethod {
    Password(PasswordMethod),
    Phone(PhoneMethod),
    Email(EmailMethod),
    MicrosoftAuthenticator(MicrosoftAuthenticatorMethod),
    Fido2(Fido2Method),
    TemporaryAccessPass(TemporaryAccessPassMethod),
    SoftwareOath(SoftwareOathMethod),
    WindowsHelloForBusiness(WindowsHelloForBusinessMethod),
    PlatformCredential(PlatformCredentialMethod),
    External(ExternalMethod),
    /// A type this client does not know yet.
    Unknown {
        odata_type: String,
        id: Option<String>,
    },
}

const NS: &str = "#microsoft.graph.";

impl AuthMethod {
    /// The method id.
    pub fn id(&self) -> Option<&str> {
        Some(match self {
            AuthMethod::Password(m) => &m.id,
            AuthMethod::Phone(m) => &m.id,
            AuthMethod::Email(m) => &m.id,
            AuthMethod::MicrosoftAuthenticator(m) => &m.id,
            AuthMethod::Fido2(m) => &m.id,
            AuthMethod::TemporaryAccessPass(m) => &m.id,
            AuthMethod::SoftwareOath(m) => &m.id,
            AuthMethod::WindowsHelloForBusiness(m) => &m.id,
            AuthMethod::PlatformCredential(m) => &m.id,
            AuthMethod::External(m) => &m.id,
            AuthMethod::Unknown { id, .. } => return id.as_deref(),
        })
    }

    /// The full `@odata.type`, e.g. `#microsoft.graph.phoneAuthenticationMethod`.
    pub fn odata_type(&self) -> String {
        let short = match self {
            AuthMethod::Password(_) => "passwordAuthenticationMethod",
            AuthMethod::Phone(_) => "phoneAuthenticationMethod",
            AuthMethod::Email(_) => "emailAuthenticationMethod",
            AuthMethod::MicrosoftAuthenticator(_) => "microsoftAuthenticatorAuthenticationMethod",
            AuthMethod::Fido2(_) => "fido2AuthenticationMethod",
            AuthMethod::TemporaryAccessPass(_) => "temporaryAccessPassAuthenticationMethod",
            AuthMethod::SoftwareOath(_) => "softwareOathAuthenticationMethod",
            AuthMethod::WindowsHelloForBusiness(_) => "windowsHelloForBusinessAuthenticationMethod",
            AuthMethod::PlatformCredential(_) => "platformCredentialAuthenticationMethod",
            AuthMethod::External(_) => "externalAuthenticationMethod",
            AuthMethod::Unknown { odata_type, .. } => return odata_type.clone(),
        };
        format!("{NS}{short}")
    }

    /// The navigation segment under `/users/{id}/authentication/` that deletes this method
    /// (`None`: the password method, and unknown types, cannot be deleted by this client).
    pub fn delete_segment(&self) -> Option<&'static str> {
        Some(match self {
            AuthMethod::Password(_) | AuthMethod::Unknown { .. } => return None,
            AuthMethod::Phone(_) => "phoneMethods",
            AuthMethod::Email(_) => "emailMethods",
            AuthMethod::MicrosoftAuthenticator(_) => "microsoftAuthenticatorMethods",
            AuthMethod::Fido2(_) => "fido2Methods",
            AuthMethod::TemporaryAccessPass(_) => "temporaryAccessPassMethods",
            AuthMethod::SoftwareOath(_) => "softwareOathMethods",
            AuthMethod::WindowsHelloForBusiness(_) => "windowsHelloForBusinessMethods",
            AuthMethod::PlatformCredential(_) => "platformCredentialMethods",
            AuthMethod::External(_) => "externalAuthenticationMethods",
        })
    }

    /// Decodes one element of `authentication/methods`.
    pub fn from_json(v: Value) -> Result<Self, serde_json::Error> {
        // `"odata.type"` (no `@`) appears in one of Microsoft's beta examples.
        let t = v
            .get("@odata.type")
            .or_else(|| v.get("odata.type"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let short = t.strip_prefix(NS).unwrap_or(&t).to_string();
        Ok(match short.as_str() {
            "passwordAuthenticationMethod" => AuthMethod::Password(serde_json::from_value(v)?),
            "phoneAuthenticationMethod" => AuthMethod::Phone(serde_json::from_value(v)?),
            "emailAuthenticationMethod" => AuthMethod::Email(serde_json::from_value(v)?),
            "microsoftAuthenticatorAuthenticationMethod" => {
                AuthMethod::MicrosoftAuthenticator(serde_json::from_value(v)?)
            }
            "fido2AuthenticationMethod" => AuthMethod::Fido2(serde_json::from_value(v)?),
            "temporaryAccessPassAuthenticationMethod" => {
                AuthMethod::TemporaryAccessPass(serde_json::from_value(v)?)
            }
            "softwareOathAuthenticationMethod" => {
                AuthMethod::SoftwareOath(serde_json::from_value(v)?)
            }
            "windowsHelloForBusinessAuthenticationMethod" => {
                AuthMethod::WindowsHelloForBusiness(serde_json::from_value(v)?)
            }
            "platformCredentialAuthenticationMethod" => {
                AuthMethod::PlatformCredential(serde_json::from_value(v)?)
            }
            "externalAuthenticationMethod" => AuthMethod::External(serde_json::from_value(v)?),
            _ => AuthMethod::Unknown {
                id: v.get("id").and_then(Value::as_str).map(str::to_string),
                odata_type: t,
            },
        })
    }
}

/// A phone number in the format Graph accepts for phone methods: `+{country code} {number}`
/// with an optional `x{extension}`, e.g. `+1 2065555555`, `+44 2071234567x123`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `+1 20******55`, for logs.
    pub fn masked(&self) -> String {
        let (cc, rest) = self.0.split_once(' ').unwrap_or(("", &self.0));
        let digits: Vec<char> = rest.chars().collect();
        let n = digits.len();
        let shown: String = digits
            .iter()
            .enumerate()
            .map(|(i, c)| if i < 2 || i + 2 >= n { *c } else { '*' })
            .collect();
        format!("{cc} {shown}")
    }
}

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = crate::GraphError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            crate::GraphError::InvalidInput(
                "phone number must look like +{country code} {number}[x{extension}]".into(),
            )
        };
        let s = s.trim();
        let rest = s.strip_prefix('+').ok_or_else(bad)?;
        let (cc, number) = rest.split_once(' ').ok_or_else(bad)?;
        let (number, ext) = match number.split_once('x') {
            Some((n, e)) => (n, Some(e)),
            None => (number, None),
        };
        let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(cc) || cc.len() > 3 || cc.starts_with('0') {
            return Err(bad());
        }
        if !all_digits(number) || number.len() < 4 || cc.len() + number.len() > 15 {
            return Err(bad());
        }
        if let Some(e) = ext
            && (!all_digits(e) || e.len() > 10)
        {
            return Err(bad());
        }
        Ok(Self(s.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Reset, TAP

/// What `resetPassword` produced.
#[derive(Debug, Clone)]
pub struct ResetOutcome {
    /// The system-generated password, when none was supplied. Show once; never store or log.
    pub new_password: Option<Secret<String>>,
    /// The long-running operation's id, when reported.
    pub operation_id: Option<String>,
}

/// `longRunningOperationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OperationStatus {
    NotStarted,
    Running,
    Succeeded,
    Failed,
    #[serde(other)]
    UnknownFutureValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LongRunningOperation {
    #[serde(default)]
    pub id: Option<String>,
    pub status: OperationStatus,
    #[serde(default)]
    pub status_detail: Option<String>,
}

/// Options for a new Temporary Access Pass; `None` fields take the tenant policy's defaults.
#[derive(Debug, Clone, Default)]
pub struct TapRequest {
    pub start_date_time: Option<OffsetDateTime>,
    /// 10 to 43200 minutes.
    pub lifetime_in_minutes: Option<u32>,
    pub is_usable_once: Option<bool>,
}

impl TapRequest {
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(t) = &self.start_date_time {
            m.insert("startDateTime".into(), json!(rfc3339(t)));
        }
        insert_opt(&mut m, "lifetimeInMinutes", &self.lifetime_in_minutes);
        insert_opt(&mut m, "isUsableOnce", &self.is_usable_once);
        Value::Object(m)
    }
}

/// A newly created Temporary Access Pass. The pass itself is returned only at creation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryAccessPass {
    pub id: String,
    #[serde(rename = "temporaryAccessPass")]
    pub pass: Secret<String>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created_date_time: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub lifetime_in_minutes: Option<u32>,
    #[serde(default)]
    pub is_usable_once: Option<bool>,
    #[serde(default)]
    pub is_usable: Option<bool>,
    #[serde(default)]
    pub method_usability_reason: Option<MethodUsabilityReason>,
}

// ---------------------------------------------------------------------------------------------
// Identity Protection

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Hidden,
    None,
    #[serde(other)]
    UnknownFutureValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RiskState {
    None,
    ConfirmedSafe,
    Remediated,
    Dismissed,
    AtRisk,
    ConfirmedCompromised,
    #[serde(other)]
    UnknownFutureValue,
}

/// `riskyUser` (Entra ID P2).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskyUser {
    pub id: ObjectId,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_deleted: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_processing: bool,
    #[serde(default)]
    pub risk_level: Option<RiskLevel>,
    #[serde(default)]
    pub risk_state: Option<RiskState>,
    /// Free text of a long, growing enumeration (e.g. `adminDismissedAllRiskForUser`).
    #[serde(default)]
    pub risk_detail: Option<String>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub risk_last_updated_date_time: Option<OffsetDateTime>,
    #[serde(default)]
    pub user_display_name: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
}

impl RiskyUser {
    /// True while Identity Protection considers the user at risk.
    pub fn is_at_risk(&self) -> bool {
        self.risk_state == Some(RiskState::AtRisk)
    }
}

// ---------------------------------------------------------------------------------------------
// Tenant

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DomainAuthenticationType {
    Managed,
    Federated,
    #[serde(other)]
    Unknown,
}

/// A domain of the tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// The domain name.
    pub id: String,
    pub authentication_type: DomainAuthenticationType,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_default: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_initial: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_root: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_verified: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_admin_managed: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub supported_services: Vec<String>,
    #[serde(default)]
    pub password_validity_period_in_days: Option<i64>,
    #[serde(default)]
    pub password_notification_window_in_days: Option<i64>,
}

pub(crate) const DOMAIN_SELECT: &str = "id,authenticationType,isDefault,isInitial,isRoot,\
isVerified,isAdminManaged,supportedServices,passwordValidityPeriodInDays,\
passwordNotificationWindowInDays";

/// `onPremisesDirectorySynchronizationFeature` (the flags the portal reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OnPremisesSyncFeatures {
    #[serde(deserialize_with = "null_as_false")]
    pub password_writeback_enabled: bool,
    #[serde(deserialize_with = "null_as_false")]
    pub password_sync_enabled: bool,
    #[serde(deserialize_with = "null_as_false")]
    pub user_force_password_change_on_logon_enabled: bool,
    #[serde(deserialize_with = "null_as_false")]
    pub cloud_password_policy_for_password_synced_users_enabled: bool,
    #[serde(deserialize_with = "null_as_false")]
    pub user_writeback_enabled: bool,
}

/// `onPremisesDirectorySynchronization` of the tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnPremisesSync {
    pub id: String,
    #[serde(default)]
    pub features: OnPremisesSyncFeatures,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    /// `Managed` or `Federated`.
    #[serde(rename = "type", default)]
    pub domain_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_default: bool,
    #[serde(default, deserialize_with = "null_as_false")]
    pub is_initial: bool,
    #[serde(default)]
    pub capabilities: Option<String>,
}

/// The tenant (`/organization`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Some(true)` when Entra Connect syncs this tenant; `None` when it never did.
    #[serde(default)]
    pub on_premises_sync_enabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub on_premises_last_sync_date_time: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub verified_domains: Vec<VerifiedDomain>,
    #[serde(default)]
    pub tenant_type: Option<String>,
    #[serde(default)]
    pub country_letter_code: Option<String>,
    #[serde(default)]
    pub preferred_language: Option<String>,
}

pub(crate) const ORGANIZATION_SELECT: &str = "id,displayName,onPremisesSyncEnabled,\
onPremisesLastSyncDateTime,verifiedDomains,tenantType,countryLetterCode,preferredLanguage";

// ---------------------------------------------------------------------------------------------
// Token claims

/// Claims of the current access token, decoded without verification (we are the client; the
/// token is for Graph). For reporting which permissions and roles the connection has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TokenClaims {
    /// Application permissions granted (app-only tokens), e.g. `User.Read.All`.
    pub roles: Vec<String>,
    /// Directory role template ids held by the app's service principal (or the signed-in user).
    pub wids: Vec<String>,
    /// Delegated scopes, space-separated (delegated tokens).
    pub scp: Option<String>,
    pub oid: Option<String>,
    pub tid: Option<String>,
    /// App id (v1 tokens: `appid`, v2: `azp`).
    #[serde(alias = "azp")]
    pub appid: Option<String>,
    pub exp: Option<i64>,
    pub aud: Option<String>,
    pub iss: Option<String>,
    /// `app` for app-only tokens, `user` for delegated ones (optional claim).
    pub idtyp: Option<String>,
    /// The signed-in user's UPN (delegated).
    pub upn: Option<String>,
}

impl TokenClaims {
    /// Delegated scopes as a list.
    pub fn scopes(&self) -> Vec<&str> {
        self.scp
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }
    /// True when the token carries the application permission or delegated scope `name`.
    pub fn has_permission(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(name))
            || self.scopes().iter().any(|s| s.eq_ignore_ascii_case(name))
    }
    /// True when the token carries the directory role template id.
    pub fn has_role_template(&self, template_id: &str) -> bool {
        self.wids
            .iter()
            .any(|w| w.eq_ignore_ascii_case(template_id))
    }
    /// Decodes the payload of a JWT without verifying it.
    pub fn decode_unverified(jwt: &str) -> Option<Self> {
        use base64::Engine;
        let payload = jwt.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EX: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/graph-examples"
    );

    fn fixture(name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{EX}/{name}")).unwrap()).unwrap()
    }

    #[test]
    fn documented_method_lists_decode() {
        let v = fixture("list-methods-v1.json");
        let methods: Vec<AuthMethod> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| AuthMethod::from_json(m.clone()).unwrap())
            .collect();
        match &methods[0] {
            AuthMethod::Fido2(f) => {
                assert_eq!(f.model.as_deref(), Some("NFC key"));
                assert_eq!(f.attestation_level, Some(AttestationLevel::Attested));
                assert!(f.created_date_time.is_some(), "creationDateTime alias");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&methods[1], AuthMethod::WindowsHelloForBusiness(w) if w.key_strength == Some(KeyStrength::Normal))
        );
        let beta = fixture("list-methods-beta-doc-verbatim.json");
        for m in beta["value"].as_array().unwrap() {
            AuthMethod::from_json(m.clone()).unwrap();
        }
        let pw = fixture("list-passwordmethods.json");
        let m = AuthMethod::from_json(json!({
            "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
            "id": pw["value"][0]["id"], "password": null, "createdDateTime": null
        }))
        .unwrap();
        assert_eq!(m.id(), Some(PASSWORD_METHOD_ID));
        assert_eq!(m.delete_segment(), None);
        let phones = fixture("list-phonemethods.json");
        for p in phones["value"].as_array().unwrap() {
            let mut p = p.clone();
            p["@odata.type"] = json!("#microsoft.graph.phoneAuthenticationMethod");
            assert!(matches!(
                AuthMethod::from_json(p).unwrap(),
                AuthMethod::Phone(_)
            ));
        }
        let u = AuthMethod::from_json(
            json!({"@odata.type": "#microsoft.graph.qrCodePinAuthenticationMethod", "id": "q"}),
        )
        .unwrap();
        assert_eq!(
            u,
            AuthMethod::Unknown {
                odata_type: "#microsoft.graph.qrCodePinAuthenticationMethod".into(),
                id: Some("q".into())
            }
        );
        assert_eq!(u.delete_segment(), None);
    }

    #[test]
    fn every_documented_type_maps_to_a_variant() {
        for (t, seg) in [
            ("passwordAuthenticationMethod", None),
            ("phoneAuthenticationMethod", Some("phoneMethods")),
            ("emailAuthenticationMethod", Some("emailMethods")),
            (
                "microsoftAuthenticatorAuthenticationMethod",
                Some("microsoftAuthenticatorMethods"),
            ),
            ("fido2AuthenticationMethod", Some("fido2Methods")),
            (
                "temporaryAccessPassAuthenticationMethod",
                Some("temporaryAccessPassMethods"),
            ),
            (
                "softwareOathAuthenticationMethod",
                Some("softwareOathMethods"),
            ),
            (
                "windowsHelloForBusinessAuthenticationMethod",
                Some("windowsHelloForBusinessMethods"),
            ),
            (
                "platformCredentialAuthenticationMethod",
                Some("platformCredentialMethods"),
            ),
            (
                "externalAuthenticationMethod",
                Some("externalAuthenticationMethods"),
            ),
        ] {
            let m = AuthMethod::from_json(json!({
                "@odata.type": format!("#microsoft.graph.{t}"), "id": "x",
                "phoneNumber": "+1 2065555555", "phoneType": "mobile", "emailAddress": "a@b.c"
            }))
            .unwrap();
            assert!(!matches!(m, AuthMethod::Unknown { .. }), "{t}");
            assert_eq!(m.odata_type(), format!("#microsoft.graph.{t}"));
            assert_eq!(m.delete_segment(), seg, "{t}");
        }
    }

    #[test]
    fn phone_numbers() {
        for ok in ["+1 2065555555", "+44 2071234567x123", "+358 401234567"] {
            assert!(ok.parse::<PhoneNumber>().is_ok(), "{ok}");
        }
        for bad in [
            "2065555555",
            "+1-2065555555",
            "+1 206 555 5555",
            "+0 2065555555",
            "+1 206",
            "+1234 2065555555",
            "+1 2065555555x",
            "+1 2065555555xab",
            "+1 1234567890123456",
            "+1 206'5555555",
        ] {
            assert!(bad.parse::<PhoneNumber>().is_err(), "{bad}");
        }
        let p: PhoneNumber = "+1 2065555555".parse().unwrap();
        assert_eq!(p.masked(), "+1 20******55");
        assert!(!format!("{p:?}").contains("2065555555"));
    }

    #[test]
    fn other_documented_payloads_decode() {
        let tap: TemporaryAccessPass =
            serde_json::from_value(fixture("tap-create-201.json")).unwrap();
        assert_eq!(tap.pass.expose(), "+drkzqAD");
        assert_eq!(
            tap.method_usability_reason,
            Some(MethodUsabilityReason::NotYetValid)
        );
        assert!(!format!("{tap:?}").contains("+drkzqAD"));
        let r: RiskyUser = serde_json::from_value(fixture("riskyuser-get-beta.json")).unwrap();
        assert_eq!(r.risk_level, Some(RiskLevel::High));
        assert!(r.is_at_risk());
        let d: Domain = serde_json::from_value(fixture("domain-get.json")).unwrap();
        assert_eq!(d.authentication_type, DomainAuthenticationType::Managed);
        assert!(d.is_default);
        let s: OnPremisesSync =
            serde_json::from_value(fixture("onpremises-synchronization-get.json")).unwrap();
        assert!(!s.features.password_writeback_enabled);
        let o: Organization = serde_json::from_value(fixture("organization-get.json")).unwrap();
        assert_eq!(
            o.verified_domains[0].domain_type.as_deref(),
            Some("Managed")
        );
        let lro: LongRunningOperation =
            serde_json::from_value(fixture("lro-status-running.json")).unwrap();
        assert_eq!(lro.status, OperationStatus::Running);
        let u: User = serde_json::from_value(json!({
            "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "userPrincipalName": "AdeleV@contoso.com",
            "otherMails": null, "proxyAddresses": ["SMTP:adele@contoso.com", "smtp:av@contoso.com", "X500:/o=x"],
            "employeeHireDate": "2020-01-01T00:00:00Z", "lastPasswordChangeDateTime": "not a date",
            "userType": "Member", "onPremisesSyncEnabled": null
        }))
        .unwrap();
        assert_eq!(u.user_principal_name.as_str(), "adelev@contoso.com");
        assert_eq!(u.smtp_addresses().len(), 2);
        assert!(u.last_password_change_date_time.is_none());
        assert!(!u.is_synced());
    }

    #[test]
    fn writes_serialize_secrets_only_in_the_body() {
        let upd = UserUpdate {
            password_profile: Some(PasswordProfile {
                password: Some(Secret::new("xWwvJ]6NMw+bWH-d".into())),
                force_change_password_next_sign_in: Some(false),
                force_change_password_next_sign_in_with_mfa: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            upd.to_json(),
            fixture("update-user-passwordprofile-request.json")
        );
        assert!(!format!("{upd:?}").contains("xWwvJ"));
        assert!(UserUpdate::default().is_empty());
    }

    #[test]
    fn claims_decode_unverified() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            r#"{"roles":["User.Read.All"],"wids":["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],"tid":"t","azp":"a","exp":1}"#,
        );
        let c = TokenClaims::decode_unverified(&format!("eyJhbGciOiJub25lIn0.{payload}.")).unwrap();
        assert!(c.has_permission("user.read.all"));
        assert!(c.has_role_template("0997A1D0-0d1d-4acb-b408-d5ca73121e90"));
        assert_eq!(c.appid.as_deref(), Some("a"));
        assert!(TokenClaims::decode_unverified("opaque").is_none());
    }
}

//! Authentication methods of a user, with the well-known ids and the JSON each Graph resource
//! type prints (schema property names: `createdDateTime`, not the doc typo `creationDateTime`).

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::clock::fmt;

pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
pub const MOBILE_PHONE_ID: &str = "3179e48a-750b-4051-897c-87b9720928f7";
pub const ALTERNATE_MOBILE_PHONE_ID: &str = "b6332ec1-7057-4abe-9331-3d72feddfe41";
pub const OFFICE_PHONE_ID: &str = "e37fc753-ff3b-4958-9484-eaa9425c82bc";
/// The id used for the email method in Microsoft's example; Entra keeps one email method per user.
pub const EMAIL_METHOD_ID: &str = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f";

/// The per-type collections under `/users/{id}/authentication/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Password,
    Email,
    Phone,
    MicrosoftAuthenticator,
    Fido2,
    SoftwareOath,
    TemporaryAccessPass,
    WindowsHelloForBusiness,
    PlatformCredential,
}

impl MethodKind {
    pub const ALL: [MethodKind; 9] = [
        MethodKind::Password,
        MethodKind::Email,
        MethodKind::Phone,
        MethodKind::MicrosoftAuthenticator,
        MethodKind::Fido2,
        MethodKind::SoftwareOath,
        MethodKind::TemporaryAccessPass,
        MethodKind::WindowsHelloForBusiness,
        MethodKind::PlatformCredential,
    ];

    /// The URL segment, e.g. `phoneMethods`.
    pub fn segment(self) -> &'static str {
        match self {
            MethodKind::Password => "passwordMethods",
            MethodKind::Email => "emailMethods",
            MethodKind::Phone => "phoneMethods",
            MethodKind::MicrosoftAuthenticator => "microsoftAuthenticatorMethods",
            MethodKind::Fido2 => "fido2Methods",
            MethodKind::SoftwareOath => "softwareOathMethods",
            MethodKind::TemporaryAccessPass => "temporaryAccessPassMethods",
            MethodKind::WindowsHelloForBusiness => "windowsHelloForBusinessMethods",
            MethodKind::PlatformCredential => "platformCredentialMethods",
        }
    }

    pub fn from_segment(s: &str) -> Option<MethodKind> {
        Self::ALL.into_iter().find(|k| k.segment() == s)
    }

    /// The entity type name (without `#microsoft.graph.`).
    pub fn odata_type(self) -> &'static str {
        match self {
            MethodKind::Password => "passwordAuthenticationMethod",
            MethodKind::Email => "emailAuthenticationMethod",
            MethodKind::Phone => "phoneAuthenticationMethod",
            MethodKind::MicrosoftAuthenticator => "microsoftAuthenticatorAuthenticationMethod",
            MethodKind::Fido2 => "fido2AuthenticationMethod",
            MethodKind::SoftwareOath => "softwareOathAuthenticationMethod",
            MethodKind::TemporaryAccessPass => "temporaryAccessPassAuthenticationMethod",
            MethodKind::WindowsHelloForBusiness => "windowsHelloForBusinessAuthenticationMethod",
            MethodKind::PlatformCredential => "platformCredentialAuthenticationMethod",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneType {
    Mobile,
    AlternateMobile,
    Office,
}

impl PhoneType {
    pub fn parse(s: &str) -> Option<PhoneType> {
        match s {
            "mobile" => Some(PhoneType::Mobile),
            "alternateMobile" => Some(PhoneType::AlternateMobile),
            "office" => Some(PhoneType::Office),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneType::Mobile => "mobile",
            PhoneType::AlternateMobile => "alternateMobile",
            PhoneType::Office => "office",
        }
    }
    pub fn id(self) -> &'static str {
        match self {
            PhoneType::Mobile => MOBILE_PHONE_ID,
            PhoneType::AlternateMobile => ALTERNATE_MOBILE_PHONE_ID,
            PhoneType::Office => OFFICE_PHONE_ID,
        }
    }
}

/// Graph's documented phone format: `+{country code} {subscriber number}x{extension}`, e.g.
/// `+1 2065555555` or `+1 2065555555x1234`.
pub fn valid_phone_number(n: &str) -> bool {
    let Some(rest) = n.strip_prefix('+') else {
        return false;
    };
    let Some((cc, number)) = rest.split_once(' ') else {
        return false;
    };
    let (number, ext) = match number.split_once('x') {
        Some((n, e)) => (n, Some(e)),
        None => (number, None),
    };
    let digits = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_digit())
    };
    digits(cc, 1, 3) && digits(number, 4, 15) && ext.is_none_or(|e| digits(e, 1, 10))
}

#[derive(Debug, Clone)]
pub struct PhoneMethod {
    pub phone_type: PhoneType,
    pub number: String,
    pub sms_sign_in_state: String,
}

/// Authenticator app, software OATH token, Windows Hello, platform credential.
#[derive(Debug, Clone)]
pub struct DeviceMethod {
    pub id: String,
    pub display_name: Option<String>,
    pub device_tag: Option<String>,
    pub phone_app_version: Option<String>,
    pub key_strength: Option<String>,
    pub platform: Option<String>,
    pub created: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Fido2Method {
    pub id: String,
    pub display_name: String,
    pub model: Option<String>,
    pub aaguid: Option<String>,
    pub attestation_level: String,
    pub passkey_type: String,
    pub created: OffsetDateTime,
    /// The WebAuthn credential id, when known (provisioned, or given in the fixture).
    pub credential_id: Option<Vec<u8>>,
    /// Thumbprints of the attestation certificates.
    pub attestation_certificates: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TapMethod {
    pub id: String,
    pub created: OffsetDateTime,
    pub start: Option<OffsetDateTime>,
    pub lifetime_minutes: u32,
    pub is_usable_once: bool,
    pub used: bool,
}

impl TapMethod {
    fn effective_start(&self) -> OffsetDateTime {
        self.start.unwrap_or(self.created)
    }

    /// `(isUsable, methodUsabilityReason)` at `now`.
    pub fn usability(&self, now: OffsetDateTime) -> (bool, &'static str) {
        let start = self.effective_start();
        if self.used && self.is_usable_once {
            (false, "OneTimeUsed")
        } else if now < start {
            (false, "NotYetValid")
        } else if now >= start + Duration::minutes(self.lifetime_minutes.into()) {
            (false, "Expired")
        } else {
            (true, "EnabledByPolicy")
        }
    }

    pub fn to_json(&self, now: OffsetDateTime, pass: Option<&str>) -> Value {
        let (usable, reason) = self.usability(now);
        json!({
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            "id": self.id,
            "temporaryAccessPass": pass,
            "createdDateTime": fmt::graph_precise(self.created),
            "startDateTime": fmt::graph(self.effective_start()),
            "lifetimeInMinutes": self.lifetime_minutes,
            "isUsableOnce": self.is_usable_once,
            "isUsable": usable,
            "methodUsabilityReason": reason,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Methods {
    pub password_created: Option<OffsetDateTime>,
    pub email: Option<String>,
    pub phones: Vec<PhoneMethod>,
    pub microsoft_authenticator: Vec<DeviceMethod>,
    pub fido2: Vec<Fido2Method>,
    pub software_oath: Vec<DeviceMethod>,
    pub windows_hello_for_business: Vec<DeviceMethod>,
    pub platform_credential: Vec<DeviceMethod>,
    pub temporary_access_pass: Option<TapMethod>,
    /// The user's default sign-in method for MFA, as beta `signInPreferences`
    /// `userPreferredMethodForSecondaryAuthentication` names it (`push`, `oath`, `sms`,
    /// `voiceMobile`, `voiceAlternateMobile`, `voiceOffice`). v1.0 cannot read or change it.
    pub default_method: Option<String>,
}

fn typed(kind: MethodKind, mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        let mut out = serde_json::Map::new();
        out.insert(
            "@odata.type".into(),
            Value::String(format!("#microsoft.graph.{}", kind.odata_type())),
        );
        out.extend(std::mem::take(m));
        return Value::Object(out);
    }
    v
}

impl Methods {
    /// The entries of one collection, each with its `@odata.type` (Graph includes it in the
    /// per-type lists as well as in `/methods`).
    pub fn list(&self, kind: MethodKind, now: OffsetDateTime) -> Vec<Value> {
        let device = |d: &DeviceMethod| -> Value {
            match kind {
                MethodKind::MicrosoftAuthenticator => json!({
                    "id": d.id,
                    "displayName": d.display_name,
                    "deviceTag": d.device_tag,
                    "phoneAppVersion": d.phone_app_version,
                    "createdDateTime": fmt::graph(d.created),
                }),
                MethodKind::SoftwareOath => json!({ "id": d.id, "secretKey": null }),
                MethodKind::WindowsHelloForBusiness => json!({
                    "id": d.id,
                    "displayName": d.display_name,
                    "createdDateTime": fmt::graph(d.created),
                    "keyStrength": d.key_strength.as_deref().unwrap_or("normal"),
                }),
                _ => json!({
                    "id": d.id,
                    "displayName": d.display_name,
                    "createdDateTime": fmt::graph(d.created),
                    "keyStrength": d.key_strength.as_deref().unwrap_or("normal"),
                    "platform": d.platform.as_deref().unwrap_or("macOS"),
                }),
            }
        };
        let items: Vec<Value> = match kind {
            MethodKind::Password => vec![json!({
                "id": PASSWORD_METHOD_ID,
                "password": null,
                "createdDateTime": self.password_created.map(fmt::graph),
            })],
            MethodKind::Email => self
                .email
                .iter()
                .map(|e| json!({ "id": EMAIL_METHOD_ID, "emailAddress": e }))
                .collect(),
            MethodKind::Phone => self
                .phones
                .iter()
                .map(|p| {
                    json!({
                        "id": p.phone_type.id(),
                        "phoneNumber": p.number,
                        "phoneType": p.phone_type.as_str(),
                        "smsSignInState": p.sms_sign_in_state,
                    })
                })
                .collect(),
            MethodKind::MicrosoftAuthenticator => {
                self.microsoft_authenticator.iter().map(device).collect()
            }
            MethodKind::SoftwareOath => self.software_oath.iter().map(device).collect(),
            MethodKind::WindowsHelloForBusiness => {
                self.windows_hello_for_business.iter().map(device).collect()
            }
            MethodKind::PlatformCredential => self.platform_credential.iter().map(device).collect(),
            MethodKind::Fido2 => self
                .fido2
                .iter()
                .map(|f| {
                    json!({
                        "id": f.id,
                        "displayName": f.display_name,
                        "createdDateTime": fmt::graph(f.created),
                        "aaGuid": f.aaguid,
                        "model": f.model,
                        "attestationCertificates": f.attestation_certificates,
                        "attestationLevel": f.attestation_level,
                        "passkeyType": f.passkey_type,
                    })
                })
                .collect(),
            MethodKind::TemporaryAccessPass => {
                return self
                    .temporary_access_pass
                    .iter()
                    .map(|t| t.to_json(now, None))
                    .collect();
            }
        };
        items.into_iter().map(|v| typed(kind, v)).collect()
    }

    /// Everything, as `GET /authentication/methods` lists it (password first).
    pub fn all(&self, now: OffsetDateTime) -> Vec<Value> {
        MethodKind::ALL
            .into_iter()
            .flat_map(|k| self.list(k, now))
            .collect()
    }

    /// Whether the method `(kind, id)` is what the user's default sign-in method relies on:
    /// the phone of a phone default, or the only authenticator app / software token of a
    /// `push` / `oath` default (with another one left, the default still works).
    fn backs_default(&self, kind: MethodKind, id: &str) -> bool {
        let Some(default) = self.default_method.as_deref() else {
            return false;
        };
        let phone = |t: PhoneType| {
            kind == MethodKind::Phone
                && t.id().eq_ignore_ascii_case(id)
                && self.phones.iter().any(|p| p.phone_type == t)
        };
        let only = |v: &[DeviceMethod]| v.len() == 1 && v[0].id.eq_ignore_ascii_case(id);
        match default {
            "sms" | "voiceMobile" => phone(PhoneType::Mobile),
            "voiceAlternateMobile" => phone(PhoneType::AlternateMobile),
            "voiceOffice" => phone(PhoneType::Office),
            "push" => {
                kind == MethodKind::MicrosoftAuthenticator && only(&self.microsoft_authenticator)
            }
            "oath" => kind == MethodKind::SoftwareOath && only(&self.software_oath),
            _ => false,
        }
    }

    /// Removes one method. `Ok(false)` when there is no such method. The method the user's
    /// default sign-in method relies on is refused (graph.md §5: "can't delete the user's default
    /// MFA method"; Microsoft documents no error body, so the message is ours).
    pub fn delete(&mut self, kind: MethodKind, id: &str) -> Result<bool, &'static str> {
        if self.backs_default(kind, id) {
            return Err(
                "The authentication method is the user's default sign-in method and cannot be deleted. Change the default method first.",
            );
        }
        fn remove_by_id(v: &mut Vec<DeviceMethod>, id: &str) -> bool {
            let before = v.len();
            v.retain(|d| !d.id.eq_ignore_ascii_case(id));
            v.len() != before
        }
        Ok(match kind {
            MethodKind::Password => {
                return Err("The password authentication method cannot be deleted.");
            }
            MethodKind::Email => {
                if self.email.is_some() && id.eq_ignore_ascii_case(EMAIL_METHOD_ID) {
                    self.email = None;
                    true
                } else {
                    false
                }
            }
            MethodKind::Phone => {
                let Some(pos) = self
                    .phones
                    .iter()
                    .position(|p| p.phone_type.id().eq_ignore_ascii_case(id))
                else {
                    return Ok(false);
                };
                if self.phones[pos].phone_type == PhoneType::Mobile
                    && self
                        .phones
                        .iter()
                        .any(|p| p.phone_type == PhoneType::AlternateMobile)
                {
                    return Err(
                        "The mobile phone method cannot be deleted while an alternateMobile phone method exists.",
                    );
                }
                self.phones.remove(pos);
                true
            }
            MethodKind::MicrosoftAuthenticator => {
                remove_by_id(&mut self.microsoft_authenticator, id)
            }
            MethodKind::SoftwareOath => remove_by_id(&mut self.software_oath, id),
            MethodKind::WindowsHelloForBusiness => {
                remove_by_id(&mut self.windows_hello_for_business, id)
            }
            MethodKind::PlatformCredential => remove_by_id(&mut self.platform_credential, id),
            MethodKind::Fido2 => {
                let before = self.fido2.len();
                self.fido2.retain(|f| !f.id.eq_ignore_ascii_case(id));
                before != self.fido2.len()
            }
            MethodKind::TemporaryAccessPass => {
                if self
                    .temporary_access_pass
                    .as_ref()
                    .is_some_and(|t| t.id.eq_ignore_ascii_case(id))
                {
                    self.temporary_access_pass = None;
                    true
                } else {
                    false
                }
            }
        })
    }
}

pub fn new_method_id() -> String {
    Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_format() {
        for ok in ["+1 2065555555", "+44 7700900123", "+1 2065555555x1234"] {
            assert!(valid_phone_number(ok), "{ok}");
        }
        for bad in [
            "2065555555",
            "+1 206-555-5555",
            "+12065555555",
            "+1 ",
            "+1 2065555555x",
        ] {
            assert!(!valid_phone_number(bad), "{bad}");
        }
    }

    #[test]
    fn mobile_cannot_go_while_alternate_exists() {
        let mut m = Methods {
            phones: vec![
                PhoneMethod {
                    phone_type: PhoneType::Mobile,
                    number: "+1 2065555555".into(),
                    sms_sign_in_state: "ready".into(),
                },
                PhoneMethod {
                    phone_type: PhoneType::AlternateMobile,
                    number: "+1 2065555556".into(),
                    sms_sign_in_state: "notSupported".into(),
                },
            ],
            ..Methods::default()
        };
        assert!(m.delete(MethodKind::Phone, MOBILE_PHONE_ID).is_err());
        assert_eq!(
            m.delete(MethodKind::Phone, ALTERNATE_MOBILE_PHONE_ID),
            Ok(true)
        );
        assert_eq!(m.delete(MethodKind::Phone, MOBILE_PHONE_ID), Ok(true));
        assert_eq!(m.delete(MethodKind::Phone, MOBILE_PHONE_ID), Ok(false));
        assert!(m.delete(MethodKind::Password, PASSWORD_METHOD_ID).is_err());
    }

    #[test]
    fn the_method_a_push_default_relies_on_goes_only_when_another_remains() {
        let app = |id: &str| DeviceMethod {
            id: id.into(),
            display_name: None,
            device_tag: None,
            phone_app_version: None,
            key_strength: None,
            platform: None,
            created: OffsetDateTime::UNIX_EPOCH,
        };
        let mut m = Methods {
            microsoft_authenticator: vec![app("a"), app("b")],
            default_method: Some("push".into()),
            ..Methods::default()
        };
        assert_eq!(m.delete(MethodKind::MicrosoftAuthenticator, "a"), Ok(true));
        assert!(m.delete(MethodKind::MicrosoftAuthenticator, "b").is_err());
        m.default_method = Some("sms".into());
        assert_eq!(m.delete(MethodKind::MicrosoftAuthenticator, "b"), Ok(true));
    }
}

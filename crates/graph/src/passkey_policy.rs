//! The tenant's passkey (FIDO2) method policy (`fido2AuthenticationMethodConfiguration`, v1.0
//! `fido2authenticationmethodconfiguration` and `fido2keyrestrictions`), as far as provisioning
//! depends on it.

use serde::Deserialize;

/// `fido2KeyRestrictions.enforcementType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyEnforcement {
    /// Only the listed AAGUIDs may be registered.
    Allow,
    /// The listed AAGUIDs may not be registered.
    Block,
    #[serde(other)]
    UnknownFutureValue,
}

/// Which authenticator models (AAGUIDs) the tenant accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fido2KeyRestrictions {
    /// `isEnforced`: when false the list is configured but not applied.
    pub enforced: bool,
    pub enforcement: KeyEnforcement,
    /// AAGUIDs as Graph lists them (GUID strings).
    pub aaguids: Vec<String>,
}

impl Fido2KeyRestrictions {
    /// Whether an authenticator with this AAGUID may be registered. An enforcement type this
    /// client does not know is treated as refusing (the server decides in the end).
    pub fn permits(&self, aaguid: &str) -> bool {
        if !self.enforced {
            return true;
        }
        let listed = self
            .aaguids
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(aaguid.trim()));
        match self.enforcement {
            KeyEnforcement::Allow => listed,
            KeyEnforcement::Block => !listed,
            KeyEnforcement::UnknownFutureValue => false,
        }
    }
}

/// The tenant's passkey (FIDO2) method policy (`fido2AuthenticationMethodConfiguration`), as
/// far as provisioning depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fido2Configuration {
    /// `state == "enabled"`.
    pub enabled: bool,
    /// `isSelfServiceRegistrationAllowed` ("Allow self-service setup"). Graph's provisioning
    /// API requires it (known issue "FIDO2 provisioning API requires self-service setup to be
    /// enabled").
    pub self_service_registration_allowed: bool,
    /// `isAttestationEnforced`: keys without a trusted attestation are refused.
    pub attestation_enforced: bool,
    pub key_restrictions: Option<Fido2KeyRestrictions>,
}

impl Fido2Configuration {
    /// Whether the policy lets an administrator provision passkeys at all.
    pub fn allows_provisioning(&self) -> bool {
        self.enabled && self.self_service_registration_allowed
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawFido2Configuration {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    is_self_service_registration_allowed: Option<bool>,
    #[serde(default)]
    is_attestation_enforced: Option<bool>,
    #[serde(default)]
    key_restrictions: Option<RawKeyRestrictions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKeyRestrictions {
    #[serde(default)]
    is_enforced: Option<bool>,
    #[serde(default)]
    enforcement_type: Option<KeyEnforcement>,
    #[serde(default, deserialize_with = "null_as_empty")]
    aa_guids: Vec<String>,
}

impl From<RawFido2Configuration> for Fido2Configuration {
    fn from(r: RawFido2Configuration) -> Self {
        Self {
            enabled: r.state.as_deref() == Some("enabled"),
            self_service_registration_allowed: r.is_self_service_registration_allowed == Some(true),
            attestation_enforced: r.is_attestation_enforced == Some(true),
            key_restrictions: r.key_restrictions.map(|k| Fido2KeyRestrictions {
                enforced: k.is_enforced == Some(true),
                // Graph's default when the member is missing ("block" on an empty list).
                enforcement: k.enforcement_type.unwrap_or(KeyEnforcement::Block),
                aaguids: k.aa_guids,
            }),
        }
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_policy_decodes_and_restrictions_apply() {
        let v = json!({
            "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
            "id": "Fido2", "state": "disabled", "isSelfServiceRegistrationAllowed": true,
            "isAttestationEnforced": true,
            "keyRestrictions": {"isEnforced": false, "enforcementType": "block", "aaGuids": []},
            "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
            "excludeTargets": []
        });
        let c: Fido2Configuration = serde_json::from_value::<RawFido2Configuration>(v)
            .unwrap()
            .into();
        assert!(!c.enabled && c.self_service_registration_allowed && c.attestation_enforced);
        assert!(!c.allows_provisioning());
        let k = c.key_restrictions.unwrap();
        assert!(k.permits("anything"), "not enforced");
        let yubi = "CB69481E-8FF7-4039-93EC-0A2729A154A8";
        let allow = Fido2KeyRestrictions {
            enforced: true,
            enforcement: KeyEnforcement::Allow,
            aaguids: vec![yubi.to_ascii_lowercase()],
        };
        assert!(allow.permits(yubi));
        assert!(!allow.permits("00000000-0000-0000-0000-000000000000"));
        let block = Fido2KeyRestrictions {
            enforcement: KeyEnforcement::Block,
            ..allow
        };
        assert!(!block.permits(yubi));
        assert!(block.permits("00000000-0000-0000-0000-000000000000"));
    }
}

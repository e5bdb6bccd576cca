//! One registration with Entra, step by step: the tenant's policy ([`check_policy`]), the
//! creation options ([`Registration::begin`]), the request to the key
//! ([`Registration::request`]) and the self-checked POST ([`Registration::finish`]).
//! [`crate::provision`] runs them in order; they are public so a caller (or a test) can stop or
//! wait between them.

use latchkey_graph::{
    Fido2Configuration, Fido2CreationOptions, Fido2Method, Fido2Registration, GraphClient,
};
use latchkey_types::ObjectId;
use latchkey_webauthn::{Algorithm, AttestationStatement, attestation_object};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::aaguid::model_for;
use crate::authenticator::{AuthenticatorInfo, CredProtect, MadeCredential, MakeCredential};
use crate::check::{check_rp_id, client_data_json, self_check};
use crate::error::PasskeyError;
use crate::pin::Pin;

/// Graph documents no limit for a passkey's `displayName`; 200 characters keeps names readable
/// in the admin center and well inside any directory string limit.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

const PASSKEY_PERMISSION: &str =
    "UserAuthMethod-Passkey.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)";

/// What was registered.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The method as Entra answered the POST.
    pub method: Fido2Method,
    /// The key's model id, from the authenticator data that was registered.
    pub aaguid: Uuid,
    /// The model name from [`crate::aaguid`], when known.
    pub model: Option<&'static str>,
    /// Whether the attestation signature was verified locally before posting (see
    /// `check::self_check`: only when Graph's challenge is 32 bytes of base64url).
    pub attestation_verified: bool,
    /// Things the admin should know that did not stop the registration.
    pub warnings: Vec<String>,
}

/// The tenant's passkey policy as far as it decides whether a key may be provisioned.
#[derive(Debug, Clone, Default)]
pub struct PolicyCheck {
    /// `None` when the policy could not be read (the permission is optional).
    pub configuration: Option<Fido2Configuration>,
    pub warnings: Vec<String>,
}

impl PolicyCheck {
    /// Refuses a key model the tenant's key restrictions do not allow.
    pub fn check_key(&self, aaguid: &Uuid) -> Result<(), PasskeyError> {
        let restrictions = self
            .configuration
            .as_ref()
            .and_then(|c| c.key_restrictions.as_ref());
        match restrictions {
            Some(r) if !r.permits(&aaguid.hyphenated().to_string()) => {
                Err(PasskeyError::KeyNotAllowed {
                    aaguid: aaguid.hyphenated().to_string(),
                    model: model_for(aaguid),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether the tenant refuses keys without a (trusted) attestation certificate.
    pub fn attestation_enforced(&self) -> bool {
        self.configuration
            .as_ref()
            .is_some_and(|c| c.attestation_enforced)
    }
}

/// Reads the FIDO2 method policy and refuses what Entra would refuse anyway, before the key is
/// touched: the method disabled, or "Allow self-service set up" off (Microsoft's known issue:
/// the provisioning API requires it). A 403 (the app may lack `Policy.Read.AuthenticationMethod`,
/// which is optional) skips the checks with a warning.
pub async fn check_policy(graph: &GraphClient) -> Result<PolicyCheck, PasskeyError> {
    let configuration = match graph.fido2_configuration().await {
        Ok(c) => c,
        Err(e) if e.is_forbidden() => {
            let warning = "could not read the passkey (FIDO2) policy (the app lacks \
                           Policy.Read.AuthenticationMethod): policy pre-checks skipped"
                .to_string();
            tracing::warn!(error = %e, "{warning}");
            return Ok(PolicyCheck {
                configuration: None,
                warnings: vec![warning],
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !configuration.enabled {
        return Err(PasskeyError::MethodDisabled);
    }
    if !configuration.self_service_registration_allowed {
        return Err(PasskeyError::SelfServiceSetupOff);
    }
    let mut warnings = Vec::new();
    if configuration.attestation_enforced {
        warnings.push(
            "the tenant enforces attestation: only keys with a trusted attestation certificate \
             are accepted"
                .to_string(),
        );
    }
    Ok(PolicyCheck {
        configuration: Some(configuration),
        warnings,
    })
}

/// The display name to register: `given` trimmed, or "Security key (YYYY-MM-DD)".
pub fn display_name(given: Option<&str>, today: Date) -> Result<String, PasskeyError> {
    let Some(given) = given else {
        return Ok(format!("Security key ({today})"));
    };
    let name = given.trim();
    if name.is_empty() {
        return Err(PasskeyError::InvalidDisplayName("it is empty".into()));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(PasskeyError::InvalidDisplayName(format!(
            "it is longer than {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(PasskeyError::InvalidDisplayName(
            "it contains control characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// A registration in progress: Entra's creation options and the clientDataJSON built from them.
#[derive(Clone)]
pub struct Registration {
    options: Fido2CreationOptions,
    client_data_json: Vec<u8>,
}

// The challenge is a bearer value until it is used: keep it (and the client data holding it)
// out of Debug output.
impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("rp_id", &self.options.rp_id)
            .field("user_name", &self.options.user_name)
            .field("challenge_expires", &self.options.challenge_expires)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Fetches creation options for `user` (a new single-use challenge, 5 minutes in v1.0) and
    /// builds the clientDataJSON (origin `https://{rp id}`). Refuses options that have already
    /// expired at `now`.
    pub async fn begin(
        graph: &GraphClient,
        user: &ObjectId,
        now: OffsetDateTime,
    ) -> Result<Self, PasskeyError> {
        let options = graph
            .fido2_creation_options(user)
            .await
            .map_err(|e| permission("get passkey creation options", e))?;
        Self::from_options(options, now)
    }

    /// As [`Registration::begin`], from options already fetched.
    pub fn from_options(
        options: Fido2CreationOptions,
        now: OffsetDateTime,
    ) -> Result<Self, PasskeyError> {
        check_rp_id(&options.rp_id)?;
        if options.expired_at(now) {
            return Err(PasskeyError::ChallengeExpired {
                expired_at: options.challenge_expires,
            });
        }
        let client_data_json = client_data_json(&options.challenge, &options.origin());
        Ok(Self {
            options,
            client_data_json,
        })
    }

    pub fn options(&self) -> &Fido2CreationOptions {
        &self.options
    }

    /// The exact clientDataJSON bytes that are hashed for the key and posted to Entra.
    pub fn client_data_json(&self) -> &[u8] {
        &self.client_data_json
    }

    /// The algorithms Entra offered that this tool can verify, in Entra's order.
    fn offered_algorithms(&self) -> Vec<Algorithm> {
        self.options
            .algorithms
            .iter()
            .filter_map(|a| Algorithm::from_cose(*a))
            .collect()
    }

    /// The makeCredential request for a key described by `info`, or why that key cannot do it.
    /// User verification is always required (Entra's `userVerification` is "required"): with
    /// `pin` the PIN verifies, without it the key's built-in verification must be set up.
    pub fn request(
        &self,
        info: &AuthenticatorInfo,
        pin: Option<Pin>,
    ) -> Result<MakeCredential, PasskeyError> {
        let o = &self.options;
        let algorithms: Vec<Algorithm> = self
            .offered_algorithms()
            .into_iter()
            .filter(|a| info.supports(*a))
            .collect();
        if algorithms.is_empty() {
            return Err(PasskeyError::UnsupportedAlgorithm {
                offered: o.algorithms.clone(),
            });
        }
        if o.resident_key_required && !info.resident_keys {
            return Err(PasskeyError::NoResidentKeys);
        }
        let pin = match (pin, info.client_pin, info.built_in_uv) {
            (Some(pin), Some(true), _) => Some(pin),
            (None, _, Some(true)) => None,
            // A PIN for a key without PIN support: its built-in verification does the job.
            (Some(_), None, Some(true)) => None,
            (None, Some(true), _) => return Err(PasskeyError::PinRequired),
            (_, Some(false), _) => return Err(PasskeyError::PinNotSet),
            _ => return Err(PasskeyError::NoUserVerification),
        };
        let ext = &o.extensions;
        let hmac_secret = ext.get("hmacCreateSecret").and_then(|v| v.as_bool()) == Some(true)
            && info.has_extension("hmac-secret");
        let wanted_protect = ext
            .get("credentialProtectionPolicy")
            .and_then(|v| v.as_str())
            .and_then(CredProtect::from_webauthn);
        let enforce_protect = ext
            .get("enforceCredentialProtectionPolicy")
            .and_then(|v| v.as_bool())
            == Some(true);
        let cred_protect = match wanted_protect {
            Some(level) if info.has_extension("credProtect") => Some(level),
            // WebAuthn (credProtect, §"enforceCredentialProtectionPolicy"): a level above the
            // default the key cannot promise must fail the ceremony when enforced.
            Some(level) if enforce_protect && level != CredProtect::UserVerificationOptional => {
                return Err(PasskeyError::UnusableOptions(
                    "Entra enforces a credential protection level this key does not support".into(),
                ));
            }
            _ => None,
        };
        Ok(MakeCredential {
            rp_id: o.rp_id.clone(),
            rp_name: o.rp_name.clone(),
            client_data_json: self.client_data_json.clone(),
            user_handle: o.user_handle.clone(),
            user_name: o.user_name.clone(),
            user_display_name: o.user_display_name.clone(),
            exclude: o.exclude_credentials.clone(),
            algorithms,
            resident_key: o.resident_key_required,
            user_verification: true,
            hmac_secret,
            cred_protect,
            pin,
        })
    }

    /// Builds the attestationObject, self-checks it, applies the policy to the AAGUID the key
    /// really registered, and posts it, unless the challenge has expired at `now` (read `now`
    /// after the key answered: the touch can take a while).
    pub async fn finish(
        self,
        graph: &GraphClient,
        user: &ObjectId,
        made: MadeCredential,
        display_name: &str,
        policy: &PolicyCheck,
        now: OffsetDateTime,
    ) -> Result<Provisioned, PasskeyError> {
        let o = &self.options;
        let object = attestation_object(made.format, &made.auth_data, &made.statement)
            .map_err(PasskeyError::SelfCheck)?;
        let checked = self_check(
            &o.rp_id,
            &o.challenge,
            &self.client_data_json,
            &object,
            &made.auth_data,
            &self.offered_algorithms(),
        )?;
        policy.check_key(&checked.aaguid)?;
        let has_certificate =
            matches!(&made.statement, AttestationStatement::Packed { x5c, .. } if !x5c.is_empty());
        if policy.attestation_enforced() && !has_certificate {
            return Err(PasskeyError::AttestationRequired {
                aaguid: checked.aaguid.hyphenated().to_string(),
                model: model_for(&checked.aaguid),
            });
        }
        if o.expired_at(now) {
            return Err(PasskeyError::ChallengeExpired {
                expired_at: o.challenge_expires,
            });
        }
        let registration = Fido2Registration {
            display_name: display_name.to_string(),
            credential_id: checked.credential_id,
            client_data_json: self.client_data_json.clone(),
            attestation_object: object,
        };
        let method =
            graph
                .add_fido2_method(user, &registration)
                .await
                .map_err(|e| match permission("register passkeys", e) {
                    PasskeyError::Graph(e) if e.is_bad_request() => PasskeyError::Rejected {
                        source: Box::new(e),
                    },
                    other => other,
                })?;
        let mut warnings = policy.warnings.clone();
        if !checked.attestation_verified {
            warnings.push(
                "the attestation signature was not verified locally (Entra's challenge is not \
                 in the form the local verifier takes); Entra verified it"
                    .to_string(),
            );
        }
        Ok(Provisioned {
            method,
            aaguid: checked.aaguid,
            model: model_for(&checked.aaguid),
            attestation_verified: checked.attestation_verified,
            warnings,
        })
    }
}

/// A 403 names the permission the step needs; anything else stays a Graph error.
fn permission(action: &'static str, e: latchkey_graph::GraphError) -> PasskeyError {
    if e.is_forbidden() {
        PasskeyError::PermissionMissing {
            action,
            permission: PASSKEY_PERMISSION,
            source: Box::new(e),
        }
    } else {
        PasskeyError::Graph(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn display_names_default_and_are_checked() {
        let today = date!(2026 - 12 - 07);
        assert_eq!(
            display_name(None, today).unwrap(),
            "Security key (2026-12-07)"
        );
        assert_eq!(display_name(Some("  Red key "), today).unwrap(), "Red key");
        assert!(display_name(Some("   "), today).is_err());
        assert!(display_name(Some("a\nb"), today).is_err());
        assert!(display_name(Some(&"k".repeat(200)), today).is_ok());
        assert!(display_name(Some(&"k".repeat(201)), today).is_err());
    }
}

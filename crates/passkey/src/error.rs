//! The crate's one error type.
//!
//! Every message is written for the admin at the terminal: what happened and what to do about
//! it. No variant carries a PIN (the PIN never reaches an error path), key material or a
//! challenge.

use latchkey_graph::GraphError;
use time::OffsetDateTime;

/// Why provisioning a security key stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    // --- the device ---
    /// No FIDO security key is plugged in (or none can be seen by this process).
    #[error(
        "no FIDO2 security key found: plug one in (on Linux the user needs access to /dev/hidraw*, \
         on Windows run this from an elevated prompt)"
    )]
    NoDevice,
    /// More than one FIDO device: the tool will not guess which one to write to.
    #[error("{count} FIDO2 security keys are plugged in: unplug all but the one to provision")]
    SeveralDevices { count: usize },
    /// The device is there but could not be opened or talked to.
    #[error("could not use the security key: {0}")]
    Device(String),
    /// The key has a PIN but none was given (and it has no built-in verification to use instead).
    #[error("this security key has a PIN: give it to continue")]
    PinRequired,
    /// Entra requires user verification; the key has no PIN set and no built-in verification.
    #[error(
        "this security key has no PIN: set one first (for example with the key vendor's tool), \
         Entra requires user verification"
    )]
    PinNotSet,
    /// The key cannot verify the user at all (no PIN support, no biometrics).
    #[error("this security key cannot verify the user (no PIN, no biometrics); Entra requires it")]
    NoUserVerification,
    /// A malformed PIN, refused before it reaches the key.
    #[error("invalid PIN: {0}")]
    InvalidPin(&'static str),
    /// The key refused the PIN.
    #[error("wrong PIN{}", retries_text(*retries_left))]
    WrongPin { retries_left: Option<u32> },
    /// Too many wrong PINs in a row: the key wants to be unplugged before the next try.
    #[error("too many wrong PINs in a row: unplug the security key, plug it back in and try again")]
    PinAuthBlocked,
    /// No PIN tries left: only a reset of the key (which erases all its credentials) helps.
    #[error("the security key's PIN is blocked: it must be reset, which erases all its passkeys")]
    PinBlocked,
    /// Built-in user verification (fingerprint) failed or is blocked.
    #[error("the security key could not verify the user (fingerprint not recognised or blocked)")]
    UserVerificationFailed,
    /// The key already holds a credential from the exclude list: it is registered for this user.
    #[error("this security key is already registered for this user")]
    CredentialExcluded,
    /// Nobody touched the key in time.
    #[error("the security key was not touched in time: run the command again and touch the key")]
    NotTouched,
    /// The key has no room for another discoverable credential.
    #[error(
        "the security key is full (no room for another passkey): remove one with the vendor's tool"
    )]
    KeyFull,
    /// None of the algorithms Entra offered is one this key (and this tool) can make.
    #[error("the security key supports none of the algorithms Entra asked for ({offered:?})")]
    UnsupportedAlgorithm { offered: Vec<i64> },
    /// The key cannot store discoverable (resident) credentials, which Entra requires.
    #[error(
        "this security key cannot store discoverable credentials (passkeys); Entra requires them"
    )]
    NoResidentKeys,

    // --- the tenant's policy ---
    /// The passkey (FIDO2) method is turned off in the tenant.
    #[error(
        "passkeys (FIDO2) are turned off for this tenant: Entra admin center > Protection > \
         Authentication methods > Policies > Passkey (FIDO2) > Enable"
    )]
    MethodDisabled,
    /// Microsoft's documented known issue: provisioning needs "Allow self-service set up".
    #[error(
        "Entra only accepts provisioned passkeys when self-service set up is allowed (a known \
         issue of the provisioning API): Entra admin center > Protection > Authentication methods \
         > Policies > Passkey (FIDO2) > Configure > \"Allow self-service set up\" = Yes"
    )]
    SelfServiceSetupOff,
    /// The tenant's key restrictions do not allow this model.
    #[error("the tenant's passkey key restrictions do not allow this key ({})", describe_key(aaguid, *model))]
    KeyNotAllowed {
        aaguid: String,
        model: Option<&'static str>,
    },
    /// The tenant enforces attestation and this key gave none (or only self attestation).
    #[error(
        "the tenant enforces attestation but this security key sent no attestation certificate \
         ({}): Entra would refuse it", describe_key(aaguid, *model)
    )]
    AttestationRequired {
        aaguid: String,
        model: Option<&'static str>,
    },
    /// The caller lacks a permission or role for a step.
    #[error(
        "not allowed to {action}: the app needs {permission} (application permission, or \
         delegated with the Authentication Administrator role) [{source}]"
    )]
    PermissionMissing {
        action: &'static str,
        permission: &'static str,
        source: Box<GraphError>,
    },

    // --- the ceremony ---
    /// Entra's challenge ran out before the key's answer could be sent.
    #[error(
        "Entra's registration challenge expired at {expired_at} (it lasts 5 minutes): run the \
         command again"
    )]
    ChallengeExpired { expired_at: OffsetDateTime },
    /// Entra's creation options cannot be used as they are (missing rp id, unknown values …).
    #[error("unusable creation options from Entra: {0}")]
    UnusableOptions(String),
    /// What the key produced does not verify against what Entra asked for; nothing was sent.
    #[error("the security key's answer did not verify ({0}); nothing was sent to Entra")]
    SelfCheck(latchkey_webauthn::Error),
    /// Entra refused the registration (400). Graph's answer does not say which check failed.
    #[error(
        "Entra refused the passkey: {source}. Usual causes: the challenge expired or was already \
         used, the key is already registered, or the passkey policy refuses this key (model \
         restrictions, attestation)"
    )]
    Rejected { source: Box<GraphError> },
    /// The display name is empty, too long or has control characters.
    #[error("invalid display name: {0}")]
    InvalidDisplayName(String),

    // --- everything else ---
    /// Any other Graph failure.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A failure inside this process (a worker thread, the device library).
    #[error("internal error: {0}")]
    Internal(String),
}

fn retries_text(left: Option<u32>) -> String {
    match left {
        Some(1) => " (1 try left before the key locks)".into(),
        Some(n) => format!(" ({n} tries left)"),
        None => String::new(),
    }
}

fn describe_key(aaguid: &str, model: Option<&str>) -> String {
    match model {
        Some(m) => format!("{m}, AAGUID {aaguid}"),
        None => format!("AAGUID {aaguid}"),
    }
}

impl PasskeyError {
    /// A short, stable code for audit logs and exit-code mapping.
    pub fn reason(&self) -> &'static str {
        match self {
            PasskeyError::NoDevice => "no_device",
            PasskeyError::SeveralDevices { .. } => "several_devices",
            PasskeyError::Device(_) => "device",
            PasskeyError::PinRequired => "pin_required",
            PasskeyError::PinNotSet => "pin_not_set",
            PasskeyError::NoUserVerification => "no_user_verification",
            PasskeyError::InvalidPin(_) => "invalid_pin",
            PasskeyError::WrongPin { .. } => "wrong_pin",
            PasskeyError::PinAuthBlocked => "pin_auth_blocked",
            PasskeyError::PinBlocked => "pin_blocked",
            PasskeyError::UserVerificationFailed => "user_verification_failed",
            PasskeyError::CredentialExcluded => "credential_excluded",
            PasskeyError::NotTouched => "not_touched",
            PasskeyError::KeyFull => "key_full",
            PasskeyError::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            PasskeyError::NoResidentKeys => "no_resident_keys",
            PasskeyError::MethodDisabled => "method_disabled",
            PasskeyError::SelfServiceSetupOff => "self_service_setup_off",
            PasskeyError::KeyNotAllowed { .. } => "key_not_allowed",
            PasskeyError::AttestationRequired { .. } => "attestation_required",
            PasskeyError::PermissionMissing { .. } => "permission_missing",
            PasskeyError::ChallengeExpired { .. } => "challenge_expired",
            PasskeyError::UnusableOptions(_) => "unusable_options",
            PasskeyError::SelfCheck(_) => "self_check",
            PasskeyError::Rejected { .. } => "rejected",
            PasskeyError::InvalidDisplayName(_) => "invalid_display_name",
            PasskeyError::Graph(_) => "graph",
            PasskeyError::Internal(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let e = PasskeyError::WrongPin {
            retries_left: Some(3),
        };
        assert_eq!(e.to_string(), "wrong PIN (3 tries left)");
        let e = PasskeyError::SelfServiceSetupOff.to_string();
        assert!(e.contains("\"Allow self-service set up\" = Yes"), "{e}");
        assert!(e.contains("Passkey (FIDO2) > Configure"), "{e}");
        let e = PasskeyError::KeyNotAllowed {
            aaguid: "cb69481e-8ff7-4039-93ec-0a2729a154a8".into(),
            model: Some("YubiKey 5 Series"),
        };
        assert!(e.to_string().contains("YubiKey 5 Series, AAGUID cb69481e"));
    }
}

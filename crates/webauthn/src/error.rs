//! The crate's one error type. Each variant is one distinct refusal, so a caller can audit-log
//! [`Error::reason`] and show the person one generic "that did not work" message.

use latchkey_types::random::NoRandomness;

/// Why a ceremony (or an input to one) was refused.
///
/// No variant carries key material, a signature or a challenge: errors end up in logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input did not parse; the text says which part (CBOR, JSON, base64, lengths…).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// clientDataJSON `type` is not the ceremony's (`webauthn.create` / `webauthn.get`).
    #[error("clientDataJSON has the wrong type")]
    ClientDataType,
    /// clientDataJSON `challenge` is not the one the server issued.
    #[error("challenge does not match")]
    Challenge,
    /// clientDataJSON `origin` is not one of the relying party's origins.
    #[error("origin is not allowed")]
    Origin,
    /// clientDataJSON says `crossOrigin: true` (the ceremony ran in a third-party iframe).
    #[error("cross-origin ceremony refused")]
    CrossOrigin,
    /// The authenticator data is for another relying party id.
    #[error("rpIdHash does not match the relying party")]
    RpIdHash,
    /// The UP flag is clear: no user presence test was made.
    #[error("user not present")]
    UserNotPresent,
    /// The UV flag is clear but user verification was required.
    #[error("user not verified")]
    UserNotVerified,
    /// A registration whose authenticator data carries no attested credential (AT clear).
    #[error("no attested credential data")]
    NoAttestedCredential,
    /// The credential key's algorithm is unknown or not among those the server allowed.
    #[error("unsupported or disallowed public key algorithm")]
    UnsupportedAlgorithm,
    /// An attestation format (or variant of one) this crate does not verify.
    #[error("unsupported attestation format")]
    UnsupportedAttestation,
    /// The attestation statement's signature does not verify.
    #[error("attestation signature is invalid")]
    AttestationSignature,
    /// The attestation certificate breaks a rule of WebAuthn §8.2.1; the text says which.
    #[error("attestation certificate refused: {0}")]
    AttestationCertificate(&'static str),
    /// The assertion is for another credential than the stored one.
    #[error("credential id does not match")]
    CredentialMismatch,
    /// The assertion's user handle is not the expected user's.
    #[error("user handle does not match")]
    UserHandle,
    /// The assertion signature does not verify with the stored public key.
    #[error("assertion signature is invalid")]
    Signature,
    /// The BE flag differs from the one recorded at registration (it is fixed for a credential's life).
    #[error("backup eligibility changed")]
    BackupEligibilityChanged,
    /// The signature counter did not grow: possibly a cloned authenticator. Refused (fail closed).
    #[error("signature counter did not increase (stored {stored}, received {received})")]
    SignCountRegressed {
        /// The counter recorded at the last successful ceremony.
        stored: u32,
        /// The counter in this assertion.
        received: u32,
    },
    /// A relying party definition that browsers would refuse (see [`crate::RelyingParty::for_origin`]).
    #[error("invalid relying party: {0}")]
    InvalidRelyingParty(&'static str),
    /// Software authenticator only: one of its credentials is in the exclude list.
    #[error("a credential in the exclude list is already on this authenticator")]
    CredentialExcluded,
    /// Software authenticator only: no credential for this relying party (and allow list).
    #[error("no matching credential on this authenticator")]
    NoCredential,
    /// The system random number generator failed.
    #[error(transparent)]
    Random(#[from] NoRandomness),
}

impl Error {
    /// A short, stable code for audit logs and metrics (never changes wording with the Display text).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::ClientDataType => "client_data_type",
            Error::Challenge => "challenge",
            Error::Origin => "origin",
            Error::CrossOrigin => "cross_origin",
            Error::RpIdHash => "rp_id_hash",
            Error::UserNotPresent => "user_not_present",
            Error::UserNotVerified => "user_not_verified",
            Error::NoAttestedCredential => "no_attested_credential",
            Error::UnsupportedAlgorithm => "unsupported_algorithm",
            Error::UnsupportedAttestation => "unsupported_attestation",
            Error::AttestationSignature => "attestation_signature",
            Error::AttestationCertificate(_) => "attestation_certificate",
            Error::CredentialMismatch => "credential_mismatch",
            Error::UserHandle => "user_handle",
            Error::Signature => "signature",
            Error::BackupEligibilityChanged => "backup_eligibility_changed",
            Error::SignCountRegressed { .. } => "sign_count_regressed",
            Error::InvalidRelyingParty(_) => "invalid_relying_party",
            Error::CredentialExcluded => "credential_excluded",
            Error::NoCredential => "no_credential",
            Error::Random(_) => "no_randomness",
        }
    }
}

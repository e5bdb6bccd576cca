//! The registration ceremony, WebAuthn §7.1 ("Registering a New Credential"), from step 5 on:
//! the caller has already taken the challenge out of its single-use store.

use crate::attestation::{AttestationFormat, AttestationObject};
use crate::auth_data::AuthData;
use crate::client_data::{self, Ceremony};
use crate::cose::{Algorithm, CoseKey};
use crate::{CredentialId, Error, RelyingParty};

/// What a registration is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationCheck<'a> {
    /// The relying party (RP ID and allowed origins).
    pub rp: &'a RelyingParty,
    /// The challenge issued for this ceremony: raw bytes, since a relying party may issue any
    /// length (ours are a [`Challenge`], 32 bytes: pass `as_bytes()`; Microsoft Graph's
    /// `creationOptions` challenges are longer opaque blobs).
    pub challenge: &'a [u8],
    /// Whether the UV flag must be set (`userVerification: "required"`).
    pub user_verification_required: bool,
    /// The algorithms offered in `pubKeyCredParams`; the new key must use one of them.
    pub algorithms: &'a [Algorithm],
}

/// A verified new credential: what to store (id, key, count, flags) and what to decide policy on
/// (AAGUID, attestation).
#[derive(Debug, Clone)]
pub struct Registered {
    /// The credential id from the authenticator data. The caller must refuse it if it is already
    /// registered to anyone (§7.1 step 22), and should check it equals the response's `rawId`.
    pub credential_id: CredentialId,
    /// The credential public key; store [`CoseKey::as_bytes`].
    pub public_key: CoseKey,
    /// The initial signature counter.
    pub sign_count: u32,
    /// The authenticator model (all zeros when the authenticator does not say).
    pub aaguid: [u8; 16],
    /// UV flag.
    pub user_verified: bool,
    /// BE flag: the credential may be synced (a passkey). Fixed for the credential's life.
    pub backup_eligible: bool,
    /// BS flag: the credential is currently backed up.
    pub backed_up: bool,
    /// The attestation statement's format.
    pub format: AttestationFormat,
    /// DER certificates of packed x5c attestation (leaf first); empty for none/self.
    pub attestation_certificates: Vec<Vec<u8>>,
}

/// Verifies a registration response (`AuthenticatorAttestationResponse`): clientDataJSON and
/// attestationObject as the browser sent them (decoded from base64url).
pub fn verify_registration(
    check: &RegistrationCheck<'_>,
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<Registered, Error> {
    // Steps 5–12: type, challenge, origin, crossOrigin; the hash of the raw bytes.
    let client_data_hash = client_data::verify(
        client_data_json,
        Ceremony::Create,
        check.rp,
        check.challenge,
    )?;
    // Step 13: decode the attestation object.
    let object = AttestationObject::decode(attestation_object)?;
    let auth_data = AuthData::parse(&object.auth_data)?;
    // Steps 14–18: rpIdHash, UP, UV, BE/BS consistency (in the parser).
    auth_data.check(check.rp, check.user_verification_required)?;
    let Some(attested) = &auth_data.attested else {
        return Err(Error::NoAttestedCredential);
    };
    // Step 19: the key's algorithm is one we offered.
    if !check.algorithms.contains(&attested.public_key.algorithm()) {
        return Err(Error::UnsupportedAlgorithm);
    }
    // Steps 20–21: no extensions were requested, so none are interpreted; the statement.
    let (format, attestation_certificates) =
        object.verify(&client_data_hash, &attested.public_key, &attested.aaguid)?;

    Ok(Registered {
        credential_id: CredentialId(attested.credential_id.to_vec()),
        public_key: attested.public_key.clone(),
        sign_count: auth_data.sign_count,
        aaguid: attested.aaguid,
        user_verified: auth_data.user_verified(),
        backup_eligible: auth_data.backup_eligible(),
        backed_up: auth_data.backed_up(),
        format,
        attestation_certificates,
    })
}

//! The authentication ceremony, WebAuthn §7.2 ("Verifying an Authentication Assertion"), for a
//! credential the caller has already looked up by id (and whose owner it has identified).

use crate::auth_data::AuthData;
use crate::client_data::{self, Ceremony};
use crate::cose::CoseKey;
use crate::{Challenge, Error, RelyingParty};

/// The stored credential the assertion claims to be from.
#[derive(Debug, Clone, Copy)]
pub struct StoredCredential<'a> {
    /// The credential id.
    pub id: &'a [u8],
    /// The public key recorded at registration.
    pub public_key: &'a CoseKey,
    /// The counter from the last successful ceremony.
    pub sign_count: u32,
    /// The BE flag recorded at registration.
    pub backup_eligible: bool,
}

/// What an assertion is checked against.
#[derive(Debug, Clone, Copy)]
pub struct AssertionCheck<'a> {
    /// The relying party (RP ID and allowed origins).
    pub rp: &'a RelyingParty,
    /// The challenge issued for this ceremony.
    pub challenge: &'a Challenge,
    /// Whether the UV flag must be set (`userVerification: "required"`).
    pub user_verification_required: bool,
    /// When Some, a user handle in the assertion must equal it; when the assertion has none,
    /// accept (the caller already mapped the credential id to its owner).
    pub user_handle: Option<&'a [u8]>,
}

/// An assertion response (`AuthenticatorAssertionResponse` plus the credential's `rawId`), with
/// its members decoded from base64url.
#[derive(Debug, Clone, Copy)]
pub struct AssertionResponse<'a> {
    /// `rawId`.
    pub credential_id: &'a [u8],
    /// `response.clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `response.authenticatorData`.
    pub authenticator_data: &'a [u8],
    /// `response.signature`.
    pub signature: &'a [u8],
    /// `response.userHandle`; an empty one counts as absent.
    pub user_handle: Option<&'a [u8]>,
}

/// A verified assertion: the caller stores the new counter and BS flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    /// The new signature counter (store it).
    pub sign_count: u32,
    /// UV flag.
    pub user_verified: bool,
    /// BS flag (it may change over a credential's life).
    pub backed_up: bool,
}

/// Verifies an assertion against the stored credential.
pub fn verify_assertion(
    check: &AssertionCheck<'_>,
    stored: &StoredCredential<'_>,
    response: &AssertionResponse<'_>,
) -> Result<Asserted, Error> {
    // Steps 5–6: the credential is the one the caller looked up, and the user handle (not
    // covered by the signature, so a consistency check only) names the expected user.
    if response.credential_id != stored.id {
        return Err(Error::CredentialMismatch);
    }
    let received_handle = response.user_handle.filter(|handle| !handle.is_empty());
    if let (Some(expected), Some(received)) = (check.user_handle, received_handle)
        && expected != received
    {
        return Err(Error::UserHandle);
    }
    // Steps 7–14: type, challenge, origin, crossOrigin.
    let client_data_hash = client_data::verify(
        response.client_data_json,
        Ceremony::Get,
        check.rp,
        check.challenge.as_bytes(),
    )?;
    // Steps 15–18: rpIdHash, UP, UV, BE/BS consistency (in the parser).
    let auth_data = AuthData::parse(response.authenticator_data)?;
    auth_data.check(check.rp, check.user_verification_required)?;
    // Steps 19–21: the signature over authenticatorData ‖ clientDataHash.
    if !verify_signature(
        stored.public_key,
        response.authenticator_data,
        &client_data_hash,
        response.signature,
    ) {
        return Err(Error::Signature);
    }
    // The state checks come after the signature, so that an audit log's "possible clone" or
    // "backup eligibility changed" is about data the credential really signed.
    if auth_data.backup_eligible() != stored.backup_eligible {
        return Err(Error::BackupEligibilityChanged);
    }
    // Step 22: a counter that does not grow may be a cloned authenticator; Latchkey resets
    // passwords, so it fails closed. Both zero is a synced passkey that keeps no counter.
    let received = auth_data.sign_count;
    if (received != 0 || stored.sign_count != 0) && received <= stored.sign_count {
        return Err(Error::SignCountRegressed {
            stored: stored.sign_count,
            received,
        });
    }
    Ok(Asserted {
        sign_count: received,
        user_verified: auth_data.user_verified(),
        backed_up: auth_data.backed_up(),
    })
}

fn verify_signature(
    key: &CoseKey,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
    signature: &[u8],
) -> bool {
    let mut signed = Vec::with_capacity(auth_data.len() + client_data_hash.len());
    signed.extend_from_slice(auth_data);
    signed.extend_from_slice(client_data_hash);
    key.verify(&signed, signature)
}

//! What is built for Entra and checked before it is sent: the clientDataJSON, and the key's
//! answer verified against it ("self-check": both halves checked against each other, so a key
//! or adapter bug shows up here with a clear message instead of as Entra's generic 400).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_webauthn::{
    Algorithm, Error as WebauthnError, RegistrationCheck, RelyingParty, verify_registration,
};
use serde_json::Value;
use uuid::Uuid;

use crate::error::PasskeyError;

/// Authenticator data flag bits (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;
/// WebAuthn Level 3 §7.1 step 23.
const MAX_CREDENTIAL_ID: usize = 1023;

/// `{"type":"webauthn.create","challenge":…,"origin":…,"crossOrigin":false}` with the challenge
/// exactly as Graph sent it: Entra compares that string, so it is never decoded and re-encoded
/// (Graph's challenge is opaque and not always 32 bytes, and may not be canonical base64url).
pub(crate) fn client_data_json(challenge: &str, origin: &str) -> Vec<u8> {
    // `Value::String(..).to_string()` is serde_json's escaping of a string literal, infallibly.
    format!(
        "{{\"type\":\"webauthn.create\",\"challenge\":{},\"origin\":{},\"crossOrigin\":false}}",
        Value::String(challenge.to_owned()),
        Value::String(origin.to_owned()),
    )
    .into_bytes()
}

/// The relying party id must be a plain host name: it becomes the origin `https://{rp id}`.
pub(crate) fn check_rp_id(rp_id: &str) -> Result<(), PasskeyError> {
    let plain = !rp_id.is_empty()
        && rp_id.len() <= 253
        && rp_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if plain {
        Ok(())
    } else {
        Err(PasskeyError::UnusableOptions(
            "publicKey.rp.id is not a host name".into(),
        ))
    }
}

/// What the self-check established about the new credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub credential_id: Vec<u8>,
    pub aaguid: Uuid,
    /// Whether the attestation (signature, key algorithm) was verified too, not only the
    /// authenticator data; see [`self_check`].
    pub attestation_verified: bool,
}

/// Checks the key's answer against the request before anything is sent to Entra.
///
/// Always: the authenticator data is for `rp_id`, has UP and UV set and carries a credential
/// (id length within limits), and it is what the attestation object holds. Then, whenever
/// Graph's challenge is base64url (as documented; the challenge is opaque and of any length),
/// the full WebAuthn §7.1 registration check runs on the exact bytes that will be posted:
/// clientDataJSON type, challenge and origin, the key's algorithm, and the attestation
/// signature. A challenge that is not base64url gets the authenticator-data checks only and
/// `attestation_verified: false`.
pub(crate) fn self_check(
    rp_id: &str,
    challenge: &str,
    client_data_json: &[u8],
    attestation_object: &[u8],
    auth_data: &[u8],
    algorithms: &[Algorithm],
) -> Result<Checked, PasskeyError> {
    let (credential_id, aaguid) =
        parse_auth_data(rp_id, auth_data).map_err(PasskeyError::SelfCheck)?;
    let Some(challenge) = challenge_bytes(challenge) else {
        return Ok(Checked {
            credential_id,
            aaguid,
            attestation_verified: false,
        });
    };
    let rp = RelyingParty {
        id: rp_id.to_owned(),
        origins: vec![format!("https://{rp_id}")],
    };
    let registered = verify_registration(
        &RegistrationCheck {
            rp: &rp,
            challenge: &challenge,
            user_verification_required: true,
            algorithms,
        },
        client_data_json,
        attestation_object,
    )
    .map_err(PasskeyError::SelfCheck)?;
    if registered.credential_id.0 != credential_id {
        return Err(PasskeyError::SelfCheck(WebauthnError::CredentialMismatch));
    }
    Ok(Checked {
        credential_id,
        aaguid: Uuid::from_bytes(registered.aaguid),
        attestation_verified: true,
    })
}

/// Graph's challenge as bytes when it is canonical unpadded base64url (how the clientDataJSON
/// carries it).
fn challenge_bytes(challenge: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(challenge).ok()
}

/// The parts of authenticator data the flow needs (credential id, AAGUID), with the checks that
/// need no challenge: rpIdHash, UP, UV, AT and the credential id length.
fn parse_auth_data(rp_id: &str, data: &[u8]) -> Result<(Vec<u8>, Uuid), WebauthnError> {
    const WHAT: &str = "authenticator data";
    let (rp_hash, rest) = data
        .split_at_checked(32)
        .ok_or(WebauthnError::Malformed(WHAT))?;
    let expected = ring::digest::digest(&ring::digest::SHA256, rp_id.as_bytes());
    if rp_hash != expected.as_ref() {
        return Err(WebauthnError::RpIdHash);
    }
    let (&flags, rest) = rest.split_first().ok_or(WebauthnError::Malformed(WHAT))?;
    if flags & UP == 0 {
        return Err(WebauthnError::UserNotPresent);
    }
    if flags & UV == 0 {
        return Err(WebauthnError::UserNotVerified);
    }
    if flags & AT == 0 {
        return Err(WebauthnError::NoAttestedCredential);
    }
    // signCount (4), then attested credential data: aaguid (16), id length (2), id.
    let rest = rest.get(4..).ok_or(WebauthnError::Malformed(WHAT))?;
    let (aaguid, rest) = rest
        .split_at_checked(16)
        .ok_or(WebauthnError::Malformed(WHAT))?;
    let (len, rest) = rest
        .split_at_checked(2)
        .ok_or(WebauthnError::Malformed(WHAT))?;
    let len = usize::from(u16::from_be_bytes([
        *len.first().ok_or(WebauthnError::Malformed(WHAT))?,
        *len.get(1).ok_or(WebauthnError::Malformed(WHAT))?,
    ]));
    if len == 0 || len > MAX_CREDENTIAL_ID {
        return Err(WebauthnError::Malformed("credential id length"));
    }
    let id = rest.get(..len).ok_or(WebauthnError::Malformed(WHAT))?;
    let aaguid = Uuid::from_slice(aaguid).map_err(|_| WebauthnError::Malformed(WHAT))?;
    Ok((id.to_vec(), aaguid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_data_keeps_the_challenge_verbatim() {
        let json = client_data_json("QTU1MzNDNzA=+/x\"y", "https://login.microsoft.com");
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["type"], "webauthn.create");
        assert_eq!(v["challenge"], "QTU1MzNDNzA=+/x\"y");
        assert_eq!(v["origin"], "https://login.microsoft.com");
        assert_eq!(v["crossOrigin"], false);
        assert!(json.starts_with(b"{\"type\":\"webauthn.create\",\"challenge\":"));
    }

    #[test]
    fn rp_ids_must_be_host_names() {
        check_rp_id("login.microsoft.com").unwrap();
        for bad in ["", "https://login.microsoft.com", "a b", "host:443", "a/b"] {
            assert!(check_rp_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn canonical_base64url_challenges_of_any_length_take_the_full_check() {
        assert!(challenge_bytes(&URL_SAFE_NO_PAD.encode([7u8; 32])).is_some());
        // Microsoft's documented example: 36 bytes, opaque.
        let example = challenge_bytes("QTU1MzNDNzAtNkM3Ni00NTRDLUJDQ0YtRTREMDZCNTBFRTRE");
        assert_eq!(example.map(|b| b.len()), Some(36));
        assert!(challenge_bytes(&format!("{}=", URL_SAFE_NO_PAD.encode([7u8; 32]))).is_none());
    }

    fn auth_data(rp_id: &str, flags: u8, id: &[u8]) -> Vec<u8> {
        let mut out = ring::digest::digest(&ring::digest::SHA256, rp_id.as_bytes())
            .as_ref()
            .to_vec();
        out.push(flags);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&[0xab; 16]);
        out.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
        out.extend_from_slice(id);
        out
    }

    #[test]
    fn auth_data_checks_need_no_challenge() {
        let rp = "login.microsoft.com";
        let (id, aaguid) = parse_auth_data(rp, &auth_data(rp, UP | UV | AT, b"cred")).unwrap();
        assert_eq!(id, b"cred");
        assert_eq!(aaguid, Uuid::from_bytes([0xab; 16]));
        let reason = |d: Vec<u8>| parse_auth_data(rp, &d).unwrap_err().reason();
        assert_eq!(
            reason(auth_data("evil.example", UP | UV | AT, b"c")),
            "rp_id_hash"
        );
        assert_eq!(reason(auth_data(rp, UV | AT, b"c")), "user_not_present");
        assert_eq!(reason(auth_data(rp, UP | AT, b"c")), "user_not_verified");
        assert_eq!(
            reason(auth_data(rp, UP | UV, b"c")),
            "no_attested_credential"
        );
        assert_eq!(reason(auth_data(rp, UP | UV | AT, b"")), "malformed");
        let mut cut = auth_data(rp, UP | UV | AT, b"cred");
        cut.truncate(cut.len() - 1);
        assert_eq!(reason(cut), "malformed");
    }
}

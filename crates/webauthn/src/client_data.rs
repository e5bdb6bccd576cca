//! clientDataJSON (WebAuthn §5.8.1): parsed as JSON, never matched as a byte template (browsers
//! add members and order them as they like), and hashed exactly as received.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{Error, RelyingParty, constant_time_eq, sha256};

/// Which ceremony a clientDataJSON is for (its `type` member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ceremony {
    /// Registration: `webauthn.create`.
    Create,
    /// Authentication: `webauthn.get`.
    Get,
}

impl Ceremony {
    /// The `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Ceremony::Create => "webauthn.create",
            Ceremony::Get => "webauthn.get",
        }
    }
}

/// The members we check; unknown ones (`topOrigin`, `tokenBinding`, `other_keys_can_be_added_here`…)
/// are ignored as the specification asks. A duplicated member is refused by serde.
#[derive(serde::Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

/// Runs the clientDataJSON steps of a ceremony (type, challenge, origin, crossOrigin) and
/// returns SHA-256 of the raw bytes (the clientDataHash the authenticator signed).
pub(crate) fn verify(
    json: &[u8],
    ceremony: Ceremony,
    rp: &RelyingParty,
    challenge: &[u8],
) -> Result<[u8; 32], Error> {
    let data: ClientData =
        serde_json::from_slice(json).map_err(|_| Error::Malformed("clientDataJSON"))?;
    if data.kind != ceremony.as_str() {
        return Err(Error::ClientDataType);
    }
    // Browsers write base64url without padding; anything else is not our challenge.
    let received = URL_SAFE_NO_PAD
        .decode(&data.challenge)
        .map_err(|_| Error::Challenge)?;
    if challenge.is_empty() || !constant_time_eq(&received, challenge) {
        return Err(Error::Challenge);
    }
    if !rp.origins.contains(&data.origin) {
        return Err(Error::Origin);
    }
    // An iframe on another site ran the ceremony: Latchkey is never embedded, so refuse.
    if data.cross_origin == Some(true) {
        return Err(Error::CrossOrigin);
    }
    Ok(sha256(json))
}

/// The clientDataJSON a browser would produce, for native clients (the provisioning CLI):
/// `{"type":…,"challenge":<base64url>,"origin":…,"crossOrigin":false}`.
///
/// `challenge` is raw bytes, not a [`Challenge`]: Microsoft Graph's `creationOptions`
/// challenges are long opaque blobs, not 32 bytes. Pass `Challenge::as_bytes` for our own.
/// Hash the returned bytes as they are (SHA-256) for the authenticator's clientDataHash.
pub fn client_data_json(ceremony: Ceremony, challenge: &[u8], origin: &str) -> Vec<u8> {
    let mut out = String::with_capacity(96 + challenge.len() * 4 / 3 + origin.len());
    out.push_str("{\"type\":\"");
    out.push_str(ceremony.as_str());
    out.push_str("\",\"challenge\":\"");
    out.push_str(&URL_SAFE_NO_PAD.encode(challenge));
    out.push_str("\",\"origin\":");
    push_json_string(&mut out, origin);
    out.push_str(",\"crossOrigin\":false}");
    out.into_bytes()
}

/// Appends `text` as a JSON string literal (RFC 8259 §7); done by hand so that building the
/// client data cannot fail.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Challenge;

    fn rp() -> RelyingParty {
        RelyingParty::for_origin("https://sspr.contoso.com").unwrap()
    }

    #[test]
    fn built_client_data_verifies_and_is_valid_json() {
        let challenge = Challenge::from_bytes([9; 32]);
        let json = client_data_json(
            Ceremony::Get,
            challenge.as_bytes(),
            "https://sspr.contoso.com",
        );
        assert_eq!(
            verify(&json, Ceremony::Get, &rp(), challenge.as_bytes()).unwrap(),
            sha256(&json)
        );
        assert_eq!(
            verify(&json, Ceremony::Create, &rp(), challenge.as_bytes())
                .unwrap_err()
                .reason(),
            "client_data_type"
        );
        let odd = client_data_json(Ceremony::Create, b"x", "a\"b\\c\u{1}");
        let parsed: serde_json::Value = serde_json::from_slice(&odd).unwrap();
        assert_eq!(parsed["origin"], "a\"b\\c\u{1}");
        assert_eq!(parsed["challenge"], "eA");
    }

    #[test]
    fn unknown_members_are_ignored_and_duplicates_refused() {
        let challenge = Challenge::from_bytes([9; 32]);
        let c = challenge.to_base64url();
        let extra = format!(
            r#"{{"origin":"https://sspr.contoso.com","type":"webauthn.get","challenge":"{c}","topOrigin":"x","other":1}}"#
        );
        verify(extra.as_bytes(), Ceremony::Get, &rp(), challenge.as_bytes()).unwrap();
        let dup = format!(
            r#"{{"type":"webauthn.get","type":"webauthn.get","challenge":"{c}","origin":"https://sspr.contoso.com"}}"#
        );
        assert!(matches!(
            verify(dup.as_bytes(), Ceremony::Get, &rp(), challenge.as_bytes()),
            Err(Error::Malformed(_))
        ));
        let padded = format!(
            r#"{{"type":"webauthn.get","challenge":"{c}=","origin":"https://sspr.contoso.com"}}"#
        );
        assert!(matches!(
            verify(
                padded.as_bytes(),
                Ceremony::Get,
                &rp(),
                challenge.as_bytes()
            ),
            Err(Error::Challenge)
        ));
    }
}

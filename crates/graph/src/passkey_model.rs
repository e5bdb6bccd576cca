//! Passkey (FIDO2) provisioning resources: the WebAuthn creation options Graph hands out and the
//! registration the client posts back (the policy is in `passkey_policy`).
//!
//! Sources: v1.0 `fido2authenticationmethod-creationoptions`, `authentication-post-fido2methods`,
//! `webauthnpublickeycredentialcreationoptions`. Real tenants differ from the doc example in ways the decoding here
//! absorbs: `rp.id` is `login.microsoft.com` (not the example's `login.microsoftonline.com`), and
//! `excludeCredentials` ids come as *padded standard* base64 although the page promises
//! unpadded base64url (a captured tenant response in DSInternals' tests).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// What the client was given to create a passkey for one user
/// (`webauthnCredentialCreationOptions`). The challenge is valid until
/// [`Fido2CreationOptions::challenge_expires`] (5 minutes in v1.0) and only once.
#[derive(Debug, Clone, PartialEq)]
pub struct Fido2CreationOptions {
    /// `challengeTimeoutDateTime`.
    pub challenge_expires: OffsetDateTime,
    /// `publicKey.rp.id`. The clientDataJSON origin is `https://` + this.
    pub rp_id: String,
    pub rp_name: Option<String>,
    /// `publicKey.user.id`, decoded: the user handle the authenticator stores.
    pub user_handle: Vec<u8>,
    /// `publicKey.user.name` (the UPN).
    pub user_name: String,
    pub user_display_name: String,
    /// Exactly as received: it goes verbatim into clientDataJSON, so it is never re-encoded.
    pub challenge: String,
    /// COSE algorithm ids of `pubKeyCredParams` (type `public-key`), in the server's order.
    pub algorithms: Vec<i64>,
    /// Credential ids already registered for the user, decoded.
    pub exclude_credentials: Vec<Vec<u8>>,
    /// `requireResidentKey` (or `residentKey: "required"`); Graph documents "currently always true".
    pub resident_key_required: bool,
    /// `userVerification`; Graph documents "currently always `required`".
    pub user_verification: String,
    /// `direct`, `indirect`, `none` or `enterprise`.
    pub attestation: String,
    /// `timeout` in milliseconds; `None` when absent or 0 (the beta endpoint sends 0).
    pub timeout_ms: Option<u64>,
    /// The extension inputs as received, without OData annotations (an open type in Graph).
    pub extensions: Value,
}

impl Fido2CreationOptions {
    /// Whether the challenge has timed out at `now` (read `now` from the caller's clock). Graph
    /// would refuse a registration made with it.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        now >= self.challenge_expires
    }

    /// The origin the clientDataJSON must name: `https://{rp id}` (what browsers and the
    /// Windows WebAuthn API produce for that relying party).
    pub fn origin(&self) -> String {
        format!("https://{}", self.rp_id)
    }

    /// Decodes the JSON body of `creationOptions`. The beta endpoint wraps it in `value`; that
    /// wrapper is accepted too. The error text names the member that is wrong, never its value.
    pub(crate) fn from_json(mut v: Value) -> Result<Self, String> {
        if let Some(inner) = v.get_mut("value").filter(|x| x.is_object()) {
            v = inner.take();
        }
        let raw: RawOptions = serde_json::from_value(v).map_err(|e| {
            format!(
                "creation options: {}",
                crate::http::without_quoted(&e.to_string())
            )
        })?;
        let pk = raw.public_key;
        let challenge_expires = OffsetDateTime::parse(
            &raw.challenge_timeout,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| "challengeTimeoutDateTime is not an RFC 3339 timestamp".to_string())?;
        if pk.challenge.is_empty() {
            return Err("publicKey.challenge is empty".into());
        }
        let user_handle = decode_base64_lenient(&pk.user.id)
            .filter(|h| !h.is_empty())
            .ok_or("publicKey.user.id is not base64")?;
        let exclude_credentials = pk
            .exclude_credentials
            .iter()
            .filter(|d| d.kind.as_deref().is_none_or(|t| t == "public-key"))
            .map(|d| decode_base64_lenient(&d.id).filter(|id| !id.is_empty()))
            .collect::<Option<Vec<_>>>()
            .ok_or("an excludeCredentials id is not base64")?;
        let selection = pk.authenticator_selection.unwrap_or_default();
        let extensions = match pk.extensions {
            Some(Value::Object(m)) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| !k.starts_with("@odata."))
                    .collect::<Map<_, _>>(),
            ),
            _ => Value::Object(Map::new()),
        };
        Ok(Self {
            challenge_expires,
            user_display_name: pk.user.display_name.unwrap_or_else(|| pk.user.name.clone()),
            user_name: pk.user.name,
            rp_id: pk.rp.id,
            rp_name: pk.rp.name,
            user_handle,
            challenge: pk.challenge,
            algorithms: pk
                .pub_key_cred_params
                .iter()
                .filter(|p| p.kind.as_deref().is_none_or(|t| t == "public-key"))
                .map(|p| p.alg)
                .collect(),
            exclude_credentials,
            resident_key_required: selection.require_resident_key == Some(true)
                || selection.resident_key.as_deref() == Some("required"),
            // WebAuthn's defaults for members left out.
            user_verification: selection
                .user_verification
                .unwrap_or_else(|| "preferred".into()),
            attestation: pk.attestation.unwrap_or_else(|| "none".into()),
            timeout_ms: pk.timeout.filter(|t| *t > 0),
            extensions,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOptions {
    #[serde(rename = "challengeTimeoutDateTime")]
    challenge_timeout: String,
    public_key: RawPublicKey,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    rp: RawRp,
    user: RawUser,
    challenge: String,
    #[serde(default)]
    pub_key_cred_params: Vec<RawParam>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default, deserialize_with = "null_as_empty")]
    exclude_credentials: Vec<RawDescriptor>,
    #[serde(default)]
    authenticator_selection: Option<RawSelection>,
    #[serde(default)]
    attestation: Option<String>,
    #[serde(default)]
    extensions: Option<Value>,
}

#[derive(Deserialize)]
struct RawRp {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUser {
    id: String,
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct RawParam {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    alg: i64,
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    id: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawSelection {
    #[serde(default)]
    require_resident_key: Option<bool>,
    #[serde(default)]
    resident_key: Option<String>,
    #[serde(default)]
    user_verification: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Decodes base64 in either alphabet (standard or URL-safe), padded or not: Graph documents
/// unpadded base64url, real tenants send padded standard base64 in `excludeCredentials`.
/// `None` for anything else (mixed alphabets, stray characters, wrong padding).
pub fn decode_base64_lenient(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let bare = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    if bare.contains(['-', '_']) && bare.contains(['+', '/']) {
        return None;
    }
    let normalized: String = bare
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    STANDARD_NO_PAD.decode(normalized).ok()
}

/// What `POST /users/{id}/authentication/fido2Methods` registers: the authenticator's answer
/// to [`Fido2CreationOptions`]. All three binary members are sent as base64url without padding
/// (the documented encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fido2Registration {
    pub display_name: String,
    /// The credential id the authenticator returned.
    pub credential_id: Vec<u8>,
    /// The exact bytes the authenticator signed over (their hash); never re-serialized.
    pub client_data_json: Vec<u8>,
    /// The CBOR attestation object (`fmt`, `attStmt`, `authData`).
    pub attestation_object: Vec<u8>,
}

impl Fido2Registration {
    /// The request body. No `@odata.type` annotations: the doc example has them, but the
    /// service has answered a body carrying them with a validation error
    /// (msgraph-beta-sdk-dotnet#941), and they add nothing.
    pub(crate) fn to_json(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        json!({
            "displayName": self.display_name,
            "publicKeyCredential": {
                "id": b64(&self.credential_id),
                "response": {
                    "clientDataJSON": b64(&self.client_data_json),
                    "attestationObject": b64(&self.attestation_object),
                },
                "clientExtensionResults": {},
            },
        })
    }

    /// Checks made before anything is sent.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.display_name.trim().is_empty() {
            return Err("the passkey needs a display name");
        }
        if self.credential_id.is_empty() {
            return Err("the credential id is empty");
        }
        if self.client_data_json.is_empty() || self.attestation_object.is_empty() {
            return Err("clientDataJSON and attestationObject must not be empty");
        }
        Ok(())
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
    fn documented_creation_options_decode() {
        let o = Fido2CreationOptions::from_json(fixture("fido2-creationoptions-v1.json")).unwrap();
        assert_eq!(o.rp_id, "login.microsoftonline.com");
        assert_eq!(o.origin(), "https://login.microsoftonline.com");
        assert_eq!(o.user_handle, b"david@contoso.com");
        assert_eq!(o.user_name, "david@contoso.com");
        assert_eq!(o.user_display_name, "David Smith");
        assert_eq!(
            o.challenge,
            "QTU1MzNDNzAtNkM3Ni00NTRDLUJDQ0YtRTREMDZCNTBFRTRE"
        );
        assert_eq!(o.algorithms, vec![-7]);
        assert!(o.resident_key_required);
        assert_eq!(o.user_verification, "required");
        assert_eq!(o.attestation, "direct");
        assert_eq!(o.timeout_ms, Some(60000));
        assert_eq!(o.extensions, json!({}), "OData annotations are dropped");
        let expires = o.challenge_expires;
        assert!(!o.expired_at(expires - time::Duration::seconds(1)));
        assert!(o.expired_at(expires));
    }

    #[test]
    fn beta_wrapper_and_padded_standard_ids_decode() {
        let o =
            Fido2CreationOptions::from_json(fixture("fido2-creationoptions-beta.json")).unwrap();
        assert_eq!(o.rp_id, "login.microsoft.com");
        assert_eq!(o.algorithms, vec![-7, -257]);
        assert_eq!(o.exclude_credentials.len(), 4);
        assert_eq!(o.exclude_credentials[0].len(), 48);
        assert_eq!(o.timeout_ms, None, "timeout 0 means none");
        assert_eq!(o.extensions["hmacCreateSecret"], true);
        // A captured tenant response (DSInternals' tests): padded standard base64 ids.
        let v = json!({
            "challengeTimeoutDateTime": "2024-06-13T11:26:35Z",
            "publicKey": {
                "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
                "user": {"id": "T0Y6mho3vwFprE6aslBq9b2Qjz7Ixbn0PntEPkHirHimyfAtmz4xoilu6sNoiPFkmvxW", "name": "john@contoso.com", "displayName": "John Doe"},
                "challenge": "ZXlKaGJHY2lPaUpTVTBF",
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
                "timeout": 60000,
                "excludeCredentials": [
                    {"type": "public-key", "id": "TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=", "transports": []},
                    {"type": "public-key", "id": "GshyINLMaOOwqt1LNUi0gQ==", "transports": ["usb", "nfc"]}
                ],
                "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
                "attestation": "direct",
                "extensions": {"hmacCreateSecret": true, "enforceCredentialProtectionPolicy": true, "credentialProtectionPolicy": "userVerificationOptional"}
            }
        });
        let o = Fido2CreationOptions::from_json(v).unwrap();
        assert_eq!(o.exclude_credentials[0].len(), 32);
        assert_eq!(o.exclude_credentials[1].len(), 16);
        assert_eq!(o.user_handle.len(), 51);
    }

    #[test]
    fn broken_options_name_the_member() {
        let mut v = fixture("fido2-creationoptions-v1.json");
        v["publicKey"]["excludeCredentials"] = json!([{"type": "public-key", "id": "not base64!"}]);
        let e = Fido2CreationOptions::from_json(v).unwrap_err();
        assert!(e.contains("excludeCredentials"), "{e}");
        let mut v = fixture("fido2-creationoptions-v1.json");
        v["challengeTimeoutDateTime"] = json!("soon");
        assert!(Fido2CreationOptions::from_json(v).is_err());
        let mut v = fixture("fido2-creationoptions-v1.json");
        v["publicKey"].as_object_mut().unwrap().remove("challenge");
        assert!(Fido2CreationOptions::from_json(v).is_err());
    }

    #[test]
    fn lenient_base64() {
        let bytes: Vec<u8> = (0u8..=40).collect();
        for alphabet in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ] {
            for n in [1, 2, 3, 31, 32, 33, 41] {
                let padded = alphabet.encode(&bytes[..n]);
                assert_eq!(decode_base64_lenient(&padded).unwrap(), &bytes[..n]);
                let bare = padded.trim_end_matches('=');
                assert_eq!(decode_base64_lenient(bare).unwrap(), &bytes[..n]);
            }
        }
        assert!(decode_base64_lenient("a+b_").is_none(), "mixed alphabets");
        assert!(decode_base64_lenient("ab$d").is_none());
        assert!(decode_base64_lenient("AQ===").is_none());
        assert!(decode_base64_lenient("AQI").is_some());
        assert!(
            decode_base64_lenient("AQJ").is_none(),
            "non-canonical trailing bits"
        );
    }

    #[test]
    fn registration_body_is_the_documented_shape_without_padding() {
        let r = Fido2Registration {
            display_name: "My security key".into(),
            credential_id: vec![0xfb, 0xff, 0x01],
            client_data_json: br#"{"type":"webauthn.create"}"#.to_vec(),
            attestation_object: vec![0xa3, 0x63],
        };
        let body = r.to_json();
        let doc = fixture("fido2-register-request.json");
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .unwrap()
                .keys()
                .filter(|k| !k.starts_with('@'))
                .cloned()
                .collect()
        };
        assert_eq!(keys(&body), keys(&doc));
        assert_eq!(
            keys(&body["publicKeyCredential"]["response"]),
            keys(&doc["publicKeyCredential"]["response"])
        );
        assert_eq!(body["publicKeyCredential"]["id"], "-_8B");
        assert_eq!(
            body["publicKeyCredential"]["clientExtensionResults"],
            json!({})
        );
        assert!(!body.to_string().contains('='));
        assert!(r.validate().is_ok());
        let empty = Fido2Registration {
            credential_id: vec![],
            ..r.clone()
        };
        assert!(empty.validate().is_err());
        let unnamed = Fido2Registration {
            display_name: " ".into(),
            ..r
        };
        assert!(unnamed.validate().is_err());
    }
}

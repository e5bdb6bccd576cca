//! The seam between the provisioning logic and a device: [`Authenticator`], what it is asked
//! ([`MakeCredential`]) and what it answers ([`AuthenticatorInfo`], [`MadeCredential`]).
//!
//! Calls block (CTAP over USB HID waits for a touch); [`crate::provision`] runs them on a
//! blocking thread.

use latchkey_webauthn::{Algorithm, AttestationFormat, AttestationStatement};
use uuid::Uuid;

use crate::error::PasskeyError;
use crate::pin::Pin;

/// A FIDO2 authenticator the provisioning flow can ask to create a credential.
pub trait Authenticator {
    /// `authenticatorGetInfo`: model, versions and options. Needs no touch and no PIN.
    fn info(&mut self) -> Result<AuthenticatorInfo, PasskeyError>;

    /// `authenticatorMakeCredential`: waits for the user's touch (and PIN or fingerprint check).
    fn make_credential(&mut self, req: &MakeCredential) -> Result<MadeCredential, PasskeyError>;
}

/// What `authenticatorGetInfo` says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorInfo {
    /// The model identifier (nil when the key does not say).
    pub aaguid: Uuid,
    /// `FIDO_2_0`, `FIDO_2_1`, `U2F_V2` …
    pub versions: Vec<String>,
    /// `hmac-secret`, `credProtect` …
    pub extensions: Vec<String>,
    /// Option `clientPin`: `None` the key has no PIN support, `Some(false)` supported but no PIN
    /// set yet, `Some(true)` a PIN is set.
    pub client_pin: Option<bool>,
    /// Option `uv` (built-in verification such as a fingerprint): `None` none, `Some(false)`
    /// present but not set up, `Some(true)` ready.
    pub built_in_uv: Option<bool>,
    /// Option `rk`: the key can store discoverable credentials.
    pub resident_keys: bool,
    /// COSE algorithms the key lists (CTAP 2.1); empty when it does not say (CTAP 2.0 keys,
    /// which all do ES256).
    pub algorithms: Vec<i64>,
}

impl AuthenticatorInfo {
    /// Whether the key can make a credential with `alg`.
    pub fn supports(&self, alg: Algorithm) -> bool {
        if self.algorithms.is_empty() {
            return alg == Algorithm::Es256;
        }
        self.algorithms.contains(&alg.cose())
    }

    /// Whether the key lists extension `name`.
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }
}

/// `credProtect` levels (CTAP 2.1 §12.1), as WebAuthn's `credentialProtectionPolicy` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredProtect {
    /// `userVerificationOptional` (1): the key's default.
    UserVerificationOptional,
    /// `userVerificationOptionalWithCredentialIDList` (2).
    UserVerificationOptionalWithCredentialIdList,
    /// `userVerificationRequired` (3).
    UserVerificationRequired,
}

impl CredProtect {
    /// The WebAuthn extension input value, as Graph sends it.
    pub fn from_webauthn(name: &str) -> Option<Self> {
        match name {
            "userVerificationOptional" => Some(Self::UserVerificationOptional),
            "userVerificationOptionalWithCredentialIDList" => {
                Some(Self::UserVerificationOptionalWithCredentialIdList)
            }
            "userVerificationRequired" => Some(Self::UserVerificationRequired),
            _ => None,
        }
    }
}

/// One `authenticatorMakeCredential` request, built from Entra's creation options.
pub struct MakeCredential {
    pub rp_id: String,
    pub rp_name: Option<String>,
    /// The exact clientDataJSON bytes. Kept whole (not only its hash) because ctap-hid-fido2
    /// takes the bytes and hashes them itself; see [`MakeCredential::client_data_hash`].
    pub client_data_json: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub user_name: String,
    pub user_display_name: String,
    /// Credential ids already registered for the user: a key holding one of them refuses.
    pub exclude: Vec<Vec<u8>>,
    /// Acceptable algorithms in the server's order of preference.
    pub algorithms: Vec<Algorithm>,
    /// Store a discoverable credential (Entra: always).
    pub resident_key: bool,
    /// The key must verify the user (PIN or built-in); Entra: always.
    pub user_verification: bool,
    /// Ask for the `hmac-secret` extension (when the key supports it).
    pub hmac_secret: bool,
    /// Ask for `credProtect` at this level (when the key supports it).
    pub cred_protect: Option<CredProtect>,
    /// The PIN, when the key verifies the user with one.
    pub pin: Option<Pin>,
}

impl MakeCredential {
    /// SHA-256 of the clientDataJSON: what the key signs over (with the authenticator data).
    pub fn client_data_hash(&self) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.client_data_json);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

// Debug leaves out the clientDataJSON (it holds the challenge) and shows the PIN only as
// present or not (Pin's own Debug is redacted as well).
impl std::fmt::Debug for MakeCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeCredential")
            .field("rp_id", &self.rp_id)
            .field("user_name", &self.user_name)
            .field("exclude", &self.exclude.len())
            .field("algorithms", &self.algorithms)
            .field("resident_key", &self.resident_key)
            .field("user_verification", &self.user_verification)
            .field("hmac_secret", &self.hmac_secret)
            .field("cred_protect", &self.cred_protect)
            .field("pin", &self.pin.is_some())
            .finish_non_exhaustive()
    }
}

/// The key's answer: enough to build the WebAuthn attestationObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeCredential {
    pub format: AttestationFormat,
    /// The authenticator data, as the key returned it (signed over; never re-encoded).
    pub auth_data: Vec<u8>,
    pub statement: AttestationStatement,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_pin_nor_client_data() {
        let req = MakeCredential {
            rp_id: "login.microsoft.com".into(),
            rp_name: None,
            client_data_json: b"{\"challenge\":\"secret-challenge\"}".to_vec(),
            user_handle: vec![1],
            user_name: "adele@contoso.com".into(),
            user_display_name: "Adele".into(),
            exclude: vec![],
            algorithms: vec![Algorithm::Es256],
            resident_key: true,
            user_verification: true,
            hmac_secret: false,
            cred_protect: None,
            pin: Some(Pin::new("97531864".into()).unwrap()),
        };
        let text = format!("{req:?}");
        assert!(!text.contains("97531864"), "{text}");
        assert!(!text.contains("secret-challenge"), "{text}");
        assert!(text.contains("pin: true"), "{text}");
    }
}

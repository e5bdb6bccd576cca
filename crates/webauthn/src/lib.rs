//! Server-side WebAuthn (passkey) verification for Latchkey, on `ring` alone.
//!
//! The two ceremonies of W3C WebAuthn (Level 2, with the Level 3 additions that matter):
//! [`verify_registration`] (§7.1) and [`verify_assertion`] (§7.2). Keys are ES256, EdDSA
//! (Ed25519) or RS256; attestation is `none` or `packed` (self or with an `x5c` chain).
//!
//! What stays with the caller, because it needs state or time this crate does not have:
//! - issuing a [`Challenge`], binding it to the session, expiring it and using it only once;
//! - refusing a credential id that is already registered (to anyone);
//! - in a login, mapping the credential id to its owner (and, for discoverable logins, checking
//!   the user handle names that owner), then storing the new sign count after success;
//! - trusting attestation roots (FIDO MDS, allow lists by AAGUID): policy, not verification.
//!   [`Registered::attestation_certificates`] carries the chain for that decision.
//!
//! [`attestation_object`] and [`client_data_json`] serve native clients (the provisioning CLI
//! talks CTAP2 to a security key and must produce what a browser would). Feature `soft` adds a
//! software authenticator for tests (module `soft`).
//!
//! Nothing here reads the clock, and randomness comes only from `latchkey_types::random`.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod assertion;
mod attestation;
mod auth_data;
mod cbor;
mod client_data;
mod cose;
mod error;
mod registration;
#[cfg(feature = "soft")]
pub mod soft;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

pub use assertion::{
    Asserted, AssertionCheck, AssertionResponse, StoredCredential, verify_assertion,
};
pub use attestation::{AttestationFormat, AttestationStatement, attestation_object};
pub use client_data::{Ceremony, client_data_json};
pub use cose::{Algorithm, CoseKey};
pub use error::Error;
pub use registration::{Registered, RegistrationCheck, verify_registration};

use latchkey_types::random::{self, NoRandomness};

/// A registration or login challenge: 32 random bytes, single use, issued by the server.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge([u8; 32]);

impl Challenge {
    /// A fresh challenge from the system generator.
    pub fn random() -> Result<Self, NoRandomness> {
        Ok(Self(random::bytes::<32>()?))
    }

    /// A challenge the server stored earlier.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// base64url without padding: the form the browser puts back into clientDataJSON.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses base64url without padding (strict: this is our own encoding coming back).
    pub fn from_base64url(text: &str) -> Result<Self, Error> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Error::Malformed("challenge base64url"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Malformed("challenge length"))?;
        Ok(Self(bytes))
    }
}

// A challenge is not a long-term secret, but it is a bearer value until used: keep it out of logs.
impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenge(..)")
    }
}

/// A credential id, as the authenticator chose it (1 to 1023 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialId(pub Vec<u8>);

impl CredentialId {
    /// base64url without padding (what browsers use for `id` and `rawId`).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Accepts base64url or standard base64, padded or not ([`decode_base64_lenient`]): ids come
    /// from browsers (base64url) and from Microsoft Graph (padded standard base64 in practice).
    pub fn from_base64url(text: &str) -> Result<Self, Error> {
        decode_base64_lenient(text).map(Self)
    }
}

/// Decodes base64 in either alphabet (standard or URL-safe), with or without padding.
///
/// Microsoft Graph documents base64url without padding but sends padded standard base64 in
/// `excludeCredentials`; browsers send base64url. A string mixing the two alphabets is refused.
pub fn decode_base64_lenient(text: &str) -> Result<Vec<u8>, Error> {
    let standard = text.contains(['+', '/']);
    let url_safe = text.contains(['-', '_']);
    if standard && url_safe {
        return Err(Error::Malformed("base64 (mixed alphabets)"));
    }
    let unpadded = text
        .strip_suffix("==")
        .or_else(|| text.strip_suffix('='))
        .unwrap_or(text);
    let engine = if standard {
        &STANDARD_NO_PAD
    } else {
        &URL_SAFE_NO_PAD
    };
    engine
        .decode(unpadded)
        .map_err(|_| Error::Malformed("base64"))
}

/// The relying party: the RP ID authenticators scope credentials to, and the exact origins
/// (`scheme://host[:port]`) clientDataJSON may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The RP ID: a registrable domain suffix of the origins' hosts (usually the host itself).
    pub id: String,
    /// Origins accepted verbatim in clientDataJSON.
    pub origins: Vec<String>,
}

impl RelyingParty {
    /// The relying party of a portal URL such as `https://sspr.contoso.com` or
    /// `http://localhost:8080`: RP ID = host, origin = `scheme://host[:port]` (port only when
    /// not the scheme's default; any path is ignored).
    ///
    /// Refused: schemes other than http(s), IP-address hosts (browsers refuse them as RP IDs),
    /// plain http except on `localhost` (WebAuthn needs a secure context), and URLs with
    /// credentials in them.
    pub fn for_origin(url: &str) -> Result<Self, Error> {
        let parsed = url::Url::parse(url).map_err(|_| Error::InvalidRelyingParty("not a URL"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::InvalidRelyingParty("URL carries credentials"));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(domain)) => domain.to_owned(),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
                return Err(Error::InvalidRelyingParty("IP address host"));
            }
            None => return Err(Error::InvalidRelyingParty("no host")),
        };
        match parsed.scheme() {
            "https" => {}
            "http" if host == "localhost" => {}
            "http" => {
                return Err(Error::InvalidRelyingParty(
                    "http is allowed only for localhost",
                ));
            }
            _ => return Err(Error::InvalidRelyingParty("scheme is not http(s)")),
        }
        // The serialisation browsers use for `origin`: lowercase punycode host, default port left out.
        let origin = parsed.origin().ascii_serialization();
        Ok(Self {
            id: host,
            origins: vec![origin],
        })
    }
}

/// Constant-time equality of two byte strings (the length is not secret).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 as a fixed array.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_takes_both_alphabets_padded_or_not() {
        let bytes = vec![0xfb, 0xff, 0xbf, 0x01];
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ", "-_-_AQ=="] {
            assert_eq!(decode_base64_lenient(text).unwrap(), bytes, "{text}");
        }
        assert!(decode_base64_lenient("+_-/AQ").is_err());
        assert!(decode_base64_lenient("AQ===").is_err());
    }

    #[test]
    fn challenge_round_trips_and_hides_its_bytes() {
        let c = Challenge::random().unwrap();
        assert_eq!(Challenge::from_base64url(&c.to_base64url()).unwrap(), c);
        assert_eq!(format!("{c:?}"), "Challenge(..)");
        assert!(Challenge::from_base64url("AAAA").is_err());
    }

    #[test]
    fn constant_time_eq_compares_lengths_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

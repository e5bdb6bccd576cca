//! Certificate credential: the client assertion JWT (RFC 7523) the token endpoint accepts in
//! place of a client secret.
//!
//! Default (Microsoft's current documentation): `PS256` with an `x5t#S256` header (base64url
//! SHA-256 of the certificate DER). Fallback: `RS256` with `x5t` (base64url SHA-1 thumbprint), the
//! older documented form. Claims: `aud` = token endpoint URL, `iss` = `sub` = client id, `jti` =
//! fresh GUID, `nbf` = `iat` = now, `exp` = now + 10 minutes.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use time::OffsetDateTime;

use crate::error::GraphError;

/// Lifetime of an assertion.
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

/// Signature algorithm of the client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS SHA-256 with `x5t#S256` (current Microsoft guidance).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 SHA-256 with `x5t` (SHA-1 thumbprint), for older setups.
    Rs256,
}

/// The app's certificate and RSA private key.
#[derive(Clone)]
pub struct ClientCertificate {
    cert_der: Arc<Vec<u8>>,
    key: Arc<RsaKeyPair>,
    algorithm: AssertionAlgorithm,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_sha256())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// From PEM text: the first `CERTIFICATE` block, and an RSA key as `PRIVATE KEY` (PKCS#8) or
    /// `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, GraphError> {
        let cert = CertificateDer::from_pem_slice(cert_pem)
            .map_err(|e| GraphError::Credential(format!("certificate PEM: {e}")))?;
        // The key error text comes from the PEM parser and never contains key material.
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| GraphError::Credential(format!("private key PEM: {e}")))?;
        let pair = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(GraphError::Credential(
                    "private key must be RSA (PKCS#8 or PKCS#1)".into(),
                ));
            }
        }
        .map_err(|e| GraphError::Credential(format!("private key rejected: {e}")))?;
        Ok(Self {
            cert_der: Arc::new(cert.as_ref().to_vec()),
            key: Arc::new(pair),
            algorithm: AssertionAlgorithm::default(),
        })
    }

    /// From two PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, GraphError> {
        let cert_pem = std::fs::read(cert)
            .map_err(|e| GraphError::Credential(format!("cannot read {}: {e}", cert.display())))?;
        let key_pem = std::fs::read(key)
            .map_err(|e| GraphError::Credential(format!("cannot read {}: {e}", key.display())))?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Chooses the assertion algorithm (default PS256).
    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn algorithm(&self) -> AssertionAlgorithm {
        self.algorithm
    }

    /// base64url (no padding) SHA-256 of the certificate DER: the `x5t#S256` header.
    pub fn thumbprint_sha256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.cert_der))
    }

    /// base64url (no padding) SHA-1 of the certificate DER: the `x5t` header.
    pub fn thumbprint_sha1(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.cert_der,
        ))
    }

    /// The DER-encoded RSA public key (PKCS#1 `RSAPublicKey`), e.g. to verify an assertion.
    pub fn public_key_der(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.key.public_key().as_ref().to_vec()
    }

    /// Builds and signs an assertion for `audience` (the token endpoint URL).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<String, GraphError> {
        let header = match self.algorithm {
            AssertionAlgorithm::Ps256 => {
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint_sha256()})
            }
            AssertionAlgorithm::Rs256 => {
                json!({"alg": "RS256", "typ": "JWT", "x5t": self.thumbprint_sha1()})
            }
        };
        let now = now.unix_timestamp();
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": latchkey_types::random::uuid()
                .map_err(|_| GraphError::Credential("no system randomness for the assertion".into()))?
                .to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        let alg: &'static dyn ring::signature::RsaEncoding = match self.algorithm {
            AssertionAlgorithm::Ps256 => &RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &RSA_PKCS1_SHA256,
        };
        self.key
            .sign(
                alg,
                &latchkey_types::random::generator(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| GraphError::Credential("signing the client assertion failed".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{
        RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
    };
    use serde_json::Value;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../entra-sim/keys");

    fn cert() -> ClientCertificate {
        ClientCertificate::from_pem_files(
            Path::new(&format!("{KEYS}/app-cert.pem")),
            Path::new(&format!("{KEYS}/app-cert.key.pem")),
        )
        .unwrap()
    }

    fn decode(jwt: &str) -> (Value, Value, Vec<u8>, String) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let h = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let c = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let s = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        (h, c, s, format!("{}.{}", parts[0], parts[1]))
    }

    const AUD: &str = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    const CLIENT: &str = "11111111-1111-1111-1111-111111111111";

    #[test]
    fn ps256_assertion_has_documented_header_and_claims_and_verifies() {
        let c = cert();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let jwt = c.assertion(CLIENT, AUD, now).unwrap();
        let (h, claims, sig, input) = decode(&jwt);
        assert_eq!(h["alg"], "PS256");
        assert_eq!(h["typ"], "JWT");
        assert_eq!(h["x5t#S256"], c.thumbprint_sha256());
        assert!(h.get("x5t").is_none());
        assert_eq!(c.thumbprint_sha256().len(), 43);
        assert_eq!(claims["aud"], AUD);
        assert_eq!(claims["iss"], CLIENT);
        assert_eq!(claims["sub"], CLIENT);
        assert_eq!(claims["nbf"], 1_800_000_000);
        assert_eq!(claims["iat"], 1_800_000_000);
        assert_eq!(claims["exp"], 1_800_000_600);
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
        let pk = UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, c.public_key_der());
        pk.verify(input.as_bytes(), &sig).unwrap();
        // Tampering breaks it.
        assert!(pk.verify(format!("{input}x").as_bytes(), &sig).is_err());
        // jti is fresh each time.
        let (_, again, _, _) = decode(&c.assertion(CLIENT, AUD, now).unwrap());
        assert_ne!(again["jti"], claims["jti"]);
    }

    #[test]
    fn rs256_fallback_uses_sha1_thumbprint_and_pkcs1_signature() {
        let c = cert().with_algorithm(AssertionAlgorithm::Rs256);
        let jwt = c.assertion(CLIENT, AUD, OffsetDateTime::now_utc()).unwrap();
        let (h, _, sig, input) = decode(&jwt);
        assert_eq!(h["alg"], "RS256");
        assert_eq!(h["x5t"], c.thumbprint_sha1());
        assert_eq!(c.thumbprint_sha1().len(), 27);
        assert!(h.get("x5t#S256").is_none());
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, c.public_key_der())
            .verify(input.as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn bad_pem_is_a_credential_error_without_key_material() {
        let err = ClientCertificate::from_pem(b"nope", b"nope").unwrap_err();
        assert!(matches!(err, GraphError::Credential(_)));
        let err = ClientCertificate::from_pem_files(
            Path::new(&format!("{KEYS}/app-cert.pem")),
            Path::new("/nonexistent/key.pem"),
        )
        .unwrap_err();
        assert!(matches!(err, GraphError::Credential(_)));
    }
}

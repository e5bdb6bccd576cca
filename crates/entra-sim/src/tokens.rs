//! JWTs, signed and checked with `ring` directly: the tenant's RS256 tokens (access and id
//! tokens, published in the JWKS) and verification of client assertions against the app's
//! registered certificates (through `webpki`, which reads the certificate's public key).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::{Map, Value, json};

/// The tenant's token-signing key.
pub struct Keys {
    pair: RsaKeyPair,
    /// Key id: base64url SHA-1 of the public key (the JWKS `kid` and the JWT header `kid`/`x5t`).
    pub kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not supported")]
    Algorithm,
    #[error("the token's signature is invalid")]
    Signature,
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A decoded (not yet verified) JWT.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl Jwt {
    pub fn decode(token: &str) -> Result<Jwt, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let json = |p: &str| -> Result<Map<String, Value>, JwtError> {
            let bytes = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Malformed)?;
            serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
        };
        Ok(Jwt {
            header: json(h)?,
            claims: json(c)?,
            signing_input: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?,
        })
    }

    pub fn header_str(&self, k: &str) -> Option<&str> {
        self.header.get(k).and_then(Value::as_str)
    }

    pub fn claim_str(&self, k: &str) -> Option<&str> {
        self.claims.get(k).and_then(Value::as_str)
    }

    pub fn claim_i64(&self, k: &str) -> Option<i64> {
        self.claims.get(k).and_then(Value::as_i64)
    }

    /// Verifies an `RS256`/`PS256` signature with the public key of an X.509 certificate.
    pub fn verify_with_certificate(&self, cert_der: &[u8]) -> Result<(), JwtError> {
        let alg: &dyn rustls_pki_types::SignatureVerificationAlgorithm =
            match self.header_str("alg") {
                Some("RS256") => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
                Some("PS256") => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
                _ => return Err(JwtError::Algorithm),
            };
        let der = CertificateDer::from(cert_der);
        let cert = webpki::EndEntityCert::try_from(&der).map_err(|_| JwtError::Signature)?;
        cert.verify_signature(alg, self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwtError::Signature)
    }
}

impl Keys {
    pub fn from_pem(pem: &str) -> Result<Keys, String> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("signing key is not a PKCS#8 PEM: {e}"))?;
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("signing key is not an RSA key: {e}"))?;
        let kid = b64(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            pair.public_key().as_ref(),
        )
        .as_ref());
        Ok(Keys {
            pair,
            kid,
            rng: SystemRandom::new(),
        })
    }

    /// Signs `claims` as an RS256 JWT with `typ`, `alg`, `kid` and `x5t` headers (as Entra does).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing cannot fail with a valid key");
        format!("{input}.{}", b64(&sig))
    }

    /// Verifies a token this tenant issued; returns its claims.
    pub fn verify(&self, token: &str) -> Result<Jwt, JwtError> {
        let jwt = Jwt::decode(token)?;
        if jwt.header_str("alg") != Some("RS256") {
            return Err(JwtError::Algorithm);
        }
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.pair.public_key().as_ref(),
        )
        .verify(jwt.signing_input.as_bytes(), &jwt.signature)
        .map_err(|_| JwtError::Signature)?;
        Ok(jwt)
    }

    /// The JWKS document (`/discovery/v2.0/keys`).
    pub fn jwks(&self, issuer: &str) -> Value {
        let c: ring::rsa::PublicKeyComponents<Vec<u8>> = self.pair.public().into();
        let (n, e) = (&c.n, &c.e);
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64(n),
            "e": b64(e),
            "issuer": issuer,
        }]})
    }
}

/// A random opaque value (codes, refresh tokens, ids in tokens), base64url.
pub fn random_token(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut b)
        .expect("system randomness is available");
    b64(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_tamper() {
        let k = Keys::from_pem(crate::fixture::EMBEDDED_SIGNING_KEY).unwrap();
        let t = k.sign(&json!({"aud": "x", "n": 1}));
        let jwt = k.verify(&t).unwrap();
        assert_eq!(jwt.claim_str("aud"), Some("x"));
        assert_eq!(jwt.header_str("kid"), Some(k.kid.as_str()));
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64(br#"{"aud":"y","n":1}"#);
        parts[1] = &forged;
        assert_eq!(k.verify(&parts.join(".")).unwrap_err(), JwtError::Signature);
        assert_eq!(k.verify("abc").unwrap_err(), JwtError::Malformed);
        let jwks = k.jwks("iss");
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
    }
}

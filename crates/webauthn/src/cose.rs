//! Credential public keys: COSE_Key (RFC 9052/9053, RSA per RFC 8230) parsed once, checked
//! strictly, and mapped onto ring's verifiers.

use ciborium::Value;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};

use crate::Error;
use crate::cbor;

/// COSE algorithms we accept, in preference order.
///
/// Serialised under the names of [`Algorithm::as_str`] ("ES256", "EdDSA", "RS256"), so that
/// configuration and stored rows read like the specifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (COSE -7); signatures are ASN.1 DER.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519 (COSE -8).
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257), moduli of 2048 to 8192 bits.
    #[serde(rename = "RS256")]
    Rs256,
}

impl Algorithm {
    /// Every supported algorithm, in preference order (what `pubKeyCredParams` should list).
    pub const ALL: [Algorithm; 3] = [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256];

    /// The COSE algorithm identifier.
    pub fn cose(self) -> i64 {
        match self {
            Algorithm::Es256 => -7,
            Algorithm::EdDsa => -8,
            Algorithm::Rs256 => -257,
        }
    }

    /// The algorithm for a COSE identifier, if supported.
    pub fn from_cose(alg: i64) -> Option<Self> {
        match alg {
            -7 => Some(Algorithm::Es256),
            -8 => Some(Algorithm::EdDsa),
            -257 => Some(Algorithm::Rs256),
            _ => None,
        }
    }

    /// The JOSE/COSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Rs256 => "RS256",
        }
    }
}

// COSE_Key labels and values (IANA "COSE Key Common Parameters" and "Key Type Parameters").
const KTY: i64 = 1;
const ALG: i64 = 3;
const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
const CRV: i64 = -1;
const X: i64 = -2;
const Y: i64 = -3;
const EC_D: i64 = -4;
const RSA_N: i64 = -1;
const RSA_E: i64 = -2;
const RSA_D: i64 = -3;
const CRV_P256: i64 = 1;
const CRV_ED25519: i64 = 6;

const WHAT: &str = "credential public key";

/// A credential public key as the authenticator sent it (COSE_Key CBOR bytes), validated at parse
/// time: kty/alg/crv agree, coordinates have the right length, RSA n is 2048 to 8192 bits.
///
/// Whether an EC point is on its curve is checked by ring at each verification; a key that is
/// not fails every signature.
#[derive(Clone, PartialEq, Eq)]
pub struct CoseKey {
    bytes: Vec<u8>,
    alg: Algorithm,
    material: Material,
}

#[derive(Clone, PartialEq, Eq)]
enum Material {
    /// Uncompressed SEC1 point 0x04 || x || y, the form ring takes.
    P256([u8; 65]),
    Ed25519([u8; 32]),
    /// Big-endian, leading zeros removed (ring refuses them).
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl CoseKey {
    /// Parses a COSE_Key; the bytes must be exactly one CBOR map.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let value = cbor::decode_exact(bytes, WHAT)?;
        Self::from_value(&value, bytes)
    }

    /// Parses the COSE_Key at the start of `bytes` (inside authenticator data); returns the key
    /// and its length in bytes.
    pub(crate) fn from_prefix(bytes: &[u8]) -> Result<(Self, usize), Error> {
        let (value, used) = cbor::decode_prefix(bytes, WHAT)?;
        let raw = bytes.get(..used).ok_or(Error::Malformed(WHAT))?;
        Ok((Self::from_value(&value, raw)?, used))
    }

    /// The COSE_Key bytes exactly as received (what to store).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether `signature` is this key's signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::P256(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
                .verify(message, signature)
                .is_ok(),
            Material::Ed25519(x) => UnparsedPublicKey::new(&ED25519, x)
                .verify(message, signature)
                .is_ok(),
            Material::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
        }
    }

    fn from_value(value: &Value, raw: &[u8]) -> Result<Self, Error> {
        let map = cbor::map(value, WHAT)?;
        let int = |label| -> Result<Option<i64>, Error> {
            match cbor::get_int_key(map, label, WHAT)? {
                None => Ok(None),
                Some(v) => cbor::as_i64(v).map(Some).ok_or(Error::Malformed(WHAT)),
            }
        };
        let bytes = |label| -> Result<&[u8], Error> {
            let value = cbor::get_int_key(map, label, WHAT)?.ok_or(Error::Malformed(WHAT))?;
            cbor::as_bytes(value, WHAT)
        };
        let present =
            |label| -> Result<bool, Error> { Ok(cbor::get_int_key(map, label, WHAT)?.is_some()) };

        let kty = int(KTY)?.ok_or(Error::Malformed(WHAT))?;
        // WebAuthn requires `alg` in credential public keys (§6.5.1.1), so no guessing from kty.
        let alg = int(ALG)?.ok_or(Error::Malformed(WHAT))?;
        let alg = Algorithm::from_cose(alg).ok_or(Error::UnsupportedAlgorithm)?;
        let material = match alg {
            Algorithm::Es256 => {
                if kty != KTY_EC2 {
                    return Err(Error::Malformed(WHAT));
                }
                if int(CRV)? != Some(CRV_P256) {
                    return Err(Error::UnsupportedAlgorithm);
                }
                // A private part has no business in a public key: refuse rather than store it.
                if present(EC_D)? {
                    return Err(Error::Malformed(WHAT));
                }
                // y as a bool (point compression) is not allowed in WebAuthn keys.
                let (x, y) = (bytes(X)?, bytes(Y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(Error::Malformed(WHAT));
                }
                let mut point = [0u8; 65];
                point[0] = 0x04;
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                Material::P256(point)
            }
            Algorithm::EdDsa => {
                if kty != KTY_OKP {
                    return Err(Error::Malformed(WHAT));
                }
                if int(CRV)? != Some(CRV_ED25519) {
                    return Err(Error::UnsupportedAlgorithm);
                }
                if present(EC_D)? {
                    return Err(Error::Malformed(WHAT));
                }
                let x: [u8; 32] = bytes(X)?.try_into().map_err(|_| Error::Malformed(WHAT))?;
                Material::Ed25519(x)
            }
            Algorithm::Rs256 => {
                if kty != KTY_RSA || present(RSA_D)? {
                    return Err(Error::Malformed(WHAT));
                }
                let n = strip_leading_zeros(bytes(RSA_N)?);
                let e = strip_leading_zeros(bytes(RSA_E)?);
                check_rsa(n, e)?;
                Material::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                }
            }
        };
        Ok(Self {
            bytes: raw.to_vec(),
            alg,
            material,
        })
    }
}

// Public keys are not secret, but the bytes are noise in logs: the algorithm says enough.
impl std::fmt::Debug for CoseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoseKey")
            .field("algorithm", &self.alg)
            .finish_non_exhaustive()
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The RSA checks ring makes at verification time, made once at registration so that a key
/// that could never verify is refused then: 2048 ≤ bits(n) ≤ 8192, n odd, e odd, 3 ≤ e < 2^33.
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), Error> {
    let Some(&first) = n.first() else {
        return Err(Error::Malformed(WHAT));
    };
    let bits = n.len().saturating_sub(1).saturating_mul(8) + (8 - first.leading_zeros() as usize);
    if !(2048..=8192).contains(&bits) {
        return Err(Error::UnsupportedAlgorithm);
    }
    let n_odd = n.last().is_some_and(|b| b & 1 == 1);
    if !n_odd || e.is_empty() || e.len() > 5 {
        return Err(Error::Malformed(WHAT));
    }
    let e_value = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if e_value < 3 || e_value & 1 == 0 || e_value >= 1 << 33 {
        return Err(Error::Malformed(WHAT));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entries: Vec<(i64, Value)>) -> Vec<u8> {
        let map = Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        );
        cbor::encode(&map).unwrap()
    }

    fn es256(x_len: usize) -> Vec<(i64, Value)> {
        vec![
            (KTY, Value::from(KTY_EC2)),
            (ALG, Value::from(-7)),
            (CRV, Value::from(CRV_P256)),
            (X, Value::Bytes(vec![1; x_len])),
            (Y, Value::Bytes(vec![2; 32])),
        ]
    }

    #[test]
    fn es256_parses_and_keeps_its_bytes() {
        let bytes = encode(es256(32));
        let key = CoseKey::from_bytes(&bytes).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Es256);
        assert_eq!(key.as_bytes(), bytes);
        assert_eq!(format!("{key:?}"), "CoseKey { algorithm: Es256, .. }");
    }

    #[test]
    fn inconsistent_keys_are_refused() {
        assert!(CoseKey::from_bytes(&encode(es256(31))).is_err());
        let mut wrong_kty = es256(32);
        wrong_kty[0].1 = Value::from(KTY_OKP);
        assert!(matches!(
            CoseKey::from_bytes(&encode(wrong_kty)),
            Err(Error::Malformed(_))
        ));
        let mut p384 = es256(32);
        p384[2].1 = Value::from(2);
        assert!(matches!(
            CoseKey::from_bytes(&encode(p384)),
            Err(Error::UnsupportedAlgorithm)
        ));
        let mut private = es256(32);
        private.push((EC_D, Value::Bytes(vec![3; 32])));
        assert!(CoseKey::from_bytes(&encode(private)).is_err());
        let mut es384 = es256(32);
        es384[1].1 = Value::from(-35);
        assert!(matches!(
            CoseKey::from_bytes(&encode(es384)),
            Err(Error::UnsupportedAlgorithm)
        ));
        let mut trailing = encode(es256(32));
        trailing.push(0);
        assert!(CoseKey::from_bytes(&trailing).is_err());
    }

    #[test]
    fn rsa_moduli_under_2048_bits_are_refused() {
        let rsa = |n: Vec<u8>, e: Vec<u8>| {
            encode(vec![
                (KTY, Value::from(KTY_RSA)),
                (ALG, Value::from(-257)),
                (RSA_N, Value::Bytes(n)),
                (RSA_E, Value::Bytes(e)),
            ])
        };
        let n2048 = vec![0xff; 256];
        assert!(CoseKey::from_bytes(&rsa(n2048.clone(), vec![1, 0, 1])).is_ok());
        let mut padded = vec![0];
        padded.extend(&n2048);
        assert!(CoseKey::from_bytes(&rsa(padded, vec![0, 1, 0, 1])).is_ok());
        let mut n2047 = n2048.clone();
        n2047[0] = 0x7f;
        assert!(matches!(
            CoseKey::from_bytes(&rsa(n2047, vec![1, 0, 1])),
            Err(Error::UnsupportedAlgorithm)
        ));
        assert!(CoseKey::from_bytes(&rsa(n2048.clone(), vec![1])).is_err());
        assert!(CoseKey::from_bytes(&rsa(n2048, vec![1, 0, 0])).is_err());
    }
}

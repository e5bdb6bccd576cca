//! Attestation objects (WebAuthn §6.5): `{"fmt": tstr, "attStmt": map, "authData": bstr}`, and the
//! two statement formats Latchkey verifies, `none` (§8.7) and `packed` (§8.2).
//!
//! A packed statement with an `x5c` chain is checked for its signature and for the leaf's
//! §8.2.1 fields, but not chained to a trust anchor: which vendors to trust (FIDO MDS, an AAGUID
//! allow list) is policy for the caller, who gets the certificates in
//! [`crate::Registered::attestation_certificates`]. Nor is the leaf's validity period checked:
//! this crate reads no clock, and whether an expired attestation certificate still vouches for a
//! model is the same policy decision.

use ciborium::Value;
use x509_parser::prelude::{AttributeTypeAndValue, FromDer, X509Certificate, X509Version};

use crate::Error;
use crate::cbor;
use crate::cose::{Algorithm, CoseKey};

/// Attestation statement formats this crate verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttestationFormat {
    /// `none`: no attestation (what browsers send unless the RP asks for more).
    None,
    /// `packed`: self attestation (signed by the credential key) or with an `x5c` chain.
    Packed,
}

impl AttestationFormat {
    /// The `fmt` string.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationFormat::None => "none",
            AttestationFormat::Packed => "packed",
        }
    }
}

/// An attestation statement, as a CTAP2 authenticatorMakeCredential response carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationStatement {
    /// `none`: the empty map.
    None,
    /// `packed`: `alg`, the DER/raw signature over authData‖clientDataHash, and the attestation
    /// certificates (leaf first; empty for self attestation).
    Packed {
        /// The signing algorithm.
        alg: Algorithm,
        /// The signature.
        sig: Vec<u8>,
        /// DER certificates, leaf first; empty for self attestation.
        x5c: Vec<Vec<u8>>,
    },
}

/// Rebuilds the text-keyed attestationObject `{"fmt","attStmt","authData"}` from the parts a CTAP2
/// authenticatorMakeCredential response carries (CTAP keys 1/2/3), for native clients.
///
/// Keys are written in CTAP2 canonical order, as browsers do. A statement of another format than
/// `format` is refused.
pub fn attestation_object(
    format: AttestationFormat,
    auth_data: &[u8],
    statement: &AttestationStatement,
) -> Result<Vec<u8>, Error> {
    let text = |s: &str| Value::Text(s.to_owned());
    let statement = match (format, statement) {
        (AttestationFormat::None, AttestationStatement::None) => Value::Map(Vec::new()),
        (AttestationFormat::Packed, AttestationStatement::Packed { alg, sig, x5c }) => {
            let mut entries = vec![
                (text("alg"), Value::from(alg.cose())),
                (text("sig"), Value::Bytes(sig.clone())),
            ];
            if !x5c.is_empty() {
                let chain = x5c.iter().map(|cert| Value::Bytes(cert.clone())).collect();
                entries.push((text("x5c"), Value::Array(chain)));
            }
            Value::Map(entries)
        }
        _ => {
            return Err(Error::Malformed(
                "attestation statement does not match its format",
            ));
        }
    };
    cbor::encode(&Value::Map(vec![
        (text("fmt"), text(format.as_str())),
        (text("attStmt"), statement),
        (text("authData"), Value::Bytes(auth_data.to_vec())),
    ]))
}

/// A decoded attestation object; the format is still the text the client sent.
pub(crate) struct AttestationObject {
    pub fmt: String,
    pub statement: Vec<(Value, Value)>,
    pub auth_data: Vec<u8>,
}

impl AttestationObject {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        const WHAT: &str = "attestationObject";
        let value = cbor::decode_exact(bytes, WHAT)?;
        let map = cbor::map(&value, WHAT)?;
        let member = |name| cbor::get_text_key(map, name, WHAT)?.ok_or(Error::Malformed(WHAT));
        let fmt = member("fmt")?.as_text().ok_or(Error::Malformed(WHAT))?;
        let statement = cbor::map(member("attStmt")?, WHAT)?;
        let auth_data = cbor::as_bytes(member("authData")?, WHAT)?;
        Ok(Self {
            fmt: fmt.to_owned(),
            statement: statement.to_vec(),
            auth_data: auth_data.to_vec(),
        })
    }

    /// Verifies the statement (§7.1 step 21) for the credential in `auth_data`; returns the
    /// format and the attestation certificates (empty unless packed with x5c).
    pub(crate) fn verify(
        &self,
        client_data_hash: &[u8; 32],
        credential_key: &CoseKey,
        aaguid: &[u8; 16],
    ) -> Result<(AttestationFormat, Vec<Vec<u8>>), Error> {
        match self.fmt.as_str() {
            "none" => {
                if !self.statement.is_empty() {
                    return Err(Error::Malformed("attStmt of format none is not empty"));
                }
                Ok((AttestationFormat::None, Vec::new()))
            }
            "packed" => {
                let certificates = self.verify_packed(client_data_hash, credential_key, aaguid)?;
                Ok((AttestationFormat::Packed, certificates))
            }
            _ => Err(Error::UnsupportedAttestation),
        }
    }

    fn verify_packed(
        &self,
        client_data_hash: &[u8; 32],
        credential_key: &CoseKey,
        aaguid: &[u8; 16],
    ) -> Result<Vec<Vec<u8>>, Error> {
        const WHAT: &str = "packed attStmt";
        let map = &self.statement;
        // ECDAA was removed in Level 2; nothing implements it.
        if cbor::get_text_key(map, "ecdaaKeyId", WHAT)?.is_some() {
            return Err(Error::UnsupportedAttestation);
        }
        let alg = cbor::get_text_key(map, "alg", WHAT)?
            .and_then(cbor::as_i64)
            .ok_or(Error::Malformed(WHAT))?;
        let sig = cbor::as_bytes(
            cbor::get_text_key(map, "sig", WHAT)?.ok_or(Error::Malformed(WHAT))?,
            WHAT,
        )?;
        let mut signed = Vec::with_capacity(self.auth_data.len() + client_data_hash.len());
        signed.extend_from_slice(&self.auth_data);
        signed.extend_from_slice(client_data_hash);

        let Some(x5c) = cbor::get_text_key(map, "x5c", WHAT)? else {
            // Self attestation: the credential key signs its own registration.
            if alg != credential_key.algorithm().cose() || !credential_key.verify(&signed, sig) {
                return Err(Error::AttestationSignature);
            }
            return Ok(Vec::new());
        };
        let Value::Array(chain) = x5c else {
            return Err(Error::Malformed(WHAT));
        };
        let chain = chain
            .iter()
            .map(|cert| cbor::as_bytes(cert, WHAT).map(<[u8]>::to_vec))
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = chain.first().ok_or(Error::Malformed(WHAT))?;

        let webpki_alg = match Algorithm::from_cose(alg) {
            Some(Algorithm::Es256) => webpki::ring::ECDSA_P256_SHA256,
            Some(Algorithm::EdDsa) => webpki::ring::ED25519,
            Some(Algorithm::Rs256) => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            None => return Err(Error::UnsupportedAttestation),
        };
        let der = rustls_pki_types::CertificateDer::from(leaf.as_slice());
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|_| Error::AttestationCertificate("leaf does not parse"))?;
        cert.verify_signature(webpki_alg, &signed, sig)
            .map_err(|_| Error::AttestationSignature)?;
        check_leaf(leaf, aaguid)?;
        Ok(chain)
    }
}

/// id-fido-gen-ce-aaguid, 1.3.6.1.4.1.45724.1.1.4, as DER OID content bytes.
const AAGUID_OID: &[u8] = &[
    0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xe5, 0x1c, 0x01, 0x01, 0x04,
];

/// The requirements of §8.2.1 on a packed attestation leaf certificate.
fn check_leaf(der: &[u8], aaguid: &[u8; 16]) -> Result<(), Error> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::AttestationCertificate("leaf does not parse"))?;
    if !rest.is_empty() {
        return Err(Error::AttestationCertificate(
            "trailing bytes after the leaf",
        ));
    }
    if cert.version() != X509Version::V3 {
        return Err(Error::AttestationCertificate("not X.509 version 3"));
    }
    let subject = cert.subject();
    let non_empty = |s: &str| !s.is_empty();
    if !any_text(subject.iter_country(), non_empty)
        || !any_text(subject.iter_organization(), non_empty)
        || !any_text(subject.iter_common_name(), non_empty)
    {
        return Err(Error::AttestationCertificate("subject lacks C, O or CN"));
    }
    if !any_text(subject.iter_organizational_unit(), |s| {
        s == "Authenticator Attestation"
    }) {
        return Err(Error::AttestationCertificate(
            "subject OU is not Authenticator Attestation",
        ));
    }
    match cert.basic_constraints() {
        Ok(Some(constraints)) if constraints.value.ca => {
            return Err(Error::AttestationCertificate("leaf is a CA certificate"));
        }
        Ok(_) => {}
        Err(_) => return Err(Error::AttestationCertificate("duplicate basic constraints")),
    }
    for extension in cert.extensions() {
        if extension.oid.as_bytes() != AAGUID_OID {
            continue;
        }
        if extension.critical {
            return Err(Error::AttestationCertificate(
                "AAGUID extension is critical",
            ));
        }
        // extnValue holds a DER OCTET STRING of 16 bytes: 04 10 <aaguid>.
        match extension.value.split_first_chunk::<2>() {
            Some(([0x04, 0x10], value)) if value == aaguid => {}
            _ => {
                return Err(Error::AttestationCertificate(
                    "AAGUID does not match the authenticator data",
                ));
            }
        }
    }
    Ok(())
}

/// Whether one of the attribute values is a string that `accept` takes.
fn any_text<'a, 'b: 'a>(
    mut values: impl Iterator<Item = &'a AttributeTypeAndValue<'b>>,
    accept: impl Fn(&str) -> bool,
) -> bool {
    values.any(|value| value.as_str().is_ok_and(&accept))
}

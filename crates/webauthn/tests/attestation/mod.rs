//! Attestation (§8.2 packed, §8.7 none): self and x5c statements, their refusals, unsupported
//! formats, and the attestation objects built for native clients.

use ciborium::Value;
use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{Algorithm, AttestationFormat, AttestationStatement, attestation_object};

use crate::support::*;

/// A soft registration re-signed as packed attestation with `x5c` and the attestation key.
fn with_x5c(reg: &Registration, key: &HandKey, cert: &[u8]) -> Vec<u8> {
    let statement = AttestationStatement::Packed {
        alg: key.algorithm(),
        sig: key.sign(&signed(&reg.credential.auth_data, &reg.client_data)),
        x5c: vec![cert.to_vec()],
    };
    attestation_object(
        AttestationFormat::Packed,
        &reg.credential.auth_data,
        &statement,
    )
    .unwrap()
}

#[test]
fn packed_x5c_verifies_and_returns_the_chain() {
    let mut auth = SoftAuthenticator::new(AAGUID);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let object = with_x5c(&reg, &HandKey::attestation(), ATTESTATION_CERT);
    let registered = verify_reg(&reg.challenge, &reg.client_data, &object).unwrap();
    assert_eq!(registered.format, AttestationFormat::Packed);
    assert_eq!(
        registered.attestation_certificates,
        vec![ATTESTATION_CERT.to_vec()]
    );
    assert_eq!(registered.aaguid, AAGUID);
}

#[test]
fn packed_x5c_refusals() {
    let mut auth = SoftAuthenticator::new(AAGUID);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let verify = |object: &[u8]| {
        let error = verify_reg(&reg.challenge, &reg.client_data, object).unwrap_err();
        (error.reason(), error.to_string())
    };
    // signed by another key than the certificate's
    let object = with_x5c(&reg, &HandKey::p256(), ATTESTATION_CERT);
    assert_eq!(verify(&object).0, "attestation_signature");
    // the certificate's OU is not "Authenticator Attestation"
    let object = with_x5c(&reg, &HandKey::attestation(), ATTESTATION_CERT_WRONG_OU);
    let (why, message) = verify(&object);
    assert_eq!(why, "attestation_certificate");
    assert!(message.contains("OU"), "{message}");
    // not a certificate
    let object = with_x5c(&reg, &HandKey::attestation(), b"not DER");
    assert_eq!(verify(&object).0, "attestation_certificate");
    // the certificate names another authenticator model than the authenticator data
    let mut other = SoftAuthenticator::new([9; 16]);
    let reg = soft_register(&mut other, SoftAttestation::None);
    let object = with_x5c(&reg, &HandKey::attestation(), ATTESTATION_CERT);
    let error = verify_reg(&reg.challenge, &reg.client_data, &object).unwrap_err();
    assert_eq!(error.reason(), "attestation_certificate");
    assert!(error.to_string().contains("AAGUID"), "{error}");
    // an empty chain
    let statement = vec![
        ("alg", Value::from(-7)),
        ("sig", Value::Bytes(vec![0x30])),
        ("x5c", Value::Array(vec![])),
    ];
    let object = raw_attestation_object("packed", statement, &reg.credential.auth_data);
    assert_eq!(
        reason(verify_reg(&reg.challenge, &reg.client_data, &object)),
        "malformed"
    );
}

#[test]
fn packed_self_refusals() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let data = &reg.credential.auth_data;
    let verify = |object: &[u8]| reason(verify_reg(&reg.challenge, &reg.client_data, object));
    // signed by another key
    let other = HandKey::p256();
    let sig = other.sign(&signed(data, &reg.client_data));
    let object = raw_attestation_object(
        "packed",
        vec![("alg", (-7).into()), ("sig", Value::Bytes(sig.clone()))],
        data,
    );
    assert_eq!(verify(&object), "attestation_signature");
    // alg other than the credential key's
    let object = raw_attestation_object(
        "packed",
        vec![("alg", (-257).into()), ("sig", Value::Bytes(sig))],
        data,
    );
    assert_eq!(verify(&object), "attestation_signature");
    // no signature at all
    let object = raw_attestation_object("packed", vec![("alg", (-7).into())], data);
    assert_eq!(verify(&object), "malformed");
    // ECDAA (removed from the specification)
    let object = raw_attestation_object(
        "packed",
        vec![
            ("alg", (-7).into()),
            ("sig", Value::Bytes(vec![])),
            ("ecdaaKeyId", Value::Bytes(vec![1])),
        ],
        data,
    );
    assert_eq!(verify(&object), "unsupported_attestation");
}

#[test]
fn attestation_format_refusals() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let data = &reg.credential.auth_data;
    let verify = |object: &[u8]| reason(verify_reg(&reg.challenge, &reg.client_data, object));
    assert_eq!(
        verify(&raw_attestation_object("tpm", vec![], data)),
        "unsupported_attestation"
    );
    assert_eq!(
        verify(&raw_attestation_object("fido-u2f", vec![], data)),
        "unsupported_attestation"
    );
    assert_eq!(
        verify(&raw_attestation_object("none", vec![("x", 1.into())], data)),
        "malformed"
    );
    let mut trailing = reg.attestation_object();
    trailing.push(0);
    assert_eq!(verify(&trailing), "malformed");
    assert_eq!(verify(b""), "malformed");
}

#[test]
fn attestation_object_is_canonical_and_consistent() {
    let object = attestation_object(
        AttestationFormat::None,
        b"data",
        &AttestationStatement::None,
    )
    .unwrap();
    // {"fmt": "none", "attStmt": {}, "authData": h'64617461'}, keys in CTAP2 canonical order
    let expected = [
        &[0xa3, 0x63][..],
        b"fmt",
        &[0x64],
        b"none",
        &[0x67],
        b"attStmt",
        &[0xa0],
        &[0x68],
        b"authData",
        &[0x44],
        b"data",
    ]
    .concat();
    assert_eq!(object, expected);
    let packed = AttestationStatement::Packed {
        alg: Algorithm::Es256,
        sig: vec![1],
        x5c: vec![],
    };
    assert!(attestation_object(AttestationFormat::None, b"data", &packed).is_err());
    assert!(
        attestation_object(
            AttestationFormat::Packed,
            b"data",
            &AttestationStatement::None
        )
        .is_err()
    );
}
